// Package freshdir makes directories that no other run or trial has: run
// directories and a sweep's trial directories.
package freshdir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// Make makes a directory that did not exist: base, else base-2, base-3
// ... up to base-tries. Making it (rather than checking first) is what
// claims it, so two processes never get the same one.
func Make(base string, tries int) (string, error) {
	for i := 1; i <= tries; i++ {
		d := base
		if i > 1 {
			d = base + "-" + strconv.Itoa(i)
		}
		err := os.Mkdir(d, 0o755)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%s and %d suffixed names exist already", base, tries-1)
}
