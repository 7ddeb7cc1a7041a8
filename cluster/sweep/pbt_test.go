package sweep

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
)

const pbtTestSpec = `env: CartPole-v1
method: grid
params:
  batch_size: [32, 64, 128, 256]
seeds: [1]
max_steps: 3000
scheduler: {name: pbt, perturb_every: 1000, resample_probability: 0}
`

// A population of 4, quantile 0.25: at each decision the member ranked
// last (once at least two have results) copies the checkpoint of the
// first and goes on with its batch size moved one place along the list.
// Every member runs its own 3000 env steps; rows keep the lineage.
func TestPBTExploitExplore(t *testing.T) {
	out := t.TempDir()
	l := newSegLab(t, out, pbtTestSpec)
	value := map[string]float64{}
	byBatch := map[int64]string{}
	for _, tr := range l.trials {
		b := tr.Params["batch_size"].(int)
		value[tr.ID] = float64(b) // the larger batch does better here
		byBatch[int64(b)] = tr.ID
	}
	l.ctx.deliver(l.a, &coordTick{})
	var exploited []string
	for range 40 {
		sts := l.starts()
		if len(sts) == 0 {
			break
		}
		for _, st := range sts {
			var cf qfleet.Config
			if err := qfleet.ParseConfig(st.ConfigYaml, st.Trial, &cf); err != nil {
				t.Fatal(err)
			}
			if c := string(st.Checkpoint); c != "" && !strings.HasPrefix(c, "ckpt of "+st.Trial) {
				exploited = append(exploited, fmt.Sprintf("%s<-%s batch %d", st.Trial, c, cf.BatchSize))
				// It runs on with its source's network and a batch one place
				// from its source's: its value follows.
				value[st.Trial] = float64(cf.BatchSize) - 1
			}
			l.finish(st, value[st.Trial])
		}
	}
	select {
	case err := <-l.done:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Fatalf("the sweep did not end:\n%s", l.log)
	}
	t.Logf("exploits: %v", exploited)
	if len(exploited) == 0 {
		t.Fatalf("no member exploited another:\n%s", l.log)
	}
	worst := byBatch[32]
	rows := LatestByKey(l.rec.rows)
	for _, tr := range l.trials {
		r := rows[tr.Key]
		if r.Status != StatusOK || r.TrialSteps < 3000 || r.TrialSteps > 3000+3*17 || r.Segments != 3 {
			t.Errorf("%s: %s, its own env steps %d, %d segments: want ok, 3000 (+ overshoot), 3", tr.ID, r.Status, r.TrialSteps, r.Segments)
		}
		if len(r.Lineage) == 0 || r.Lineage[0].Source != tr.ID {
			t.Errorf("%s: lineage %+v, want its start first", tr.ID, r.Lineage)
		}
	}
	r := rows[l.trials[0].Key] // batch 32: the worst from the start
	if r.Trial != worst || len(r.Lineage) < 2 || r.Lineage[1].Source != byBatch[256] {
		t.Fatalf("the worst member's lineage %+v: want it to copy %s (batch 256)", r.Lineage, byBatch[256])
	}
	if b := r.Params["batch_size"]; fmt.Sprint(b) != "128" {
		t.Fatalf("the worst member went on with batch %v, want 128 (one place down from 256)", b)
	}
	if !strings.Contains(l.log.String(), "exploits "+byBatch[256]) {
		t.Fatalf("the log does not tell the exploit:\n%s", l.log)
	}
	data, err := os.ReadFile(filepath.Join(r.LocalDir, qfleet.RunScalarsFile))
	if err != nil || strings.Count(string(data), "\n") != 3 {
		t.Fatalf("the member's scalars (3 segments): %q %v", data, err)
	}
}

// A member's first segment lost runs again from the start; a later one
// from its checkpoint; a stopped sweep resumes its members with their
// params, lineage and own env steps.
func TestPBTResumes(t *testing.T) {
	out := t.TempDir()
	l := newSegLab(t, out, pbtTestSpec)
	l.ctx.deliver(l.a, &coordTick{})
	sts := l.starts() // two members, two slots
	l.a.requeue(l.ctx, l.a.running[sts[0].Trial], "lost", true)
	if l.a.queue[0].ID != sts[0].Trial {
		t.Fatalf("a lost first segment is not queued again: %v", l.a.queue)
	}
	l.finish(sts[1], 5)
	next := l.starts()
	for _, st := range next {
		if st.Trial == sts[1].Trial {
			t.Fatalf("a member went before the ones not yet started")
		}
	}
	rows := LatestByKey(l.rec.rows)
	r := rows[l.a.byID[sts[1].Trial].Key]
	if r.Status != StatusPaused || r.TrialSteps != 1017 {
		t.Fatalf("paused row %+v", r)
	}
	// The sweep stops here; run again, the paused member goes on from its
	// checkpoint with its own steps counted.
	l2 := newSegLab(t, out, pbtTestSpec)
	m := l2.a.seg.(*pbtState).members[sts[1].Trial]
	if m == nil || !m.paused || m.own != 1017 || m.ckptAt != 1017 || len(m.ckpt) == 0 || len(m.lineage) != 1 {
		t.Fatalf("resumed member %+v", m)
	}
	for _, q := range l2.a.queue {
		if q.ID == sts[1].Trial {
			t.Fatal("a paused member is queued to start again")
		}
	}
}

// explore moves a listed value one place, a real by ×0.8 or ×1.2 within
// its bounds, an integer by at least one; resampling draws from the spec.
func TestPBTPerturb(t *testing.T) {
	list := Param{Key: "n_step", Values: []any{1, 3, 5}}
	if got := list.perturb(3, true); got != 5 {
		t.Errorf("3 up: %v", got)
	}
	if got := list.perturb(1, false); got != 3 {
		t.Errorf("1 down at the end: %v, want 3 (the only way)", got)
	}
	real := Param{Key: "learning_rate", Dist: "log_uniform", Lo: 1e-4, Hi: 1e-3}
	if got := real.perturb(5e-4, true); got != 6e-4 {
		t.Errorf("5e-4 up: %v", got)
	}
	if got := real.perturb(9e-4, true); got != 1e-3 {
		t.Errorf("9e-4 up past the bound: %v", got)
	}
	ints := Param{Key: "batch_size", Dist: "int_uniform", Lo: 2, Hi: 64}
	if got := ints.perturb(int64(2), true); got != int64(3) {
		t.Errorf("2 up: %v, want 3 (moves at least one)", got)
	}
	if got := ints.perturb(int64(60), true); got != int64(64) {
		t.Errorf("60 up: %v, want 64 (the bound)", got)
	}
	s := &pbtState{p: PBT{ResampleProbability: 1}, params: []Param{real}, rng: rand.New(rand.NewPCG(1, 2))}
	for range 20 {
		v := s.explore(map[string]any{"learning_rate": 5e-4})["learning_rate"].(float64)
		if v < 1e-4 || v > 1e-3 {
			t.Fatalf("resampled %v outside the spec's bounds", v)
		}
	}
}

func TestPBTSpec(t *testing.T) {
	for _, c := range []struct{ spec, want string }{
		{"scheduler: {name: pbt}\n", "perturb_every = 0"},
		{"scheduler: {name: pbt, perturb_every: 10, quantile: 0.7}\n", "quantile = 0.7"},
		{"scheduler: {name: pbt, perturb_every: 10, resample_probability: 2}\n", "resample_probability = 2"},
		{"scheduler: {name: pbt, perturb_every: 10, eta: 3}\n", "min_steps, eta and mode are asha's"},
		{"scheduler: {name: asha, min_steps: 10, replay: true}\n", "are pbt's"},
		{"params:\n  hidden: [[64], [128]]\nscheduler: {name: pbt, perturb_every: 10}\n", "params.hidden: cannot be searched by pbt"},
		{"params:\n  replay_capacity: [1000, 2000]\nscheduler: {name: pbt, perturb_every: 10, replay: true}\n", "params.replay_capacity: cannot be searched by pbt with replay"},
	} {
		_, err := parseSpecText(t, "env: CartPole-v1\nmethod: grid\n"+c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.spec, err, c.want)
		}
	}
	s := mustSpec(t, "env: CartPole-v1\nmethod: grid\nparams:\n  replay_capacity: [1000, 2000]\nscheduler: {name: pbt, perturb_every: 10}\n")
	if s.PBT == nil || s.PBT.Quantile != 0.25 || s.PBT.ResampleProbability != 0.25 || s.PBT.Replay {
		t.Fatalf("defaults %+v", s.PBT)
	}
}
