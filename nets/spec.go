package nets

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// ErrSpec is returned (wrapped) by Spec.Validate and by constructors given an invalid Spec.
var ErrSpec = errors.New("nets: invalid spec")

// ErrParamLen is returned (wrapped) when a parameter vector has the wrong length for its Spec.
var ErrParamLen = errors.New("nets: wrong parameter vector length")

// Spec is a Q-network: an optional convolutional torso (Conv, or the chain Convs), then dense
// layers Hidden[0] → ... (ReLU after each, or ReLU∘LayerNorm with LayerNorm), then a linear
// head of Outputs Q-values, optionally dueling (Dueling). The zero Conv, Convs, Dueling,
// LayerNorm and InputScale give the plain MLP Inputs → Hidden... → Outputs.
//
// Parameters live in one flat []float32. For each affine layer l in order it holds W_l
// row-major [in][out] followed by b_l [out], so layer l computes out_j = b_j + Σ_i in_i·W[i][j].
// Because b follows W directly, W_l and b_l together are also the row-major (in+1)×out matrix
// whose last row is the bias; the code relies on that. The layers are:
//
//   - with Conv (or Convs, one each in order): the convolution as an affine layer on one
//     K×K×C patch (in = K·K·C, out = Filters), see ConvSpec for the row order; the last
//     conv's output feature map, flattened channel-last, is the input of the first dense
//     layer (OH·OW·Filters values);
//   - the dense layers of Hidden;
//   - the head: out = Outputs, or with Dueling out = 1+Outputs, column 0 the value stream V
//     and columns 1..Outputs the advantage stream A (see dueling.go).
type Spec struct {
	// Inputs is the observation size. With Conv it must be Height·Width·Channels.
	Inputs int
	// Hidden are the dense layer widths, ReLU after each; may be empty (linear Q on the input
	// or on the conv features).
	Hidden []int
	// Outputs is the number of discrete actions.
	Outputs int
	// Conv, when non-nil, puts one convolutional layer (+ReLU) in front of Hidden: the
	// MinAtar network is Conv 16 filters 3×3, Hidden [128]. See MinAtarSpec.
	Conv *ConvSpec
	// Convs, when not empty, puts a chain of convolutional layers (+ReLU each) in front of
	// Hidden instead, each layer's input the previous one's output (Height, Width and
	// Channels must match its OutHeight, OutWidth and Filters): the Nature DQN's three
	// layers, see NatureSpec. A one-layer Convs is the same network, with the same
	// parameter vector, as Conv; set one or the other, not both.
	Convs []ConvSpec
	// InputScale multiplies every observation value before the first layer; 0 means 1 (no
	// scaling). The Nature DQN feeds 0..255 pixels scaled by 1/255. It is applied where the
	// input matrix is built (ConvSpec.im2col, or the MLP's input row), the same float32
	// product in the learner and in Forward, so the two agree. It is not a parameter.
	InputScale float32
	// Dueling splits the head into a state value V(s) and advantages A(s,a) and aggregates
	// them as Q(s,a) = V(s) + A(s,a) − mean_a' A(s,a') (Wang et al. 2016). It costs one extra
	// output column; the identifiability term keeps V and A from drifting against each other.
	Dueling bool
	// LayerNorm normalizes every hidden layer before its ReLU, ReLU(LN(a)) with
	// LN(a)_j = (a_j − mean(a))/√(var(a) + 1e-5) over the layer's units per sample (for the
	// conv: per sample and position, over the filters), as PQN does (Gallici et al. 2024): it
	// keeps TD learning stable as the weights grow. LN has no gain or bias of its own, so the
	// parameter vector is the same as without it; the head stays linear. See layernorm.go.
	LayerNorm bool
}

// MinAtarSpec is the network of the MinAtar paper (Young & Tian 2019) for a 10×10×channels
// observation: Conv2d(channels, 16, 3, stride 1, no padding) → ReLU → Linear(8·8·16, 128) →
// ReLU → Linear(128, actions).
func MinAtarSpec(channels, actions int) Spec {
	return Spec{
		Inputs:  10 * 10 * channels,
		Conv:    &ConvSpec{Height: 10, Width: 10, Channels: channels, Filters: 16, Kernel: 3},
		Hidden:  []int{128},
		Outputs: actions,
	}
}

// NatureSpec is the network of the Nature DQN (Mnih et al. 2015) for a height×width×channels
// observation of 0..255 pixels (84×84×4: four stacked grey frames): input scaled by 1/255 →
// Conv2d(channels, 32, 8, stride 4) → ReLU → Conv2d(32, 64, 4, stride 2) → ReLU →
// Conv2d(64, 64, 3, stride 1) → ReLU → Linear(7·7·64, 512) → ReLU → Linear(512, actions).
// Each layer's input size follows from the previous one (84 → 20 → 9 → 7); an observation
// too small for the kernels gives a Spec that Validate rejects.
func NatureSpec(height, width, channels, actions int) Spec {
	c1 := ConvSpec{Height: height, Width: width, Channels: channels, Filters: 32, Kernel: 8, Stride: 4}
	c2 := ConvSpec{Height: c1.OutHeight(), Width: c1.OutWidth(), Channels: 32, Filters: 64, Kernel: 4, Stride: 2}
	c3 := ConvSpec{Height: c2.OutHeight(), Width: c2.OutWidth(), Channels: 64, Filters: 64, Kernel: 3, Stride: 1}
	return Spec{
		Inputs:     height * width * channels,
		Convs:      []ConvSpec{c1, c2, c3},
		Hidden:     []int{512},
		Outputs:    actions,
		InputScale: 1.0 / 255,
	}
}

// ConvLayers returns the conv torso as a list (a copy): Conv as one layer, or Convs; nil
// for an MLP.
func (s Spec) ConvLayers() []ConvSpec {
	if s.Conv != nil {
		return []ConvSpec{*s.Conv}
	}
	return append([]ConvSpec(nil), s.Convs...)
}

// inputScale is InputScale with 0 read as 1.
func (s Spec) inputScale() float32 {
	if s.InputScale == 0 {
		return 1
	}
	return s.InputScale
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
	if sc := s.InputScale; !(sc >= 0) || math.IsInf(float64(sc), 0) {
		return fmt.Errorf("%w: InputScale must be finite and >= 0 (0 means 1), got %v", ErrSpec, sc)
	}
	return s.validateConvs()
}

// validateConvs checks the conv torso: each layer on its own, the first against Inputs,
// and each later one against its predecessor's output.
func (s Spec) validateConvs() error {
	if s.Conv != nil && len(s.Convs) > 0 {
		return fmt.Errorf("%w: set Conv (one layer) or Convs (a chain), not both", ErrSpec)
	}
	convs, name := s.Convs, func(i int) string { return fmt.Sprintf("Convs[%d]", i) }
	if s.Conv != nil {
		convs, name = []ConvSpec{*s.Conv}, func(int) string { return "Conv" }
	}
	for i := range convs {
		c, n := &convs[i], name(i)
		if err := c.validate(n); err != nil {
			return err
		}
		if i == 0 {
			if in := c.inputs(); s.Inputs != in {
				return fmt.Errorf("%w: Inputs must equal %s.Height·%s.Width·%s.Channels = %d, got %d",
					ErrSpec, n, n, n, in, s.Inputs)
			}
			continue
		}
		p, pn := &convs[i-1], name(i-1)
		switch {
		case c.Height != p.OutHeight() || c.Width != p.OutWidth():
			return fmt.Errorf("%w: %s is %d×%d but %s outputs %d×%d", ErrSpec, n, c.Height, c.Width,
				pn, p.OutHeight(), p.OutWidth())
		case c.Channels != p.Filters:
			return fmt.Errorf("%w: %s.Channels must equal %s.Filters = %d, got %d", ErrSpec, n, pn,
				p.Filters, c.Channels)
		}
	}
	return nil
}

// convs is the conv torso as a list sharing the Spec's storage (Conv as one layer), for
// construction-time code; nil for an MLP.
func (s Spec) convs() []ConvSpec {
	if s.Conv != nil {
		return []ConvSpec{*s.Conv}
	}
	return s.Convs
}

// NumParams is the length of the flat parameter vector: Σ_l (in_l+1)·out_l.
func (s Spec) NumParams() int {
	n := 0
	for _, l := range s.layers() {
		n += (l.in + 1) * l.out
	}
	return n
}

// headOutputs is the width of the last affine layer: Outputs, or 1+Outputs ([V, A]) when
// dueling.
func (s Spec) headOutputs() int {
	if s.Dueling {
		return 1 + s.Outputs
	}
	return s.Outputs
}

// maxWidth is the widest activation vector of one observation (inputs, conv features and
// the dueling head included), the size of Forward's scratch buffers.
func (s Spec) maxWidth() int {
	w := max(s.Inputs, s.headOutputs())
	for _, c := range s.convs() {
		w = max(w, c.features())
	}
	for _, h := range s.Hidden {
		w = max(w, h)
	}
	return w
}

// layerShape is one affine layer of the flat layout: W at [off, off+in·out), b right after.
type layerShape struct {
	in, out int
	off     int  // offset of W_l in the flat vector
	conv    bool // a convolution: applied to every K×K×C patch, in = K·K·C, out = Filters
}

func (l layerShape) w(p []float32) []float32 { return p[l.off : l.off+l.in*l.out] }
func (l layerShape) b(p []float32) []float32 {
	return p[l.off+l.in*l.out : l.off+(l.in+1)*l.out]
}

// layers lists the affine layers in order, the conv layers first. It allocates; call it at
// construction time only.
func (s Spec) layers() []layerShape {
	var ls []layerShape
	off := 0
	add := func(in, out int, conv bool) {
		ls = append(ls, layerShape{in: in, out: out, off: off, conv: conv})
		off += (in + 1) * out
	}
	in := s.Inputs
	for _, c := range s.convs() {
		add(c.patchSize(), c.Filters, true)
		in = c.features()
	}
	for _, h := range s.Hidden {
		add(in, h, false)
		in = h
	}
	add(in, s.headOutputs(), false)
	return ls
}

func (s Spec) clone() Spec {
	s.Hidden = append([]int(nil), s.Hidden...)
	if s.Conv != nil {
		c := *s.Conv
		s.Conv = &c
	}
	if s.Convs != nil {
		s.Convs = append([]ConvSpec(nil), s.Convs...)
	}
	return s
}

// InitParams draws a flat parameter vector like PyTorch's nn.Linear and nn.Conv2d defaults:
// W, b ~ U(−1/√fan_in, 1/√fan_in) (kaiming_uniform with a = √5), with fan_in the layer's
// input width, K·K·C for a convolution. The two dueling streams are separate nn.Linear
// layers of the same fan-in in PyTorch, so they get the same bound. It panics on an invalid
// Spec.
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

// String is the network as people read it: layer sizes from the input to
// the Q-values, and its kind ("4 → 64 → 64 → 2, MLP";
// "10×10×4 → 16@3×3 → 128 → 3, conv, dueling"; "4 → 64 → 64 → 2, MLP, layer_norm";
// "84×84×4 → 32@8×8/4 → 64@4×4/2 → 64@3×3 → 512 → 6, conv, input/255").
func (s Spec) String() string {
	var b strings.Builder
	kind := "MLP"
	if convs := s.convs(); len(convs) > 0 {
		b.WriteString(convs[0].String()) // "10×10×4 → 16@3×3": 16 filters of 3×3
		for _, c := range convs[1:] {
			b.WriteString(" → " + c.layerString())
		}
		kind = "conv"
	} else {
		fmt.Fprintf(&b, "%d", s.Inputs)
	}
	for _, h := range s.Hidden {
		fmt.Fprintf(&b, " → %d", h)
	}
	fmt.Fprintf(&b, " → %d, %s", s.Outputs, kind)
	if s.Dueling {
		b.WriteString(", dueling")
	}
	if s.LayerNorm {
		b.WriteString(", layer_norm")
	}
	if sc := s.InputScale; sc != 0 && sc != 1 {
		// 1/255 prints as "input/255", not as its float32 digits.
		if inv := math.Round(1 / float64(sc)); float32(1/inv) == sc {
			fmt.Fprintf(&b, ", input/%g", inv)
		} else {
			fmt.Fprintf(&b, ", input×%g", sc)
		}
	}
	return b.String()
}
