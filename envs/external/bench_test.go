package external

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/messages/envpb"
	"google.golang.org/protobuf/proto"
)

// BenchmarkPythonLoop is the Python CartPole's own step rate in a plain
// Python loop: the baseline of BenchmarkBridge (metric steps/s).
func BenchmarkPythonLoop(b *testing.B) {
	b.ReportMetric(pythonRate(b, "testdata/loop_bench.py", "300000"), "steps/s")
}

// pythonRate runs a Python benchmark script b.N times and returns the rate
// it printed last (env steps/s).
func pythonRate(b *testing.B, file string, args ...string) float64 {
	argv, err := splitCommand(script(b, file, args...))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var rate float64
	for range b.N {
		out, err := exec.Command(argv[0], argv[1:]...).Output()
		if err != nil {
			b.Fatal(err)
		}
		if rate, err = strconv.ParseFloat(strings.TrimSpace(string(out)), 64); err != nil {
			b.Fatal(err)
		}
	}
	return rate
}

// BenchmarkAsyncVectorEnv is the comparison for BenchmarkBridge: the same
// Python CartPole stepped the way Gymnasium's AsyncVectorEnv steps envs,
// one process per env and a multiprocessing Pipe to each
// (testdata/mp_bench.py). One op is one run of 20000 env steps; the metric
// is env steps/s, as BenchmarkBridge's.
func BenchmarkAsyncVectorEnv(b *testing.B) {
	const envSteps = 20000
	for _, n := range []int{1, 8, 16} {
		b.Run(fmt.Sprintf("envs=%d", n), func(b *testing.B) {
			b.ReportMetric(pythonRate(b, "testdata/mp_bench.py", strconv.Itoa(n), strconv.Itoa(envSteps/n)), "steps/s")
		})
	}
}

// BenchmarkBridge steps the Python CartPole through the subprocess
// transport: one op is one VecEnv.Step of the whole vector; steps/s counts
// env steps.
func BenchmarkBridge(b *testing.B) {
	for _, workers := range []int{1, 2} {
		for _, perWorker := range []int{1, 8, 16, 64} {
			b.Run(fmt.Sprintf("workers=%d/envs_per_worker=%d", workers, perWorker), func(b *testing.B) {
				n := workers * perWorker
				v, err := Start(context.Background(), Options{Command: script(b, cartpolePy), Envs: n, Workers: workers, Timeout: 30 * time.Second})
				if err != nil {
					b.Fatal(err)
				}
				defer v.Close()
				seeds := make([]int64, n)
				for i := range seeds {
					seeds[i] = int64(i)
				}
				if _, err := v.Reset(seeds); err != nil {
					b.Fatal(err)
				}
				actions := make([]int32, n)
				b.ResetTimer()
				start := time.Now()
				for i := range b.N {
					for j := range actions {
						actions[j] = int32((i + j) & 1)
					}
					if _, err := v.Step(actions); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "steps/s")
			})
		}
	}
}

// BenchmarkStepReply is the client's side of one step reply of 16
// CartPole envs, one ending its episode: decoded by the protobuf module
// into a message, as replies other than a step's are, or read in place
// (parseStepReply), as a step's is; then checked and unpacked (stepInto).
func BenchmarkStepReply(b *testing.B) {
	const n = 16
	l := layout{obsSize: 4, elem: 4}
	term := make([]bool, n)
	term[3] = true
	r := &envpb.StepResult{Observations: floats(make([]float32, 4*n)...), Rewards: make([]float64, n),
		Terminated: term, Truncated: make([]bool, n), FinalObservations: floats(1, 2, 3, 4)}
	data, err := proto.Marshal(&envpb.Reply{Kind: &envpb.Reply_StepResult{StepResult: r}})
	if err != nil {
		b.Fatal(err)
	}
	obs, final := make([]float32, 4*n), make([]float32, 4*n)
	rewards, te, tr := make([]float64, n), make([]bool, n), make([]bool, n)
	b.Run("protobuf", func(b *testing.B) {
		b.ReportAllocs()
		var reply envpb.Reply
		var scratch []byte
		for range b.N {
			if err := unmarshalReply(data, &reply); err != nil {
				b.Fatal(err)
			}
			var v stepView
			v, scratch = viewOf(reply.GetStepResult(), scratch)
			if err := l.stepInto(v, n, obs, rewards, te, tr, final); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("in_place", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			v, ok := parseStepReply(data)
			if !ok {
				b.Fatal("not read in place")
			}
			if err := l.stepInto(v, n, obs, rewards, te, tr, final); err != nil {
				b.Fatal(err)
			}
		}
	})
}
