package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/cmd/qfleet/cli"
)

// TestCustomEnvTrains: a program's own environment, registered through the
// public API, trains to its reward threshold in this process.
func TestCustomEnvTrains(t *testing.T) {
	var stdout, stderr bytes.Buffer
	sum, err := train(t.TempDir(), 40_000, &stdout, &stderr)
	if err != nil {
		t.Fatalf("train: %v\n%s", err, stderr.String())
	}
	if sum.Env != CorridorID || !sum.Solved || sum.MeanReturn100 < 0.9 {
		t.Fatalf("summary %+v: want %s solved, mean100 >= 0.9\n%s", sum, CorridorID, stderr.String())
	}
	t.Logf("solved at %d env steps, %.1f s", sum.SolvedAtEnvSteps, sum.SolvedAtSeconds)
}

// TestCustomEnvCommand: the program is the whole qfleet command too, with
// its environment in it.
func TestCustomEnvCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := cli.Main([]string{"config", "print", "--env", CorridorID}, &stdout, &stderr); code != 0 {
		t.Fatalf("config print: exit %d\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "env: "+CorridorID) {
		t.Errorf("config print of %s:\n%s", CorridorID, stdout.String())
	}
	stdout.Reset()
	if code := cli.Main([]string{"dev", "--help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), CorridorID+"                ") || !strings.Contains(stdout.String(), "8 → 64 → 64 → 2, MLP") {
		t.Errorf("dev --help (exit %d) does not list %s:\n%s", code, CorridorID, stdout.String())
	}
}
