//go:build !unix

package nets

import "time"

func processCPU() time.Duration { return 0 }
