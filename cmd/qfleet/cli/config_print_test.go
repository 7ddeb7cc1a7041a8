package cli

import (
	"flag"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/qfleet/qfleet"
	"github.com/qfleet/qfleet/actors"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/internal/testutil"
)

// effectiveOf resolves args as 'qfleet dev' would and returns the config a
// run with them uses.
func effectiveOf(t *testing.T, args ...string) qfleet.Config {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	tf := addTrainFlags(fs)
	addNodeFlags(fs) // as 'config print' does: the cluster settings too
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	tr, err := tf.resolve(fs, nil)
	if err != nil {
		t.Fatalf("resolve %v: %v", args, err)
	}
	return tr.Effective()
}

// TestConfigPrintRoundTrip: for every env, and with a config file that
// changes things, the printed config read back as --config gives the same
// effective config, every field equal.
func TestConfigPrintRoundTrip(t *testing.T) {
	dir := t.TempDir()
	custom := testutil.WriteFile(t, dir, "custom.yaml", "env: Acrobot-v1\nseed: 7\nhidden: [32, 16, 8]\nlearning_rate: 0.00123\n"+
		"target_return: -90.5\nprogress: 0\ncredit_timeout: 1500ms\nprioritized: true\nepsilon_ladder: 7\nsummary: s.json\n"+
		"replay_snapshot_every: 5s\njoin: 10.1.2.3:7946\nroles: runner\ntrial_slots: 3\n")
	var cases [][]string
	for _, id := range envs.IDs() {
		cases = append(cases, []string{"--env", id})
	}
	cases = append(cases, []string{"--config", custom}, []string{"--config", custom, "--env", "MountainCar-v0"})
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, stdout, stderr := runQfleet(t, append([]string{"config", "print"}, args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			printed := testutil.WriteFile(t, t.TempDir(), "printed.yaml", stdout)
			want := effectiveOf(t, args...)
			got := effectiveOf(t, "--config", printed)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("read back:\n%+v\nwant:\n%+v\nprinted:\n%s", got, want, stdout)
			}
			// Every key is there, with a comment.
			lines := strings.Split(stdout, "\n")
			for _, key := range testutil.YAMLKeys(reflect.TypeFor[qfleet.Config]()) {
				i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, key+": ") })
				if i < 0 {
					t.Errorf("no line for %s:\n%s", key, stdout)
				} else if !strings.Contains(lines[i], " # ") {
					t.Errorf("%s has no comment: %q", key, lines[i])
				}
			}
		})
	}

	// The env's defaults, not CartPole's: Acrobot explores for longer.
	_, stdout, _ := runQfleet(t, "config", "print", "--env", "Acrobot-v1")
	acro := actors.DefaultConfigFor("Acrobot-v1")
	for _, want := range []string{"env: Acrobot-v1 ", fmt.Sprintf("epsilon_decay_steps: %d ", acro.EpsilonDecaySteps),
		"target_return: -100 ", "hidden: [64, 64] ", "credit_timeout: 3s ", "\n# Learning rule\n", "\n# Exploration\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("config print --env Acrobot-v1 lacks %q:\n%s", want, stdout)
		}
	}
}

// TestConfigPrintInvalid: a value that breaks a rule is refused through the
// command with exit 2 and one line naming the field and the rule.
func TestConfigPrintInvalid(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		yaml string
		want []string
	}{
		{"batch_size: 0\n", []string{"batch_size = 0", "allowed 1..65536"}},
		{"gamma: 1.5\n", []string{"gamma = 1.5", "allowed 0..1"}},
		{"hidden: [64, 0]\n", []string{"hidden = [64 0]", "allowed 1..16 layers of width 1..65536"}},
		{"replay_capacity: 500\nmin_replay_size: 1000\n", []string{"min_replay_size = 1000", "must be <= replay_capacity (500)"}},
		{"send_batch: 64\ncredit_window: 32\n", []string{"credit_window = 32", "must be >= send_batch (64)"}},
		{"target_tau: 0\ntarget_update_period: 0\n", []string{"target_update_period = 0", "must be > 0 when target_tau is 0"}},
		{"runners: 0\n", []string{"runners = 0", "allowed 1..1024"}},
		// A typo of a few zeros is one line naming the key, not a crash.
		{"replay_capacity: 1000000000000\n", []string{"replay_capacity = 1000000000000", "allowed 1..1000000000"}},
		{"hidden: [100000, 100000]\n", []string{"hidden = [100000 100000]", "width 1..65536"}},
		{"runners: 100000\n", []string{"runners = 100000", "allowed 1..1024"}},
		{"n_step: 100000\n", []string{"n_step = 100000", "allowed 1..1000"}},
		{"weights_chunk_bytes: 10000000\n", []string{"weights_chunk_bytes = 10000000", "allowed 1024..2093056"}},
		{"credit_timeout: -1s\n", []string{"credit_timeout = -1s", "allowed 1ms..1h0m0s"}},
		{"learning_rate: .nan\n", []string{"learning_rate = NaN", "allowed 1e-12..1"}},
		{"progress: soon\n", []string{"progress", "soon", "not a duration"}},
		{"max_time: -5m\n", []string{"max_time", "-5m", "not a duration >= 0"}},
		{"batch_size: 51.7\n", []string{"batch_size = 51.7", "must be a whole number"}},
		{"min_replay_size: 1000.5\n", []string{"min_replay_size = 1000.5", "must be a whole number"}},
		{"hidden: [64, 32.5]\n", []string{"hidden = 32.5", "must be a whole number"}},
		{"live: sometimes\n", []string{"live", "sometimes", "want auto, always, never"}},
		{"log_level: loud\n", []string{"loud", "want debug, info, warn or error"}},
		{"env: Pong-v9\n", []string{"Pong-v9"}},
		{"batch_sise: 32\n", []string{"batch_sise"}},
	}
	for i, c := range cases {
		t.Run(strings.TrimSpace(c.yaml), func(t *testing.T) {
			path := testutil.WriteFile(t, dir, fmt.Sprintf("bad-%d.yaml", i), c.yaml)
			code, stdout, stderr := runQfleet(t, "config", "print", "--config", path)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if stdout != "" {
				t.Errorf("printed a config for an invalid file:\n%s", stdout)
			}
			oneLine(t, stderr, c.want...)
		})
	}
}

func TestConfigUsage(t *testing.T) {
	for _, args := range [][]string{{"config"}, {"config", "show"}, {"config", "print", "stray"}, {"config", "print", "--bogus"}} {
		if code, _, _ := runQfleet(t, args...); code != 2 {
			t.Errorf("qfleet %v: exit %d, want 2", args, code)
		}
	}
	for _, args := range [][]string{{"config", "--help"}, {"config", "print", "--help"}, {"help", "config"}} {
		code, stdout, stderr := runQfleet(t, args...)
		if code != 0 || !strings.Contains(stdout+stderr, "Usage: qfleet config print") {
			t.Errorf("qfleet %v: exit %d, want 0 and the usage:\n%s%s", args, code, stdout, stderr)
		}
	}
}

// Every flag of 'qfleet dev' and 'qfleet node' has its config key (the flag's
// name with _ for -), except the ones that name the config or act on one
// run only; a key set in the file reaches the flag, and the command line
// overrides it.
func TestConfigCoversEveryFlag(t *testing.T) {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	addTrainFlags(fs)
	addNodeFlags(fs)
	keys := map[string]bool{}
	for _, k := range testutil.YAMLKeys(reflect.TypeFor[qfleet.Config]()) {
		keys[k] = true
	}
	notInFile := map[string]bool{"config": true, "resume": true} // the file itself; an action on one run
	fs.VisitAll(func(f *flag.Flag) {
		if !notInFile[f.Name] && !keys[strings.ReplaceAll(f.Name, "-", "_")] {
			t.Errorf("flag --%s has no config key %s", f.Name, strings.ReplaceAll(f.Name, "-", "_"))
		}
	})

	dir := t.TempDir()
	path := testutil.WriteFile(t, dir, "node.yaml", "run_dir: "+dir+"/from-file\ncheckpoint_every: 3s\njoin: 10.0.0.1:7946\ntrial_slots: 2\ninsecure: true\nname: b1\n")
	fs = flag.NewFlagSet("", flag.ContinueOnError)
	tf := addTrainFlags(fs)
	nf := addNodeFlags(fs)
	if err := fs.Parse([]string{"--config", path, "--name", "b2"}); err != nil {
		t.Fatal(err)
	}
	tr, err := tf.resolve(fs, nil)
	if err != nil {
		t.Fatal(err)
	}
	// checkpoint_every turns checkpoints on: into the run directory's.
	if eff := tr.Effective(); eff.RunDir != dir+"/from-file" || eff.CheckpointEvery != "3s" || tr.CheckpointDir() != filepath.Join(dir, "from-file", qfleet.RunCheckpointsDir) {
		t.Errorf("run_dir %q, checkpoint_every %v (checkpoints in %q): want the file's", eff.RunDir, eff.CheckpointEvery, tr.CheckpointDir())
	}
	if *nf.cluster.join != "10.0.0.1:7946" || *nf.trialSlots != 2 || !*nf.cluster.insecure {
		t.Errorf("join %q, trial_slots %d, insecure %v: want the file's", *nf.cluster.join, *nf.trialSlots, *nf.cluster.insecure)
	}
	if *nf.cluster.name != "b2" {
		t.Errorf("name %q: the command line's b2 should override the file's b1", *nf.cluster.name)
	}
	// A bad value names its key.
	bad := testutil.WriteFile(t, dir, "bad.yaml", "trial_slots: many\n")
	if code, _, stderr := runQfleet(t, "node", "--config", bad); code != 2 || !strings.Contains(stderr, "trial_slots") {
		t.Errorf("trial_slots: many: exit %d, %s", code, stderr)
	}
	bad = testutil.WriteFile(t, dir, "bad2.yaml", "checkpoint_every: often\n")
	if code, _, stderr := runQfleet(t, "dev", "--config", bad); code != 2 || !strings.Contains(stderr, "checkpoint_every = \"often\"") {
		t.Errorf("checkpoint_every: often: exit %d, %s", code, stderr)
	}
}
