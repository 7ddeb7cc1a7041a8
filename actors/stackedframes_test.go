package actors

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"google.golang.org/protobuf/proto"
)

// pixelClock is a uint8 env of 3×2×2 frames that are all distinct within a
// run: a frame names its env (the seed of its first reset), its episode and
// its step; episodes end at step 36 or sooner, at random.
type pixelClock struct {
	rng               *rand.Rand
	id, episode, step int
	buf               []float32
}

func (e *pixelClock) Spec() envs.Spec {
	return envs.Spec{ID: "PixelClock-v0", ObsShape: []int{3, 2, 2}, ObsDType: envs.Uint8, NumActions: 2, MaxEpisodeSteps: 36}
}

func (e *pixelClock) frame() []float32 {
	e.buf = e.buf[:0]
	e.buf = append(e.buf, float32(e.id), float32(e.episode%256), float32(e.episode/256), float32(e.step))
	for i := range 8 {
		e.buf = append(e.buf, float32((e.episode*41+e.step*7+i*97)%256))
	}
	return e.buf
}

func (e *pixelClock) Reset(seed int64) []float32 {
	if e.rng == nil {
		e.rng, e.id = rand.New(rand.NewPCG(uint64(seed), 1)), int(seed)
	}
	e.episode++
	e.step = 0
	return e.frame()
}

func (e *pixelClock) Step(int) ([]float32, float64, bool, bool) {
	e.step++
	term := e.rng.IntN(8) == 0
	return e.frame(), 1, term, !term && e.step == 36
}

// stackedStream steps a stacked vector of pixelClocks as a runner does (n-step
// transitions, in batches) and returns the batches and the env steps and
// episodes taken.
func stackedStream(t *testing.T, k, nEnvs, steps int) ([]*messages.ExperienceBatch, int, int) {
	var batches []*messages.ExperienceBatch
	episodes := streamStacked(t, func() envs.Env { return &pixelClock{} }, k, nEnvs, steps, func(b *messages.ExperienceBatch) {
		batches = append(batches, b)
	})
	return batches, steps * nEnvs, episodes
}

// streamStacked steps nEnvs envs of newEnv stacked k deep as a runner does:
// 3-step transitions, sent in batches of 32 to emit. It returns the episodes
// begun.
func streamStacked(tb testing.TB, newEnv func() envs.Env, k, nEnvs, steps int, emit func(*messages.ExperienceBatch)) int {
	tb.Helper()
	inner, err := envs.NewVec(nEnvs, func() (envs.Env, error) { return newEnv(), nil })
	if err != nil {
		tb.Fatal(err)
	}
	vec, err := envs.FrameStack(inner, k)
	if err != nil {
		tb.Fatal(err)
	}
	d := vec.Spec().ObsSize()
	seeds := make([]int64, nEnvs)
	for i := range seeds {
		seeds[i] = int64(i)
	}
	obs, err := vec.Reset(seeds)
	if err != nil {
		tb.Fatal(err)
	}
	obs = slices.Clone(obs)
	accs := make([]*NStepAccumulator, nEnvs)
	for i := range accs {
		accs[i] = NewNStepAccumulator(3, 0.9)
	}
	b := &messages.ExperienceBatch{ObsSize: uint32(d), FrameStack: uint32(k)}
	sink := func(o []float32, a int, r, disc float64, next []float32) {
		b.Append(o, a, r, disc, next)
		if b.Count == 32 {
			emit(b)
			b = &messages.ExperienceBatch{ObsSize: uint32(d), FrameStack: uint32(k)}
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	actions := make([]int32, nEnvs)
	episodes := nEnvs
	for range steps {
		for i := range actions {
			actions[i] = int32(rng.IntN(vec.Spec().NumActions))
		}
		st, err := vec.Step(actions)
		if err != nil {
			tb.Fatal(err)
		}
		for i := range nEnvs {
			next := st.Obs[i*d : (i+1)*d]
			if st.Done(i) {
				next = st.Final[i*d : (i+1)*d]
				episodes++
			}
			accs[i].Add(obs[i*d:(i+1)*d], int(actions[i]), 1, next, st.Terminated[i], st.Truncated[i], sink)
		}
		copy(obs, st.Obs)
	}
	return episodes
}

// Each frame is stored once: a runner's stream of stacked observations
// costs one frame per env step and one per episode start, and every row
// reads back as the stacks that were inserted.
func TestStackedFramesStoredOnce(t *testing.T) {
	const k = 4
	batches, steps, episodes := stackedStream(t, k, 3, 400)
	d := 12 * k
	tab := NewStackedFrameTable(envs.Uint8, d, 4096, k, 2)
	var inserted []*messages.ExperienceBatch
	for _, b := range batches {
		if err := tab.CheckBatch(b); err != nil {
			t.Fatal(err)
		}
		tab.Insert(b)
		inserted = append(inserted, b)
	}
	// The frames of episodes cut by the end of the stream that no emitted
	// transition holds are not in the table: at most k+n+1 per env.
	if got, most := tab.frames.inserted, uint64(steps+episodes); got > most || got < most-3*(k+4) {
		t.Fatalf("%d frames stored for %d env steps and %d episode starts", got, steps, episodes)
	}
	checkRowsEqual(t, tab, inserted, d)
	if tab.evicted != 0 {
		t.Fatalf("%d rows evicted from a table with room", tab.evicted)
	}
}

// checkRowsEqual reads every row back and compares it with the transition of
// its key.
func checkRowsEqual(t *testing.T, tab *Table, batches []*messages.ExperienceBatch, d int) {
	t.Helper()
	var obs, next []float32
	for _, b := range batches {
		obs, next = append(obs, b.Observations...), append(next, b.NextObservations...)
	}
	out := &messages.SampleBatch{}
	rows := make([]int, 0, tab.Size())
	for key := tab.Inserted() - uint64(tab.Size()); key < tab.Inserted(); key++ {
		r, ok := tab.rowOf(key)
		if !ok {
			t.Fatalf("key %d of the last %d is not held", key, tab.Size())
		}
		rows = append(rows, r)
	}
	tab.fill(rows, out)
	for i, key := range out.Keys {
		got, want := out.Observations[i*d:(i+1)*d], obs[int(key)*d:int(key+1)*d]
		if !slices.Equal(got, want) {
			t.Fatalf("row of key %d: observation %v, inserted %v", key, got, want)
		}
		if got, want := out.NextObservations[i*d:(i+1)*d], next[int(key)*d:int(key+1)*d]; !slices.Equal(got, want) {
			t.Fatalf("row of key %d: next observation %v, inserted %v", key, got, want)
		}
	}
}

// A stream whose frames never repeat brings 2k new frames a row, more than
// the ring holds: the rows whose frames were overwritten are dropped before
// they can be sampled, and no sample ever holds a frame of another row.
func TestStackedFramesEvictOverwritten(t *testing.T) {
	const k, cells = 4, 6
	d := k * cells
	tab := NewStackedFrameTable(envs.Uint8, d, 5000, k, 1)
	tab.Prioritize(0.6)
	rng := rand.New(rand.NewPCG(1, 2))
	var batches []*messages.ExperienceBatch
	for range 400 {
		b := &messages.ExperienceBatch{ObsSize: uint32(d), FrameStack: k}
		for range 32 {
			o, n := make([]float32, d), make([]float32, d)
			for i := range o {
				o[i], n[i] = float32(rng.IntN(256)), float32(rng.IntN(256))
			}
			b.Append(o, 1, 0.5, 0.9, n)
		}
		tab.Insert(b)
		batches = append(batches, b)
	}
	if tab.evicted == 0 || tab.Size() >= 5000 {
		t.Fatalf("%d rows evicted, %d held: frames that never repeat must overflow the ring", tab.evicted, tab.Size())
	}
	checkRowsEqual(t, tab, batches, d)
	out := &messages.SampleBatch{}
	for range 50 {
		tab.Sample(rng, 32, 0.4, out)
		for _, key := range out.Keys {
			if key < tab.Inserted()-uint64(tab.Size()) {
				t.Fatalf("sampled key %d, evicted (oldest held %d)", key, tab.Inserted()-uint64(tab.Size()))
			}
		}
	}
	uni := NewStackedFrameTable(envs.Uint8, d, 5000, k, 1)
	for _, b := range batches {
		uni.Insert(b)
	}
	for range 50 {
		uni.SampleUniform(rng, 32, out)
		for _, key := range out.Keys {
			if _, ok := uni.rowOf(key); !ok {
				t.Fatalf("uniform sample drew key %d, not held", key)
			}
		}
	}
}

// A stacked table's snapshot restores the same rows, each frame stored once
// again, and refuses batches of another stack depth.
func TestStackedFramesSnapshot(t *testing.T) {
	const k = 4
	batches, _, _ := stackedStream(t, k, 2, 300)
	d := 12 * k
	src := NewStackedFrameTable(envs.Uint8, d, 256, k, 2)
	for _, b := range batches {
		src.Insert(b)
	}
	snap := src.capture().encode("PixelClock-v0")
	// Each frame once: about a frame a row, not 2k.
	if frames := len(snap.GetFrames()) / 12; frames > src.Size()*3/2 || snap.GetFrameStack() != k || len(snap.GetPackedObservations()) != 0 {
		t.Fatalf("snapshot of %d rows holds %d frames (stack %d, %d packed bytes)", src.Size(), frames, snap.GetFrameStack(), len(snap.GetPackedObservations()))
	}
	dir := t.TempDir()
	if err := WriteSnapshot(dir, snap); err != nil {
		t.Fatal(err)
	}
	read, _, err := ReadLatestSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	dst := NewStackedFrameTable(envs.Uint8, d, 256, k, 2)
	if err := dst.restore(read); err != nil {
		t.Fatal(err)
	}
	if dst.Size() != src.Size() || dst.Inserted() != src.Inserted() {
		t.Fatalf("restored %d rows of %d inserted, want %d of %d", dst.Size(), dst.Inserted(), src.Size(), src.Inserted())
	}
	checkRowsEqual(t, dst, batches, d)
	if dst.frames.inserted > uint64(src.Size())*3/2 {
		t.Fatalf("restore stored %d frames for %d rows", dst.frames.inserted, src.Size())
	}
	bad := batches[0]
	bad.FrameStack = 2
	if err := dst.CheckBatch(bad); err == nil {
		t.Fatal("a batch of 2 stacked frames into a table of 4: no error")
	}
}

// A stacked snapshot that does not fit is refused and leaves the table
// empty: references past its frames, frames cut short, references of the
// wrong length, and a table of another depth or of float rows.
func TestStackedSnapshotRefusals(t *testing.T) {
	const k = 4
	batches, _, _ := stackedStream(t, k, 2, 100)
	d := 12 * k
	src := NewStackedFrameTable(envs.Uint8, d, 128, k, 2)
	for _, b := range batches {
		src.Insert(b)
	}
	good := src.capture().encode("PixelClock-v0")
	for name, change := range map[string]func(s *messages.ReplaySnapshot){
		"ref past the frames": func(s *messages.ReplaySnapshot) { s.FrameRefs[4*5] = 0xff; s.FrameRefs[4*5+3] = 0x7f },
		"frames cut":          func(s *messages.ReplaySnapshot) { s.Frames = s.Frames[:len(s.Frames)-5] },
		"refs cut":            func(s *messages.ReplaySnapshot) { s.FrameRefs = s.FrameRefs[:len(s.FrameRefs)-4] },
		"stack too deep":      func(s *messages.ReplaySnapshot) { s.FrameStack = 48 },
		"whole obs as well":   func(s *messages.ReplaySnapshot) { s.PackedObservations = []byte{1} },
	} {
		s := proto.Clone(good).(*messages.ReplaySnapshot)
		change(s)
		dst := NewStackedFrameTable(envs.Uint8, d, 128, k, 2)
		if err := dst.restore(s); err == nil || dst.Size() != 0 {
			t.Errorf("%s: restored (%v), %d rows", name, err, dst.Size())
		}
	}
	for name, dst := range map[string]*Table{
		"depth 2":    NewStackedFrameTable(envs.Uint8, d, 128, 2, 2),
		"float rows": NewTable(d, 128),
	} {
		if err := dst.restore(good); err == nil || dst.Size() != 0 {
			t.Errorf("stacked snapshot into a table of %s: restored (%v)", name, err)
		}
	}
}
