#include "textflag.h"

// func kern4x16(k int, a *float32, ars, acs int, b *float32, bs int, c *float32, ldc int, act int)
//
// C[0:4][0:16] = A[0:4][0:k] · B[0:k][0:16] with element strides: A[i][p] at a[i·ars + p·acs]
// (so a transposed A needs no copy), B[p][j] at b[p·bs + j], C[i][j] at c[i·ldc + j].
// With act bit 1 (actLoad) the accumulators start from C instead of 0, so C += A·B with the
// same chain of fused multiply-adds as one product over the whole k (gemm's k-blocking
// stays bit-identical); with bit 0 (actReLU), C = max(C, 0) on the way out. Eight YMM
// accumulators keep both FMA ports busy through the FMA latency.
TEXT ·kern4x16(SB), NOSPLIT, $0-72
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ ars+16(FP), R8
	SHLQ $2, R8
	MOVQ acs+24(FP), R13
	SHLQ $2, R13
	MOVQ b+32(FP), DI
	MOVQ bs+40(FP), BX
	SHLQ $2, BX
	MOVQ c+48(FP), DX
	MOVQ ldc+56(FP), R9
	SHLQ $2, R9
	LEAQ (SI)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	LEAQ (R11)(R8*1), R12
	MOVQ act+64(FP), AX
	TESTQ $2, AX
	JEQ zero
	MOVQ DX, AX
	VMOVUPS (AX), Y0
	VMOVUPS 32(AX), Y1
	ADDQ R9, AX
	VMOVUPS (AX), Y2
	VMOVUPS 32(AX), Y3
	ADDQ R9, AX
	VMOVUPS (AX), Y4
	VMOVUPS 32(AX), Y5
	ADDQ R9, AX
	VMOVUPS (AX), Y6
	VMOVUPS 32(AX), Y7
	JMP start

zero:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

start:
	TESTQ CX, CX
	JEQ store

loop:
	VMOVUPS (DI), Y8
	VMOVUPS 32(DI), Y9
	VBROADCASTSS (SI), Y10
	VFMADD231PS Y8, Y10, Y0
	VFMADD231PS Y9, Y10, Y1
	VBROADCASTSS (R10), Y11
	VFMADD231PS Y8, Y11, Y2
	VFMADD231PS Y9, Y11, Y3
	VBROADCASTSS (R11), Y12
	VFMADD231PS Y8, Y12, Y4
	VFMADD231PS Y9, Y12, Y5
	VBROADCASTSS (R12), Y13
	VFMADD231PS Y8, Y13, Y6
	VFMADD231PS Y9, Y13, Y7
	ADDQ R13, SI
	ADDQ R13, R10
	ADDQ R13, R11
	ADDQ R13, R12
	ADDQ BX, DI
	DECQ CX
	JNE loop

store:
	MOVQ act+64(FP), AX
	TESTQ $1, AX
	JEQ write
	VXORPS Y15, Y15, Y15
	VMAXPS Y15, Y0, Y0
	VMAXPS Y15, Y1, Y1
	VMAXPS Y15, Y2, Y2
	VMAXPS Y15, Y3, Y3
	VMAXPS Y15, Y4, Y4
	VMAXPS Y15, Y5, Y5
	VMAXPS Y15, Y6, Y6
	VMAXPS Y15, Y7, Y7

write:
	VMOVUPS Y0, (DX)
	VMOVUPS Y1, 32(DX)
	ADDQ R9, DX
	VMOVUPS Y2, (DX)
	VMOVUPS Y3, 32(DX)
	ADDQ R9, DX
	VMOVUPS Y4, (DX)
	VMOVUPS Y5, 32(DX)
	ADDQ R9, DX
	VMOVUPS Y6, (DX)
	VMOVUPS Y7, 32(DX)
	VZEROUPPER
	RET

// func reluTo(dst, src []float32)
//
// dst[i] = max(src[i], 0) for i < len(dst); len(src) ≥ len(dst).
TEXT ·reluTo(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	VXORPS Y15, Y15, Y15
	CMPQ CX, $8
	JLT relutail

reluloop:
	VMOVUPS (SI), Y0
	VMAXPS Y15, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JGE reluloop

relutail:
	TESTQ CX, CX
	JEQ reludone

relutailloop:
	VMOVSS (SI), X0
	VMAXSS X15, X0, X0
	VMOVSS X0, (DI)
	ADDQ $4, SI
	ADDQ $4, DI
	DECQ CX
	JNE relutailloop

reludone:
	VZEROUPPER
	RET

// func reluGradTo(dx, y, dy []float32)
//
// dx[i] = dy[i] if y[i] > 0 else 0, for i < len(dx); y and dy are at least as long.
TEXT ·reluGradTo(SB), NOSPLIT, $0-72
	MOVQ dx_base+0(FP), DI
	MOVQ dx_len+8(FP), CX
	MOVQ y_base+24(FP), SI
	MOVQ dy_base+48(FP), DX
	VXORPS Y15, Y15, Y15
	CMPQ CX, $8
	JLT gradtail

gradloop:
	VMOVUPS (SI), Y0
	VCMPPS $0x1e, Y15, Y0, Y0 // y > 0 (GT_OQ) → all-ones lane
	VANDPS (DX), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DX
	ADDQ $32, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JGE gradloop

gradtail:
	TESTQ CX, CX
	JEQ graddone

gradtailloop:
	VMOVSS (SI), X0
	VCMPSS $0x1e, X15, X0, X0
	VMOVSS (DX), X1
	VANDPS X1, X0, X0
	VMOVSS X0, (DI)
	ADDQ $4, SI
	ADDQ $4, DX
	ADDQ $4, DI
	DECQ CX
	JNE gradtailloop

graddone:
	VZEROUPPER
	RET

// func axpy8(y []float32, a float32, x []float32)
//
// y[i] += a·x[i] (fused multiply-add) for i < len(y), len(y) a multiple of 8, len(x) ≥ len(y).
TEXT ·axpy8(SB), NOSPLIT, $0-56
	MOVQ y_base+0(FP), DI
	MOVQ y_len+8(FP), CX
	VBROADCASTSS a+24(FP), Y15
	MOVQ x_base+32(FP), SI
	CMPQ CX, $16
	JLT axpyone

axpyloop:
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VFMADD213PS (DI), Y15, Y0 // Y0 = a·x + y
	VFMADD213PS 32(DI), Y15, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	CMPQ CX, $16
	JGE axpyloop

axpyone:
	TESTQ CX, CX
	JEQ axpydone
	VMOVUPS (SI), Y0
	VFMADD213PS (DI), Y15, Y0
	VMOVUPS Y0, (DI)

axpydone:
	VZEROUPPER
	RET

// func adam8(theta, g, m, v []float32, k *[7]float32)
//
// One Adam step on the first len(theta) elements, len(theta) a multiple of 8, with
// k = {β₁, 1−β₁, β₂, 1−β₂, step, 1/√(1−β₂ᵗ), ε}:
//
//	m = β₁·m + (1−β₁)·g,  v = β₂·v + ((1−β₂)·g)·g,  θ = θ − (step·m)/(√v·k₅ + ε)
//
// Separate multiplies and adds (no FMA), in adamGo's order: the results are bit-identical to it.
TEXT ·adam8(SB), NOSPLIT, $0-104
	MOVQ theta_base+0(FP), DI
	MOVQ theta_len+8(FP), CX
	MOVQ g_base+24(FP), DX
	MOVQ m_base+48(FP), R9
	MOVQ v_base+72(FP), R10
	MOVQ k+96(FP), R8
	VBROADCASTSS 0(R8), Y8   // β₁
	VBROADCASTSS 4(R8), Y9   // 1−β₁
	VBROADCASTSS 8(R8), Y10  // β₂
	VBROADCASTSS 12(R8), Y11 // 1−β₂
	VBROADCASTSS 16(R8), Y14 // step
	VBROADCASTSS 20(R8), Y12 // 1/√(1−β₂ᵗ)
	VBROADCASTSS 24(R8), Y13 // ε
	TESTQ CX, CX
	JEQ adamdone

adamloop:
	VMOVUPS (DX), Y0
	VMULPS (R9), Y8, Y1
	VMULPS Y0, Y9, Y2
	VADDPS Y2, Y1, Y1 // m
	VMOVUPS Y1, (R9)
	VMULPS (R10), Y10, Y3
	VMULPS Y0, Y11, Y4
	VMULPS Y0, Y4, Y4
	VADDPS Y4, Y3, Y3 // v
	VMOVUPS Y3, (R10)
	VSQRTPS Y3, Y5
	VMULPS Y12, Y5, Y5
	VADDPS Y13, Y5, Y5 // √v·k₅ + ε
	VMULPS Y1, Y14, Y6
	VDIVPS Y5, Y6, Y6  // step·m / (√v·k₅ + ε)
	VMOVUPS (DI), Y7
	VSUBPS Y6, Y7, Y7
	VMOVUPS Y7, (DI)
	ADDQ $32, DX
	ADDQ $32, R9
	ADDQ $32, R10
	ADDQ $32, DI
	SUBQ $8, CX
	JNE adamloop

adamdone:
	VZEROUPPER
	RET

// func sumSquares16(x []float32) float64
//
// Σ x[i]² in float64 for i < len(x), len(x) a multiple of 16. A float32 squared is exact in
// float64, so the FMA only changes the summation order (four interleaved 4-lane sums).
TEXT ·sumSquares16(SB), NOSPLIT, $0-32
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	TESTQ CX, CX
	JEQ sumsqreduce

sumsqloop:
	VCVTPS2PD (SI), Y4
	VCVTPS2PD 16(SI), Y5
	VCVTPS2PD 32(SI), Y6
	VCVTPS2PD 48(SI), Y7
	VFMADD231PD Y4, Y4, Y0
	VFMADD231PD Y5, Y5, Y1
	VFMADD231PD Y6, Y6, Y2
	VFMADD231PD Y7, Y7, Y3
	ADDQ $64, SI
	SUBQ $16, CX
	JNE sumsqloop

sumsqreduce:
	VADDPD Y1, Y0, Y0
	VADDPD Y3, Y2, Y2
	VADDPD Y2, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPD X1, X0, X0
	VPERMILPD $1, X0, X1
	VADDSD X1, X0, X0
	VMOVSD X0, ret+24(FP)
	VZEROUPPER
	RET

// func scale8(dst []float32, a float32, src []float32)
//
// dst[i] = a·src[i] for i < len(dst), len(dst) a multiple of 8, len(src) ≥ len(dst). VMULPS
// rounds each product like Go's float32 multiply, so the result is bit-identical to scaleTo's
// loop.
TEXT ·scale8(SB), NOSPLIT, $0-56
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	VBROADCASTSS a+24(FP), Y15
	MOVQ src_base+32(FP), SI
	TESTQ CX, CX
	JEQ scaledone

scaleloop:
	VMULPS (SI), Y15, Y0
	VMOVUPS Y0, (DI)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JNE scaleloop

scaledone:
	VZEROUPPER
	RET
