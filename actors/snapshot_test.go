package actors

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
)

// rows lists a table's rewards oldest first (batchOf sets reward = index).
func rows(t *Table) []float32 {
	c := t.capture()
	return c.rewards
}

// A snapshot round trip keeps every row in ring order, the keys and the
// insert count; a smaller table keeps the newest rows; bad lengths are
// refused without touching the table.
func TestSnapshotRoundTrip(t *testing.T) {
	src := NewTable(2, 10)
	for start := 0; start < 23; start += 4 { // 24 rows into 10: the ring wrapped
		src.Insert(batchOf(start, 4, 2))
	}
	want := rows(src)
	if len(want) != 10 || want[0] != 14 || want[9] != 23 {
		t.Fatalf("capture order %v, want 14..23", want)
	}
	dir := t.TempDir()
	if err := WriteSnapshot(dir, src.capture().encode("CartPole-v1")); err != nil {
		t.Fatal(err)
	}
	s, skipped, err := ReadLatestSnapshot(dir)
	if err != nil || len(skipped) != 0 {
		t.Fatalf("read: %v (skipped %v)", err, skipped)
	}
	dst := NewTable(2, 10)
	if err := dst.restore(s); err != nil {
		t.Fatal(err)
	}
	if got := rows(dst); !equalF32(got, want) || dst.Inserted() != 24 || dst.Size() != 10 {
		t.Fatalf("restored %v (inserted %d, size %d), want %v (24, 10)", got, dst.Inserted(), dst.Size(), want)
	}
	if c := dst.capture(); c.keys[0] != 14 || c.nextObs[0] != 14.5 || c.actions[0] != 14%3 {
		t.Fatalf("restored row 0: key %d next_obs %v action %d", c.keys[0], c.nextObs[0], c.actions[0])
	}
	dst.Insert(batchOf(24, 1, 2)) // inserts go on where they stopped: the oldest row goes
	if got := rows(dst); got[0] != 15 || got[9] != 24 {
		t.Fatalf("after an insert %v, want 15..24", got)
	}
	small := NewTable(2, 4)
	if err := small.restore(s); err != nil {
		t.Fatal(err)
	}
	if got := rows(small); !equalF32(got, []float32{20, 21, 22, 23}) {
		t.Fatalf("smaller table kept %v, want the newest 20..23", got)
	}
	s.Rewards = s.Rewards[:4]
	fresh := NewTable(2, 10)
	if err := fresh.restore(s); err == nil || fresh.Size() != 0 {
		t.Fatalf("truncated snapshot: err %v, size %d", err, fresh.Size())
	}
	if err := NewTable(3, 10).restore(s); err == nil {
		t.Fatal("snapshot with another observation size accepted")
	}
}

// A corrupt newest snapshot is detected and the one before it used.
func TestCorruptSnapshotFallsBack(t *testing.T) {
	dir := t.TempDir()
	tab := NewTable(2, 10)
	for i := range 2 {
		tab.Insert(batchOf(i*3, 3, 2))
		if err := WriteSnapshot(dir, tab.capture().encode("x")); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, SnapshotFile)
	data, _ := os.ReadFile(path)
	data[len(data)-3] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	s, skipped, err := ReadLatestSnapshot(dir)
	if err != nil || len(skipped) != 1 || s.GetSize() != 3 {
		t.Fatalf("got size %d, %d skipped, err %v; want the older snapshot (3) with 1 skipped", s.GetSize(), len(skipped), err)
	}
	if _, _, err := ReadLatestSnapshot(t.TempDir()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty directory: %v, want os.ErrNotExist", err)
	}
}

// The replay actor writes snapshots while it keeps inserting, and a replay
// that restarts under its supervisor goes on from the newest one: contents,
// stream positions (so the loss since the snapshot is counted exactly) and
// counters.
func TestReplayRestartsFromItsSnapshot(t *testing.T) {
	sys := newTestSystem(t)
	runnerCh := spawnProbe(t, sys, "runner")
	runnerRef := probeRef(sys, "runner")
	cfg := DefaultConfig()
	cfg.MinReplaySize = 1000
	m := NewMetrics()
	dir := t.TempDir()
	rp := spawnTestReplay(sys, cfg, m, SnapshotSpec{Dir: dir, Every: 50 * time.Millisecond, EnvID: "test"})
	var sent uint64
	send := func(seq uint64, n int) {
		b := batchOf(int(sent), n, 2)
		b.Runner, b.RunnerIncarnation, b.Seq, b.SentBefore, b.ReplyTo = "r0", 5, seq, sent, runnerRef
		sent += uint64(n)
		sys.Root.Send(rp, b)
		next[*messages.Credit](t, runnerCh)
	}
	for seq := uint64(1); seq <= 10; seq++ {
		send(seq, 10)
	}
	// Wait until a snapshot holds all 100.
	testutil.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if s, _, err := ReadLatestSnapshot(dir); err != nil || s.GetSize() != 100 {
			return fmt.Errorf("no snapshot of 100 transitions (newest: %v, %v)", s.GetSize(), err)
		}
		return nil
	})
	if err := sys.Root.StopFuture(rp).Wait(); err != nil { // a clean stop writes a last snapshot
		t.Fatal(err)
	}
	rp = spawnTestReplay(sys, cfg, m, SnapshotSpec{Dir: dir, Every: time.Hour, Restore: true, EnvID: "test"})
	sent += 30 // three batches lost with nobody to receive them
	send(14, 10)
	st := m.Status()
	if st.ReplaySize != 110 || st.ReplayInserted != 110 || st.ExperienceLost != 30 {
		t.Fatalf("after the restore: size %d inserted %d lost %d, want 110 110 30", st.ReplaySize, st.ReplayInserted, st.ExperienceLost)
	}
	if err := sys.Root.StopFuture(rp).Wait(); err != nil {
		t.Fatal(err)
	}
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// fullCartPoleTable is a full table of the default capacity (100k) with
// CartPole-sized rows.
func fullCartPoleTable(b *testing.B) *Table {
	tab := NewTable(4, DefaultConfig().ReplayCapacity)
	for start := 0; start < DefaultConfig().ReplayCapacity; start += 1000 {
		tab.Insert(batchOf(start, 1000, 4))
	}
	return tab
}

// BenchmarkSnapshotCapture is how long a periodic snapshot holds up the
// replay actor (inserts and samples wait for it): the copy of the rows.
func BenchmarkSnapshotCapture(b *testing.B) {
	tab := fullCartPoleTable(b)
	b.ReportAllocs()
	for b.Loop() {
		tab.capture()
	}
}

// BenchmarkSnapshotWrite is the part that runs off the actor: encoding and
// the durable write (temp file, fsync, rename).
func BenchmarkSnapshotWrite(b *testing.B) {
	c := fullCartPoleTable(b).capture()
	dir := b.TempDir()
	for b.Loop() {
		if err := WriteSnapshot(dir, c.encode("CartPole-v1")); err != nil {
			b.Fatal(err)
		}
	}
}
