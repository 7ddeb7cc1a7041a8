package main

import (
	"math/rand/v2"

	"github.com/qfleet/qfleet/envs"
)

// Corridor is an environment of this program's own, not one of qfleet's: a
// corridor of n cells, the agent starting in a random one left of the goal
// at the right end. Actions: 0 steps left, 1 steps right. Each step costs
// 0.01; reaching the goal pays 1 and ends the episode. The observation is
// the agent's cell, one-hot. The best return from cell s is 1 − 0.01·(n−2−s).
type Corridor struct {
	n, pos, steps int
	rng           *rand.Rand
}

// NewCorridor is a corridor of n ≥ 3 cells.
func NewCorridor(n int) *Corridor { return &Corridor{n: n, rng: rand.New(rand.NewPCG(0, 0))} }

// Spec implements envs.Env.
func (c *Corridor) Spec() envs.Spec {
	return envs.Spec{ID: CorridorID, ObsShape: []int{c.n}, NumActions: 2, MaxEpisodeSteps: 4 * c.n, RewardThreshold: 0.9}
}

// Reset implements envs.Env: the same seed gives the same start.
func (c *Corridor) Reset(seed int64) []float32 {
	c.rng = rand.New(rand.NewPCG(uint64(seed), 0x636f72726964))
	c.pos, c.steps = c.rng.IntN(c.n-1), 0
	return c.obs()
}

// Step implements envs.Env.
func (c *Corridor) Step(action int) (obs []float32, reward float64, terminated, truncated bool) {
	c.steps++
	if action == 1 {
		c.pos++
	} else if c.pos > 0 {
		c.pos--
	}
	reward = -0.01
	if c.pos == c.n-1 {
		reward, terminated = 1, true
	}
	return c.obs(), reward, terminated, !terminated && c.steps >= 4*c.n
}

func (c *Corridor) obs() []float32 {
	o := make([]float32, c.n)
	o[c.pos] = 1
	return o
}
