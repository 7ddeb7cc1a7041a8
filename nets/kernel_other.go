//go:build !amd64

package nets

func kern4x16(k int, a *float32, ars, acs int, b *float32, bs int, c *float32, ldc int, act int) {
	panic("nets: kern4x16 needs amd64")
}

func reluTo(dst, src []float32)      { reluToGo(dst, src) }
func reluGradTo(dx, y, dy []float32) { reluGradGo(dx, y, dy) }

func axpy8(y []float32, a float32, x []float32)      { panic("nets: axpy8 needs amd64") }
func scale8(dst []float32, a float32, src []float32) { panic("nets: scale8 needs amd64") }
func adam8(theta, g, m, v []float32, k *[7]float32)  { panic("nets: adam8 needs amd64") }
func sumSquares16(x []float32) float64               { panic("nets: sumSquares16 needs amd64") }

const haveKernel = false
