package sweep

// Population Based Training (Jaderberg et al. 2017), asynchronous, in the
// form Ray Tune's PopulationBasedTraining takes: the sweep's trials are the
// population; each runs in segments of PerturbEvery env steps, each a
// 'qfleet dev --resume' process from the checkpoint the segment before
// left. When a member's segment ends, it is ranked by mean100 among the
// members' latest results: a member in the bottom Quantile copies the
// checkpoint of a member of the top Quantile (exploit: its weights,
// optimizer state and, with Replay, its replay) and goes on with that
// member's hyper-parameters, each perturbed or resampled (explore). Every
// member runs its own max_steps env steps, so the population spends what
// its members would spend alone.

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/messages"
)

// PBT is the population based training scheduler's settings.
type PBT struct {
	PerturbEvery        uint64  // env steps a member runs between decisions
	Quantile            float64 // the bottom fraction copies the top one (0 < q ≤ 0.5)
	ResampleProbability float64 // explore: a param is drawn anew with this probability, else perturbed
	Replay              bool    // exploit copies the replay snapshot too
}

// pbtFixedKeys cannot change under PBT: a member continues another's
// checkpoint, whose network has the shape these give.
var pbtFixedKeys = []string{"hidden", "conv_filters", "network", "frame_stack", "dueling", "layer_norm"}

// pbtReplayKeys cannot change when exploit copies the replay: a snapshot
// restores into a table of its own kind and size.
var pbtReplayKeys = []string{"replay_capacity", "prioritized"}

func (p PBT) validate(params []Param) error {
	switch {
	case p.PerturbEvery == 0:
		return fmt.Errorf("scheduler: perturb_every = 0: want the env steps a member runs between decisions (> 0)")
	case !(p.Quantile > 0 && p.Quantile <= 0.5):
		return fmt.Errorf("scheduler: quantile = %v: want 0 < quantile <= 0.5 (the bottom fraction copies the top one)", p.Quantile)
	case !(p.ResampleProbability >= 0 && p.ResampleProbability <= 1):
		return fmt.Errorf("scheduler: resample_probability = %v: want 0..1", p.ResampleProbability)
	}
	for _, q := range params {
		if slices.Contains(pbtFixedKeys, q.Key) {
			return fmt.Errorf("params.%s: cannot be searched by pbt (a member continues another's network, whose shape it sets)", q.Key)
		}
		if p.Replay && slices.Contains(pbtReplayKeys, q.Key) {
			return fmt.Errorf("params.%s: cannot be searched by pbt with replay: true (a member continues another's replay)", q.Key)
		}
	}
	return nil
}

// LineageStep is a change of a PBT member: at its own env steps At, it
// went on from Source's checkpoint (itself when Source is its own id)
// with Params.
type LineageStep struct {
	At       uint64         `json:"at"`
	Source   string         `json:"source"`
	SourceAt uint64         `json:"source_env_steps"` // the env steps of the checkpoint it took
	Params   map[string]any `json:"params"`
}

// member is a trial of the population.
type member struct {
	trial      *Trial
	params     map[string]any // its hyper-parameters now
	config     []byte         // its config now
	own        uint64         // env steps it ran itself
	ckpt, snap []byte         // its latest checkpoint (nil before its first segment)
	ckptAt     uint64         // the env steps in it
	value      rungValue      // mean100 of its latest segment
	row        Row            // its latest row
	lineage    []LineageStep
	segments   int             // its segments recorded
	attempts   map[uint32]bool // the attempts of its running segment
	paused     bool            // between segments, waiting for a slot
	running    bool
}

// pbtState is the coordinator's state of PBT.
type pbtState struct {
	p       PBT
	params  []Param
	resolve func(params map[string]any, seed uint64) ([]byte, error)
	rng     *rand.Rand
	members map[string]*member
	// population is the number of members this run (resumed ones
	// included); started counts those given a first segment. A paused
	// member waits until every member has started, and no member exploits
	// before every one has a result: the first round is the population's.
	population, started int
}

func newPBT(p PBT, params []Param, resolve func(map[string]any, uint64) ([]byte, error), sweep string, population int) *pbtState {
	h := fnv.New64a()
	h.Write([]byte(sweep))
	return &pbtState{p: p, params: params, resolve: resolve, rng: rand.New(rand.NewPCG(h.Sum64(), 0x706274)),
		members: map[string]*member{}, population: population}
}

// memberOf is t's member, made at its first segment.
func (s *pbtState) memberOf(t *Trial) *member {
	m := s.members[t.ID]
	if m == nil {
		m = &member{trial: t, params: t.Params, config: t.Config, attempts: map[uint32]bool{},
			lineage: []LineageStep{{Source: t.ID, Params: t.Params}}}
		s.members[t.ID] = m
		s.started++
	}
	return m
}

// next is the paused member with the fewest env steps of its own (so the
// population stays level), nil for none.
func (s *pbtState) next() *Trial {
	if s.started < s.population {
		return nil // the queue's members start first
	}
	var best *member
	for _, id := range sortedKeys(s.members) {
		m := s.members[id]
		if m.paused && !m.running && (best == nil || m.own < best.own) {
			best = m
		}
	}
	if best == nil {
		return nil
	}
	return best.trial
}

func (s *pbtState) start(t *Trial, attempt uint32) (*messages.StartTrial, string, error) {
	m := s.memberOf(t)
	var cf qfleet.Config
	if err := qfleet.ParseConfig(m.config, t.ID, &cf); err != nil {
		return nil, "", err
	}
	total := cf.MaxSteps
	steps := min(s.p.PerturbEvery, total-min(total, m.own))
	cf.MaxSteps = m.ckptAt + steps
	header := fmt.Sprintf("Trial %s (PBT member): %d of its %d env steps run, this segment to %d.", t.ID, m.own, total, cf.MaxSteps)
	data, err := qfleet.MarshalConfig(cf, header)
	if err != nil {
		return nil, "", err
	}
	st := &messages.StartTrial{ConfigYaml: data, KeepCheckpoint: m.own+steps < total}
	if len(m.ckpt) > 0 {
		st.Checkpoint, st.ReplaySnapshot = m.ckpt, m.snap
	}
	m.running, m.paused = true, false
	m.attempts[attempt] = true
	return st, "", nil
}

func (s *pbtState) lost(trial string) bool {
	m := s.members[trial]
	if m == nil || len(m.ckpt) == 0 {
		return false // its first segment: it starts again from the queue
	}
	m.running, m.paused = false, true
	return true
}

func (s *pbtState) forget(trial string) { delete(s.members, trial) }

func (s *pbtState) idle(*coordActor) (bool, error) { return false, nil }

// result takes a member's segment: it ends the member at its max_steps (or
// target), else pauses it with its checkpoint after the exploit/explore
// decision.
func (s *pbtState) result(a *coordActor, res *messages.TrialResult, t *Trial) (done, ok bool) {
	m := s.members[res.Trial]
	if m == nil || !m.running || !m.attempts[res.Attempt] {
		return false, false
	}
	clear(m.attempts)
	m.running = false
	var sum qfleet.Summary
	okSum := json.Unmarshal(res.SummaryJson, &sum) == nil && sum.Env != ""
	var cf qfleet.Config
	_ = qfleet.ParseConfig(m.config, t.ID, &cf)
	if okSum {
		m.own += sum.EnvSteps - min(sum.EnvSteps, m.ckptAt)
		m.ckptAt = sum.EnvSteps
		m.value = nil
		if sum.MeanReturn100N > 0 && !math.IsNaN(sum.MeanReturn100) && !math.IsInf(sum.MeanReturn100, 0) {
			x := sum.MeanReturn100
			m.value = &x
		}
	}
	pause := settlePause(res, res.Ok && okSum && !sum.Solved && m.own < cf.MaxSteps)
	notes := trialNotes{Segmented: true, Segment: m.segments, Pause: pause, Lineage: m.lineage, Params: m.params, TrialSteps: m.own}
	if m.row.Trial != "" {
		notes.EarlierWall, notes.EarlierBest = m.row.WallSeconds, m.row.BestMean100
	}
	if pause {
		notes.Checkpoint, notes.Snaps = res.Checkpoint, res.ReplaySnapshot
	}
	row, line, err := a.o.Record(*t, res, notes)
	if err != nil {
		a.finish(fmt.Errorf("recording %s: %w", res.Trial, err))
		return false, true
	}
	m.row = row
	m.segments++
	if len(res.Checkpoint) > 0 {
		// Kept when the member is over too: a source for the others.
		m.ckpt, m.snap = res.Checkpoint, res.ReplaySnapshot
	}
	if !pause {
		fmt.Fprintf(a.o.Log, "sweep %s: [%d/%d] %s\n", a.o.Sweep, a.doneCount()+1, a.o.Total, line)
		return true, true
	}
	if !s.p.Replay {
		m.snap = nil
	}
	m.paused = true
	fmt.Fprintf(a.o.Log, "sweep %s: [%d/%d] %s\n", a.o.Sweep, a.doneCount(), a.o.Total, line)
	if why := s.exploit(m); why != "" {
		fmt.Fprintf(a.o.Log, "sweep %s: %s\n", a.o.Sweep, why)
	}
	return false, true
}

// exploit ranks m among the members with a result; in the bottom quantile,
// it takes the checkpoint of a member of the top one and explores from its
// hyper-parameters. It returns a line for the log ("" when m goes on as it
// is).
func (s *pbtState) exploit(m *member) string {
	if s.started < s.population {
		return "" // not every member has a result yet
	}
	var ranked []*member
	for _, id := range sortedKeys(s.members) {
		x := s.members[id]
		if x.row.Trial == "" {
			return "" // not every member has a result yet
		}
		if x.row.Status != StatusFailed && len(x.ckpt) > 0 {
			ranked = append(ranked, x)
		}
	}
	sort.SliceStable(ranked, func(i, j int) bool { return better(ranked[i].value, ranked[j].value) })
	k := int(math.Ceil(float64(len(ranked)) * s.p.Quantile))
	k = min(k, len(ranked)/2)
	if k == 0 {
		return ""
	}
	at := slices.Index(ranked, m)
	if at < len(ranked)-k {
		return ""
	}
	src := ranked[s.rng.IntN(k)]
	params := s.explore(src.params)
	cfg, err := s.resolve(params, m.trial.Seed)
	if err != nil {
		return fmt.Sprintf("%s: explore from %s gave a config that does not check (%v): it goes on as it is", m.trial.ID, src.trial.ID, err)
	}
	m.params, m.config = params, cfg
	m.ckpt, m.snap, m.ckptAt = src.ckpt, src.snap, src.ckptAt
	if !s.p.Replay {
		m.snap = nil
	}
	m.lineage = append(m.lineage, LineageStep{At: m.own, Source: src.trial.ID, SourceAt: src.ckptAt, Params: params})
	return fmt.Sprintf("%s (mean100 %s, %d of %d) exploits %s (mean100 %s): its checkpoint at %d env steps, explored to %s",
		m.trial.ID, formatValue(m.value), at+1, len(ranked), src.trial.ID, formatValue(src.value), src.ckptAt, formatParams(params))
}

// explore perturbs each searched param of params: drawn anew from the
// spec with probability ResampleProbability, else a real ×0.8 or ×1.2
// (within its bounds), an integer likewise rounded (moving at least one),
// a listed value one place up or down the list.
func (s *pbtState) explore(params map[string]any) map[string]any {
	out := make(map[string]any, len(params))
	for k, v := range params {
		out[k] = v
	}
	for _, p := range s.params {
		v, has := params[p.Key]
		if !has || (p.Dist == "" && len(p.Values) < 2) {
			continue
		}
		if s.rng.Float64() < s.p.ResampleProbability {
			out[p.Key] = p.draw(s.rng)
			continue
		}
		up := s.rng.IntN(2) == 1
		out[p.Key] = p.perturb(v, up)
	}
	return out
}

// perturb moves v one step: up or down.
func (p Param) perturb(v any, up bool) any {
	if p.Dist == "" {
		i := slices.IndexFunc(p.Values, func(x any) bool { return formatParam(x) == formatParam(v) })
		switch {
		case i < 0:
			return v
		case up && i+1 < len(p.Values):
			return p.Values[i+1]
		case !up && i > 0:
			return p.Values[i-1]
		case i+1 < len(p.Values):
			return p.Values[i+1] // at an end: the only way
		default:
			return p.Values[i-1]
		}
	}
	x, ok := toFloat(v)
	if !ok {
		return v
	}
	f := 0.8
	if up {
		f = 1.2
	}
	if p.Dist == "int_uniform" {
		n := int64(math.Round(x * f))
		if n == int64(x) {
			n += map[bool]int64{true: 1, false: -1}[up]
		}
		return min(max(n, int64(p.Lo)), int64(p.Hi))
	}
	return round6(x*f, p.Lo, p.Hi)
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}

// resume takes back a member a resumed sweep had paused: its params and
// lineage from its row, its checkpoint from beside it.
func (s *pbtState) resume(t *Trial, r Row) bool {
	if r.LocalDir == "" || len(r.Lineage) == 0 {
		return false
	}
	ckpt, snap, err := readResumeFiles(filepath.Join(r.LocalDir, PauseDir))
	if err != nil {
		return false
	}
	cfg, err := s.resolve(r.Params, t.Seed)
	if err != nil {
		return false
	}
	m := s.memberOf(t)
	m.params, m.config, m.own, m.ckptAt = r.Params, cfg, r.TrialSteps, r.EnvSteps
	m.ckpt, m.snap, m.row, m.lineage, m.paused = ckpt, snap, r, r.Lineage, true
	m.segments = r.Segments
	if r.FinalMean100 != nil {
		v := *r.FinalMean100
		m.value = &v
	}
	return true
}

// lineageString is a member's lineage as the table shows it.
func lineageString(l []LineageStep) string {
	if len(l) < 2 {
		return ""
	}
	var parts []string
	for _, s := range l[1:] {
		parts = append(parts, fmt.Sprintf("%d←%s@%d", s.At, s.Source, s.SourceAt))
	}
	return strings.Join(parts, " ")
}
