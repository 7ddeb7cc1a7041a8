package external

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/qfleet/qfleet/messages/envpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// stepView is a StepResult's fields as packed bytes: little-endian float64
// rewards and one 0/1 byte a flag, as proto3 packs them. It reads a step
// reply where it lies in the frame buffer, without building a message: the
// reply is the hot path of a fast env, and decoding it into an
// envpb.StepResult allocated its fields every step, enough garbage to run
// the collector, whose work then competed for the CPUs the spinning reader
// and the env process want.
type stepView struct {
	obs, rewards, term, trunc, final []byte
}

// parseStepReply reads b as a Reply holding a StepResult in the encoding
// every protobuf library writes (each field once, repeated fields packed,
// bools one byte). ok is false for anything else — another kind of reply,
// a field twice, an unknown field, bytes that do not parse — which the
// caller then decodes with the protobuf module, whose answer is the
// reference.
func parseStepReply(b []byte) (v stepView, ok bool) {
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 || num != 3 || typ != protowire.BytesType {
		return v, false
	}
	inner, m := protowire.ConsumeBytes(b[n:])
	if m < 0 || n+m != len(b) {
		return v, false
	}
	var seen [6]bool
	for len(inner) > 0 {
		num, typ, n := protowire.ConsumeTag(inner)
		if n < 0 || num < 1 || num > 5 || typ != protowire.BytesType || seen[num] {
			return v, false
		}
		seen[num] = true
		val, m := protowire.ConsumeBytes(inner[n:])
		if m < 0 {
			return v, false
		}
		inner = inner[n+m:]
		switch num {
		case 1:
			v.obs = val
		case 2:
			if len(val)%8 != 0 {
				return v, false
			}
			v.rewards = val
		case 3, 4:
			for _, c := range val {
				if c > 1 {
					return v, false // a bool as a longer varint: left to protobuf
				}
			}
			if num == 3 {
				v.term = val
			} else {
				v.trunc = val
			}
		case 5:
			v.final = val
		}
	}
	return v, true
}

// viewOf is r as a stepView, its repeated fields packed into scratch
// (grown as needed and returned).
func viewOf(r *envpb.StepResult, scratch []byte) (stepView, []byte) {
	scratch = scratch[:0]
	for _, x := range r.GetRewards() {
		scratch = binary.LittleEndian.AppendUint64(scratch, math.Float64bits(x))
	}
	k := len(scratch)
	for _, flags := range [][]bool{r.GetTerminated(), r.GetTruncated()} {
		for _, f := range flags {
			scratch = append(scratch, b2u(f))
		}
	}
	t := len(r.GetTerminated())
	return stepView{obs: r.GetObservations(), rewards: scratch[:k], term: scratch[k : k+t], trunc: scratch[k+t:],
		final: r.GetFinalObservations()}, scratch
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// recvStep reads the next reply, which must be a step's result.
func (w *worker) recvStep(deadline time.Time) (stepView, error) {
	if err := w.readReply(deadline); err != nil {
		return stepView{}, err
	}
	if v, ok := parseStepReply(w.rbuf); ok {
		return v, nil
	}
	if err := w.decode(); err != nil {
		return stepView{}, err
	}
	r := w.reply.GetStepResult()
	if r == nil {
		return stepView{}, fmt.Errorf("a %T reply to step", w.reply.GetKind())
	}
	var v stepView
	v, w.scratch = viewOf(r, w.scratch)
	return v, nil
}
