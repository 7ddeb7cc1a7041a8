// Package render draws observations into GIF frames ('qfleet eval
// --render'). The frames are drawn from the observation alone — what the
// agent sees — so that every env can be drawn the same way, whether or not
// it exposes its internal state. Standard library only: the drawing is a
// few filled shapes.
package render

import (
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"math"
	"os"
	"strings"

	"github.com/qfleet/qfleet/envs"
)

const (
	// MaxFrames caps the GIF: at 300×200 a frame is 60 kB in memory,
	// and a longer GIF is too long to watch anyway.
	MaxFrames  = 1000
	FrameDelay = 4  // hundredths of a second: 25 frames/s
	GridCell   = 20 // pixels per MinAtar grid cell
)

// Renderer draws one observation as a paletted frame.
type Renderer func(obs []float32) *image.Paletted

// Palette of the classic-control drawings (indices below).
var classicPalette = color.Palette{
	color.RGBA{255, 255, 255, 255}, // background
	color.RGBA{0, 0, 0, 255},       // track, ground curve, links
	color.RGBA{40, 40, 40, 255},    // cart
	color.RGBA{202, 152, 101, 255}, // pole (Gymnasium's colours)
	color.RGBA{129, 132, 203, 255}, // axle, joints
	color.RGBA{204, 204, 0, 255},   // goal: flag, target height
	color.RGBA{200, 0, 0, 255},     // MountainCar's car
}

const (
	cBackground uint8 = iota
	cInk
	cCart
	cPole
	cJoint
	cGoal
	cCar
)

// For picks the drawing for an env: MinAtar-like grids (10×10×C
// observations) by their shape, the classic-control envs by their id.
func For(sp envs.Spec) (Renderer, error) {
	if sh := sp.ObsShape; len(sh) == 3 && sp.ObsDType == envs.Uint8 {
		return func(obs []float32) *image.Paletted { return renderGray(obs, sh[0], sh[1], sh[2]) }, nil
	}
	if sh := sp.ObsShape; len(sh) == 3 {
		pal := gridPalette(sh[2])
		return func(obs []float32) *image.Paletted { return renderGrid(obs, sh[0], sh[1], sh[2], pal) }, nil
	}
	switch sp.ID {
	case "CartPole-v1":
		return renderCartPole, nil
	case "Acrobot-v1":
		return renderAcrobot, nil
	case "MountainCar-v0":
		return renderMountainCar, nil
	}
	return nil, fmt.Errorf("--render: no drawing for %s (CartPole-v1, Acrobot-v1, MountainCar-v0 and MinAtar games have one)", sp.ID)
}

// renderCartPole draws the cart at x on a track spanning ±2.4 (where the
// episode ends) and the pole, 1 m long as in Gymnasium (2 × half-length
// 0.5), at angle θ from upright.
func renderCartPole(obs []float32) *image.Paletted {
	const w, h = 300, 200
	img := image.NewPaletted(image.Rect(0, 0, w, h), classicPalette)
	scale := float64(w) / (2 * 2.4)
	trackY := 150.0
	cartW, cartH := 25.0, 15.0
	x, theta := float64(obs[0]), float64(obs[2])
	cx := x*scale + w/2
	fillRect(img, 0, trackY, w, trackY+1, cInk)
	fillRect(img, cx-cartW/2, trackY-cartH, cx+cartW/2, trackY, cCart)
	axleY := trackY - cartH*3/4
	poleLen := 1.0 * scale
	thickLine(img, cx, axleY, cx+poleLen*math.Sin(theta), axleY-poleLen*math.Cos(theta), 5, cPole)
	fillCircle(img, cx, axleY, 2.5, cJoint)
	return img
}

// renderAcrobot draws both links from the angles' cosines and sines, hanging
// down at θ1 = θ2 = 0 as in Gymnasium, and the line the tip must rise above.
func renderAcrobot(obs []float32) *image.Paletted {
	const size = 200
	img := image.NewPaletted(image.Rect(0, 0, size, size), classicPalette)
	scale := size / (2 * 2.2) // two 1 m links, with a margin
	c1, s1, c2, s2 := float64(obs[0]), float64(obs[1]), float64(obs[2]), float64(obs[3])
	c12, s12 := c1*c2-s1*s2, s1*c2+c1*s2 // cos, sin of θ1+θ2
	px := func(x float64) float64 { return size/2 + x*scale }
	py := func(y float64) float64 { return size/2 - y*scale }
	fillRect(img, 0, py(1), size, py(1)+1, cGoal)
	x1, y1 := s1, -c1
	x2, y2 := x1+s12, y1-c12
	thickLine(img, px(0), py(0), px(x1), py(y1), 5, cInk)
	thickLine(img, px(x1), py(y1), px(x2), py(y2), 5, cInk)
	fillCircle(img, px(0), py(0), 4, cJoint)
	fillCircle(img, px(x1), py(y1), 4, cJoint)
	return img
}

// renderMountainCar draws the hill, Gymnasium's height 0.45·sin(3x) + 0.55
// over positions [−1.2, 0.6], the goal flag at 0.5, and the car as a dot.
func renderMountainCar(obs []float32) *image.Paletted {
	const w, h = 300, 200
	const minX, maxX = -1.2, 0.6
	img := image.NewPaletted(image.Rect(0, 0, w, h), classicPalette)
	scale := float64(w) / (maxX - minX)
	height := func(x float64) float64 { return 0.45*math.Sin(3*x) + 0.55 }
	px := func(x float64) float64 { return (x - minX) * scale }
	py := func(y float64) float64 { return h - 10 - y*scale }
	const n = 100
	for i := range n {
		xa, xb := minX+(maxX-minX)*float64(i)/n, minX+(maxX-minX)*float64(i+1)/n
		thickLine(img, px(xa), py(height(xa)), px(xb), py(height(xb)), 2, cInk)
	}
	gx, gy := px(0.5), py(height(0.5))
	thickLine(img, gx, gy, gx, gy-25, 2, cInk)
	fillRect(img, gx, gy-25, gx+15, gy-17, cGoal)
	x := float64(obs[0])
	fillCircle(img, px(x), py(height(x))-6, 6, cCar)
	return img
}

// gridPalette is black for empty cells, then one colour per channel:
// matplotlib's cubehelix map (γ 1, start 0.5, rotations −1.5, hue 1) at
// channels evenly spaced points strictly inside [0, 1], which is what
// MinAtar's display draws with (seaborn's color_palette("cubehelix", C)).
func gridPalette(channels int) color.Palette {
	pal := color.Palette{color.RGBA{0, 0, 0, 255}}
	for c := range channels {
		x := float64(c+1) / float64(channels+1)
		a := x * (1 - x) / 2
		phi := 2 * math.Pi * (0.5/3 - 1.5*x)
		comp := func(p0, p1 float64) uint8 {
			v := x + a*(p0*math.Cos(phi)+p1*math.Sin(phi))
			return uint8(math.Round(255 * min(max(v, 0), 1)))
		}
		pal = append(pal, color.RGBA{comp(-0.14861, 1.78277), comp(-0.29227, -0.90649), comp(1.97294, 0), 255})
	}
	return pal
}

// renderGrid draws a channel-last rows×cols×channels observation as cells of
// GridCell pixels; a cell with several channels on takes the colour of
// the highest one, as MinAtar's display does.
func renderGrid(obs []float32, rows, cols, channels int, pal color.Palette) *image.Paletted {
	img := image.NewPaletted(image.Rect(0, 0, cols*GridCell, rows*GridCell), pal)
	for y := range rows {
		for x := range cols {
			idx := uint8(0)
			for c := channels - 1; c >= 0; c-- {
				if obs[(y*cols+x)*channels+c] != 0 {
					idx = uint8(c + 1)
					break
				}
			}
			if idx != 0 {
				fillRect(img, float64(x*GridCell), float64(y*GridCell), float64((x+1)*GridCell), float64((y+1)*GridCell), idx)
			}
		}
	}
	return img
}

// PixelScale is the size in GIF pixels of an image observation's pixel.
const PixelScale = 3

// grayPalette is 256 grays, index i gray level i.
var grayPalette = func() color.Palette {
	p := make(color.Palette, 256)
	for i := range p {
		p[i] = color.Gray{Y: uint8(i)}
	}
	return p
}()

// renderGray draws a uint8 image observation (pixels): its last channel as
// gray levels, PixelScale GIF pixels a pixel. For gray frames stacked by
// frame_stack (channel-last, oldest first) that is the newest frame.
func renderGray(obs []float32, rows, cols, channels int) *image.Paletted {
	img := image.NewPaletted(image.Rect(0, 0, cols*PixelScale, rows*PixelScale), grayPalette)
	for y := range rows * PixelScale {
		for x := range cols * PixelScale {
			v := obs[((y/PixelScale)*cols+x/PixelScale)*channels+channels-1]
			img.Pix[y*img.Stride+x] = uint8(max(0, min(255, v)))
		}
	}
	return img
}

// fillRect fills the pixels whose centres lie in [x0, x1) × [y0, y1),
// clipped to the image (a cart past the track's end is drawn in part).
func fillRect(img *image.Paletted, x0, y0, x1, y1 float64, c uint8) {
	r := image.Rect(int(math.Round(x0)), int(math.Round(y0)), int(math.Round(x1)), int(math.Round(y1))).Intersect(img.Rect)
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetColorIndex(x, y, c)
		}
	}
}

// thickLine fills the pixels within width/2 of the segment (x0,y0)–(x1,y1).
func thickLine(img *image.Paletted, x0, y0, x1, y1, width float64, c uint8) {
	r := width / 2
	dx, dy := x1-x0, y1-y0
	l2 := dx*dx + dy*dy
	b := image.Rect(int(math.Floor(min(x0, x1)-r)), int(math.Floor(min(y0, y1)-r)),
		int(math.Ceil(max(x0, x1)+r))+1, int(math.Ceil(max(y0, y1)+r))+1).Intersect(img.Rect)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			qx, qy := float64(x)+0.5, float64(y)+0.5
			t := 0.0
			if l2 > 0 {
				t = min(max(((qx-x0)*dx+(qy-y0)*dy)/l2, 0), 1)
			}
			ex, ey := qx-(x0+t*dx), qy-(y0+t*dy)
			if ex*ex+ey*ey <= r*r {
				img.SetColorIndex(x, y, c)
			}
		}
	}
}

// fillCircle is a zero-length thick line: a disc of radius r.
func fillCircle(img *image.Paletted, x, y, r float64, c uint8) {
	thickLine(img, x, y, x, y, 2*r, c)
}

// Recorder keeps the frames of one episode, up to MaxFrames.
type Recorder struct {
	draw    Renderer
	frames  []*image.Paletted
	dropped int // observations past the cap
}

// NewRecorder records frames drawn by draw.
func NewRecorder(draw Renderer) *Recorder { return &Recorder{draw: draw} }

// Frames is the number of frames kept; Dropped, of those past MaxFrames.
func (fr *Recorder) Frames() int { return len(fr.frames) }

// Dropped is the number of observations past MaxFrames, not drawn.
func (fr *Recorder) Dropped() int { return fr.dropped }

// Add draws obs as the next frame.
func (fr *Recorder) Add(obs []float32) {
	if len(fr.frames) >= MaxFrames {
		fr.dropped++
		return
	}
	fr.frames = append(fr.frames, fr.draw(obs))
}

// WriteGIF writes the frames as an endlessly looping animated GIF.
func (fr *Recorder) WriteGIF(path string) error {
	g := &gif.GIF{Image: fr.frames, Delay: make([]int, len(fr.frames))}
	for i := range g.Delay {
		g.Delay[i] = FrameDelay
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--render: %w", err)
	}
	if err := gif.EncodeAll(f, g); err != nil {
		f.Close()
		return fmt.Errorf("--render %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("--render: %w", err)
	}
	return nil
}

// IsGIFPath: --render writes GIF only, so another extension is a mistake.
func IsGIFPath(p string) bool { return strings.HasSuffix(strings.ToLower(p), ".gif") }
