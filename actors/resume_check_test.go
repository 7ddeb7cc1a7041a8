package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/internal/testutil"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/nets"
)

// netFor is the network a run of env has under cfg.
func netFor(t *testing.T, env string, cfg Config) nets.Spec {
	t.Helper()
	e, err := envs.Make(env)
	if err != nil {
		t.Fatal(err)
	}
	return NetSpec(e.Spec(), cfg)
}

// checkpointOf is a checkpoint of net for env as the learner writes one:
// layers and all four parameter vectors.
func checkpointOf(env string, net nets.Spec) *messages.Checkpoint {
	p := nets.InitParams(net, rand.New(rand.NewPCG(1, 2)))
	zero := make([]float32, len(p))
	return &messages.Checkpoint{Env: env, Layers: specLayers(net), LayerNorm: net.LayerNorm, Online: p, Target: p, AdamM: zero, AdamV: zero, AdamStep: 3, LearnerUpdates: 7, Term: 1}
}

// snapshotOf is a replay snapshot of env with observations of obsSize
// values, holding a few rows.
func snapshotOf(env string, obsSize int) *messages.ReplaySnapshot {
	tb := NewTable(obsSize, 16)
	tb.Insert(batchOf(0, 5, obsSize))
	return tb.capture().encode(env)
}

// CheckResume refuses what the learner or the replay could not resume from
// (another env, another network, observations of another size, damaged
// arrays, only corrupt files) in one message that names the file and both
// shapes; it accepts what fits, nothing at all, and files of roles the node
// does not run.
func TestCheckResume(t *testing.T) {
	cfg := DefaultConfig()
	cart, acro := netFor(t, "CartPole-v1", cfg), netFor(t, "Acrobot-v1", cfg)
	narrow := cart
	narrow.Hidden = []int{32}
	dueling := cart
	dueling.Dueling = true
	normed := cart
	normed.LayerNorm = true
	badArrays := snapshotOf("CartPole-v1", 4)
	badArrays.Rewards = badArrays.Rewards[:4]
	both := []string{RoleLearner, RoleReplay}

	cases := []struct {
		name  string
		ckpt  *messages.Checkpoint
		snap  *messages.ReplaySnapshot
		roles []string
		want  []string // nil: fits
	}{
		{"nothing to resume", nil, nil, both, nil},
		{"fits", checkpointOf("CartPole-v1", cart), snapshotOf("CartPole-v1", 4), both, nil},
		{"checkpoint of another env", checkpointOf("Acrobot-v1", acro), nil, both,
			[]string{"checkpoint ", CheckpointFile, " is for Acrobot-v1 (6 → 64 → 64 → 3), this run is CartPole-v1 (4 → 64 → 64 → 2)"}},
		{"checkpoint of another network", checkpointOf("CartPole-v1", narrow), nil, both,
			[]string{" is for CartPole-v1 (4 → 32 → 2), this run is CartPole-v1 (4 → 64 → 64 → 2)"}},
		{"same layers, another head", checkpointOf("CartPole-v1", dueling), nil, both,
			[]string{"(4 → 64 → 64 → 2, 4675 parameters), this run is CartPole-v1 (4 → 64 → 64 → 2, MLP, 4610 parameters)"}},
		{"same parameters, LayerNorm", checkpointOf("CartPole-v1", normed), nil, both,
			[]string{"(4 → 64 → 64 → 2, layer_norm), this run is CartPole-v1 (4 → 64 → 64 → 2, no layer_norm)"}},
		{"snapshot of another env", nil, snapshotOf("Acrobot-v1", 6), both,
			[]string{"replay snapshot ", SnapshotFile, " is for Acrobot-v1 (observations of 6 values), this run is CartPole-v1 (4 values)"}},
		{"snapshot with damaged arrays", nil, badArrays, both, []string{SnapshotFile, "arrays of the wrong length"}},
		{"another env's files, roles that do not read them", checkpointOf("Acrobot-v1", acro), snapshotOf("Acrobot-v1", 6), []string{RoleRunner, RoleBroadcaster}, nil},
		{"another env's checkpoint on a replay node", checkpointOf("Acrobot-v1", acro), snapshotOf("CartPole-v1", 4), []string{RoleReplay}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if c.ckpt != nil {
				if err := WriteCheckpoint(dir, c.ckpt); err != nil {
					t.Fatal(err)
				}
			}
			if c.snap != nil {
				if err := WriteSnapshot(dir, c.snap); err != nil {
					t.Fatal(err)
				}
			}
			err := CheckResume(dir, "CartPole-v1", cart, c.roles)
			if c.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrResumeMisfit) {
				t.Fatalf("err %v, want an ErrResumeMisfit", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, dir) || strings.Contains(msg, "\n") || strings.Contains(msg, ErrResumeMisfit.Error()) {
				t.Errorf("message %q: want one line naming the file in %s, without the sentinel's words", msg, dir)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
		})
	}
}

// CheckResume reads what the learner reads: the newest good checkpoint.
// A corrupt newest one falls back to the one before; only corrupt ones are
// an error too (the learner could not start from them either).
func TestCheckResumeCorruptCheckpoints(t *testing.T) {
	cfg := DefaultConfig()
	cart := netFor(t, "CartPole-v1", cfg)
	dir := t.TempDir()
	for _, c := range []*messages.Checkpoint{checkpointOf("Acrobot-v1", netFor(t, "Acrobot-v1", cfg)), checkpointOf("CartPole-v1", cart)} {
		if err := WriteCheckpoint(dir, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := CheckResume(dir, "CartPole-v1", cart, AllRoles); err != nil {
		t.Fatalf("the newest checkpoint fits, refused: %v", err)
	}
	flip := func(name string) {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0xff
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	flip(CheckpointFile) // now the Acrobot one before it is what a resume reads
	err := CheckResume(dir, "CartPole-v1", cart, AllRoles)
	if !errors.Is(err, ErrResumeMisfit) || !strings.Contains(err.Error(), CheckpointFile+".1 is for Acrobot-v1") {
		t.Fatalf("corrupt newest, Acrobot before it: err %v, want a misfit naming %s.1", err, CheckpointFile)
	}
	flip(CheckpointFile + ".1")
	if err := CheckResume(dir, "CartPole-v1", cart, AllRoles); !errors.Is(err, ErrCorruptCheckpoint) {
		t.Fatalf("only corrupt checkpoints: err %v, want ErrCorruptCheckpoint", err)
	}
}

// A learner that cannot resume from its checkpoint stops at once instead of
// spending its restart budget (10 restarts over 30 s) on a failure that
// cannot heal; it is listed among the stopped roles, and asking it for a
// checkpoint fails at once instead of after the request's timeout.
func TestLearnerWithMisfitCheckpointStopsAtOnce(t *testing.T) {
	cfg := DefaultConfig()
	dir := t.TempDir()
	if err := WriteCheckpoint(dir, checkpointOf("Acrobot-v1", netFor(t, "Acrobot-v1", cfg))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	d, err := StartDev(NodeOptions{EnvID: "CartPole-v1", Seed: 1, Config: cfg, Stop: StopRule{TargetReturn: 1e9, MaxEnvSteps: 1e9},
		CheckpointDir: dir, Resume: true, Logger: testLogger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	var st RunStatus
	testutil.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if st = d.Metrics.Status(); len(st.StoppedRoles) == 0 {
			return fmt.Errorf("no role listed as stopped; restarts %v", st.Restarts)
		}
		return nil
	})
	took := time.Since(start)
	t.Logf("learner listed as stopped after %v: %v, restarts %v", took.Round(time.Millisecond), st.StoppedRoles, st.Restarts)
	if len(st.StoppedRoles) != 1 || st.StoppedRoles[0] != LearnerName || took > 2*time.Second {
		t.Fatalf("stopped roles %v after %v, want [%s] within 2 s", st.StoppedRoles, took, LearnerName)
	}
	if n := st.Restarts[LearnerName]; n != 0 {
		t.Errorf("the learner was restarted %d times for a checkpoint that cannot fit", n)
	}
	asked := time.Now()
	if _, err := d.SaveCheckpoint(10 * time.Second); err == nil || time.Since(asked) > 2*time.Second {
		t.Errorf("SaveCheckpoint of a stopped learner: err %v after %v, want an error within 2 s", err, time.Since(asked))
	}
	if c, err := ReadCheckpoint(dir); err != nil || c.GetEnv() != "Acrobot-v1" {
		t.Errorf("the checkpoint that did not fit was touched: %v, env %q", err, c.GetEnv())
	}
}
