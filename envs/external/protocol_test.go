package external

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/qfleet/qfleet/messages/envpb"
	"google.golang.org/protobuf/proto"
)

// frame is m as one protocol frame.
func frame(t testing.TB, m proto.Message) []byte {
	b, err := writeFrame(io.Discard, nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func cartpoleHandshake(version uint32, n uint32) *envpb.Reply {
	th := 475.0
	return &envpb.Reply{Kind: &envpb.Reply_Handshake{Handshake: &envpb.Handshake{ProtocolVersion: version, NumEnvs: n, Spec: &envpb.Spec{
		Id: "Fake-v0", ObsShape: []uint32{4}, ObsDtype: envpb.DType_DTYPE_FLOAT32, NumActions: 2, MaxEpisodeSteps: 10, RewardThreshold: &th}}}}
}

func shmHandshake() *envpb.Reply {
	r := cartpoleHandshake(ProtocolVersion, 1)
	r.GetHandshake().SharedMemory = true
	return r
}

func floats(vs ...float32) []byte {
	b := make([]byte, 0, 4*len(vs))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
	}
	return b
}

func resetReply(obs []byte) *envpb.Reply {
	return &envpb.Reply{Kind: &envpb.Reply_ResetResult{ResetResult: &envpb.ResetResult{Observations: obs}}}
}

func stepReply(r *envpb.StepResult) *envpb.Reply {
	return &envpb.Reply{Kind: &envpb.Reply_StepResult{StepResult: r}}
}

// fakeServer answers the i-th request with replies[i] (raw bytes); after
// the last it holds the connection open without a word until the test ends.
func fakeServer(t *testing.T, replies ...[]byte) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var buf []byte
		for _, r := range replies {
			if buf, err = readFrame(c, buf, 1<<20); err != nil {
				return
			}
			if r == nil {
				return // hang up
			}
			if _, err := c.Write(r); err != nil {
				return
			}
		}
		<-done
	}()
	return ln.Addr().String()
}

// Broken servers: every way a reply can be wrong is one clear error from
// Dial, Reset or Step, within the timeout.
func TestBrokenReplies(t *testing.T) {
	hs := frame(t, cartpoleHandshake(ProtocolVersion, 1))
	okReset := frame(t, resetReply(floats(0, 0, 0, 0)))
	nan := float32(math.NaN())
	huge := binary.LittleEndian.AppendUint32(nil, 0xffffffff)
	for _, c := range []struct {
		name    string
		replies [][]byte
		want    string
	}{
		{"version 2", [][]byte{frame(t, cartpoleHandshake(2, 1))}, "the env speaks protocol version 2, this client 1"},
		{"no spec", [][]byte{frame(t, &envpb.Reply{Kind: &envpb.Reply_Handshake{Handshake: &envpb.Handshake{ProtocolVersion: 1, NumEnvs: 1}}})}, "no spec"},
		{"other count", [][]byte{frame(t, cartpoleHandshake(1, 3))}, "serves 3 envs, 1 were asked for"},
		{"4 GB frame", [][]byte{huge}, "the peer announced 4294967295 bytes, the limit is 1048576"},
		{"not protobuf", [][]byte{{3, 0, 0, 0, 0xff, 0xff, 0xff}}, "not a protocol message"},
		{"hangs up", [][]byte{nil}, "handshake: EOF"},
		{"silent", [][]byte{}, "no reply within 300ms"},
		{"short reset", [][]byte{hs, frame(t, resetReply(floats(0, 0, 0)))}, "reset: observations: 12 bytes, want 16"},
		{"wrong kind", [][]byte{hs, hs}, "a *envpb.Reply_Handshake reply to reset"},
		{"reset NaN", [][]byte{hs, frame(t, resetReply(floats(0, nan, 0, 0)))}, "value NaN at env 0 index 1"},
		{"rewards", [][]byte{hs, okReset, frame(t, stepReply(&envpb.StepResult{Observations: floats(0, 0, 0, 0)}))}, "0 rewards, 0 terminated and 0 truncated flags for 1 envs"},
		{"reward Inf", [][]byte{hs, okReset, frame(t, stepReply(&envpb.StepResult{Observations: floats(0, 0, 0, 0),
			Rewards: []float64{math.Inf(1)}, Terminated: []bool{false}, Truncated: []bool{false}}))}, "reward +Inf for env 0"},
		{"no final", [][]byte{hs, okReset, frame(t, stepReply(&envpb.StepResult{Observations: floats(0, 0, 0, 0),
			Rewards: []float64{1}, Terminated: []bool{true}, Truncated: []bool{false}}))}, "final observations of 0 bytes for 1 ended episodes, want 16"},
		{"final NaN", [][]byte{hs, okReset, frame(t, stepReply(&envpb.StepResult{Observations: floats(0, 0, 0, 0),
			Rewards: []float64{1}, Terminated: []bool{false}, Truncated: []bool{true}, FinalObservations: floats(nan, 0, 0, 0)}))}, "env 0: final observation: value NaN"},
		{"shared memory not offered", [][]byte{frame(t, shmHandshake())}, "the server says it took shared memory, which was not offered"},
		{"error reply", [][]byte{hs, okReset, frame(t, &envpb.Reply{Kind: &envpb.Reply_Error{Error: &envpb.Error{Code: envpb.Error_CODE_BAD_REQUEST, Message: "no"}}})},
			"the env server refused a request: no"},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr := fakeServer(t, c.replies...)
			start := time.Now()
			v, err := Dial(context.Background(), addr, Options{Envs: 1, Timeout: 300 * time.Millisecond})
			if err == nil {
				defer v.Close()
				_, err = v.Reset([]int64{1})
				if err == nil {
					_, err = v.Step([]int32{1})
				}
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// A good fake session: the client's side of the protocol, byte for byte.
func TestFakeSession(t *testing.T) {
	hs := frame(t, cartpoleHandshake(ProtocolVersion, 2))
	addr := fakeServer(t, hs, frame(t, resetReply(floats(1, 2, 3, 4, 5, 6, 7, 8))),
		frame(t, stepReply(&envpb.StepResult{Observations: floats(0, 0, 0, 1, 0, 0, 0, 2), Rewards: []float64{1, -1},
			Terminated: []bool{false, true}, Truncated: []bool{false, false}, FinalObservations: floats(9, 9, 9, 9)})))
	v, err := Dial(context.Background(), addr, Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Len() != 2 || v.Spec().ID != "Fake-v0" || v.Spec().RewardThreshold != 475 || v.Spec().MaxEpisodeSteps != 10 {
		t.Fatalf("len %d spec %+v", v.Len(), v.Spec())
	}
	obs, err := v.Reset([]int64{1, 2})
	if err != nil || obs[7] != 8 {
		t.Fatalf("reset: %v %v", obs, err)
	}
	if _, err := v.Step([]int32{0, 2}); err == nil || !strings.Contains(err.Error(), "action 2 for env 1") {
		t.Fatalf("an action out of range: %v", err)
	}
	s, err := v.Step([]int32{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	if s.Obs[7] != 2 || s.Rewards[1] != -1 || !s.Done(1) || s.Done(0) || s.Final[4] != 9 || s.Final[0] != 0 {
		t.Fatalf("step: %+v", s)
	}
}

// FuzzReadReply feeds arbitrary bytes to the client's reading of replies:
// framing, protobuf and every check. It must return errors, never panic or
// allocate past the frame limit.
func FuzzReadReply(f *testing.F) {
	f.Add(frame(f, cartpoleHandshake(1, 2)))
	f.Add(frame(f, resetReply(floats(1, 2, 3, 4, 5, 6, 7, 8))))
	f.Add(frame(f, stepReply(&envpb.StepResult{Observations: floats(0, 0, 0, 1, 0, 0, 0, 2), Rewards: []float64{1, -1},
		Terminated: []bool{false, true}, Truncated: []bool{false, false}, FinalObservations: floats(9, 9, 9, 9)})))
	f.Add(binary.LittleEndian.AppendUint32(nil, 0xffffffff))
	f.Fuzz(func(t *testing.T, data []byte) {
		const n = 2
		l := layout{obsSize: 4, elem: 4}
		obs, final := make([]float32, n*4), make([]float32, n*4)
		rewards, term, trunc := make([]float64, n), make([]bool, n), make([]bool, n)
		r := bytes.NewReader(data)
		var buf []byte
		var reply envpb.Reply
		for {
			var err error
			buf, err = readFrame(r, buf, l.maxReply(n))
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errFrameTooLarge) {
					t.Fatalf("readFrame: %v", err)
				}
				return
			}
			if cap(buf) > l.maxReply(n) {
				t.Fatalf("a buffer of %d bytes past the limit", cap(buf))
			}
			fast, ok := parseStepReply(buf)
			if err := unmarshalReply(buf, &reply); err != nil {
				if ok {
					t.Fatalf("the step fast path read %x, which protobuf refuses: %v", buf, err)
				}
				continue
			}
			if ok {
				// The fast path must read what protobuf reads.
				want, _ := viewOf(reply.GetStepResult(), nil)
				if reply.GetStepResult() == nil || !sameView(fast, want) {
					t.Fatalf("the step fast path read %x as %+v, protobuf as %v", buf, fast, &reply)
				}
			}
			switch {
			case reply.GetHandshake() != nil:
				_, _, _ = specOf(reply.GetHandshake(), 0)
			case reply.GetResetResult() != nil:
				_ = l.decodeObs(obs, reply.GetResetResult().GetObservations(), n, "reset")
			case reply.GetStepResult() != nil:
				view, _ := viewOf(reply.GetStepResult(), nil)
				if l.stepInto(view, n, obs, rewards, term, trunc, final) == nil {
					for _, v := range obs {
						if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
							t.Fatalf("accepted a non-finite observation %v", v)
						}
					}
				}
			case reply.GetError() != nil:
				_ = replyError(reply.GetError())
			}
		}
	})
}

func sameView(a, b stepView) bool {
	return bytes.Equal(a.obs, b.obs) && bytes.Equal(a.rewards, b.rewards) && bytes.Equal(a.term, b.term) &&
		bytes.Equal(a.trunc, b.trunc) && bytes.Equal(a.final, b.final)
}

// The Python adapter encodes step replies by hand (its hot path): the
// bytes must be what its protobuf module would encode.
func TestPythonStepEncoding(t *testing.T) {
	const check = `
import struct, sys
sys.path.insert(0, sys.argv[1])
import numpy as np, qfleet_env as q, env_pb2 as pb
rng = np.random.default_rng(1)
for n, done in ((1, []), (3, [1]), (300, list(range(0, 300, 3)))):
    obs, fin = rng.random((n, 4)).astype("<f4"), rng.random((len(done), 4)).astype("<f4")
    rew, te, tr = list(rng.standard_normal(n)), bytearray(n), bytearray(n)
    for d in done:
        te[d] = 1
    if done:
        tr[done[-1]] = 1
    got = b"".join(q.encode_step(obs.tobytes(), struct.pack(f"<{n}d", *rew), bytes(te), bytes(tr), fin.tobytes()))
    want = pb.Reply(step_result=pb.StepResult(observations=obs.tobytes(), rewards=rew, terminated=list(map(bool, te)),
                                              truncated=list(map(bool, tr)), final_observations=fin.tobytes())).SerializeToString()
    assert got == want, (n, got[:32].hex(), want[:32].hex())
`
	dir, err := filepath.Abs("../../python")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(python(t), "-c", check, dir).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestNextBackoff: the CPUs found busy again soon after a backoff double
// it up to spinBackoffMax; found busy once after a long undisturbed spell,
// the backoff is the least again.
func TestNextBackoff(t *testing.T) {
	b, seq := 0, []int{}
	for range 8 {
		b = nextBackoff(b, 10)
		seq = append(seq, b)
	}
	want := []int{16, 32, 64, 128, 256, 512, 1000, 1000}
	if !slices.Equal(seq, want) {
		t.Fatalf("busy again and again: backoffs %v, want %v", seq, want)
	}
	if got := nextBackoff(1000, spinBackoffMax); got != spinBackoffMin {
		t.Fatalf("busy after %d undisturbed reads: backoff %d, want %d", spinBackoffMax, got, spinBackoffMin)
	}
	if got := nextBackoff(64, spinBackoffMax-1); got != 128 {
		t.Fatalf("busy within %d reads of the last backoff: %d, want 128", spinBackoffMax, got)
	}
}
