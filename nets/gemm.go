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

	// op(A)[i][p] sits at a[i·ars + p·acs]: a transposed A is read in place.
	ars, acs := lda, 1
	if tA {
		ars, acs = 1, lda
	}
	// k is cut into nb near-equal blocks of at most kBlock when the operand block keeps in
	// cache would not fit (kReuse), or when panels are outer (m < n): the weight gradients of
	// a conv (P_iᵀ·dZ_i, k = batch·positions: 12,800 for Nature's first layer at batch 32)
	// would otherwise stream all of P and dZ from memory once per 4 rows of C, and a wide
	// dense layer's k×16 panels of B, walked one after the other down all of k, read B at a
	// quarter of its streaming rate (Nature's 3137×513 layer for 8 observations: 2.9 → 1.2
	// ms cut). Within a block the A rows and B panels in use stay in L1/L2. Every block after
	// the first continues the kernel's accumulators from C (actLoad), so the result is
	// bit-identical to one pass.
	nb := 1
	if k > kBlock && (m < n || k*min(m, n) > kReuse) {
		nb = (k + kBlock - 1) / kBlock
	}
	kb := (k + nb - 1) / nb
	for k0 := 0; k0 < k; k0 += kb {
		kk := min(kb, k-k0)
		act := 0
		if k0 > 0 {
			act |= actLoad
		}
		if relu && k0+kk == k {
			act |= actReLU
		}
		var bb []float32
		if tB {
			bb = b[k0:] // columns k0.. of the row-major n×k B
		} else {
			bb = b[k0*ldb:] // rows k0.. of B
		}
		g.block(tB, m, n, kk, a[k0*acs:], ars, acs, bb, ldb, c, ldc, act)
	}
}

// kBlock is the largest k of one pass of the micro-kernel over C when k is cut (see mulAct): a
// 16-column panel of B over 512 values of k is 32 KB. 256 and 512 measured alike on
// Nature's products (BenchmarkLearnerUpdateNature), the tall weight gradients 3× faster than
// uncut.
const kBlock = 512

// kReuse is the size (floats, 256 KB) up to which the operand that block keeps in cache is
// left whole: B (k×n) when rows are outer, A (m×k) when panels are; larger ones are cut
// along k. Cutting a product whose reused operand fits anyway only re-reads C: Nature's
// first conv (k = 257, a 13 MB A streamed once) was 1.5× slower cut in two.
var kReuse = 64 << 10 // a var: TestGemmKBlocksBitIdentical turns the cutting off

// kern4x16's act bits: start from C (C += A·B), and ReLU on the way out.
const (
	actReLU = 1
	actLoad = 2
)

// block computes C (+)= op(A)·op(B) for one block of k with the micro-kernel, looping over
// 4-row blocks of C and 16-column panels of op(B). The smaller of the two operands stays in
// cache while the larger streams through once: rows outer when m ≥ n (a tall conv product:
// B's panels are reused by every row block), panels outer otherwise (a wide one: dY·Gᵀ of a
// dense layer, where one packed panel serves every row block and then is done).
func (g *gemm) block(tB bool, m, n, k int, a []float32, ars, acs int, b []float32, ldb int, c []float32, ldc, act int) {
	panels := (n + 15) / 16
	mFull := m &^ 3
	if rows := m - mFull; rows > 0 {
		// Tail rows: gathered into a zero-padded 4×k block so the kernel never reads past A.
		g.at = grow(g.at, 4*k)
		clear(g.at)
		for r := range rows {
			dst := g.at[r*k : (r+1)*k]
			for p := range dst {
				dst[p] = a[(mFull+r)*ars+p*acs]
			}
		}
	}
	// op(B)'s panel jp is read in place when B is untransposed and the panel has all 16
	// columns; otherwise it is packed (transposed, zero-padded) into dst as a k×16 block.
	inPlace := func(jp int) bool { return !tB && jp*16+16 <= n }
	pack := func(dst []float32, jp int) {
		j0 := jp * 16
		w := min(16, n-j0)
		if !tB {
			for p := range k {
				row := dst[p*16 : p*16+16]
				copy(row, b[p*ldb+j0:p*ldb+j0+w])
				clear(row[w:])
			}
			return
		}
		if w < 16 {
			clear(dst)
		}
		packT(dst, b, j0, w, k, ldb)
	}
	rowsOf := func(jp int, pb *float32, bs int) { // every row block of C against panel jp
		j0 := jp * 16
		w := min(16, n-j0)
		for i0 := 0; i0 < mFull; i0 += 4 {
			g.kern(k, &a[i0*ars], ars, acs, pb, bs, c, ldc, i0, j0, 4, w, act)
		}
		if mFull < m {
			g.kern(k, &g.at[0], k, 1, pb, bs, c, ldc, mFull, j0, m-mFull, w, act)
		}
	}
	if m < n {
		g.bp = grow(g.bp, 16*k)
		for jp := range panels {
			if inPlace(jp) {
				rowsOf(jp, &b[jp*16], ldb)
				continue
			}
			pack(g.bp, jp)
			rowsOf(jp, &g.bp[0], 16)
		}
		return
	}
	// Rows outer: pack every panel that needs it once, up front.
	if tB {
		g.bp = grow(g.bp, panels*16*k)
	} else if n%16 != 0 {
		g.bp = grow(g.bp, 16*k)
	}
	packed := func(jp int) []float32 { // where panel jp is packed: one each if tB, else the last
		if tB {
			return g.bp[jp*16*k : (jp+1)*16*k]
		}
		return g.bp[:16*k]
	}
	panel := func(jp int) (*float32, int) {
		if inPlace(jp) {
			return &b[jp*16], ldb
		}
		return &packed(jp)[0], 16
	}
	for jp := range panels {
		if !inPlace(jp) {
			pack(packed(jp), jp)
		}
	}
	for i0 := 0; i0 < mFull; i0 += 4 {
		for jp := range panels {
			pb, bs := panel(jp)
			g.kern(k, &a[i0*ars], ars, acs, pb, bs, c, ldc, i0, jp*16, 4, min(16, n-jp*16), act)
		}
	}
	if mFull < m {
		for jp := range panels {
			pb, bs := panel(jp)
			g.kern(k, &g.at[0], k, 1, pb, bs, c, ldc, mFull, jp*16, m-mFull, min(16, n-jp*16), act)
		}
	}
}

// kern runs the micro-kernel for the rows×w block of C at (i0, j0), rows ≤ 4 and w ≤ 16;
// a partial block goes through tmp (loaded from C first when the kernel accumulates).
func (g *gemm) kern(k int, ai *float32, ars, acs int, pb *float32, bs int, c []float32, ldc, i0, j0, rows, w, act int) {
	if rows == 4 && w == 16 {
		kern4x16(k, ai, ars, acs, pb, bs, &c[i0*ldc+j0], ldc, act)
		return
	}
	if act&actLoad != 0 {
		for r := range rows {
			copy(g.tmp[r*16:r*16+w], c[(i0+r)*ldc+j0:(i0+r)*ldc+j0+w])
		}
	}
	kern4x16(k, ai, ars, acs, pb, bs, &g.tmp[0], 16, act)
	for r := range rows {
		copy(c[(i0+r)*ldc+j0:(i0+r)*ldc+j0+w], g.tmp[r*16:r*16+w])
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
