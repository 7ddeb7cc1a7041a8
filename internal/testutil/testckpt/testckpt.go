// Package testckpt writes learner checkpoints for tests: a network of the
// right shape with random weights, as a run of that env and config would
// leave.
package testckpt

import (
	"math/rand/v2"
	"testing"

	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/nets"
)

// WriteRandom writes a checkpoint of an untrained net for env
// under cfg, as the learner would.
func WriteRandom(t testing.TB, dir, id string, cfg actors.Config) {
	t.Helper()
	env, err := envs.Make(id)
	if err != nil {
		t.Fatal(err)
	}
	spec := actors.NetSpec(env.Spec(), cfg)
	layers := []uint32{uint32(spec.Inputs)}
	for _, h := range spec.Hidden {
		layers = append(layers, uint32(h))
	}
	layers = append(layers, uint32(spec.Outputs))
	p := nets.InitParams(spec, rand.New(rand.NewPCG(1, 2)))
	if err := actors.WriteCheckpoint(dir, &messages.Checkpoint{Env: id, Layers: layers, Online: p, Target: p, LearnerUpdates: 1, LayerNorm: spec.LayerNorm}); err != nil {
		t.Fatal(err)
	}
}
