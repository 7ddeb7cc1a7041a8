package external

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"github.com/qfleet/qfleet/envs/pixels"
	"github.com/qfleet/qfleet/internal/testutil"
)

const pixelsPy = "../../python/examples/cartpole_pixels.py"

// newRefPixels is refEnvs of Go CartPolePixels: CartPole's reference, each
// observation the frame of the state.
func newRefPixels(t *testing.T, seeds []int64) (*refEnvs[*pixels.CartPolePixels], []float32) {
	return newRefEnvs(t, seeds, pixels.NewCartPolePixels, func(e *pixels.CartPolePixels, _ [4]float64) []float32 {
		return e.Observation()
	})
}

// firstDiff describes where two frames differ, or "" when they are equal.
func firstDiff(got, want []float32) string {
	for p := range want {
		if got[p] != want[p] {
			return fmt.Sprintf("pixel (%d, %d) is %v, Go's %v", p/pixels.Width, p%pixels.Width, got[p], want[p])
		}
	}
	return ""
}

// TestCartPolePixelsSubprocessMatchesGo: python/examples/cartpole_pixels.py
// through the subprocess bridge gives CartPolePixels-v1's spec and, for the
// same seeds and actions, its frames byte for byte (and its rewards, flags
// and final frames) over many episodes, with the comparison time limit
// cmpLimit (external_test.go says why).
func TestCartPolePixelsSubprocessMatchesGo(t *testing.T) {
	const n, steps = 3, 300
	var log testutil.SyncBuffer
	v, err := Start(context.Background(), Options{Command: script(t, pixelsPy, "--max-episode-steps", strconv.Itoa(cmpLimit)),
		Envs: n, Timeout: 20 * time.Second, Stderr: &log})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAndCheck(t, v)
	want := pixels.NewCartPolePixels().Spec()
	want.MaxEpisodeSteps = cmpLimit
	if got := v.Spec(); !sameSpec(got, want) {
		t.Fatalf("spec %+v, want %+v", got, want)
	}
	d := want.ObsSize()
	seeds := []int64{11, 12, 13}
	ref, obs := newRefPixels(t, seeds)
	got, err := v.Reset(seeds)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if diff := firstDiff(got[i*d:(i+1)*d], obs[i*d:(i+1)*d]); diff != "" {
			t.Fatalf("reset env %d: %s", i, diff)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	actions := make([]int32, n)
	episodes, truncations := 0, 0
	for step := range steps {
		for i, e := range ref.envs {
			// Env 0 balances (episodes reach the limit), the others act at random.
			s := e.State()
			actions[i] = int32(rng.IntN(2))
			if i == 0 && rng.IntN(8) != 0 {
				actions[i] = 0
				if s[2]+0.5*s[3] > 0 {
					actions[i] = 1
				}
			}
		}
		st, err := v.Step(actions)
		if err != nil {
			t.Fatalf("step %d: %v\n%s", step, err, log.String())
		}
		for i, e := range ref.envs {
			o, r, term, trunc := e.Step(int(actions[i]))
			ref.elapsed[i]++
			trunc = trunc || ref.elapsed[i] >= cmpLimit
			if r != st.Rewards[i] || term != st.Terminated[i] || trunc != st.Truncated[i] {
				t.Fatalf("step %d env %d: reward %v terminated %v truncated %v, Go %v %v %v", step, i, st.Rewards[i], st.Terminated[i], st.Truncated[i], r, term, trunc)
			}
			if term || trunc {
				if diff := firstDiff(st.Final[i*d:(i+1)*d], o); diff != "" {
					t.Fatalf("step %d env %d: final frame: %s", step, i, diff)
				}
				o = ref.start(t, i)
				episodes++
				if trunc {
					truncations++
				}
			}
			if diff := firstDiff(st.Obs[i*d:(i+1)*d], o); diff != "" {
				t.Fatalf("step %d env %d: %s", step, i, diff)
			}
		}
	}
	if episodes < 2*n || truncations == 0 {
		t.Fatalf("%d episodes ended, %d at the time limit: the test should cover both ends", episodes, truncations)
	}
	t.Logf("%d envs, %d steps: %d episodes ended, %d truncated", n, steps, episodes, truncations)
}
