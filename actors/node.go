package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/nets"
)

// Restart budget of a node's role actors: a role that fails more than
// RestartBudget times within RestartWindow stays stopped (and is logged)
// instead of restarting forever.
const (
	RestartBudget = 10
	RestartWindow = 30 * time.Second
)

// DevOptions configures a dev-mode run: every role in one process.
type DevOptions struct {
	EnvID         string
	Seed          uint64
	Config        Config
	Stop          StopRule
	CheckpointDir string       // "" disables checkpoints
	Logger        *slog.Logger // nil discards
}

// Dev is a running dev-mode node.
type Dev struct {
	System  *actor.ActorSystem
	Metrics *Metrics
	Net     nets.Spec
	Started time.Time

	root *actor.PID
	done chan struct{}
}

// NetSpec is the Q-network for an env under a config.
func NetSpec(env envs.Env, cfg Config) nets.Spec {
	sp := env.Spec()
	return nets.Spec{Inputs: sp.ObsSize(), Hidden: append([]int(nil), cfg.Hidden...), Outputs: sp.NumActions}
}

// StartDev validates the options and starts the node supervisor, which spawns
// stats, replay, broadcaster, learner and the runners as its children.
func StartDev(o DevOptions) (*Dev, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	env, err := envs.Make(o.EnvID)
	if err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	net := NetSpec(env, o.Config)
	if err := net.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return log }))
	d := &Dev{System: sys, Metrics: NewMetrics(), Net: net, Started: time.Now(), done: make(chan struct{})}
	dir := LocalDirectory{Address: sys.Address()}
	roles := []role{
		{"stats", newStats(o.Stop, d.Metrics, log, func() { close(d.done) })},
		{"replay", newReplay(o.Config, net.Inputs, o.Seed, d.Metrics, log)},
		{"broadcaster", newBroadcaster(d.Metrics, log)},
		{"learner", newLearner(LearnerSpec{EnvID: o.EnvID, Net: net, Seed: o.Seed, CheckpointDir: o.CheckpointDir}, o.Config, dir, d.Metrics, log)},
	}
	for i := 0; i < o.Config.Runners; i++ {
		spec := RunnerSpec{Name: fmt.Sprintf("runner-%d", i), Index: i, Count: o.Config.Runners, EnvID: o.EnvID, Seed: o.Seed*1_000_003 + uint64(i), Net: net}
		roles = append(roles, role{spec.Name, newRunner(spec, o.Config, dir, d.Metrics, log)})
	}
	root, err := sys.Root.SpawnNamed(actor.PropsFromProducer(newSupervisor(roles, log), actor.WithSupervisor(SupervisorStrategy())), SupervisorName)
	if err != nil {
		return nil, fmt.Errorf("start node supervisor: %w", err)
	}
	d.root = root
	return d, nil
}

// Done is closed when the stop rule fires.
func (d *Dev) Done() <-chan struct{} { return d.done }

// SaveCheckpoint asks the learner to write its checkpoint and waits for it.
func (d *Dev) SaveCheckpoint(timeout time.Duration) (string, error) {
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
func (d *Dev) Stop() {
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
	stopping bool
}

func newSupervisor(roles []role, log *slog.Logger) actor.Producer {
	return func() actor.Actor { return &supervisor{roles: roles, log: log} }
}

func (s *supervisor) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Started:
		for _, r := range s.roles {
			if _, err := ctx.SpawnNamed(actor.PropsFromProducer(r.producer), r.name); err != nil {
				s.log.Error("role did not start", "role", r.name, "err", err)
			}
		}
	case *actor.Stopping:
		s.stopping = true
	case *actor.Terminated:
		if s.stopping {
			return
		}
		s.log.Error("role stopped for good (restart budget used up)", "pid", msg.GetWho().String())
	}
}

// SupervisorStrategy is what a node supervisor applies to its roles.
func SupervisorStrategy() actor.SupervisorStrategy {
	return actor.NewOneForOneStrategy(RestartBudget, RestartWindow, actor.DefaultDecider)
}
