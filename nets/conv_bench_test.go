package nets

import (
	"fmt"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkConvLayer isolates the choice of conv implementation in the learner's graph: one
// forward and backward of MinAtar's conv layer (10×10×4 → 16@3×3, bias, ReLU), the backward
// started from a given ∂L/∂z (G.Backpropagate, so no loss ops are timed) down to the conv's
// weights and bias, on this package's engine (matmulEngine: both run their products on the
// same kernel):
//
//   - impl=gorgonia-conv2d: gorgonia's Conv2d on a BCHW input (its Im2Col op, the product, a
//     Reshape and a Transpose back to BCHW), BroadcastAdd for the bias, Rectify. It runs with
//     Reset+RunAll only: replaying its tape (tape.go) crashes, because Im2Col's UsePreallocDo
//     writes into whatever value its register holds without checking the shape.
//   - impl=im2col-gemm: the Trainer's graph (model.go): the patch matrix built outside the
//     graph (ConvSpec.im2col, included in the timing), one product with the augmented weight
//     matrix, nets.ReLU, nets.FlattenOnes; with Reset+RunAll (vm=runall) and replayed as the
//     Trainer does (vm=tape).
func BenchmarkConvLayer(b *testing.B) {
	c := minAtar.Conv
	for _, n := range []int{32, 128} {
		for _, v := range []struct{ impl, vm string }{
			{"gorgonia-conv2d", "runall"}, {"im2col-gemm", "runall"}, {"im2col-gemm", "tape"},
		} {
			impl := v.impl
			b.Run(fmt.Sprintf("impl=%s/vm=%s/batch=%d", impl, v.vm, n), func(b *testing.B) {
				rng := rand.New(rand.NewPCG(5, 6))
				obs := minAtarObs(rng, minAtar, n)
				var mm gemm
				g := G.NewGraph()
				var z *G.Node // the layer's output
				var learn G.Nodes
				var prepare func()
				rnd := func(shape ...int) *tensor.Dense {
					t := tensor.New(tensor.WithShape(shape...), tensor.Of(tensor.Float32))
					for i, d := 0, t.Float32s(); i < len(d); i++ {
						d[i] = float32(rng.NormFloat64())
					}
					return t
				}
				if impl == "gorgonia-conv2d" {
					xt := tensor.New(tensor.WithShape(n, c.Channels, c.Height, c.Width), tensor.Of(tensor.Float32))
					x := G.NodeFromAny(g, xt, G.WithName("x"))
					filter := G.NodeFromAny(g, rnd(c.Filters, c.Channels, c.Kernel, c.Kernel), G.WithName("filter"))
					bias := G.NodeFromAny(g, rnd(c.Filters), G.WithName("bias"))
					z = G.Must(G.Conv2d(x, filter, tensor.Shape{c.Kernel, c.Kernel}, nil, []int{1, 1}, nil))
					z = G.Must(G.Rectify(G.Must(G.BroadcastAdd(z, bias, nil, []byte{0, 2, 3}))))
					learn = G.Nodes{filter, bias}
					prepare = func() { toBCHW(xt.Float32s(), obs, c, n) }
				} else {
					net := newAugNet(minAtar)
					rows, cols := n*net.inRows(), net.inCols()
					xBuf := make([]float32, rows*cols)
					x := inputMatrix(g, "x", xBuf, rows, cols)
					w := G.NodeFromAny(g, rnd(cols, c.Filters), G.WithName("Gc"))
					z = G.Must(flattenOnes(G.Must(reluFn(G.Must(G.Mul(x, w)))), c.positions()))
					learn = G.Nodes{w}
					prepare = func() { net.fillInput(xBuf, obs, n) }
				}
				dz := G.NodeFromAny(g, rnd(z.Shape()...), G.WithName("dz")) // ∂L/∂z
				grads, err := G.Backpropagate(G.Nodes{z}, G.Nodes{dz}, learn)
				if err != nil {
					b.Fatal(err)
				}
				vm := G.NewTapeMachine(g.ExactSubgraphRoots(append(G.Nodes{z}, grads...)...),
					G.WithEngine(matmulEngine{gemm: &mm}))
				defer vm.Close()
				run := func() error { vm.Reset(); return vm.RunAll() }
				if v.vm == "tape" {
					r, err := newTapeRunner(vm)
					if err != nil {
						b.Fatal(err)
					}
					run = r.exec
				}
				b.ReportAllocs()
				cpu0 := processCPU()
				for b.Loop() {
					prepare()
					if err := run(); err != nil {
						b.Fatal(err)
					}
				}
				reportRate(b, cpu0, "passes")
			})
		}
	}
}
