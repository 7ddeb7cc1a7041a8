package envs

import (
	"fmt"
	"slices"
)

// MaxFrameStack bounds FrameStack's k: deeper stacks are a typo, and each
// frame of the stack multiplies the network's input.
const MaxFrameStack = 16

// StackedShape is the observation shape of frames of shape stacked k deep:
// the last dimension (the channels; a flat vector's values) k times over.
// A shape without dimensions is one value.
func StackedShape(shape []int, k int) []int {
	if len(shape) == 0 {
		return []int{k}
	}
	out := slices.Clone(shape)
	out[len(out)-1] *= k
	return out
}

// FrameChannels is the number of channels of one frame of shape: its last
// dimension (1 for a shape without dimensions).
func FrameChannels(shape []int) int {
	if len(shape) == 0 {
		return 1
	}
	return shape[len(shape)-1]
}

// FrameStack makes each observation of vec the env's last k frames,
// stacked channel-last, as DQN does for Atari (Mnih et al. 2015): one frame
// shows where things are, the stack how they move. For frames of C channels,
// value c of frame j (oldest first) at position p is at (p·k + j)·C + c, so
// the stack of an image of H×W×C is an image of H×W×(k·C) that a conv layer
// reads as it reads any image; for a flat vector (one position) the stack is
// the k frames one after the other.
//
// A new episode's stack is its first frame k times (as Gymnasium's
// FrameStackObservation with padding_type "reset"): no frame of an earlier
// episode is ever in a stack. Where an episode ends, Final is the ended
// episode's stack with its last frame pushed. k = 1 returns vec itself.
func FrameStack(vec VecEnv, k int) (VecEnv, error) {
	if k < 1 || k > MaxFrameStack {
		return nil, fmt.Errorf("frame_stack %d: want 1..%d", k, MaxFrameStack)
	}
	if k == 1 {
		return vec, nil
	}
	sp := vec.Spec()
	spec := sp
	spec.ObsShape = StackedShape(sp.ObsShape, k)
	d, n := sp.ObsSize(), vec.Len()
	s := &stackedVec{inner: vec, spec: spec, k: k, c: FrameChannels(sp.ObsShape), d: d,
		obs: make([]float32, n*d*k), final: make([]float32, n*d*k)}
	s.step.Obs, s.step.Final = s.obs, s.final
	return s, nil
}

// stackedVec is FrameStack's VecEnv: env i's stack is obs[i·d·k:(i+1)·d·k].
type stackedVec struct {
	inner      VecEnv
	spec       Spec
	k, c, d    int // stack depth, channels a frame, values a frame
	obs, final []float32
	step       VecStep
}

func (s *stackedVec) Spec() Spec   { return s.spec }
func (s *stackedVec) Len() int     { return s.inner.Len() }
func (s *stackedVec) Close() error { return s.inner.Close() }

func (s *stackedVec) Reset(seeds []int64) ([]float32, error) {
	obs, err := s.inner.Reset(seeds)
	if err != nil {
		return nil, err
	}
	if err := s.check(obs, "reset"); err != nil {
		return nil, err
	}
	for i := range s.inner.Len() {
		s.fill(s.stack(s.obs, i), obs[i*s.d:(i+1)*s.d])
	}
	return s.obs, nil
}

func (s *stackedVec) Step(actions []int32) (*VecStep, error) {
	st, err := s.inner.Step(actions)
	if err != nil {
		return nil, err
	}
	if err := s.check(st.Obs, "step"); err != nil {
		return nil, err
	}
	s.step.Rewards, s.step.Terminated, s.step.Truncated = st.Rewards, st.Terminated, st.Truncated
	for i := range s.inner.Len() {
		frame := st.Obs[i*s.d : (i+1)*s.d]
		if !st.Done(i) {
			s.push(s.stack(s.obs, i), frame)
			continue
		}
		if len(st.Final) < (i+1)*s.d {
			return nil, fmt.Errorf("env step: %d final observation values for env %d of %d", len(st.Final), i, s.d)
		}
		fin := s.stack(s.final, i)
		copy(fin, s.stack(s.obs, i))
		s.push(fin, st.Final[i*s.d:(i+1)*s.d])
		s.fill(s.stack(s.obs, i), frame)
	}
	return &s.step, nil
}

// check refuses an inner observation slice that does not cover the vector
// (a broken external env), before any index into it.
func (s *stackedVec) check(obs []float32, what string) error {
	if want := s.inner.Len() * s.d; len(obs) != want {
		return fmt.Errorf("env %s: %d observation values for %d envs of %d", what, len(obs), s.inner.Len(), s.d)
	}
	return nil
}

// stack is env i's stack in buf.
func (s *stackedVec) stack(buf []float32, i int) []float32 {
	w := s.d * s.k
	return buf[i*w : (i+1)*w]
}

// push drops the stack's oldest frame and appends frame as its newest.
func (s *stackedVec) push(stack, frame []float32) {
	kc, c := s.k*s.c, s.c
	if c == 1 {
		// Gray frames, the common case: no copy call per pixel.
		k := s.k
		for p, v := range frame[:s.d] {
			at := stack[p*k : (p+1)*k]
			for j := 1; j < k; j++ {
				at[j-1] = at[j]
			}
			at[k-1] = v
		}
		return
	}
	for p := 0; p < s.d/c; p++ {
		at := stack[p*kc : (p+1)*kc]
		copy(at, at[c:])
		copy(at[kc-c:], frame[p*c:(p+1)*c])
	}
}

// fill makes every frame of the stack frame (an episode's start).
func (s *stackedVec) fill(stack, frame []float32) {
	c := s.c
	if c == 1 {
		k := s.k
		for p, v := range frame[:s.d] {
			at := stack[p*k : (p+1)*k]
			for j := range at {
				at[j] = v
			}
		}
		return
	}
	for p := 0; p < s.d/c; p++ {
		for j := range s.k {
			copy(stack[(p*s.k+j)*c:], frame[p*c:(p+1)*c])
		}
	}
}

// Sample is a value of an observation as it is held: float32 in envs and
// batches, a byte in the replay's frames.
type Sample interface{ ~float32 | ~uint8 }

// StackFrame copies frame j (0 = oldest) of a stacked observation of k
// frames of c channels into dst (len(stack)/k values): FrameStack's layout
// read back, for the replay's per-frame storage. Float values become bytes
// by conversion (whole numbers 0..255 stay as they are).
func StackFrame[D, S Sample](dst []D, stack []S, k, c, j int) {
	if c == 1 {
		for p := range dst {
			dst[p] = D(stack[p*k+j])
		}
		return
	}
	kc := k * c
	for p := 0; p < len(dst)/c; p++ {
		for x := range c {
			dst[p*c+x] = D(stack[p*kc+j*c+x])
		}
	}
}

// UnstackFrame is StackFrame's inverse: it writes frame (len(stack)/k
// values) as frame j of the stacked observation stack.
func UnstackFrame[D, S Sample](stack []D, frame []S, k, c, j int) {
	if c == 1 {
		for p, v := range frame {
			stack[p*k+j] = D(v)
		}
		return
	}
	kc := k * c
	for p := 0; p < len(frame)/c; p++ {
		for x := range c {
			stack[p*kc+j*c+x] = D(frame[p*c+x])
		}
	}
}

// StackEnv is FrameStack for one env (evaluation, 'qfleet eval', tests):
// its observations are its last k frames, as a runner's are. k ≤ 1 returns
// env itself.
func StackEnv(env Env, k int) (Env, error) {
	if k <= 1 {
		return env, nil
	}
	vec, err := NewVec(1, func() (Env, error) { return env, nil })
	if err != nil {
		return nil, err
	}
	stacked, err := FrameStack(vec, k)
	if err != nil {
		return nil, err
	}
	return Single(stacked), nil
}
