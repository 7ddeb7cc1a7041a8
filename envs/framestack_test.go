package envs

import (
	"slices"
	"testing"
)

// clockEnv's frame is a 2×1 image of 2 channels that names its episode and
// step: value c at pixel p is 1000·episode + 10·step + 2p + c (no two
// frames alike). Episode e ends (terminated) after 2+e steps.
type clockEnv struct{ episode, step int }

func (e *clockEnv) Spec() Spec {
	return Spec{ID: "Clock-v0", ObsShape: []int{2, 1, 2}, NumActions: 2, MaxEpisodeSteps: 100}
}

func (e *clockEnv) frame() []float32 {
	out := make([]float32, 4)
	for i := range out {
		out[i] = float32(1000*e.episode + 10*e.step + i)
	}
	return out
}

func (e *clockEnv) Reset(int64) []float32 {
	e.episode++
	e.step = 0
	return e.frame()
}

func (e *clockEnv) Step(int) ([]float32, float64, bool, bool) {
	e.step++
	return e.frame(), 1, e.step == 2+e.episode, false
}

// frameOf reads (episode, step) back from frame j of a stack.
func frameOf(t *testing.T, stack []float32, k, j int) (episode, step int) {
	t.Helper()
	f := make([]float32, 4)
	StackFrame(f, stack, k, 2, j)
	v := int(f[0])
	for i, x := range f {
		if int(x) != v+i {
			t.Fatalf("frame %d of the stack is not one env frame: %v", j, f)
		}
	}
	return v / 1000, v % 1000 / 10
}

func TestFrameStackEpisodeBoundaries(t *testing.T) {
	const k = 4
	inner, err := NewVec(2, func() (Env, error) { return &clockEnv{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	vec, err := FrameStack(inner, k)
	if err != nil {
		t.Fatal(err)
	}
	if sh := vec.Spec().ObsShape; !slices.Equal(sh, []int{2, 1, 8}) || vec.Spec().ObsSize() != 16 {
		t.Fatalf("stacked shape %v, want [2 1 8]", sh)
	}
	obs, err := vec.Reset([]int64{1, 2})
	if err != nil {
		t.Fatal(err)
	}
	d := 16
	// want gives the (episode, step) of frame j of env i's stack: the last
	// k steps of its episode, the episode's first frame in place of any
	// step before it.
	want := func(episode, step, j int) [2]int { return [2]int{episode, max(0, step-(k-1-j))} }
	checkStack := func(stack []float32, episode, step int, what string) {
		t.Helper()
		for j := range k {
			e, s := frameOf(t, stack, k, j)
			if w := want(episode, step, j); [2]int{e, s} != w {
				t.Fatalf("%s: frame %d is episode %d step %d, want %v", what, j, e, s, w)
			}
		}
	}
	for i := range 2 {
		checkStack(obs[i*d:(i+1)*d], 1, 0, "reset")
	}
	episode, step := 1, 0
	ended := 0
	for range 30 {
		st, err := vec.Step([]int32{0, 1})
		if err != nil {
			t.Fatal(err)
		}
		step++
		for i := range 2 {
			if st.Done(i) {
				checkStack(st.Final[i*d:(i+1)*d], episode, step, "final")
				checkStack(st.Obs[i*d:(i+1)*d], episode+1, 0, "new episode")
			} else {
				checkStack(st.Obs[i*d:(i+1)*d], episode, step, "step")
			}
		}
		if st.Done(0) {
			episode, step = episode+1, 0
			ended++
		}
	}
	if ended < 4 {
		t.Fatalf("%d episodes ended in 30 steps, want at least 4", ended)
	}
}

func TestFrameStackOne(t *testing.T) {
	inner, _ := NewVec(1, func() (Env, error) { return &clockEnv{}, nil })
	if v, err := FrameStack(inner, 1); err != nil || v != inner {
		t.Fatalf("FrameStack(vec, 1) = %v, %v: want vec itself", v, err)
	}
	for _, k := range []int{0, -1, MaxFrameStack + 1} {
		if _, err := FrameStack(inner, k); err == nil {
			t.Fatalf("FrameStack(vec, %d): no error", k)
		}
	}
}

func TestStackedShape(t *testing.T) {
	for _, c := range []struct{ in, want []int }{{nil, []int{4}}, {[]int{4}, []int{16}}, {[]int{84, 84, 1}, []int{84, 84, 4}}} {
		if got := StackedShape(c.in, 4); !slices.Equal(got, c.want) {
			t.Fatalf("StackedShape(%v, 4) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestStackEnvMatchesVector: one env stacked alone sees the stacks env 0 of
// a stacked vector sees, episode after episode.
func TestStackEnvMatchesVector(t *testing.T) {
	env, err := StackEnv(&clockEnv{}, 3)
	if err != nil {
		t.Fatal(err)
	}
	inner, _ := NewVec(1, func() (Env, error) { return &clockEnv{}, nil })
	vec, _ := FrameStack(inner, 3)
	for ep := range 3 {
		a := env.Reset(int64(ep))
		b, _ := vec.Reset([]int64{int64(ep)})
		for step := 0; ; step++ {
			if !slices.Equal(a, b) {
				t.Fatalf("episode %d step %d: %v, vector %v", ep, step, a, b)
			}
			obs, _, term, _ := env.Step(0)
			st, _ := vec.Step([]int32{0})
			a, b = obs, st.Obs
			if term {
				b = st.Final
				if !slices.Equal(a, b) {
					t.Fatalf("episode %d: last stack %v, vector's final %v", ep, a, b)
				}
				break
			}
		}
	}
}
