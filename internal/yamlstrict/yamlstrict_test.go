package yamlstrict

import (
	"errors"
	"io"
	"strings"
	"testing"
)

type inner struct {
	Port int `yaml:"port"`
}

type outer struct {
	Name  string `yaml:"name"`
	Inner inner  `yaml:"inner"`
}

var places = map[string]Place{
	"yamlstrict.outer": {Keys: "keys: name, inner", Into: "the file (want key: value settings)"},
	"yamlstrict.inner": {Keys: "inner keys: port"},
}

func TestDecode(t *testing.T) {
	for _, c := range []struct{ name, data, want string }{
		{"unknown top key", "nam: x\n", "line 1: unknown key nam (keys: name, inner)"},
		{"unknown inner key", "inner: {prot: 1}\n", "line 1: unknown key prot (inner keys: port)"},
		{"two errors on one line", "nam: x\ninner: {port: abc}\n", "line 1: unknown key nam (keys: name, inner); line 2: cannot unmarshal !!str `abc` into int"},
		{"not a map", "- 1\n", "line 1: cannot unmarshal !!seq into the file (want key: value settings)"},
	} {
		var o outer
		err := Decode([]byte(c.data), &o, places)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: got %v, want %q", c.name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error spans lines: %q", c.name, err)
		}
	}
	var o outer
	if err := Decode([]byte("name: a\ninner: {port: 7}\n"), &o, places); err != nil || o.Name != "a" || o.Inner.Port != 7 {
		t.Fatalf("a good file: %v, %+v", err, o)
	}
	if err := Decode(nil, &o, places); !errors.Is(err, io.EOF) {
		t.Fatalf("an empty file: %v, want io.EOF", err)
	}
}
