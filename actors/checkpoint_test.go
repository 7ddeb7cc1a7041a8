package actors

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
)

func TestCheckpointRoundTripAndCorruption(t *testing.T) {
	dir := t.TempDir()
	c := &messages.Checkpoint{Env: "CartPole-v1", Layers: []uint32{4, 8, 2}, Online: []float32{1, 2, 3}, Target: []float32{4, 5, 6},
		AdamStep: 9, LearnerUpdates: 10, WeightsVersion: 11, Term: 1}
	if err := WriteCheckpoint(dir, c); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, c) {
		t.Fatalf("read back %v, wrote %v", got, c)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	path := filepath.Join(dir, CheckpointFile)
	data, _ := os.ReadFile(path)
	data[len(data)-1] ^= 0x40 // one flipped bit in the payload
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCheckpoint(dir); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("corrupt checkpoint: err %v, want ErrCorruptCheckpoint", err)
	}
	if err := os.WriteFile(path, data[:5], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadCheckpoint(dir); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("truncated checkpoint: err %v, want ErrCorruptCheckpoint", err)
	}
}

func TestCheckpointUnwritableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteCheckpoint(filepath.Join(file, "sub"), &messages.Checkpoint{}); err == nil {
		t.Fatal("checkpoint into a path under a file succeeded")
	}
}

func testCheckpoint(updates uint64) *messages.Checkpoint {
	return &messages.Checkpoint{Env: "CartPole-v1", LearnerUpdates: updates, Online: []float32{float32(updates)}}
}
