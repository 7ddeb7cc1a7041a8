package minatar

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"strings"
	"unsafe"

	"github.com/qfleet/qfleet/envs"
)

// Rand is the source of every random draw, in the reference order.
//
// The reference (minatar/environment.py) shares one numpy RandomState between
// the wrapper's sticky-action check and the game, so one Rand serves both and
// the order of calls is part of each game's specification: a recorded
// sequence of draws replays a reference episode exactly.
type Rand interface {
	Float64() float64           // uniform in [0,1), like numpy's rand()
	IntRange(low, high int) int // uniform in [low, high), like numpy's randint(low, high)
}

// game is one MinAtar game's rules on the full 6-action set (0 n, 1 l, 2 u, 3 r, 4 d, 5 f).
type game interface {
	channels() int
	reset(r Rand)                                      // start an episode; draws in reference order
	act(a int, r Rand) (reward float64, terminal bool) // one step with an already sticky-resolved action
	fill(state []bool)                                 // write the 10x10xC state channel-last; caller zeroes state first
}

// Actions of the full set, as the reference's action_map ['n','l','u','r','d','f'].
const (
	actNoop  = 0
	actLeft  = 1
	actUp    = 2
	actRight = 3
	actDown  = 4
	actFire  = 5

	numFullActions = 6
	gridSize       = 10 // every game is a 10x10 grid

	// DefaultStickyActionProb is the reference's default sticky_action_prob
	// (environment.py:26): with this probability a step repeats the previous
	// action instead of the one asked for.
	DefaultStickyActionProb = 0.1
)

// gameInfo is what a game file registers.
type gameInfo struct {
	name    string
	newGame func(ramping bool) game
	minimal []int
}

// games holds every registered game by name ("Breakout"). It is only
// written from init functions, so it needs no lock.
var games = map[string]*gameInfo{}

// register is called from each game file's init: name like "Breakout"; minimal is the -v1 action set.
// It registers "MinAtar/<name>-v0" (all 6 actions) and "MinAtar/<name>-v1"
// (action i is minimal[i]) with envs, both with the reference defaults:
// sticky actions p = 0.1 and difficulty ramping on.
func register(name string, newGame func(ramping bool) game, minimal []int) {
	if _, dup := games[name]; dup {
		panic("minatar: game " + name + " registered twice")
	}
	for _, a := range minimal {
		if a < 0 || a >= numFullActions {
			panic(fmt.Sprintf("minatar: game %s: minimal action %d out of range", name, a))
		}
	}
	info := &gameInfo{name: name, newGame: newGame, minimal: append([]int(nil), minimal...)}
	games[name] = info
	for _, v := range []string{"v0", "v1"} {
		id := "MinAtar/" + name + "-" + v
		envs.Register(id, func() envs.Env {
			e, err := New(id)
			if err != nil {
				panic(err) // cannot happen: id was built from a registered game
			}
			return e
		})
	}
}

// rewardThresholds are the "solved" returns reported in Spec. MinAtar
// defines none. These are round numbers near the final return of DQN (with
// experience replay and a target network, full action set, 5M frames) in
// Young & Tian, "MinAtar: An Atari-Inspired Testbed for Thorough and
// Reproducible Reinforcement Learning Experiments" (arXiv:1903.03176), whose
// results are learning-curve plots (also in the repository's README,
// img/learning_curves.gif), not a table: read them as "a DQN that learned
// the game", not as exact published values. A game not listed gets 0.
var rewardThresholds = map[string]float64{
	"Breakout":      10,
	"Asterix":       17,
	"Freeway":       50,
	"Seaquest":      20,
	"SpaceInvaders": 43,
}

// Option changes how New builds an Env.
type Option func(*Env)

// WithStickyActionProb sets the sticky-action probability (default 0.1).
// Even with 0 every Step still draws one Float64 for the check, as the
// reference does, so recorded draw sequences stay aligned.
func WithStickyActionProb(p float64) Option { return func(e *Env) { e.stickyProb = p } }

// WithoutRamping turns difficulty ramping off (the reference's
// difficulty_ramping=False).
func WithoutRamping() Option { return func(e *Env) { e.ramping = false } }

// Env is one MinAtar game behind the envs.Env interface, equivalent to
// minatar.gym's MinAtar/<Name>-v0/-v1 over minatar.Environment.
//
// Observation: the 10x10xC boolean state flattened channel-last (index
// (y*10+x)*C + c) as 0/1 float32, in a slice owned and reused by the Env
// (valid until the next Reset or Step).
//
// Episodes: terminated is the game's terminal flag; truncated is always
// false and MaxEpisodeSteps is 0, because the reference has no time limit
// (gym.py returns truncated=False and registers no max_episode_steps).
// Freeway's 2500-step limit is part of its rules and ends the episode as a
// termination, as in the reference. Stepping after termination returns
// reward 0 and terminated=true and leaves the state alone (the games' act
// returns (0, True)), but still draws the sticky check and updates the
// remembered action, like Environment.act.
//
// Randomness: Reset(seed) seeds a PCG generator from seed (not numpy's
// stream). SetRand installs an injected source instead.
type Env struct {
	spec       envs.Spec
	info       *gameInfo
	g          game
	actionSet  []int // agent action -> full action
	stickyProb float64
	ramping    bool

	rng      Rand
	injected bool // rng came from SetRand; Reset must not replace it
	pcg      rand.PCG
	def      pcgRand

	// lastAction is the full-set action applied on the previous step. Like
	// Environment.last_action it starts at 0 and survives Reset.
	lastAction int
	terminal   bool
	started    bool
	// state is the game's boolean grid, a view of the words stateWords so
	// observe can skip 8 empty cells per load (a bool is one byte, 0 or 1).
	state      []bool
	stateWords []uint64
	obs        []float32
}

var _ envs.Env = (*Env)(nil)

// New builds the env registered as id ("MinAtar/Breakout-v0" or -v1) with
// the reference defaults, changed by opts.
func New(id string, opts ...Option) (*Env, error) {
	rest, ok := strings.CutPrefix(id, "MinAtar/")
	var name, version string
	if ok {
		name, version, ok = strings.Cut(rest, "-")
	}
	info := games[name]
	if !ok || info == nil || (version != "v0" && version != "v1") {
		return nil, fmt.Errorf("minatar: %w %q", envs.ErrUnknownEnv, id)
	}
	return newEnv(id, info, version == "v1", opts...), nil
}

// newEnv builds an Env for game info; minimal selects the -v1 action set.
func newEnv(id string, info *gameInfo, minimal bool, opts ...Option) *Env {
	e := &Env{info: info, stickyProb: DefaultStickyActionProb, ramping: true}
	if minimal {
		e.actionSet = info.minimal
	} else {
		e.actionSet = []int{actNoop, actLeft, actUp, actRight, actDown, actFire}
	}
	for _, o := range opts {
		o(e)
	}
	e.g = info.newGame(e.ramping)
	c := e.g.channels()
	e.spec = envs.Spec{
		ID:              id,
		ObsShape:        []int{gridSize, gridSize, c},
		ObsDType:        envs.Binary, // 0/1 grids
		NumActions:      len(e.actionSet),
		MaxEpisodeSteps: 0, // no time limit in the reference
		RewardThreshold: rewardThresholds[info.name],
	}
	n := gridSize * gridSize * c
	e.stateWords = make([]uint64, (n+7)/8)
	e.state = unsafe.Slice((*bool)(unsafe.Pointer(&e.stateWords[0])), n)
	e.obs = make([]float32, gridSize*gridSize*c)
	e.def.r = rand.New(&e.pcg)
	e.rng = &e.def
	return e
}

// Spec returns the env's spec: ObsShape [10,10,C], 6 actions (-v0) or the
// minimal set's size (-v1), no time limit.
func (e *Env) Spec() envs.Spec {
	s := e.spec
	s.ObsShape = append([]int(nil), s.ObsShape...)
	return s
}

// SetRand makes r the source of every later draw, Reset's included, in
// place of the seeded default; Reset then ignores its seed. SetRand(nil)
// goes back to the default, seeded by the next Reset.
func (e *Env) SetRand(r Rand) {
	if r == nil {
		e.rng, e.injected = &e.def, false
		return
	}
	e.rng, e.injected = r, true
}

// Reset starts an episode. Without an injected Rand it seeds the default
// generator from seed first, so the same seed gives the same episode for
// the same actions. The remembered sticky action is kept, as in the reference.
func (e *Env) Reset(seed int64) []float32 {
	if !e.injected {
		e.pcg.Seed(uint64(seed), 0x9e3779b97f4a7c15)
	}
	e.g.reset(e.rng)
	e.terminal = false
	e.started = true
	return e.observe()
}

// Step applies action (an index into the action set). It panics on an
// action out of range or before the first Reset: both are caller bugs.
func (e *Env) Step(action int) (obs []float32, reward float64, terminated, truncated bool) {
	if action < 0 || action >= len(e.actionSet) {
		panic(fmt.Sprintf("minatar: %s: invalid action %d (want 0..%d)", e.spec.ID, action, len(e.actionSet)-1))
	}
	if !e.started {
		panic("minatar: " + e.spec.ID + ": Step before Reset")
	}
	a := e.actionSet[action]
	// environment.py:45-48: the sticky check draws first, on every step.
	if e.rng.Float64() < e.stickyProb {
		a = e.lastAction
	}
	e.lastAction = a
	if e.terminal {
		return e.obs, 0, true, false
	}
	reward, e.terminal = e.g.act(a, e.rng)
	return e.observe(), reward, e.terminal, false
}

// observe rebuilds the observation from the game's boolean state. Most
// cells are empty, so it scans the state 8 bytes at a time and writes only
// the ones; this makes it several times faster than a loop over 400-700
// bools, and it is most of the cost of a step.
func (e *Env) observe() []float32 {
	clear(e.stateWords)
	e.g.fill(e.state)
	clear(e.obs)
	if !littleEndian {
		for i, b := range e.state {
			if b {
				e.obs[i] = 1
			}
		}
		return e.obs
	}
	for w, v := range e.stateWords {
		for v != 0 {
			// A true bool is the byte 1: one bit per set cell, at bit 8k
			// for byte k of the word on a little-endian machine.
			e.obs[w*8+bits.TrailingZeros64(v)>>3] = 1
			v &= v - 1
		}
	}
	return e.obs
}

// littleEndian tells observe how bytes of a uint64 map to cells.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// pcgRand is the default Rand: math/rand/v2 over a PCG source. It does not
// reproduce numpy's MT19937 stream; exact replays inject recorded draws.
type pcgRand struct{ r *rand.Rand }

func (p *pcgRand) Float64() float64 { return p.r.Float64() }

func (p *pcgRand) IntRange(low, high int) int {
	if high <= low {
		panic(fmt.Sprintf("minatar: IntRange(%d, %d): empty range", low, high))
	}
	return low + p.r.IntN(high-low)
}
