package nets

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// ErrSpec is returned (wrapped) by Spec.Validate and by constructors given an invalid Spec.
var ErrSpec = errors.New("nets: invalid spec")

// ErrParamLen is returned (wrapped) when a parameter vector has the wrong length for its Spec.
var ErrParamLen = errors.New("nets: wrong parameter vector length")

// Spec is an MLP Q-network: Inputs → Hidden[0] → ... (ReLU) → Outputs (linear Q-values).
//
// Parameters live in one flat []float32. For each layer l in order it holds W_l row-major
// [in][out] followed by b_l [out], so layer l computes out_j = b_j + Σ_i in_i·W[i][j].
// Because b follows W directly, W_l and b_l together are also the row-major (in+1)×out matrix
// whose last row is the bias; the code relies on that.
type Spec struct {
	Inputs  int   // observation size
	Hidden  []int // hidden layer widths, ReLU after each; may be empty (linear Q)
	Outputs int   // number of discrete actions
}

// Validate reports the first rule the Spec breaks.
func (s Spec) Validate() error {
	if s.Inputs <= 0 {
		return fmt.Errorf("%w: Inputs must be > 0, got %d", ErrSpec, s.Inputs)
	}
	if s.Outputs <= 0 {
		return fmt.Errorf("%w: Outputs must be > 0, got %d", ErrSpec, s.Outputs)
	}
	for i, h := range s.Hidden {
		if h <= 0 {
			return fmt.Errorf("%w: Hidden[%d] must be > 0, got %d", ErrSpec, i, h)
		}
	}
	return nil
}

// NumParams is the length of the flat parameter vector: Σ_l (in_l+1)·out_l.
func (s Spec) NumParams() int {
	n := 0
	for _, l := range s.layers() {
		n += (l.in + 1) * l.out
	}
	return n
}

// MaxWidth is the widest layer (inputs included), the size of Forward's scratch buffers.
func (s Spec) maxWidth() int {
	w := max(s.Inputs, s.Outputs)
	for _, h := range s.Hidden {
		w = max(w, h)
	}
	return w
}

// layerShape is one affine layer of the flat layout: W at [off, off+in·out), b right after.
type layerShape struct {
	in, out int
	off     int // offset of W_l in the flat vector
}

func (l layerShape) w(p []float32) []float32 { return p[l.off : l.off+l.in*l.out] }
func (l layerShape) b(p []float32) []float32 {
	return p[l.off+l.in*l.out : l.off+(l.in+1)*l.out]
}

// layers lists the affine layers in order. It allocates; call it at construction time only.
func (s Spec) layers() []layerShape {
	dims := make([]int, 0, len(s.Hidden)+2)
	dims = append(dims, s.Inputs)
	dims = append(dims, s.Hidden...)
	dims = append(dims, s.Outputs)
	ls := make([]layerShape, len(dims)-1)
	off := 0
	for i := range ls {
		ls[i] = layerShape{in: dims[i], out: dims[i+1], off: off}
		off += (dims[i] + 1) * dims[i+1]
	}
	return ls
}

func (s Spec) clone() Spec {
	s.Hidden = append([]int(nil), s.Hidden...)
	return s
}

// InitParams draws a flat parameter vector like PyTorch's nn.Linear default:
// W, b ~ U(−1/√in, 1/√in) with in the layer's fan-in. It panics on an invalid Spec.
func InitParams(s Spec, rng *rand.Rand) []float32 {
	if err := s.Validate(); err != nil {
		panic(err)
	}
	p := make([]float32, s.NumParams())
	for _, l := range s.layers() {
		bound := 1 / math.Sqrt(float64(l.in))
		seg := p[l.off : l.off+(l.in+1)*l.out]
		for i := range seg {
			seg[i] = float32((2*rng.Float64() - 1) * bound)
		}
	}
	return p
}

func checkParamLen(s Spec, p []float32) error {
	if n := s.NumParams(); len(p) != n {
		return fmt.Errorf("%w: got %d, spec %v needs %d", ErrParamLen, len(p), s, n)
	}
	return nil
}
