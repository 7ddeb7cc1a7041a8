package actors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/cluster/hostile"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
)

// The file readers of checkpoints and replay snapshots, fuzzed on the bytes
// of the newest file. A file's checksum is no defence against a hand-made
// (or buggy, or foreign) file, so the targets can seal any payload with a
// good header and checksum: sealed, the fuzz bytes are the payload; not
// sealed, they are the whole file (header and checksum included). With
// fallback, an older good file lies next to it, which must then be what
// is read when the newest is not readable.

// fuzzDurableFile is the file a target writes: data as it is, or sealed
// as writeDurable seals a payload.
func fuzzDurableFile(magic [4]byte, data []byte, sealed bool) []byte {
	if !sealed {
		return data
	}
	file := binary.LittleEndian.AppendUint32(append([]byte(nil), magic[:]...), crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	return append(file, data...)
}

// fuzzDir is the directory a file target writes its files in, reused for
// every input: in memory where Linux offers it, as a file system on disk
// spends more time opening, writing and removing the few files of an input
// than the readers spend on them (about 3 ms against 0.1 ms).
func fuzzDir(f *testing.F) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "qfleet-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return f.TempDir()
}

// fuzzClearDir empties dir: the targets reuse one directory, as a fresh
// one per input costs more than the read under test.
func fuzzClearDir(t *testing.T, dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
}

// fuzzCheckpointFallback is the good older checkpoint of FuzzReadCheckpoint.
func fuzzCheckpointFallback() *messages.Checkpoint {
	return checkpointOf("CartPole-v1", testNet())
}

// fuzzWriteDurable empties dir and writes data as the newest durable file
// name (sealed: with a valid header and checksum) and, with fallback, the
// good older file name.1 holding older.
func fuzzWriteDurable(t *testing.T, dir, name string, magic [4]byte, data []byte, sealed, fallback bool, older proto.Message) {
	t.Helper()
	fuzzClearDir(t, dir)
	if fallback {
		payload, err := proto.Marshal(older)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".1"), fuzzDurableFile(magic, payload, true), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), fuzzDurableFile(magic, data, sealed), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzReadCheckpoint: any newest checkpoint file reads as a checkpoint or
// is skipped as corrupt (never a panic, never "no checkpoint" when there is
// a file); what reads writes and reads back equal; the older good one is
// read when the newest is not readable; CheckResume and checkpointFits
// answer without panicking.
func FuzzReadCheckpoint(f *testing.F) {
	dir := fuzzDir(f)
	f.Fuzz(func(t *testing.T, data []byte, sealed, fallback bool) {
		fuzzWriteDurable(t, dir, CheckpointFile, checkpointMagic, data, sealed, fallback, fuzzCheckpointFallback())
		c, skipped, err := ReadLatestCheckpoint(dir)
		switch {
		case err != nil && !errors.Is(err, ErrCorruptCheckpoint):
			t.Fatalf("a checkpoint file that does not read must be corrupt, got: %v", err)
		case err != nil && fallback:
			t.Fatalf("the older good checkpoint was not read: %v (skipped %v)", err, skipped)
		case err != nil:
			if len(skipped) != 1 || !errors.Is(skipped[0], ErrCorruptCheckpoint) {
				t.Fatalf("corrupt newest checkpoint: skipped %v", skipped)
			}
		case len(skipped) > 0 && !proto.Equal(c, fuzzCheckpointFallback()):
			t.Fatalf("newest skipped (%v), but what was read is not the older checkpoint", skipped)
		}
		if err := CheckResume(dir, "CartPole-v1", testNet(), []string{RoleLearner, RoleReplay}); err != nil &&
			!errors.Is(err, ErrCorruptCheckpoint) && !errors.Is(err, ErrResumeMisfit) {
			t.Fatalf("CheckResume: neither corrupt nor a misfit: %v", err)
		}
		if c == nil {
			return
		}
		if err := checkpointFits(c, "fuzz", "CartPole-v1", testNet()); err != nil && !errors.Is(err, ErrResumeMisfit) {
			t.Fatalf("checkpointFits: %v", err)
		}
		// Encoded and decoded again (as WriteCheckpoint and the reader do,
		// without the fsyncs of a real write, which would slow the fuzzer
		// tenfold).
		payload, err := proto.Marshal(c)
		if err != nil {
			t.Fatalf("a checkpoint that read does not encode: %v", err)
		}
		back, err := decodeCheckpoint("again", payload)
		if err != nil || !proto.Equal(back, c) {
			t.Fatalf("encoded and decoded again: %v, equal %v", err, proto.Equal(back, c))
		}
	})
}

// fuzzSnapshotFallback is the good older snapshot of FuzzReadSnapshot.
func fuzzSnapshotFallback() *messages.ReplaySnapshot {
	return snapshotOf("CartPole-v1", 4)
}

// FuzzReadSnapshot: as FuzzReadCheckpoint for the replay's snapshot, and
// what reads is restored, as the replay does, into tables of its
// observation size (uniform, prioritized, binary), see fuzzRestore.
func FuzzReadSnapshot(f *testing.F) {
	dir := fuzzDir(f)
	older := fuzzSnapshotFallback()
	f.Fuzz(func(t *testing.T, data []byte, sealed, fallback bool) {
		fuzzWriteDurable(t, dir, SnapshotFile, snapshotMagic, data, sealed, fallback, older)
		s, skipped, err := ReadLatestSnapshot(dir)
		switch {
		case err != nil && !errors.Is(err, ErrCorruptCheckpoint):
			t.Fatalf("a snapshot file that does not read must be corrupt, got: %v", err)
		case err != nil && fallback:
			t.Fatalf("the older good snapshot was not read: %v (skipped %v)", err, skipped)
		case err != nil:
			if len(skipped) != 1 || !errors.Is(skipped[0], ErrCorruptCheckpoint) {
				t.Fatalf("corrupt newest snapshot: skipped %v", skipped)
			}
		case len(skipped) > 0 && !proto.Equal(s, older):
			t.Fatalf("newest skipped (%v), but what was read is not the older snapshot", skipped)
		}
		if err := CheckResume(dir, "CartPole-v1", testNet(), []string{RoleReplay}); err != nil &&
			!errors.Is(err, ErrCorruptCheckpoint) && !errors.Is(err, ErrResumeMisfit) {
			t.Fatalf("CheckResume: neither corrupt nor a misfit: %v", err)
		}
		if s == nil {
			return
		}
		d := int(s.GetObsSize())
		if d < 1 || d > 64 {
			d = 4 // the restore must refuse it: observations of another size
		}
		for kind := range fuzzTableKinds {
			fuzzRestore(t, s, d, 1+int(s.GetSize()%64), kind)
		}
	})
}

// Table kinds fuzzRestore restores into.
const (
	fuzzTableUniform = iota
	fuzzTablePrioritized
	fuzzTableBinary
	fuzzTableKinds
)

// fuzzTable is an empty table of a kind, for an env of 3 actions (the
// actions batchOf writes).
func fuzzTable(obsSize, capacity, kind int) *Table {
	var t *Table
	switch kind {
	case fuzzTablePrioritized:
		t = NewTable(obsSize, capacity)
		t.Prioritize(0.6)
	case fuzzTableBinary:
		t = NewFrameTable(envs.Binary, obsSize, capacity)
	default:
		t = NewTable(obsSize, capacity)
	}
	t.LimitActions(3)
	return t
}

// fuzzRestore restores s into an empty table and checks what the replay
// relies on: a refused snapshot leaves the table empty; a restored table
// holds the newest min(size, capacity) rows, its values are ones Insert
// would have taken, it samples, and its capture restores to the same table.
func fuzzRestore(t *testing.T, s *messages.ReplaySnapshot, obsSize, capacity, kind int) {
	t.Helper()
	tb := fuzzTable(obsSize, capacity, kind)
	where := fmt.Sprintf("restore into a table of kind %d, %d values, capacity %d", kind, obsSize, capacity)
	if err := tb.restore(s); err != nil {
		if tb.Size() != 0 || tb.Inserted() != 0 {
			t.Fatalf("%s: refused (%v) but the table changed: size %d, inserted %d", where, err, tb.Size(), tb.Inserted())
		}
		return
	}
	if want := min(int(s.GetSize()), capacity); tb.Size() != want || tb.Inserted() != s.GetInserted() {
		t.Fatalf("%s: size %d inserted %d, want %d and %d", where, tb.Size(), tb.Inserted(), want, s.GetInserted())
	}
	c := tb.capture()
	b := &messages.ExperienceBatch{Runner: "restored", ObsSize: uint32(obsSize), Count: uint32(tb.Size()),
		Observations: c.obs, NextObservations: c.nextObs, Actions: c.actions, Rewards: c.rewards, Discounts: c.discounts}
	if kind == fuzzTableBinary {
		b.Observations, b.NextObservations = make([]float32, tb.Size()*obsSize), make([]float32, tb.Size()*obsSize)
		for r := range tb.Size() {
			unpackBits(b.Observations[r*obsSize:(r+1)*obsSize], c.packedObs[r*c.packedBytes:])
			unpackBits(b.NextObservations[r*obsSize:(r+1)*obsSize], c.packedNext[r*c.packedBytes:])
		}
	}
	if err := tb.CheckBatch(b); err != nil {
		t.Fatalf("%s: restored rows Insert would refuse: %v", where, err)
	}
	for i, k := range c.keys {
		if k != tb.Inserted()-uint64(tb.Size())+uint64(i) {
			t.Fatalf("%s: row %d (oldest first) has key %d; keys must run up to inserted %d", where, i, k, tb.Inserted())
		}
	}
	for _, p := range c.priorities {
		if !(p > 0 && p <= 1e6) {
			t.Fatalf("%s: restored priority %v", where, p)
		}
	}
	if tb.Size() > 0 {
		var out messages.SampleBatch
		tb.Sample(rand.New(rand.NewPCG(1, 2)), 8, 0.4, &out)
		if int(out.Count) != 8 {
			t.Fatalf("%s: sampled %d of 8", where, out.Count)
		}
	}
	again := fuzzTable(obsSize, capacity, kind)
	if err := again.restore(c.encode(s.GetEnv())); err != nil {
		t.Fatalf("%s: the restored table's own snapshot does not restore: %v", where, err)
	}
	if c2 := again.capture(); !sameCapture(c, c2) {
		t.Fatalf("%s: the restored table's own snapshot restores to another table", where)
	}
}

// sameCapture compares two captures bit for bit.
func sameCapture(a, b *tableCapture) bool {
	ea, eb := a.encode(""), b.encode("")
	ea.UnixMillis, eb.UnixMillis = 0, 0
	return proto.Equal(ea, eb)
}

// fuzzDurableSeeds are corpus entries of the file targets: each real file
// as it is, its payload sealed, both with and without the fallback.
func fuzzDurableSeeds(tb testing.TB, files map[string][]byte) map[string][]byte {
	seeds := map[string][]byte{}
	for name, file := range files {
		for _, fallback := range []bool{false, true} {
			seeds[fmt.Sprintf("%s-file-fallback-%v", name, fallback)] = hostile.CorpusEntry(file, false, fallback)
			if len(file) >= 8 {
				seeds[fmt.Sprintf("%s-payload-fallback-%v", name, fallback)] = hostile.CorpusEntry(file[8:], true, fallback)
			}
		}
	}
	seeds["empty"] = hostile.CorpusEntry([]byte{}, false, false)
	seeds["empty-sealed"] = hostile.CorpusEntry([]byte{}, true, true)
	return seeds
}

// writtenFile is what write puts in a fresh directory as name.
func writtenFile(tb testing.TB, name string, write func(dir string) error) []byte {
	tb.Helper()
	dir := tb.TempDir()
	if err := write(dir); err != nil {
		tb.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

func TestFuzzReadCheckpointCorpus(t *testing.T) {
	files := map[string][]byte{}
	for name, c := range map[string]*messages.Checkpoint{
		"cartpole": fuzzCheckpointFallback(),
		"minimal":  testCheckpoint(5),
		"empty":    {},
	} {
		files[name] = writtenFile(t, CheckpointFile, func(dir string) error { return WriteCheckpoint(dir, c) })
	}
	hostile.CheckCorpus(t, "FuzzReadCheckpoint", fuzzDurableSeeds(t, files))
}

func TestFuzzReadSnapshotCorpus(t *testing.T) {
	prio := NewTable(4, 8)
	prio.Prioritize(0.6)
	prio.Insert(batchOf(0, 11, 4)) // wrapped
	bin := NewFrameTable(envs.Binary, 9, 6)
	bb := batchOf(0, 4, 9)
	for i := range bb.Observations {
		bb.Observations[i], bb.NextObservations[i] = float32(i%3%2), float32(i%5%2)
	}
	bin.Insert(bb)
	files := map[string][]byte{}
	for name, s := range map[string]*messages.ReplaySnapshot{
		"uniform":     fuzzSnapshotFallback(),
		"prioritized": prio.capture().encode("CartPole-v1"),
		"binary":      bin.capture().encode("MinAtar/Breakout-v1"),
		"empty-table": NewTable(4, 4).capture().encode("CartPole-v1"),
	} {
		files[name] = writtenFile(t, SnapshotFile, func(dir string) error { return WriteSnapshot(dir, s) })
	}
	hostile.CheckCorpus(t, "FuzzReadSnapshot", fuzzDurableSeeds(t, files))
}
