// Command qfleet trains deep Q-learning agents on supervised actors: all roles
// in one process (`qfleet dev`) or spread over cluster nodes. Its flags, help
// and dispatch are in package cli, so that a Go program can build the same
// command with environments of its own.
package main

import (
	"os"

	"github.com/qfleet/qfleet/cmd/qfleet/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
