//go:build !amd64

package nets

func lnSum8(x []float32) float32                 { panic("nets: lnSum8 needs amd64") }
func lnSqDev8(x []float32, mean float32) float32 { panic("nets: lnSqDev8 needs amd64") }
func lnNormReLU8(y, x []float32, mean, rstd float32) {
	panic("nets: lnNormReLU8 needs amd64")
}
func lnGradPass8(d, x, g []float32, mean, rstd float32) (sg, sgx float32) {
	panic("nets: lnGradPass8 needs amd64")
}
func lnGradFinish8(d, x []float32, mean, rstd, mg, mgx float32) {
	panic("nets: lnGradFinish8 needs amd64")
}
