package envs

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestVecMatchesEnvs: a vector of CartPoles steps each env as a lone env
// would, and on an episode's end hands over its last observation in Final
// and the next episode's first in Obs, that episode seeded from the env's
// own stream.
func TestVecMatchesEnvs(t *testing.T) {
	const n = 3
	v, err := NewVec(n, func() (Env, error) { return Make(CartPoleID) })
	if err != nil {
		t.Fatal(err)
	}
	lone := make([]Env, n)
	seeds := []int64{11, 12, 13}
	obs, err := v.Reset(seeds)
	if err != nil {
		t.Fatal(err)
	}
	d := v.Spec().ObsSize()
	rngs := make([]*rand.Rand, n)
	for i := range lone {
		rngs[i] = rand.New(rand.NewPCG(uint64(seeds[i]), resetStream))
		lone[i] = NewCartPole()
		if want := lone[i].Reset(seeds[i]); !slices.Equal(obs[i*d:(i+1)*d], want) {
			t.Fatalf("env %d reset: %v, want %v", i, obs[i*d:(i+1)*d], want)
		}
	}
	ended := 0
	for step := range 400 {
		actions := []int32{int32(step % 2), 1, 0} // env 2 falls soonest
		s, err := v.Step(actions)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range lone {
			want, r, term, trunc := e.Step(int(actions[i]))
			if s.Rewards[i] != r || s.Terminated[i] != term || s.Truncated[i] != trunc {
				t.Fatalf("step %d env %d: %v %v %v, want %v %v %v", step, i, s.Rewards[i], s.Terminated[i], s.Truncated[i], r, term, trunc)
			}
			if !s.Done(i) {
				if !slices.Equal(s.Obs[i*d:(i+1)*d], want) {
					t.Fatalf("step %d env %d: obs %v, want %v", step, i, s.Obs[i*d:(i+1)*d], want)
				}
				continue
			}
			ended++
			if !slices.Equal(s.Final[i*d:(i+1)*d], want) {
				t.Fatalf("step %d env %d: final %v, want %v", step, i, s.Final[i*d:(i+1)*d], want)
			}
			// The lone env starts its next episode as the vector's did: with
			// the next seed of the stream its first seed began.
			if first := lone[i].Reset(rngs[i].Int64()); !slices.Equal(s.Obs[i*d:(i+1)*d], first) {
				t.Fatalf("step %d env %d: next episode starts at %v, want %v", step, i, s.Obs[i*d:(i+1)*d], first)
			}
		}
	}
	if ended < 3 {
		t.Fatalf("%d episodes ended in 400 steps; the test wants several", ended)
	}
	if _, err := v.Step([]int32{0, 2, 0}); err == nil {
		t.Error("action 2 of CartPole's 2 accepted")
	}
	if _, err := v.Step([]int32{0}); err == nil {
		t.Error("1 action for 3 envs accepted")
	}
}

func TestObsDType(t *testing.T) {
	for _, d := range []ObsDType{Float32, Uint8, Binary} {
		if got, err := ParseObsDType(d.String()); err != nil || got != d {
			t.Errorf("%v: parsed back as %v, %v", d, got, err)
		}
	}
	if _, err := ParseObsDType("int8"); err == nil {
		t.Error("int8 accepted")
	}
	for _, c := range []struct {
		d    ObsDType
		obs  []float32
		want bool
	}{
		{Binary, []float32{0, 1, 1}, true}, {Binary, []float32{0, 2}, false},
		{Uint8, []float32{0, 255, 17}, true}, {Uint8, []float32{256}, false}, {Uint8, []float32{1.5}, false}, {Uint8, []float32{-1}, false},
		{Float32, []float32{-3.5, 1e30}, true}, {Float32, []float32{float32(math.NaN())}, false},
	} {
		if got := c.d.Holds(c.obs); got != c.want {
			t.Errorf("%v.Holds(%v) = %v, want %v", c.d, c.obs, got, c.want)
		}
	}
}
