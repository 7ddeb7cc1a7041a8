package nets

import "gonum.org/v1/gonum/blas"

// gemm computes small single-precision matrix products for one Trainer: the gradient graph's
// matmuls (through matmulEngine) and the target forward passes.
//
// Why not gonum: its Sgemm splits matrices into 64-blocks and spreads them over goroutines,
// runs 128×65·65×65 at ~4 GFLOPS (a 65-wide layer leaves a 1-column block) and uses SSE only.
// At DQN sizes (batch ≤ 512, width ≤ a few hundred) a packed-panel product around an AVX2+FMA
// 4×16 micro-kernel, single-threaded, is several times faster. In the openblas build, and on
// CPUs without AVX2/FMA, gemm hands the product to blas32 instead.
//
// A gemm owns its packing buffers: one goroutine at a time.
type gemm struct {
	at  []float32 // the last m mod 4 rows of op(A), zero-padded to 4 rows
	bp  []float32 // op(B) packed in k×16 panels, zero-padded to a multiple of 16 columns
	tmp [4 * 16]float32
}

// useKernel selects the micro-kernel path; the openblas build turns it off.
var useKernel = haveKernel && !useOpenBLAS

// BLASName names what the learner's matrix products run on: "openblas" (built with
// -tags openblas), "avx2" (this package's kernel, pure-Go build) or "gonum" (pure-Go build on a
// CPU without AVX2/FMA).
func BLASName() string {
	switch {
	case useOpenBLAS:
		return "openblas"
	case useKernel:
		return "avx2"
	}
	return "gonum"
}

// mul computes C = op(A)·op(B) for row-major matrices, op(X) = Xᵀ when its flag is set;
// op(A) is m×k, op(B) is k×n, C is m×n with row stride ldc.
func (g *gemm) mul(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	g.mulAct(tA, tB, m, n, k, a, lda, b, ldb, c, ldc, false)
}

// mulAct is mul followed by C = max(C, 0) when relu is set (fused into the kernel's stores).
func (g *gemm) mulAct(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, relu bool) {
	if m == 0 || n == 0 {
		return
	}
	if !useKernel {
		ta, tb := blas.NoTrans, blas.NoTrans
		if tA {
			ta = blas.Trans
		}
		if tB {
			tb = blas.Trans
		}
		blas32.Sgemm(ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
		if relu {
			for i := range m {
				reluToGo(c[i*ldc:i*ldc+n], c[i*ldc:i*ldc+n])
			}
		}
		return
	}
	if k == 0 {
		for i := range m {
			clear(c[i*ldc : i*ldc+n])
		}
		return
	}
	act := 0
	if relu {
		act = 1
	}

	// op(A)[i][p] sits at a[i·ars + p·acs]: a transposed A is read in place.
	ars, acs := lda, 1
	if tA {
		ars, acs = 1, lda
	}

	// op(B) is read in place when it is untransposed and a panel has all 16 columns;
	// otherwise that panel is packed (transposed, zero-padded) into bp as a k×16 block.
	panels := (n + 15) / 16
	packAll := tB
	if packAll {
		g.bp = grow(g.bp, panels*16*k)
	} else if n%16 != 0 {
		g.bp = grow(g.bp, 16*k)
	}
	for jp := range panels {
		j0 := jp * 16
		w := min(16, n-j0)
		switch {
		case !tB && w == 16:
			continue
		case !tB:
			dst := g.bp[:16*k]
			for p := range k {
				row := dst[p*16 : p*16+16]
				copy(row, b[p*ldb+j0:p*ldb+j0+w])
				clear(row[w:])
			}
		default:
			dst := g.bp[jp*16*k : (jp+1)*16*k]
			if w < 16 {
				clear(dst)
			}
			packT(dst, b, j0, w, k, ldb)
		}
	}
	panel := func(jp int) (*float32, int) {
		switch {
		case packAll:
			return &g.bp[jp*16*k], 16
		case jp*16+16 > n:
			return &g.bp[0], 16
		}
		return &b[jp*16], ldb
	}

	mFull := m &^ 3
	for i0 := 0; i0 < mFull; i0 += 4 {
		ai := &a[i0*ars]
		for jp := range panels {
			j0 := jp * 16
			pb, bs := panel(jp)
			if j0+16 <= n {
				kern4x16(k, ai, ars, acs, pb, bs, &c[i0*ldc+j0], ldc, act)
				continue
			}
			kern4x16(k, ai, ars, acs, pb, bs, &g.tmp[0], 16, act)
			for r := range 4 {
				copy(c[(i0+r)*ldc+j0:(i0+r)*ldc+n], g.tmp[r*16:r*16+n-j0])
			}
		}
	}
	if rows := m - mFull; rows > 0 {
		// Tail rows: gather them into a zero-padded 4×k block so the kernel never reads past A.
		g.at = grow(g.at, 4*k)
		clear(g.at)
		for r := range rows {
			dst := g.at[r*k : (r+1)*k]
			for p := range dst {
				dst[p] = a[(mFull+r)*ars+p*acs]
			}
		}
		for jp := range panels {
			j0 := jp * 16
			w := min(16, n-j0)
			pb, bs := panel(jp)
			kern4x16(k, &g.at[0], k, 1, pb, bs, &g.tmp[0], 16, act)
			for r := range rows {
				copy(c[(mFull+r)*ldc+j0:(mFull+r)*ldc+j0+w], g.tmp[r*16:r*16+w])
			}
		}
	}
}

// packT writes columns j0..j0+w−1 of op(B) = Bᵀ (rows j0.. of the row-major B, stride ldb)
// into a k×16 panel. Four source rows at a time: the transpose's scattered stores then fill
// four adjacent floats per row of the panel, which halved its cost (it was 7% of a MinAtar
// update at batch 32: the backward's dh = dY·Gᵀ packs all of the 1025×129 dense layer).
func packT(dst, b []float32, j0, w, k, ldb int) {
	jj := 0
	for ; jj+4 <= w; jj += 4 {
		s0 := b[(j0+jj)*ldb : (j0+jj)*ldb+k]
		s1 := b[(j0+jj+1)*ldb : (j0+jj+1)*ldb+k]
		s2 := b[(j0+jj+2)*ldb : (j0+jj+2)*ldb+k]
		s3 := b[(j0+jj+3)*ldb : (j0+jj+3)*ldb+k]
		d := dst[jj:]
		for p, v := range s0 {
			r := d[p*16 : p*16+4 : p*16+4]
			r[0], r[1], r[2], r[3] = v, s1[p], s2[p], s3[p]
		}
	}
	for ; jj < w; jj++ {
		src := b[(j0+jj)*ldb : (j0+jj)*ldb+k]
		for p, v := range src {
			dst[p*16+jj] = v
		}
	}
}

// reserve sizes the packing buffers for products with untransposed B of n columns and inner
// dimension k, so that such products never allocate (Forward's zero-allocation promise).
func (g *gemm) reserve(n, k int) {
	g.at = grow(g.at, 4*k)
	if n%16 != 0 {
		g.bp = grow(g.bp, 16*k)
	}
}

// grow returns s resized to n, reallocating only when the capacity is short.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
