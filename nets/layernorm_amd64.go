package nets

// LayerNorm's AVX2+FMA row loops (layernorm_amd64.s), for rows of a multiple of 8 values
// (> 0); layernorm.go uses them when haveKernel is set.

//go:noescape
func lnSum8(x []float32) float32

//go:noescape
func lnSqDev8(x []float32, mean float32) float32

//go:noescape
func lnNormReLU8(y, x []float32, mean, rstd float32)

//go:noescape
func lnGradPass8(d, x, g []float32, mean, rstd float32) (sg, sgx float32)

//go:noescape
func lnGradFinish8(d, x []float32, mean, rstd, mg, mgx float32)
