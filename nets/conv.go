package nets

import "fmt"

// ConvSpec is the convolutional torso of a Spec: one 2-D convolution with Filters square
// kernels of side Kernel, stride 1 and no padding ("valid", like the MinAtar paper's
// nn.Conv2d(in_channels, 16, kernel_size=3, stride=1)), followed by ReLU. Its output feature
// map, OH×OW×Filters with OH = Height−Kernel+1 and OW = Width−Kernel+1, is flattened and fed
// to the dense layers.
//
// Everything is channel-last (HWC), like the observation:
//
//	observation x[y][x][c]     at index (y·Width + x)·Channels + c
//	weight      W[ky][kx][c][f] at row (ky·Kernel + kx)·Channels + c, column f of the
//	                            (Kernel²·Channels)×Filters matrix, then the bias b[f]
//	feature     z[oy][ox][f]   at index (oy·OW + ox)·Filters + f
//	z[oy][ox][f] = b[f] + Σ_{ky,kx,c} x[oy+ky][ox+kx][c]·W[ky][kx][c][f]
//
// PyTorch's layouts are channel-first (weight [f][c][ky][kx], flatten index (f·OH+oy)·OW+ox);
// a checkpoint converts by permuting the conv weight and the rows of the first dense layer.
// Channel-last makes one kernel row of a patch (Kernel·Channels values) contiguous in the
// observation, so the patch matrix is Kernel copies per output position, and makes the
// per-sample feature map contiguous in the conv's matrix product, so flattening it for the
// dense layer needs no permutation.
type ConvSpec struct {
	Height, Width int // observation height and width (MinAtar: 10×10)
	Channels      int // observation channels (MinAtar: 4–10 depending on the game)
	Filters       int // output channels (MinAtar: 16)
	Kernel        int // kernel side (MinAtar: 3); must fit in Height and Width
}

func (c *ConvSpec) validate() error {
	switch {
	case c.Height <= 0 || c.Width <= 0:
		return fmt.Errorf("%w: Conv.Height and Conv.Width must be > 0, got %d×%d", ErrSpec, c.Height, c.Width)
	case c.Channels <= 0:
		return fmt.Errorf("%w: Conv.Channels must be > 0, got %d", ErrSpec, c.Channels)
	case c.Filters <= 0:
		return fmt.Errorf("%w: Conv.Filters must be > 0, got %d", ErrSpec, c.Filters)
	case c.Kernel <= 0:
		return fmt.Errorf("%w: Conv.Kernel must be > 0, got %d", ErrSpec, c.Kernel)
	case c.Kernel > c.Height || c.Kernel > c.Width:
		return fmt.Errorf("%w: Conv.Kernel %d does not fit a %d×%d observation (no padding)",
			ErrSpec, c.Kernel, c.Height, c.Width)
	}
	return nil
}

// String prints the conv as "10×10×4 → 16@3×3" (fmt uses it inside a printed Spec too).
func (c *ConvSpec) String() string {
	if c == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%d×%d×%d → %d@%d×%d", c.Height, c.Width, c.Channels, c.Filters, c.Kernel, c.Kernel)
}

func (c *ConvSpec) inputs() int    { return c.Height * c.Width * c.Channels }
func (c *ConvSpec) outH() int      { return c.Height - c.Kernel + 1 }
func (c *ConvSpec) outW() int      { return c.Width - c.Kernel + 1 }
func (c *ConvSpec) positions() int { return c.outH() * c.outW() }
func (c *ConvSpec) patchSize() int { return c.Kernel * c.Kernel * c.Channels }
func (c *ConvSpec) features() int  { return c.positions() * c.Filters }

// im2col writes the augmented patch matrix of a batch of observations into dst: one row per
// (sample, oy, ox), in that order, holding x[oy+ky][ox+kx][c] for ky, kx, c (the weight's row
// order) and a trailing 1 for the bias row. dst is (batch·positions)×(patchSize+1).
//
// The observation is data, not a parameter, so this runs outside the gradient graph: the
// graph's input is the patch matrix and the convolution is one matrix product in it.
func (c *ConvSpec) im2col(dst, obs []float32, batch int) {
	kc := c.Kernel * c.Channels // one kernel row of a patch: contiguous in HWC
	cols := c.patchSize() + 1
	stride := c.Width * c.Channels // one image row
	oh, ow := c.outH(), c.outW()
	r := 0
	for b := range batch {
		img := obs[b*c.inputs() : (b+1)*c.inputs()]
		for oy := range oh {
			for ox := range ow {
				row := dst[r*cols : (r+1)*cols]
				for ky := range c.Kernel {
					at := (oy+ky)*stride + ox*c.Channels
					copy(row[ky*kc:(ky+1)*kc], img[at:at+kc])
				}
				row[cols-1] = 1
				r++
			}
		}
	}
}
