// Package yamlstrict decodes a user's YAML file strictly — a key the file
// may not hold is an error, not a setting silently ignored — and says what
// is wrong on one line in the file's words: yaml.v3 names Go types and
// spreads its errors over several lines.
package yamlstrict

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Place is what a Go type the file decodes into is to its user.
type Place struct {
	// Keys lists the keys the place takes, e.g. "host keys: name, address".
	Keys string
	// Into names it where a value of the wrong kind was found, e.g. "a map".
	Into string
}

var unknownField = regexp.MustCompile(`(^|: )field (\S+) not found in type ([^\s;]+)`)

// Decode decodes data into v, refusing unknown keys. An empty document is
// io.EOF, for the caller to say what the file should hold. places maps the
// Go type names yaml reports ("launch.hostFile") to their Place.
func Decode(data []byte, v any, places map[string]Place) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err := dec.Decode(v)
	if err == nil || errors.Is(err, io.EOF) {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), "yaml: unmarshal errors:\n  ", "")
	msg = strings.ReplaceAll(msg, "\n  ", "; ")
	msg = unknownField.ReplaceAllStringFunc(msg, func(m string) string {
		sub := unknownField.FindStringSubmatch(m)
		out := sub[1] + "unknown key " + sub[2]
		if p, ok := places[sub[3]]; ok && p.Keys != "" {
			out += " (" + p.Keys + ")"
		}
		return out
	})
	for typ, p := range places {
		if p.Into != "" {
			msg = strings.ReplaceAll(msg, " into "+typ, " into "+p.Into)
		}
	}
	return errors.New(strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(msg))
}
