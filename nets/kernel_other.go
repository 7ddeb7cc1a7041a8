//go:build !amd64

package nets

func kern4x16(k int, a *float32, ars, acs int, b *float32, bs int, c *float32, ldc int, relu int) {
	panic("nets: kern4x16 needs amd64")
}

func reluTo(dst, src []float32)      { reluToGo(dst, src) }
func reluGradTo(dx, y, dy []float32) { reluGradGo(dx, y, dy) }

const haveKernel = false
