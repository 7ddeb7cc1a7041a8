package envs

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// failingVec fails its Step after a number of good ones.
type failingVec struct {
	VecEnv
	left int
}

func (f *failingVec) Step(a []int32) (*VecStep, error) {
	if f.left == 0 {
		return nil, errors.New("env process exited")
	}
	f.left--
	return f.VecEnv.Step(a)
}

// TestSingle: a vector of one, seen as an Env, plays as the env itself
// (reset by seed, the ended episode's last observation at its end), and a
// failure ends the episode with Err saying why.
func TestSingle(t *testing.T) {
	v, err := NewVec(1, func() (Env, error) { return NewCartPole(), nil })
	if err != nil {
		t.Fatal(err)
	}
	s, lone := Single(v), NewCartPole()
	for ep := range 3 {
		if got, want := s.Reset(int64(ep)), lone.Reset(int64(ep)); !slices.Equal(got, want) {
			t.Fatalf("episode %d starts at %v, want %v", ep, got, want)
		}
		for step := 0; ; step++ {
			o1, r1, te1, tr1 := s.Step(step % 2)
			o2, r2, te2, tr2 := lone.Step(step % 2)
			if !slices.Equal(o1, o2) || r1 != r2 || te1 != te2 || tr1 != tr2 {
				t.Fatalf("episode %d step %d: %v %v %v %v, want %v %v %v %v", ep, step, o1, r1, te1, tr1, o2, r2, te2, tr2)
			}
			if te1 || tr1 {
				break
			}
		}
	}
	if Err(s) != nil || Close(s) != nil {
		t.Fatalf("Err %v, Close %v", Err(s), Close(s))
	}
	fv, _ := NewVec(1, func() (Env, error) { return NewCartPole(), nil })
	f := Single(&failingVec{VecEnv: fv, left: 2})
	f.Reset(1)
	f.Step(0)
	f.Step(0)
	if _, r, term, _ := f.Step(0); !term || r != 0 || Err(f) == nil || !strings.Contains(Err(f).Error(), "exited") {
		t.Fatalf("failed step: terminated %v, reward %v, Err %v", term, r, Err(f))
	}
}

// TestRegisterVec: an env registered as a vector is made by id like any
// other, its spec known without starting it, and its id cannot be taken
// twice.
func TestRegisterVec(t *testing.T) {
	spec := NewCartPole().Spec()
	spec.ID = "Test/VecCartPole-v0"
	made := 0
	factory := func(n int) (VecEnv, error) {
		made++
		v, err := NewVec(n, func() (Env, error) { return NewCartPole(), nil })
		return renamedVec{v, spec}, err
	}
	if err := RegisterVec(spec, factory); err != nil {
		t.Fatal(err)
	}
	if err := RegisterVec(spec, factory); err == nil {
		t.Error("the same id registered twice")
	}
	if err := RegisterVec(Spec{ID: CartPoleID}, factory); err == nil {
		t.Error("a Go env's id taken by a vector env")
	}
	if got, err := SpecOf(spec.ID); err != nil || got.ID != spec.ID || made != 0 {
		t.Fatalf("SpecOf: %+v, %v; %d vectors made (want none)", got, err, made)
	}
	if v, err := MakeVec(spec.ID, 4); err != nil || v.Len() != 4 || made != 1 {
		t.Fatalf("MakeVec: %v; %d made", err, made)
	}
	if e, err := Make(spec.ID); err != nil || e.Spec().ID != spec.ID || made != 2 {
		t.Fatalf("Make: %v; made %d", err, made)
	}
	if v, err := MakeVec(CartPoleID, 2); err != nil || v.Len() != 2 {
		t.Fatalf("MakeVec of a Go env: %v", err)
	}
	if _, err := MakeVec("Nope-v0", 2); !errors.Is(err, ErrUnknownEnv) {
		t.Fatalf("MakeVec of an unknown id: %v", err)
	}
	if !slices.Contains(IDs(), spec.ID) {
		t.Error("IDs leaves out the vector env")
	}
	// A vector that is no longer the env registered is refused.
	spec.NumActions = 3
	if _, err := MakeVec(spec.ID, 1); err == nil || !strings.Contains(err.Error(), "changed since it was registered") {
		t.Errorf("a vector with 3 actions for a spec of 2: %v", err)
	}
}

// renamedVec is a VecEnv under another spec.
type renamedVec struct {
	VecEnv
	spec Spec
}

func (r renamedVec) Spec() Spec { return r.spec }
