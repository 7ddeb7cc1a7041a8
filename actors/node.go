package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/nets"
)

// Role names, as given to `qfleet node --roles`.
const (
	RoleRunner      = "runner"
	RoleReplay      = "replay"
	RoleLearner     = "learner" // brings the stats actor with it
	RoleBroadcaster = "broadcaster"
	// RoleEvaluator plays evaluation episodes with the newest weights every
	// eval_every env steps (evaluator.go). Optional: dev mode runs it when
	// eval_every > 0, a cluster node when its roles name it.
	RoleEvaluator = "evaluator"
)

// AllRoles is what dev mode always runs in one process (the evaluator
// besides, when eval_every > 0). It is also the default of 'qfleet node
// --roles', recorded in every config file: the optional roles stay out of
// it, so that configs and sweep trial keys of earlier versions hold.
var AllRoles = []string{RoleRunner, RoleReplay, RoleLearner, RoleBroadcaster}

// OptionalRoles are the training roles a node runs only when told to.
var OptionalRoles = []string{RoleEvaluator}

// KnownRoles are every training role a node can be given: AllRoles, then
// OptionalRoles.
func KnownRoles() []string { return append(slices.Clone(AllRoles), OptionalRoles...) }

// DevRoles are the roles of a dev-mode node under cfg: AllRoles, and the
// evaluator when cfg.EvalEvery > 0.
func DevRoles(cfg Config) []string {
	if cfg.EvalEvery > 0 {
		return append(slices.Clone(AllRoles), RoleEvaluator)
	}
	return AllRoles
}

// NodeOptions configures one node: which roles it runs and how it finds the
// others. Dev mode is a node with every role and a LocalDirectory.
type NodeOptions struct {
	Name            string // node name; prefixes runner names so they are unique in a cluster
	Roles           []string
	EnvID           string
	Seed            uint64
	Config          Config
	Stop            StopRule
	CheckpointDir   string             // "" disables checkpoints
	CheckpointEvery time.Duration      // periodic learner checkpoints (0: only when asked)
	Resume          bool               // the learner (and the replay) start from the newest checkpoint (snapshot) in CheckpointDir
	SnapshotEvery   time.Duration      // periodic replay snapshots into CheckpointDir (0: none)
	Logger          *slog.Logger       // nil discards
	System          *actor.ActorSystem // nil: a new local actor system (dev mode)
	Directory       Directory          // nil: LocalDirectory on System
}

// Node is a running node: the roles it was given on one actor system.
type Node struct {
	System  *actor.ActorSystem
	Metrics *Metrics
	Net     nets.Spec
	Started time.Time
	Roles   []string

	root    *actor.PID
	done    chan struct{}
	runners int // runner actors on this node (named runnerRole(i) under the supervisor)
}

// replayOptions picks the replay's storage from the env's observation
// dtype: 0/1 observations (MinAtar's grids) are stored as bits, uint8 ones
// (pixels) as bytes, each frame once, also when the runners stack them
// (frame_stack).
func replayOptions(spec envs.Spec, cfg Config) []replayOption {
	if d := spec.ObsDType; d == envs.Binary || d == envs.Uint8 {
		return []replayOption{withFrames(d, max(cfg.FrameStack, 1), envs.FrameChannels(spec.ObsShape))}
	}
	return nil
}

// StackedSpec is the env's spec as the network, the replay and the wire
// see it: with frame_stack > 1, observations of that many of its frames,
// stacked channel-last by the runner (envs.FrameStack).
func StackedSpec(sp envs.Spec, cfg Config) envs.Spec {
	if cfg.FrameStack > 1 {
		sp.ObsShape = envs.StackedShape(sp.ObsShape, cfg.FrameStack)
	}
	return sp
}

// CheckNetwork refuses a network the env's observations cannot feed: the
// Nature network needs images (height × width × channels).
func CheckNetwork(env envs.Spec, cfg Config) error {
	if sh := env.ObsShape; cfg.Network == NetworkNature && len(sh) != 3 {
		return fmt.Errorf("%w: network = nature needs image observations (height×width×channels); %s's are of shape %v", ErrInvalidConfig, env.ID, sh)
	}
	return nil
}

// NetSpec is the Q-network for an env under a config: an MLP on flat
// observations; for image observations (height × width × channels, channel
// last, like MinAtar's) a conv torso of ConvFilters 3×3 filters first, when
// ConvFilters > 0 (the MinAtar paper's network), or with network nature the
// Nature DQN's torso; a dueling head if asked. The env's frames are stacked
// frame_stack deep first (StackedSpec).
func NetSpec(sp envs.Spec, cfg Config) nets.Spec {
	sp = StackedSpec(sp, cfg)
	if sh := sp.ObsShape; cfg.Network == NetworkNature && len(sh) == 3 {
		s := nets.NatureSpec(sh[0], sh[1], sh[2], sp.NumActions)
		s.Dueling, s.LayerNorm = cfg.Dueling, cfg.LayerNorm
		return s
	}
	s := nets.Spec{Inputs: sp.ObsSize(), Hidden: append([]int(nil), cfg.Hidden...), Outputs: sp.NumActions, Dueling: cfg.Dueling, LayerNorm: cfg.LayerNorm}
	if sh := sp.ObsShape; len(sh) == 3 && cfg.ConvFilters > 0 {
		s.Conv = &nets.ConvSpec{Height: sh[0], Width: sh[1], Channels: sh[2], Filters: cfg.ConvFilters, Kernel: 3}
	}
	return s
}

// StartDev starts a dev-mode node: every role in one process. It fills
// Name ("dev") and Roles (DevRoles) when they are empty.
func StartDev(o NodeOptions) (*Node, error) {
	if o.Name == "" {
		o.Name = "dev"
	}
	if len(o.Roles) == 0 {
		o.Roles = DevRoles(o.Config)
	}
	return StartNode(o)
}

// ErrUnknownRole names a role that is not one of KnownRoles.
var ErrUnknownRole = errors.New("unknown role")

// StartNode validates the options and starts the node supervisor, which
// spawns this node's roles as its children (stats with the learner).
func StartNode(o NodeOptions) (*Node, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	has := map[string]bool{}
	for _, r := range o.Roles {
		if !slices.Contains(KnownRoles(), r) {
			return nil, fmt.Errorf("%w %q (roles: %s)", ErrUnknownRole, r, strings.Join(KnownRoles(), ", "))
		}
		has[r] = true
	}
	env, err := envs.SpecOf(o.EnvID) // an external env's without starting it
	if err != nil {
		return nil, err
	}
	if err := CheckNetwork(env, o.Config); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("node", o.Name)
	net := NetSpec(env, o.Config)
	if err := net.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	sys := o.System
	if sys == nil {
		sys = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }))
	}
	dir := o.Directory
	if dir == nil {
		dir = LocalDirectory{Address: sys.Address()}
	}
	d := &Node{System: sys, Metrics: NewNodeMetrics(o.Roles...), Net: net, Started: time.Now(), Roles: o.Roles, done: make(chan struct{})}
	var roles []role
	if has[RoleLearner] {
		roles = append(roles, role{"stats", newStats(o.Stop, d.Metrics, log, func() { close(d.done) })})
	}
	if has[RoleReplay] {
		roles = append(roles, role{"replay", newReplay(o.Config, net.Inputs, net.Outputs, o.Seed, d.Metrics, log,
			SnapshotSpec{Dir: o.CheckpointDir, Every: o.SnapshotEvery, Restore: o.Resume, EnvID: o.EnvID}, replayOptions(env, o.Config)...)})
	}
	if has[RoleBroadcaster] {
		roles = append(roles, role{"broadcaster", newBroadcaster(o.Config, d.Metrics, log)})
	}
	if has[RoleLearner] {
		roles = append(roles, role{"learner", newLearner(LearnerSpec{EnvID: o.EnvID, Net: net, Seed: o.Seed, CheckpointDir: o.CheckpointDir, CheckpointEvery: o.CheckpointEvery, Resume: o.Resume}, o.Config, dir, d.Metrics, log)})
	}
	if has[RoleEvaluator] {
		if o.Config.EvalEvery <= 0 {
			return nil, fmt.Errorf("%w: eval_every = %d: the evaluator role needs eval_every > 0", ErrInvalidConfig, o.Config.EvalEvery)
		}
		roles = append(roles, role{"evaluator", newEvaluator(EvaluatorSpec{Name: o.Name + "/evaluator", EnvID: o.EnvID, Seed: o.Seed, Net: net}, o.Config, dir, d.Metrics, log)})
	}
	if has[RoleRunner] {
		d.runners = o.Config.Runners
		for i := 0; i < o.Config.Runners; i++ {
			spec := RunnerSpec{Name: fmt.Sprintf("%s/runner-%d", o.Name, i), Index: i, Count: o.Config.Runners, EnvID: o.EnvID,
				Seed: o.Seed*1_000_003 + uint64(i) + nameSeed(o.Name), Net: net}
			roles = append(roles, role{runnerRole(i), newRunner(spec, o.Config, dir, d.Metrics, log)})
		}
	}
	root, err := sys.Root.SpawnNamed(actor.PropsFromProducer(newSupervisor(roles, d.Metrics, log), actor.WithSupervisor(SupervisorStrategy())), SupervisorName)
	if err != nil {
		return nil, fmt.Errorf("start node supervisor: %w", err)
	}
	d.root = root
	return d, nil
}

// nameSeed spreads seeds of runners on different nodes (FNV-1a of the name);
// "dev" keeps the dev-mode seeds as they were.
func nameSeed(name string) uint64 {
	if name == "dev" {
		return 0
	}
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h ^= uint64(name[i])
		h *= 1099511628211
	}
	return h
}

// RunnersStopped says whether this node has runners and every one of them
// stopped for good (their envs failed through the restart budget), and the
// last error one of them gave: a node whose runners are all gone produces
// no experience any more.
func (n *Node) RunnersStopped() (bool, string) {
	if n.runners == 0 {
		return false, ""
	}
	st := n.Metrics.Status()
	why := ""
	for i := range n.runners {
		id := SupervisorName + "/" + runnerRole(i)
		if !slices.Contains(st.StoppedRoles, id) {
			return false, ""
		}
		if e := st.RoleErrors[id]; e != "" {
			why = e
		}
	}
	return true, why
}

// runnerRole is the actor name of this node's runner i under the supervisor.
func runnerRole(i int) string { return fmt.Sprintf("runner-%d", i) }

// SetRunnerLadder places this node's runners on rungs offset, offset+1, ...
// of the ε ladder of total runners (the cluster's; dev mode's ladder is the
// node's own runners, set at start). Each runner takes its new rung without
// restarting. No-op on a node without runners. It goes through the node
// supervisor, which handles it after spawning the runners (a message sent
// to a runner's PID straight after StartNode could find no runner yet).
func (d *Node) SetRunnerLadder(offset, total int) {
	if d.runners > 0 {
		d.System.Root.Send(d.root, &setRunnerLadder{offset: offset, total: total, runners: d.runners})
	}
}

// setRunnerLadder asks a node supervisor to place its runners on rungs
// offset, offset+1, ... of total.
type setRunnerLadder struct{ offset, total, runners int }

// Done is closed when the stop rule fires.
func (d *Node) Done() <-chan struct{} { return d.done }

// SaveCheckpoint asks the learner to write its checkpoint and waits for it.
func (d *Node) SaveCheckpoint(timeout time.Duration) (string, error) {
	res, err := d.System.Root.RequestFuture(actor.NewPID(d.System.Address(), LearnerName), &SaveCheckpoint{}, timeout).Result()
	if err != nil {
		return "", fmt.Errorf("checkpoint: learner did not answer: %w", err)
	}
	saved, ok := res.(*CheckpointSaved)
	if !ok {
		return "", errors.New("checkpoint: unexpected answer from learner")
	}
	return saved.Path, saved.Err
}

// Stop stops every role and waits for them (ActorSystem.Shutdown alone only
// closes a channel).
func (d *Node) Stop() {
	_ = d.System.Root.StopFuture(d.root).Wait() // a timeout here only means it was already stopped
	d.System.Shutdown()
}

// role is one child of a node supervisor.
type role struct {
	name     string
	producer actor.Producer
}

// supervisor is a node's root actor: it spawns the node's roles as children
// and restarts a failed one (a fresh instance from its producer) within the
// restart budget.
type supervisor struct {
	roles    []role
	log      *slog.Logger
	metrics  *Metrics
	stopping bool
}

func newSupervisor(roles []role, m *Metrics, log *slog.Logger) actor.Producer {
	return func() actor.Actor { return &supervisor{roles: roles, metrics: m, log: log} }
}

func (s *supervisor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		for _, r := range s.roles {
			if _, err := ctx.SpawnNamed(actor.PropsFromProducer(r.producer), r.name); err != nil {
				s.log.Error("role did not start", "role", r.name, "err", err)
			}
		}
	case *setRunnerLadder:
		for i := 0; i < msg.runners; i++ {
			ctx.Send(actor.NewPID(ctx.Self().Address, ctx.Self().Id+"/"+runnerRole(i)), &RunnerLadder{Index: msg.offset + i, Count: msg.total})
		}
	case *actor.Stopping:
		s.stopping = true
	case *actor.Terminated:
		if s.stopping {
			return
		}
		s.log.Error("role stopped for good (its restart budget used up, or it stopped itself on an error it cannot recover from, logged above)", "pid", msg.GetWho().String())
		s.metrics.update(func(st *RunStatus) { st.StoppedRoles = append(st.StoppedRoles, msg.GetWho().GetId()) })
	}
}

// roleFailed records the error a role actor failed with.
func (m *Metrics) roleFailed(id string, err error) {
	m.update(func(st *RunStatus) {
		if st.RoleErrors == nil {
			st.RoleErrors = map[string]string{}
		}
		st.RoleErrors[id] = err.Error()
	})
}

// countRestart records a role actor's restart (called from its Restarting).
func (m *Metrics) countRestart(roleName, id string) {
	m.RoleRestarts.WithLabelValues(roleName).Inc()
	m.update(func(st *RunStatus) { st.Restarts[id]++ })
}
