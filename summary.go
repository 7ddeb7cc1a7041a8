package qfleet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/qfleet/qfleet/actors"
)

// SummaryKeys are the keys every summary file has. A file
// missing any of them (e.g. the "{}" placeholder of a run that never finished)
// is rejected rather than read as zeros.
var SummaryKeys = []string{
	"env", "seed", "env_steps", "episodes", "learner_updates", "wall_seconds",
	"solved", "solved_at_env_steps", "solved_at_seconds", "mean_return_100",
}

// summary is the --summary JSON.
type Summary struct {
	Env                string  `json:"env"`
	Seed               uint64  `json:"seed"`
	EnvSteps           uint64  `json:"env_steps"`
	Episodes           uint64  `json:"episodes"`
	LearnerUpdates     uint64  `json:"learner_updates"`
	WeightsVersion     uint64  `json:"weights_version"`
	WallSeconds        float64 `json:"wall_seconds"`
	Solved             bool    `json:"solved"`
	SolvedAtEnvSteps   uint64  `json:"solved_at_env_steps"`
	SolvedAtSeconds    float64 `json:"solved_at_seconds"`
	MeanReturn100      float64 `json:"mean_return_100"`
	MeanReturn100N     int     `json:"mean_return_100_episodes"`
	MeanReturn100All   float64 `json:"mean_return_100_all"`
	ExperienceRejected uint64  `json:"experience_rejected"`
	// Evaluations (the evaluator role): the last one's mean return, and
	// the best one's (its weights are best.ckpt's) with the env steps it
	// was taken at. Omitted when no evaluation ran.
	EvalMeanReturn     *float64 `json:"eval_mean_return,omitempty"`
	BestEvalMeanReturn *float64 `json:"best_eval_mean_return,omitempty"`
	BestEvalEnvSteps   *uint64  `json:"best_eval_env_steps,omitempty"`
	// Once solved by mean100: its lowest value from then on (a run with
	// stop_on: none goes on after solving; this says whether it held).
	Mean100MinAfterSolved *float64 `json:"mean_return_100_min_after_solved,omitempty"`
}

func newSummary(env string, seed uint64, st actors.RunStatus, wall time.Duration, started time.Time) Summary {
	s := Summary{
		Env: env, Seed: seed, EnvSteps: st.EnvSteps, Episodes: st.Episodes, LearnerUpdates: st.LearnerUpdates,
		WeightsVersion: st.WeightsVersion, WallSeconds: wall.Seconds(), Solved: st.Solved,
		MeanReturn100: actors.Finite(st.Mean100), MeanReturn100N: st.Mean100Count, MeanReturn100All: actors.Finite(st.Mean100All),
		ExperienceRejected: st.ExperienceRejected,
	}
	if m := st.Mean100MinAfterSolved; m != nil {
		v := *m
		s.Mean100MinAfterSolved = &v
	}
	if e := st.LastEval; e != nil {
		s.EvalMeanReturn = &e.Mean
	}
	if b := st.BestEval; b != nil {
		s.BestEvalMeanReturn, s.BestEvalEnvSteps = &b.Mean, &b.EnvSteps
	}
	if st.Solved {
		s.SolvedAtEnvSteps = st.SolvedAtEnvSteps
		s.SolvedAtSeconds = st.SolvedAt.Sub(started).Seconds()
	}
	return s
}

// line is the summary as the run's last line on stdout.
func (s Summary) line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s seed=%d: solved=%v env_steps=%d wall=%.1fs mean100=%.1f", s.Env, s.Seed, s.Solved, s.EnvSteps, s.WallSeconds, s.MeanReturn100)
	if s.Solved {
		fmt.Fprintf(&b, " solved_at_env_steps=%d solved_at=%.1fs", s.SolvedAtEnvSteps, s.SolvedAtSeconds)
	}
	if m := s.Mean100MinAfterSolved; m != nil {
		fmt.Fprintf(&b, " min_mean100_after_solved=%.1f", *m)
	}
	if s.EvalMeanReturn != nil {
		fmt.Fprintf(&b, " eval_mean=%.1f", *s.EvalMeanReturn)
	}
	if s.BestEvalMeanReturn != nil {
		fmt.Fprintf(&b, " best_eval_mean=%.1f best_eval_env_steps=%d", *s.BestEvalMeanReturn, *s.BestEvalEnvSteps)
	}
	return b.String()
}

// writeJSON writes v as indented JSON, the summary's form.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// ReadSummary reads and checks one --summary file; errors name the file.
func ReadSummary(path string) (Summary, error) {
	var s Summary
	data, err := os.ReadFile(path)
	if err != nil {
		return s, err // *fs.PathError names the file
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(data, &keys); err != nil {
		return s, fmt.Errorf("%s: not a summary JSON object: %w", path, err)
	}
	var missing []string
	for _, k := range SummaryKeys {
		if _, ok := keys[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return s, fmt.Errorf("%s: not a complete qfleet summary: missing %s", path, strings.Join(missing, ", "))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
