package cli

// A config file's command settings (qfleet.CommandSettings: run_dir, join,
// ...) are applied to the command's own flags before the command line is
// read back, so a flag given there wins.

import (
	"flag"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/qfleet/qfleet"
)

// flagName is the flag a qfleet.CommandSettings field stands for.
func flagName(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	return strings.ReplaceAll(key, "_", "-")
}

// applySettings sets the flags of fs that s gives a value for, unless the command
// line gave that flag. Zero values and the flag's own default are skipped,
// so that a printed config (which lists every default) changes nothing.
func applySettings(s qfleet.CommandSettings, fs *flag.FlagSet, path string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		field := v.Type().Field(i)
		fl := fs.Lookup(flagName(field))
		if fl == nil || given[fl.Name] || v.Field(i).IsZero() {
			continue
		}
		val := fmt.Sprint(v.Field(i).Interface())
		if val == fl.DefValue {
			continue
		}
		if err := fs.Set(fl.Name, val); err != nil {
			key, _, _ := strings.Cut(field.Tag.Get("yaml"), ",")
			return fmt.Errorf("config %s: %s = %q: %v", path, key, val, err)
		}
	}
	return nil
}

// settingsFromFlags takes into s the value of every setting that fs has a
// flag for: the effective settings (the file's under the flags given).
func settingsFromFlags(s *qfleet.CommandSettings, fs *flag.FlagSet) {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		fl := fs.Lookup(flagName(v.Type().Field(i)))
		if fl == nil {
			continue
		}
		val := fl.Value.String()
		switch f := v.Field(i); f.Kind() {
		case reflect.String:
			f.SetString(val)
		case reflect.Bool:
			b, _ := strconv.ParseBool(val)
			f.SetBool(b)
		case reflect.Int:
			n, _ := strconv.Atoi(val)
			f.SetInt(int64(n))
		}
	}
}
