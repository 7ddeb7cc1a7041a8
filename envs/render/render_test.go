package render

import (
	"image"
	"math"
	"testing"

	"github.com/qfleet/qfleet/envs"
)

// TestRenderMinAtarGrid checks the grid renderer on a made-up observation:
// cell colours by channel, the highest channel winning, black when empty.
func TestRenderMinAtarGrid(t *testing.T) {
	const c = 4
	sp := envs.Spec{ID: "MinAtar/Test-v0", ObsShape: []int{10, 10, c}}
	draw, err := For(sp)
	if err != nil {
		t.Fatal(err)
	}
	obs := make([]float32, 10*10*c)
	set := func(y, x, ch int) { obs[(y*10+x)*c+ch] = 1 }
	set(0, 0, 0) // one channel
	set(2, 3, 1) // two: channel 3 wins
	set(2, 3, 3)
	set(9, 9, 2) // the last cell: row-major, channel-last indexing
	img := draw(obs)
	if b := img.Bounds(); b.Dx() != 10*GridCell || b.Dy() != 10*GridCell {
		t.Fatalf("size %v, want %d×%d", b.Size(), 10*GridCell, 10*GridCell)
	}
	pal := gridPalette(c)
	if len(pal) != c+1 {
		t.Fatalf("palette of %d colours, want %d", len(pal), c+1)
	}
	for i := range pal {
		for j := range i {
			if pal[i] == pal[j] {
				t.Errorf("palette colours %d and %d are both %v", i, j, pal[i])
			}
		}
	}
	at := func(y, x int) (row, col int) { return y*GridCell + GridCell/2, x*GridCell + GridCell/2 }
	for _, k := range []struct {
		y, x int
		want int // palette index: channel + 1, 0 for empty
	}{{0, 0, 1}, {2, 3, 4}, {9, 9, 3}, {5, 5, 0}, {3, 2, 0}} {
		py, px := at(k.y, k.x)
		if got := img.At(px, py); got != pal[k.want] {
			t.Errorf("cell (row %d, col %d) is %v, want %v (palette %d)", k.y, k.x, got, pal[k.want], k.want)
		}
		// The whole cell has the colour, corners included.
		y0, x0 := k.y*GridCell, k.x*GridCell
		for _, p := range []image.Point{{x0, y0}, {x0 + GridCell - 1, y0 + GridCell - 1}} {
			if got := img.ColorIndexAt(p.X, p.Y); int(got) != k.want {
				t.Errorf("cell (row %d, col %d) pixel %v has palette index %d, want %d", k.y, k.x, p, got, k.want)
			}
		}
	}
}

// TestRenderClassic checks that the classic-control drawings put the moving
// part where the observation says.
func TestRenderClassic(t *testing.T) {
	idx := func(img *image.Paletted, x, y float64) uint8 { return img.ColorIndexAt(int(x), int(y)) }

	// CartPole: the cart at x = 0 is mid-image, at x = 1.2 three quarters
	// across; a pole tilted right has pole pixels right of the axle.
	left, right := renderCartPole([]float32{0, 0, 0, 0}), renderCartPole([]float32{1.2, 0, 0.3, 0})
	if got := idx(left, 150, 143); got != cCart {
		t.Errorf("CartPole x=0: centre of the image is %d, want the cart %d", got, cCart)
	}
	if got := idx(right, 225, 143); got != cCart {
		t.Errorf("CartPole x=1.2: (225, 143) is %d, want the cart %d", got, cCart)
	}
	axleY := 150 - 15*3/4.0
	if got := idx(right, 225+40*math.Sin(0.3), axleY-40*math.Cos(0.3)); got != cPole {
		t.Errorf("CartPole θ=0.3: along the pole is %d, want %d", got, cPole)
	}
	if got := idx(left, 150, axleY-40); got != cPole {
		t.Errorf("CartPole θ=0: above the axle is %d, want %d", got, cPole)
	}

	// Acrobot hanging down (θ1 = θ2 = 0): links straight below the pivot;
	// straight up (θ1 = π): above it.
	down, up := renderAcrobot([]float32{1, 0, 1, 0, 0, 0}), renderAcrobot([]float32{-1, 0, 1, 0, 0, 0})
	scale := 200 / 4.4
	if idx(down, 100, 100+1.5*scale) != cInk || idx(down, 100, 100-1.5*scale) == cInk {
		t.Errorf("Acrobot at rest: the second link is not below the pivot")
	}
	if idx(up, 100, 100-1.5*scale) != cInk || idx(up, 100, 100+1.5*scale) == cInk {
		t.Errorf("Acrobot upright: the second link is not above the pivot")
	}

	// MountainCar: the car's dot at its position on the hill.
	for _, x := range []float64{-0.5, 0.3} {
		img := renderMountainCar([]float32{float32(x), 0})
		px := (x + 1.2) * 300 / 1.8
		py := 200 - 10 - (0.45*math.Sin(3*x)+0.55)*300/1.8 - 6
		if got := idx(img, px, py); got != cCar {
			t.Errorf("MountainCar x=%v: (%.0f, %.0f) is %d, want the car %d", x, px, py, got, cCar)
		}
	}
}

// TestRenderPixels: a uint8 image observation is drawn as gray levels from
// its last channel (the newest frame of a gray stack), PixelScale a pixel.
func TestRenderPixels(t *testing.T) {
	sp := envs.Spec{ID: "Pixels-v0", ObsShape: []int{2, 3, 4}, ObsDType: envs.Uint8}
	draw, err := For(sp)
	if err != nil {
		t.Fatal(err)
	}
	obs := make([]float32, 2*3*4)
	for p := range 6 {
		obs[p*4+0] = 7               // an older frame: not drawn
		obs[p*4+3] = float32(40 * p) // the newest
	}
	img := draw(obs)
	if b := img.Bounds(); b.Dx() != 3*PixelScale || b.Dy() != 2*PixelScale {
		t.Fatalf("size %v, want %d×%d", b.Size(), 3*PixelScale, 2*PixelScale)
	}
	for p := range 6 {
		y, x := p/3, p%3
		for _, d := range []int{0, PixelScale - 1} {
			if got := img.ColorIndexAt(x*PixelScale+d, y*PixelScale+d); int(got) != 40*p {
				t.Errorf("pixel (%d, %d) drawn as gray %d, want %d", y, x, got, 40*p)
			}
		}
	}
}
