package external

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages/envpb"
	"google.golang.org/protobuf/proto"
)

// ProtocolVersion is the env protocol version this package speaks: the
// Hello it sends and the Handshake it accepts carry it.
const ProtocolVersion = 1

const (
	// handshakeMaxFrame bounds the frames read before the spec says how
	// large a reply can be: a handshake is a few hundred bytes.
	handshakeMaxFrame = 1 << 20
	// maxObsValues bounds one observation (16 M values: far beyond any
	// pixel env), so a hostile spec cannot make the frame limit huge.
	maxObsValues = 1 << 24
	// maxEnvs bounds a session's vector.
	maxEnvs = 1 << 16
	// maxActions bounds a discrete action space.
	maxActions = 1 << 20
)

// writeFrame writes m as one frame: its length as 4 little-endian bytes,
// then the message. buf is reused scratch space; the grown one is returned.
func writeFrame(w io.Writer, buf []byte, m proto.Message) ([]byte, error) {
	buf = append(buf[:0], 0, 0, 0, 0)
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return buf, err
	}
	if len(buf)-4 > math.MaxUint32 {
		return buf, fmt.Errorf("a frame of %d bytes does not fit the 4-byte length", len(buf)-4)
	}
	binary.LittleEndian.PutUint32(buf, uint32(len(buf)-4))
	_, err = w.Write(buf)
	return buf, err
}

// errFrameTooLarge is wrapped by readFrame's refusal of an oversized length.
var errFrameTooLarge = errors.New("frame too large")

// readFrame reads one frame's message into buf (grown as needed). A length
// over limit is refused before anything is allocated for it: the peer may
// be hostile or broken, and 4 GB must not become an allocation.
func readFrame(r io.Reader, buf []byte, limit int) ([]byte, error) {
	// The header is read into buf too: an array of its own would escape
	// to the heap through the Reader, an allocation a frame.
	if cap(buf) < 4 {
		buf = make([]byte, 4, 512)
	}
	if _, err := io.ReadFull(r, buf[:4]); err != nil {
		return buf, err
	}
	n := binary.LittleEndian.Uint32(buf[:4])
	if uint64(n) > uint64(limit) {
		return buf, fmt.Errorf("%w: the peer announced %d bytes, the limit is %d", errFrameTooLarge, n, limit)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return buf, err
	}
	return buf, nil
}

// dtypes maps the protocol's dtypes to the Spec's.
var dtypes = map[envpb.DType]envs.ObsDType{
	envpb.DType_DTYPE_FLOAT32: envs.Float32,
	envpb.DType_DTYPE_UINT8:   envs.Uint8,
	envpb.DType_DTYPE_BINARY:  envs.Binary,
}

// specOf checks a handshake and returns the spec it describes and the
// number of envs it serves; want > 0 is the number the client asked for.
func specOf(h *envpb.Handshake, want int) (envs.Spec, int, error) {
	var s envs.Spec
	if h.GetProtocolVersion() != ProtocolVersion {
		return s, 0, fmt.Errorf("the env speaks protocol version %d, this client %d", h.GetProtocolVersion(), ProtocolVersion)
	}
	ps := h.GetSpec()
	if ps == nil {
		return s, 0, errors.New("the handshake has no spec")
	}
	n := int(h.GetNumEnvs())
	switch {
	case n < 1 || n > maxEnvs:
		return s, 0, fmt.Errorf("the handshake serves %d envs, want 1..%d", n, maxEnvs)
	case want > 0 && n != want:
		return s, 0, fmt.Errorf("the handshake serves %d envs, %d were asked for", n, want)
	}
	size := 1
	for _, d := range ps.GetObsShape() {
		if d < 1 || uint64(size)*uint64(d) > maxObsValues {
			return s, 0, fmt.Errorf("observation shape %v: want positive sizes, at most %d values", ps.GetObsShape(), maxObsValues)
		}
		size *= int(d)
		s.ObsShape = append(s.ObsShape, int(d))
	}
	if len(s.ObsShape) == 0 {
		return s, 0, errors.New("the spec has no observation shape")
	}
	dt, ok := dtypes[ps.GetObsDtype()]
	if !ok {
		return s, 0, fmt.Errorf("observation dtype %v: want float32, uint8 or binary", ps.GetObsDtype())
	}
	if ps.GetNumActions() < 1 || ps.GetNumActions() > maxActions {
		return s, 0, fmt.Errorf("%d actions: want 1..%d", ps.GetNumActions(), maxActions)
	}
	s.ID, s.ObsDType, s.NumActions = ps.GetId(), dt, int(ps.GetNumActions())
	s.MaxEpisodeSteps = int(ps.GetMaxEpisodeSteps())
	// An env without a threshold is never solved: a run's target return
	// then comes from its config, or the run stops on its other limits.
	s.RewardThreshold = math.Inf(1)
	if ps.RewardThreshold != nil {
		s.RewardThreshold = ps.GetRewardThreshold()
		if math.IsNaN(s.RewardThreshold) {
			return s, 0, errors.New("the reward threshold is NaN")
		}
	}
	return s, n, nil
}

// layout is how one session's observations are packed.
type layout struct {
	dtype   envs.ObsDType
	obsSize int // values in one observation
	elem    int // bytes a value: 4 for float32, 1 for uint8 and binary
}

func layoutOf(s envs.Spec) layout {
	l := layout{dtype: s.ObsDType, obsSize: s.ObsSize(), elem: 1}
	if s.ObsDType == envs.Float32 {
		l.elem = 4
	}
	return l
}

// maxReply is the largest reply a session of n envs can send: every
// observation and final observation, the per-env fields, and slack for
// protobuf's tags and lengths and an error's traceback.
func (l layout) maxReply(n int) int {
	return 2*n*l.obsSize*l.elem + n*(8+1+1+8) + 1<<20
}

// decodeObs unpacks rows observations from b into dst (rows*obsSize
// values) and checks that they are finite and within the dtype.
func (l layout) decodeObs(dst []float32, b []byte, rows int, what string) error {
	if want := rows * l.obsSize * l.elem; len(b) != want {
		return fmt.Errorf("%s: %d bytes, want %d (%d envs × %d values × %d bytes)", what, len(b), want, rows, l.obsSize, l.elem)
	}
	dst = dst[:rows*l.obsSize]
	if l.elem == 4 {
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
	} else {
		for i := range dst {
			dst[i] = float32(b[i])
		}
	}
	if !l.dtype.Holds(dst) {
		for i, v := range dst {
			if !l.dtype.Holds(dst[i : i+1]) {
				return fmt.Errorf("%s: value %v at env %d index %d is not a %v observation value", what, v, i/l.obsSize, i%l.obsSize, l.dtype)
			}
		}
	}
	return nil
}

// stepInto checks a step's result for n envs and writes it into rows
// [0, n) of obs, rewards, terminated, truncated and final, whose first env
// is the result's first.
func (l layout) stepInto(r stepView, n int, obs []float32, rewards []float64, term, trunc []bool, final []float32) error {
	if len(r.rewards) != 8*n || len(r.term) != n || len(r.trunc) != n {
		return fmt.Errorf("%d rewards, %d terminated and %d truncated flags for %d envs",
			len(r.rewards)/8, len(r.term), len(r.trunc), n)
	}
	if err := l.decodeObs(obs, r.obs, n, "observations"); err != nil {
		return err
	}
	done := 0
	for i := range n {
		v := math.Float64frombits(binary.LittleEndian.Uint64(r.rewards[8*i:]))
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("reward %v for env %d", v, i)
		}
		rewards[i] = v
		term[i], trunc[i] = r.term[i] != 0, r.trunc[i] != 0
		if term[i] || trunc[i] {
			done++
		}
	}
	if want := done * l.obsSize * l.elem; len(r.final) != want {
		return fmt.Errorf("final observations of %d bytes for %d ended episodes, want %d", len(r.final), done, want)
	}
	k, row := 0, l.obsSize*l.elem
	for i := range n {
		if term[i] || trunc[i] {
			if err := l.decodeObs(final[i*l.obsSize:], r.final[k*row:(k+1)*row], 1, "final observation"); err != nil {
				return fmt.Errorf("env %d: %w", i, err)
			}
			k++
		}
	}
	return nil
}

// replyError is the error an Error reply stands for.
func replyError(e *envpb.Error) error {
	what := "the env failed"
	switch e.GetCode() {
	case envpb.Error_CODE_BAD_REQUEST:
		what = "the env server refused a request"
	case envpb.Error_CODE_VERSION:
		what = fmt.Sprintf("the env server does not speak protocol version %d", ProtocolVersion)
	}
	return fmt.Errorf("%s: %s", what, e.GetMessage())
}
