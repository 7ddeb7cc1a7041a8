package nets

import (
	"fmt"
	"hash"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The dueling head (Wang et al. 2016, "Dueling Network Architectures for Deep Reinforcement
// Learning", eq. 9): the last hidden layer feeds a value stream V(s) (1 output) and an
// advantage stream A(s,·) (Outputs), aggregated as
//
//	Q(s,a) = V(s) + A(s,a) − (1/n)·Σ_a' A(s,a')
//
// Subtracting the mean makes the split identifiable (adding c to V and −c to A would
// otherwise leave Q unchanged) without the max's non-smoothness. Both streams are linear in
// the last hidden layer, so they are stored as one affine layer with 1+n columns
// ([V, A], column 0 is V) and computed by one matrix product; the aggregation is a separate,
// linear step: duelingOp in the graph, duel in the forward passes. Both evaluate the same
// float32 expression, so the learner's graph, its target passes and the runner agree.
//
// (The paper gives each stream its own hidden layer; here the streams share the torso up to
// the last Hidden layer, as the network is specified by Spec.)

// duel writes Q = V + A − mean(A) for each of rows rows of va (rows×(1+n): [V, A]) into q
// (rows×n).
func duel(q, va []float32, rows, n int) {
	invN := 1 / float32(n)
	for r := range rows {
		v := va[r*(n+1)]
		a := va[r*(n+1)+1 : (r+1)*(n+1)]
		var sum float32
		for _, x := range a {
			sum += x
		}
		base := v - sum*invN
		out := q[r*n : (r+1)*n]
		for j, x := range a {
			out[j] = base + x
		}
	}
}

// duelGrad is duel's adjoint: for the output gradient dQ (rows×n) it writes
//
//	∂L/∂V = Σ_a dQ_a,   ∂L/∂A_a = dQ_a − (1/n)·Σ_a' dQ_a'
//
// into dva (rows×(1+n)).
func duelGrad(dva, dq []float32, rows, n int) {
	invN := 1 / float32(n)
	for r := range rows {
		g := dq[r*n : (r+1)*n]
		var sum float32
		for _, x := range g {
			sum += x
		}
		mean := sum * invN
		out := dva[r*(n+1) : (r+1)*(n+1)]
		out[0] = sum
		for j, x := range g {
			out[1+j] = x - mean
		}
	}
}

// duelingOp is duel as a gorgonia op: B×(1+n) [V, A] → B×n Q.
//
// gorgonia can express it with stock ops (naiveNet in naive_bench_test.go does, for the tests):
// Mean along axis 1 and the two broadcasts compile to 11 tape instructions forward (Σ and ÷,
// Reshapes, a Repeat per broadcast, − and +) and more backward, each a dispatch; one op pair
// keeps the tape short and evaluates the same expression as the forward passes.
type duelingOp struct{ matOpBase }

var (
	_ G.SDOp            = duelingOp{}
	_ G.UsePreallocDoer = duelingOp{}
	_ G.UsePreallocDoer = duelingGradOp{}
)

// dueling applies duelingOp through gorgonia's graph.
func dueling(va *G.Node) (*G.Node, error) { return G.ApplyOp(duelingOp{}, va) }

func (duelingOp) outShape(rows, cols int) (tensor.Shape, error) {
	if cols < 2 {
		return nil, fmt.Errorf("nets: dueling head needs [V, A] columns, got %d", cols)
	}
	return tensor.Shape{rows, cols - 1}, nil
}
func (duelingOp) compute(dst, src []float32, rows, cols int) { duel(dst, src, rows, cols-1) }

func (op duelingOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return inferMatShape(op, in)
}
func (op duelingOp) Do(in ...G.Value) (G.Value, error) { return doMat(op, nil, in) }
func (op duelingOp) UsePreallocDo(out G.Value, in ...G.Value) (G.Value, error) {
	return doMat(op, out, in)
}
func (duelingOp) String() string           { return "nets.Dueling" }
func (op duelingOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op duelingOp) Hashcode() uint32      { return hashOf(op) }
func (duelingOp) DiffWRT(int) []bool       { return []bool{true} }

// SymDiff: the aggregation is linear, so its backward needs only ∂L/∂Q (duelGrad).
func (duelingOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	return symDiffVia(duelingGradOp{}, grad)
}

// duelingGradOp is duelGrad as a gorgonia op: B×n dQ → B×(1+n) d[V, A].
type duelingGradOp struct{ matOpBase }

func (duelingGradOp) outShape(rows, cols int) (tensor.Shape, error) {
	return tensor.Shape{rows, cols + 1}, nil
}
func (duelingGradOp) compute(dst, src []float32, rows, cols int) { duelGrad(dst, src, rows, cols) }

func (op duelingGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return inferMatShape(op, in)
}
func (op duelingGradOp) Do(in ...G.Value) (G.Value, error) { return doMat(op, nil, in) }
func (op duelingGradOp) UsePreallocDo(out G.Value, in ...G.Value) (G.Value, error) {
	return doMat(op, out, in)
}
func (duelingGradOp) String() string           { return "nets.DuelingGrad" }
func (op duelingGradOp) WriteHash(h hash.Hash) { fmt.Fprint(h, op.String()) }
func (op duelingGradOp) Hashcode() uint32      { return hashOf(op) }
