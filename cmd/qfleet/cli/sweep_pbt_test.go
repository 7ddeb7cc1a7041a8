package cli

import (
	"strconv"
	"strings"
	"testing"

	"github.com/qfleet/qfleet/cluster/sweep"
)

// pbtSweepSpec: a population of three CartPole members, one that cannot
// learn (learning rate 1e-9); decisions every 5,000 env steps of a member.
const pbtSweepSpec = `name: pbt
env: CartPole-v1
base:
  epsilon_decay_steps: 2000
  min_replay_size: 500
method: grid
params:
  learning_rate: [0.000000001, 0.0003, 0.001]
max_steps: 15000
target_return: 100000
scheduler:
  name: pbt
  perturb_every: 5000
`

// TestSweepPBT: after the first round, the member that learned nothing is
// the bottom of the population: it takes the checkpoint of a member at the
// top, in a new process, and its next segment plays with that network (its
// mean100 rises far above its first segment's). Each member runs its own
// 15,000 env steps; the rows keep the lineage; a second run has nothing
// to do.
func TestSweepPBT(t *testing.T) {
	specPath, out, stdout, stderr := runSweepHere(t, "pbt", pbtSweepSpec)
	all := readRows(t, out)
	latest := sweep.LatestByKey(all)
	if len(latest) != 3 {
		t.Fatalf("%d trials recorded, want 3:\n%s", len(latest), stderr)
	}
	var first *float64 // the hopeless member's mean100 after its first segment
	var hopeless sweep.Row
	for _, r := range all {
		if r.Lineage[0].Params["learning_rate"].(float64) == 1e-9 {
			if first == nil && r.FinalMean100 != nil {
				first = r.FinalMean100
			}
			hopeless = r
		}
	}
	for _, r := range latest {
		t.Logf("%s: %s, own env steps %d, env steps %d, segments %d, final mean100 %s, lineage %+v", r.Trial, r.Status, r.TrialSteps, r.EnvSteps, r.Segments, fmtOpt(r.FinalMean100), r.Lineage)
		if r.Status != sweep.StatusOK || r.TrialSteps < 15000 || r.TrialSteps > 17000 || r.Segments != 3 {
			t.Errorf("%s: %s, %d env steps of its own in %d segments: want ok, 15000, 3", r.Trial, r.Status, r.TrialSteps, r.Segments)
		}
	}
	if first == nil || len(hopeless.Lineage) < 2 || hopeless.Lineage[1].Source == hopeless.Trial {
		t.Fatalf("the member at 1e-9: lineage %+v: want it to take another member's checkpoint\n%s", hopeless.Lineage, stderr)
	}
	if hopeless.FinalMean100 == nil || *hopeless.FinalMean100 < 3**first || *hopeless.FinalMean100 < 50 {
		t.Errorf("the member at 1e-9 went from mean100 %.1f to %s after taking %s's network: want it far higher", *first, fmtOpt(hopeless.FinalMean100), hopeless.Lineage[1].Source)
	}
	if !strings.Contains(stdout, "←"+hopeless.Lineage[1].Source+"@") {
		t.Errorf("the table does not show the lineage:\n%s", stdout)
	}
	if !strings.Contains(stderr, "exploits") {
		t.Errorf("the log does not tell the exploit:\n%s", stderr)
	}
	code, _, stderr := runQfleet(t, "sweep", specPath, "--out", out)
	if code != 0 || !strings.Contains(stderr, "resuming: 3 of 3 trial(s) finished already") {
		t.Errorf("second run: exit %d\n%s", code, stderr)
	}
}

func fmtOpt(p *float64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatFloat(*p, 'f', 1, 64)
}
