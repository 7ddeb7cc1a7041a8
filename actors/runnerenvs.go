package actors

import (
	"errors"
	"fmt"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// envSlot is one env of a runner's vector: its n-step returns, its rung of
// the ε ladder and the episode it is in. Each env keeps its own, so episodes
// that end at different steps never mix their returns.
type envSlot struct {
	acc    *NStepAccumulator
	epsEnd float64 // the ε its rung decays to

	// The episode so far.
	ret    float64
	length uint32
	maxEps float64
}

// envCount is the length of the runner's vector: Config.EnvsPerRunner (at
// least 1, for configs built in code without it).
func (r *runner) envCount() int { return max(r.cfg.EnvsPerRunner, 1) }

// startEnvs makes the runner's vector of envs and starts every env's first
// episode, seeded from the runner's random stream.
func (r *runner) startEnvs() error {
	n := r.envCount()
	newEnv := r.spec.NewEnv
	if newEnv == nil {
		id := r.spec.EnvID
		newEnv = func(n int) (envs.VecEnv, error) { return envs.MakeVec(id, n) }
	}
	vec, err := newEnv(n)
	if err != nil {
		return err
	}
	// The runner stacks frames itself, so that the env sends each frame once.
	stacked, err := envs.FrameStack(vec, max(r.cfg.FrameStack, 1))
	if err != nil {
		vec.Close()
		return err
	}
	vec = stacked
	r.vec = vec
	d := vec.Spec().ObsSize()
	switch {
	case vec.Len() != n:
		return fmt.Errorf("env vector of %d envs, want envs_per_runner = %d", vec.Len(), n)
	case d != r.spec.Net.Inputs:
		return fmt.Errorf("env %s: observations of %d values, the network takes %d", vec.Spec().ID, d, r.spec.Net.Inputs)
	}
	r.obsSize = d
	seeds := make([]int64, n)
	for i := range seeds {
		seeds[i] = r.rng.Int64()
	}
	obs, err := vec.Reset(seeds)
	if err != nil {
		return fmt.Errorf("env reset: %w", err)
	}
	if len(obs) != n*d {
		return fmt.Errorf("env reset: %d observation values for %d envs of %d", len(obs), n, d)
	}
	r.obs = append(r.obs[:0], obs...)
	r.slots = make([]envSlot, n)
	for i := range r.slots {
		r.slots[i].acc = NewNStepAccumulator(r.cfg.NStep, r.cfg.Gamma)
	}
	r.actions, r.explore, r.greedy = make([]int32, n), make([]bool, n), make([]int32, n)
	r.placeEnvs()
	return nil
}

// placeEnvs gives each env its rung of the ε ladder: env i of the runner on
// rung ladderIndex of ladderCount is rung ladderIndex·N+i of ladderCount·N,
// so a cluster's envs spread over the whole ladder as its runners did
// (every runner node with the same envs_per_runner).
func (r *runner) placeEnvs() {
	n := len(r.slots)
	for i := range r.slots {
		r.slots[i].epsEnd = LadderEpsilon(r.cfg.EpsilonEnd, r.cfg.EpsilonLadder, r.ladderIndex*n+i, r.ladderCount*n)
	}
}

// closeEnvs closes the vector (an external env's process or connection).
func (r *runner) closeEnvs() {
	if r.vec == nil {
		return
	}
	if err := r.vec.Close(); err != nil {
		r.log.Warn("env close", "err", err)
	}
	r.vec = nil
}

// stepEnvs takes one step of every env: ε-greedy actions (one batched
// forward pass for the greedy ones), one step of the vector, and per env
// its n-step transitions and, where an episode ended, its report to the
// stats. It counts N env steps.
func (r *runner) stepEnvs(ctx actor.Context) error {
	n, d := len(r.slots), r.obsSize
	frac := r.decay()
	acting := r.version() != (wire.Version{})
	anyGreedy := false
	for i := range r.slots {
		s := &r.slots[i]
		eps := r.epsilonTo(s.epsEnd, frac)
		s.maxEps = max(s.maxEps, eps)
		r.explore[i] = !acting || r.rng.Float64() < eps
		if r.explore[i] {
			r.actions[i] = int32(r.rng.IntN(r.spec.Net.Outputs))
		} else {
			anyGreedy = true
		}
	}
	if anyGreedy {
		r.policy.GreedyBatch(r.obs, n, r.greedy)
		for i, g := range r.greedy {
			if !r.explore[i] {
				r.actions[i] = g
			}
		}
	}
	st, err := r.vec.Step(r.actions)
	if err != nil {
		return fmt.Errorf("env step: %w", err)
	}
	if err := checkVecStep(st, n, d); err != nil {
		return err
	}
	r.steps += uint64(n)
	for i := range r.slots {
		s := &r.slots[i]
		next, done := st.Obs[i*d:(i+1)*d], st.Done(i)
		if done {
			next = st.Final[i*d : (i+1)*d]
		}
		reward := st.Rewards[i]
		s.ret += reward
		s.length++
		s.acc.Add(r.obs[i*d:(i+1)*d], int(r.actions[i]), reward, next, st.Terminated[i], st.Truncated[i], r.sink)
		if done {
			r.episodeEnd(ctx, s, st.Terminated[i], st.Truncated[i])
		}
	}
	copy(r.obs, st.Obs)
	return nil
}

// checkVecStep refuses a step whose slices do not cover the vector: a
// broken external env fails the runner with a message instead of a panic
// on an index.
func checkVecStep(st *envs.VecStep, n, d int) error {
	if st == nil {
		return errors.New("env step: no result")
	}
	if len(st.Obs) != n*d || len(st.Final) != n*d || len(st.Rewards) != n || len(st.Terminated) != n || len(st.Truncated) != n {
		return fmt.Errorf("env step: %d observation values, %d final, %d rewards, %d terminated, %d truncated for %d envs of %d",
			len(st.Obs), len(st.Final), len(st.Rewards), len(st.Terminated), len(st.Truncated), n, d)
	}
	return nil
}

// episodeEnd reports an env's finished episode to the stats and starts its
// books afresh (the VecEnv has already reset the env itself).
func (r *runner) episodeEnd(ctx actor.Context, s *envSlot, terminated, truncated bool) {
	if stats := r.dir.Stats(); stats != nil {
		ctx.Send(stats, &messages.EpisodeStats{
			Runner: r.spec.Name, Return: s.ret, Length: s.length, MaxEpsilon: s.maxEps,
			WeightsVersion: r.version().Version, Truncated: truncated && !terminated, RunnerEnvSteps: r.steps,
		})
	}
	r.episodes++
	r.metrics.localEpisode(s.ret, s.maxEps)
	s.ret, s.length, s.maxEps = 0, 0, 0
}
