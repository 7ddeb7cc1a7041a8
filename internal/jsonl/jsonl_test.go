package jsonl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type rec struct {
	Name string `json:"name"`
	V    int    `json:"v"`
}

func named(r *rec) error {
	if r.Name == "" {
		return errors.New("record without a name")
	}
	return nil
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A blank line is skipped; a last line cut short is left out.
	got, err := Read(write("ok", "{\"name\":\"a\",\"v\":1}\n\n{\"name\":\"b\",\"v\":2}\n{\"name\":\"c\""), "record", named)
	if err != nil || len(got) != 2 || got[1] != (rec{"b", 2}) {
		t.Fatalf("Read: %v, %v; want a and b", got, err)
	}
	for _, c := range []struct{ content, want string }{
		{"{\"name\":\"a\"}\nnot json\n", ":2: not a record"},
		{"{\"name\":\"a\"}\n{\"v\":3}\n", ":2: record without a name"},
	} {
		if _, err := Read(write("bad", c.content), "record", named); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error with %q", c.content, err, c.want)
		}
	}
	if _, err := Read(filepath.Join(dir, "none"), "record", named); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want fs.ErrNotExist", err)
	}
}
