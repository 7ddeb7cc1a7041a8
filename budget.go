package qfleet

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"

	"github.com/dustin/go-humanize"

	"github.com/qfleet/qfleet/actors"
)

// maxMemory is --max-memory in bytes: auto is actors.DefaultMaxMemory, 0
// no limit.
func ParseMaxMemory(flag string) (uint64, error) {
	switch flag {
	case "auto", "":
		return actors.DefaultMaxMemory(), nil
	case "0":
		return 0, nil
	}
	n, err := humanize.ParseBytes(flag)
	if err != nil {
		return 0, UsageError{fmt.Errorf("--max-memory %q: want a size such as 16GiB or 500MB, auto or 0", flag)}
	}
	return n, nil
}

// MemoryEstimate is what this node would hold with roles.
func (t *Run) MemoryEstimate(roles []string) actors.MemoryEstimate {
	return actors.EstimateMemory(t.spec, t.cf.Config, roles, t.snapshotEvery > 0)
}

// checkMemory refuses a config this node cannot hold, before anything is
// allocated or written: a usage error naming the setting behind the
// largest part, its bytes per unit, the total and the limit.
func (t *Run) checkMemory(roles []string, flag string) error {
	limit, err := ParseMaxMemory(flag)
	if err != nil {
		return err
	}
	if err := t.MemoryEstimate(roles).Check(limit); err != nil {
		if errors.Is(err, actors.ErrMemoryBudget) {
			return UsageError{fmt.Errorf("%w; see 'qfleet config print' for the estimate", err)}
		}
		return err
	}
	// The learner runs the GC at 400% (nets.SetLearnerGC): without a limit
	// the heap grows to 5× what is live before a collection, several times
	// the estimate. The same limit as a soft runtime limit makes the GC
	// work harder instead, near it (unless the user set GOMEMLIMIT).
	if limit > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(min(limit, math.MaxInt64)))
	}
	return nil
}
