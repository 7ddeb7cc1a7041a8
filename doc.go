// Package qfleet is distributed deep Q-learning on supervised protoactor-go actors.
// See README.md; the code lives in actors/, messages/, cluster/, nets/, envs/ and cmd/.
package qfleet

import (
	// Pinned so that `go mod tidy` keeps the foundation dependencies while packages are built up.
	_ "github.com/asynkron/protoactor-go/actor"
	_ "github.com/hashicorp/memberlist"
	_ "go4.org/unsafe/assume-no-moving-gc"
	_ "gorgonia.org/gorgonia"
)
