//go:build !race

// Left out of -race builds: each benchmark starts a protoactor remote in this
// process, and two remotes in one process trip the race detector inside
// protoactor (grpclog.SetLoggerV2; see cluster/README.md).

package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWireAndWeights runs both benchmarks briefly; the other sides are
// processes of a qfleet binary built for the test (this test binary cannot
// stand in for it). Every measured number must be positive, and the report
// must end with the JSON of the result.
func TestWireAndWeights(t *testing.T) {
	if testing.Short() {
		t.Skip("builds qfleet and starts processes")
	}
	bin := filepath.Join(t.TempDir(), "qfleet")
	// go test puts GOROOT/bin first on PATH, so this is the same toolchain.
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/qfleet/qfleet/cmd/qfleet").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	saved := Executable
	Executable = func() (string, error) { return bin, nil }
	t.Cleanup(func() { Executable = saved })

	wo := DefaultWireOptions()
	wo.Seconds = 1
	wr, err := Wire(context.Background(), wo)
	if err != nil {
		t.Fatalf("Wire: %v", err)
	}
	for name, v := range map[string]float64{"transitions/s": wr.TransitionsPerSecond, "bytes/transition": wr.BytesPerTransition,
		"sender cores": wr.SenderCPUCores, "pack µs/batch": wr.PackMicrosPerBatch, "messages/s": wr.MessagesPerSecond} {
		if !(v > 0) {
			t.Errorf("Wire: %s = %v, want > 0 (%+v)", name, v, wr)
		}
	}
	// A CartPole transition is 32 raw bytes of observations alone: the
	// runner's packing must do better than raw.
	if wr.BytesPerTransition >= 32 || wr.Window != 8*wo.Batch || wr.Rejected != 0 {
		t.Errorf("Wire: %+v; want < 32 B/transition, the default window of 8 batches and nothing rejected", wr)
	}
	checkReport(t, wr.Report, "transitions_per_s")

	oo := DefaultWeightsOptions()
	oo.Runners, oo.Rounds = 2, 3
	or, err := Weights(context.Background(), oo)
	if err != nil {
		t.Fatalf("Weights: %v", err)
	}
	if !(or.MedianMillis > 0 && or.FirstFullMillis > 0 && or.BytesPerBroadcast > 0) || or.Params != CartPoleParams() {
		t.Errorf("Weights: %+v; want positive times and bytes for the CartPole network", or)
	}
	// A delta of a nudged version packs smaller than the first, whole one.
	if !(or.BytesPerBroadcast < or.FirstFullBytes) {
		t.Errorf("Weights: %v bytes per delta, %v for the whole first version; want deltas smaller", or.BytesPerBroadcast, or.FirstFullBytes)
	}
	checkReport(t, or.Report, "median_ms")
}

// checkReport: a human summary, then one line of JSON with key in it.
func checkReport(t *testing.T, report func(io.Writer) error, key string) {
	t.Helper()
	var b bytes.Buffer
	if err := report(&b); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var got map[string]any
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &got); err != nil || len(lines) < 2 || got[key] == nil {
		t.Errorf("report: want a summary and then JSON with %q; got %v\n%s", key, err, b.String())
	}
}

// TestOptionsChecked: bad options are refused, naming the flag, before
// anything starts.
func TestOptionsChecked(t *testing.T) {
	wo := DefaultWireOptions()
	wo.Window = wo.Batch - 1
	if err := wo.Check(); err == nil || !strings.Contains(err.Error(), "--window") {
		t.Errorf("window below the batch: %v", err)
	}
	oo := DefaultWeightsOptions()
	oo.ChunkBytes = 10
	if _, err := Weights(context.Background(), oo); err == nil || !strings.Contains(err.Error(), "--chunk-bytes") {
		t.Errorf("Weights with 10-byte chunks: %v, want the flag named", err)
	}
}
