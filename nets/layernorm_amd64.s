#include "textflag.h"

// AVX2+FMA loops of LayerNorm (layernorm.go) on rows whose length is a multiple of 8 (and
// > 0). x̂ = (x − mean)·rstd is a subtract then a multiply, never fused, in the forward and
// in the backward alike, so the backward's mask [x̂ > 0] is exactly the forward's ReLU.

// func lnSum8(x []float32) float32
TEXT ·lnSum8(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VXORPS Y0, Y0, Y0

lnsumloop:
	VADDPS (SI), Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JNE lnsumloop
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET

// func lnSqDev8(x []float32, mean float32) float32
//
// Σ (x[i] − mean)².
TEXT ·lnSqDev8(SB), NOSPLIT, $0-36
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS mean+24(FP), Y15
	VXORPS Y0, Y0, Y0

lnsqloop:
	VMOVUPS (SI), Y1
	VSUBPS Y15, Y1, Y1
	VFMADD231PS Y1, Y1, Y0
	ADDQ $32, SI
	SUBQ $8, CX
	JNE lnsqloop
	VEXTRACTF128 $1, Y0, X1
	VADDPS X1, X0, X0
	VMOVHLPS X0, X0, X1
	VADDPS X1, X0, X0
	VMOVSHDUP X0, X1
	VADDSS X1, X0, X0
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func lnNormReLU8(y, x []float32, mean, rstd float32)
//
// y[i] = max((x[i] − mean)·rstd, 0) for i < len(x); y may be x.
TEXT ·lnNormReLU8(SB), NOSPLIT, $0-56
	MOVQ y_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VBROADCASTSS mean+48(FP), Y14
	VBROADCASTSS rstd+52(FP), Y15
	VXORPS Y13, Y13, Y13

lnnormloop:
	VMOVUPS (SI), Y0
	VSUBPS Y14, Y0, Y0
	VMULPS Y15, Y0, Y0
	VMAXPS Y13, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNE lnnormloop
	VZEROUPPER
	RET

// func lnGradPass8(d, x, g []float32, mean, rstd float32) (sg, sgx float32)
//
// With x̂ = (x − mean)·rstd: d[i] = g[i] where x̂ > 0, else 0; returns Σ d and Σ d·x̂.
TEXT ·lnGradPass8(SB), NOSPLIT, $0-88
	MOVQ d_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	MOVQ g_base+48(FP), DX
	VBROADCASTSS mean+72(FP), Y14
	VBROADCASTSS rstd+76(FP), Y15
	VXORPS Y13, Y13, Y13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

lngradloop:
	VMOVUPS (SI), Y2
	VSUBPS Y14, Y2, Y2
	VMULPS Y15, Y2, Y2        // x̂
	VCMPPS $0x1e, Y13, Y2, Y3 // x̂ > 0 (GT_OQ) → all-ones lane
	VANDPS (DX), Y3, Y3       // masked g
	VMOVUPS Y3, (DI)
	VADDPS Y3, Y0, Y0
	VFMADD231PS Y3, Y2, Y1
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	JNE lngradloop
	VEXTRACTF128 $1, Y0, X2
	VADDPS X2, X0, X0
	VMOVHLPS X0, X0, X2
	VADDPS X2, X0, X0
	VMOVSHDUP X0, X2
	VADDSS X2, X0, X0
	VMOVSS X0, sg+80(FP)
	VEXTRACTF128 $1, Y1, X2
	VADDPS X2, X1, X1
	VMOVHLPS X1, X1, X2
	VADDPS X2, X1, X1
	VMOVSHDUP X1, X2
	VADDSS X2, X1, X1
	VMOVSS X1, sgx+84(FP)
	VZEROUPPER
	RET

// func lnGradFinish8(d, x []float32, mean, rstd, mg, mgx float32)
//
// d[i] = rstd·(d[i] − mg − x̂[i]·mgx), x̂ = (x − mean)·rstd, for i < len(x).
TEXT ·lnGradFinish8(SB), NOSPLIT, $0-64
	MOVQ d_base+0(FP), DI
	MOVQ x_base+24(FP), SI
	MOVQ x_len+32(FP), CX
	VBROADCASTSS mean+48(FP), Y12
	VBROADCASTSS rstd+52(FP), Y13
	VBROADCASTSS mg+56(FP), Y14
	VBROADCASTSS mgx+60(FP), Y15

lnfinloop:
	VMOVUPS (SI), Y0
	VSUBPS Y12, Y0, Y0
	VMULPS Y13, Y0, Y0 // x̂
	VMOVUPS (DI), Y1
	VSUBPS Y14, Y1, Y1
	VFNMADD231PS Y15, Y0, Y1 // Y1 −= x̂·mgx
	VMULPS Y13, Y1, Y1
	VMOVUPS Y1, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNE lnfinloop
	VZEROUPPER
	RET
