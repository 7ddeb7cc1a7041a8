package nets

import "fmt"

// ConvSpec is one layer of the convolutional torso of a Spec: a 2-D convolution with Filters
// square kernels of side Kernel, moved Stride cells at a time, no padding ("valid", like the
// MinAtar paper's nn.Conv2d(in_channels, 16, kernel_size=3, stride=1) and the Nature DQN's
// stride-4, -2 and -1 layers), followed by ReLU. Its output feature map is
// OH×OW×Filters with OH = ⌊(Height−Kernel)/Stride⌋+1 and OW = ⌊(Width−Kernel)/Stride⌋+1
// (PyTorch's floor: rows and columns a kernel step cannot reach are ignored). It is the
// input of the next conv layer or, for the last one, flattened for the dense layers.
//
// Everything is channel-last (HWC), like the observation (S = Stride):
//
//	observation x[y][x][c]     at index (y·Width + x)·Channels + c
//	weight      W[ky][kx][c][f] at row (ky·Kernel + kx)·Channels + c, column f of the
//	                            (Kernel²·Channels)×Filters matrix, then the bias b[f]
//	feature     z[oy][ox][f]   at index (oy·OW + ox)·Filters + f
//	z[oy][ox][f] = b[f] + Σ_{ky,kx,c} x[oy·S+ky][ox·S+kx][c]·W[ky][kx][c][f]
//
// PyTorch's layouts are channel-first (weight [f][c][ky][kx], flatten index (f·OH+oy)·OW+ox);
// a checkpoint converts by permuting each conv weight and the rows of the first dense layer.
// Channel-last makes one kernel row of a patch (Kernel·Channels values) contiguous in the
// observation, so the patch matrix is Kernel copies per output position, and makes the
// per-sample feature map contiguous in the conv's matrix product, so it already is the next
// layer's channel-last image and flattening it for the dense layer needs no permutation.
type ConvSpec struct {
	Height, Width int // input height and width (MinAtar: 10×10; Nature: 84×84, then 20×20, 9×9)
	Channels      int // input channels (MinAtar: 4–10 depending on the game; Nature: 4 frames)
	Filters       int // output channels (MinAtar: 16)
	Kernel        int // kernel side (MinAtar: 3); must fit in Height and Width
	// Stride is the step between kernel positions in both directions; 0 means 1, so a
	// ConvSpec written before strides existed keeps its meaning. The parameters do not
	// depend on it.
	Stride int
}

func (c *ConvSpec) validate(name string) error {
	switch {
	case c.Height <= 0 || c.Width <= 0:
		return fmt.Errorf("%w: %s.Height and %s.Width must be > 0, got %d×%d", ErrSpec, name, name, c.Height, c.Width)
	case c.Channels <= 0:
		return fmt.Errorf("%w: %s.Channels must be > 0, got %d", ErrSpec, name, c.Channels)
	case c.Filters <= 0:
		return fmt.Errorf("%w: %s.Filters must be > 0, got %d", ErrSpec, name, c.Filters)
	case c.Kernel <= 0:
		return fmt.Errorf("%w: %s.Kernel must be > 0, got %d", ErrSpec, name, c.Kernel)
	case c.Stride < 0:
		return fmt.Errorf("%w: %s.Stride must be >= 0 (0 means 1), got %d", ErrSpec, name, c.Stride)
	case c.Kernel > c.Height || c.Kernel > c.Width:
		return fmt.Errorf("%w: %s.Kernel %d does not fit a %d×%d input (no padding)",
			ErrSpec, name, c.Kernel, c.Height, c.Width)
	}
	return nil
}

// String prints the conv as "10×10×4 → 16@3×3", with the stride when it is not 1:
// "84×84×4 → 32@8×8/4" (fmt uses it inside a printed Spec too).
func (c *ConvSpec) String() string {
	if c == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%d×%d×%d → %s", c.Height, c.Width, c.Channels, c.layerString())
}

// layerString is the conv without its input: "16@3×3" or "32@8×8/4".
func (c *ConvSpec) layerString() string {
	if s := c.stride(); s != 1 {
		return fmt.Sprintf("%d@%d×%d/%d", c.Filters, c.Kernel, c.Kernel, s)
	}
	return fmt.Sprintf("%d@%d×%d", c.Filters, c.Kernel, c.Kernel)
}

// OutHeight and OutWidth are the output feature map's size, ⌊(in−Kernel)/Stride⌋+1.
func (c *ConvSpec) OutHeight() int { return (c.Height-c.Kernel)/c.stride() + 1 }
func (c *ConvSpec) OutWidth() int  { return (c.Width-c.Kernel)/c.stride() + 1 }

func (c *ConvSpec) stride() int    { return max(c.Stride, 1) }
func (c *ConvSpec) inputs() int    { return c.Height * c.Width * c.Channels }
func (c *ConvSpec) outH() int      { return c.OutHeight() }
func (c *ConvSpec) outW() int      { return c.OutWidth() }
func (c *ConvSpec) positions() int { return c.outH() * c.outW() }
func (c *ConvSpec) patchSize() int { return c.Kernel * c.Kernel * c.Channels }
func (c *ConvSpec) features() int  { return c.positions() * c.Filters }

// im2col writes the augmented patch matrix of a batch of images into dst: one row per
// (sample, oy, ox), in that order, holding scale·x[oy·S+ky][ox·S+kx][c] for ky, kx, c (the
// weight's row order) and a trailing 1 for the bias row. dst is
// (batch·positions)×(patchSize+1); src holds batch channel-last images of inputs() values.
//
// For the first conv layer src is the observation, which is data, not a parameter, so this
// runs outside the gradient graph; scale is Spec.InputScale there (1 elsewhere), applied here
// so that every path multiplies the same float32 values the same way. For a later layer src
// is the previous layer's output and this is patchesOp's forward.
func (c *ConvSpec) im2col(dst, src []float32, batch int, scale float32) {
	kc := c.Kernel * c.Channels // one kernel row of a patch: contiguous in HWC
	cols := c.patchSize() + 1
	rowStride := c.Width * c.Channels // one image row
	colStep := c.stride() * c.Channels
	oh, ow, s := c.outH(), c.outW(), c.stride()
	r := 0
	for b := range batch {
		img := src[b*c.inputs() : (b+1)*c.inputs()]
		for oy := range oh {
			for ox := range ow {
				row := dst[r*cols : (r+1)*cols]
				for ky := range c.Kernel {
					at := (oy*s+ky)*rowStride + ox*colStep
					if scale == 1 {
						copy(row[ky*kc:(ky+1)*kc], img[at:at+kc])
					} else {
						scaleTo(row[ky*kc:(ky+1)*kc], img[at:at+kc], scale)
					}
				}
				row[cols-1] = 1
				r++
			}
		}
	}
}

// col2im is im2col's adjoint for scale 1: it writes into dst (batch images) the sum, over
// every patch that contains a cell, of that cell's entry in the patch-matrix gradient dp,
// ignoring the ones column. With Stride < Kernel patches overlap and a cell collects up to
// ⌈K/S⌉² terms; cells no patch reaches get 0.
func (c *ConvSpec) col2im(dst, dp []float32, batch int) {
	clear(dst[:batch*c.inputs()])
	kc := c.Kernel * c.Channels
	cols := c.patchSize() + 1
	rowStride := c.Width * c.Channels
	colStep := c.stride() * c.Channels
	oh, ow, s := c.outH(), c.outW(), c.stride()
	r := 0
	for b := range batch {
		img := dst[b*c.inputs() : (b+1)*c.inputs()]
		for oy := range oh {
			for ox := range ow {
				row := dp[r*cols : (r+1)*cols]
				for ky := range c.Kernel {
					at := (oy*s+ky)*rowStride + ox*colStep
					addTo(img[at:at+kc], row[ky*kc:(ky+1)*kc])
				}
				r++
			}
		}
	}
}

// scaleTo sets dst[i] = scale·src[i]: eight at a time with AVX (Nature's first im2col scales
// each pixel (K/S)² = 4 times, and the scalar loop was 7% of an update), the same rounded
// product either way.
func scaleTo(dst, src []float32, scale float32) {
	src = src[:len(dst)]
	i := 0
	if haveKernel && len(dst) >= 8 {
		i = len(dst) &^ 7
		scale8(dst[:i], scale, src[:i])
	}
	for ; i < len(dst); i++ {
		dst[i] = src[i] * scale
	}
}

// addTo sets dst[i] += src[i]: the AVX2 axpy with a = 1, which rounds like a plain add
// (1·x is exact, so the fused multiply-add is one rounding of dst+src).
func addTo(dst, src []float32) { axpy(dst, 1, src) }
