// Package jsonl reads the append-only JSON-lines files of runs and sweeps
// (scalars.jsonl, results.jsonl). Each record is written as one write of a
// whole line, so a process killed mid-write leaves at most a last line
// without its newline: that one is left out, not an error.
package jsonl

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// Read reads the records of path, one T a line; blank lines are skipped.
// check refuses a record that decodes but is not one (a missing key); its
// error, and a line that is not JSON of a T, are reported as path:line with
// what the line should have been.
func Read[T any](path, what string, check func(*T) error) ([]T, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err // *fs.PathError names the file
	}
	defer f.Close()
	var out []T
	r := bufio.NewReader(f)
	for line := 1; ; line++ {
		text, err := r.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return out, nil // a partial last line, or none
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if text = bytes.TrimSpace(text); len(text) == 0 {
			continue
		}
		var v T
		if err := json.Unmarshal(text, &v); err != nil {
			return nil, fmt.Errorf("%s:%d: not a %s: %v", path, line, what, err)
		}
		if err := check(&v); err != nil {
			return nil, fmt.Errorf("%s:%d: %v", path, line, err)
		}
		out = append(out, v)
	}
}
