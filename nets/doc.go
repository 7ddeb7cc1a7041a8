// Package nets holds the DQN Q-network: a gorgonia learner (Trainer) and a plain-Go
// inference path for runners (Forward).
//
// # Roles and goroutines
//
//   - Forward (runner side): Q-values and greedy actions for one observation, plain Go, no
//     gorgonia, zero allocations per call. Not safe for concurrent use: one per runner
//     goroutine. Parameters arrive as a flat []float32 (SetParams copies).
//   - Trainer (learner side): online and target networks, Adam state, and the DQN update
//     (Huber TD loss, backward pass and gradient in gorgonia). One goroutine at a time.
//
// # Networks
//
// A Spec is an MLP (Inputs → Hidden… → Outputs), optionally with a convolutional torso
// (Spec.Conv: one valid conv + ReLU on a channel-last observation, the MinAtar paper's
// network is MinAtarSpec; or Spec.Convs: a chain of them, each with its own ConvSpec.Stride,
// the Nature DQN's is NatureSpec), optionally with its input scaled (Spec.InputScale: 1/255
// for pixels), optionally with a dueling head (Spec.Dueling: Q = V + A − mean(A)) and
// optionally LayerNorm before every hidden ReLU (Spec.LayerNorm, as in PQN; no learnable gain
// or bias, so the parameter layout is unchanged). The zero Conv, Convs, InputScale, Dueling
// and LayerNorm are the plain MLP.
//
// # Parameter layout
//
// One flat []float32 per network: for each affine layer l in order, W_l row-major [in][out]
// then b_l [out] (Spec.NumParams elements). The convs are the first such layers, each on one
// K×K×C patch (rows in (ky, kx, c) order); the dueling head is one layer of 1+Outputs
// columns, V first. See Spec and ConvSpec. InitParams draws it like PyTorch's nn.Linear and nn.Conv2d.
// Trainer.CopyParams, State and Restore speak this layout; Forward.SetParams reads it.
//
// # Update
//
//	target   = r + disc·Q̄(s', argmax_a Q(s',a))   (DoubleDQN; else r + disc·max_a Q̄(s',a))
//	δ        = Q(s,a) − target
//	loss     = (1/B)·Σ_i w_i·Huber₁(δ_i)
//	θ       ← Adam(θ, clip_‖·‖₂(∂loss/∂θ, MaxGradNorm))
//
// disc is γⁿ·(1−terminated), so n-step returns and truncation (bootstrap with disc = γⁿ)
// are the caller's choice. The target is a stop-gradient: it is computed before the
// gorgonia run, outside the graph.
//
// # Build tags and process settings
//
// With -tags openblas the learner's matrix products run in OpenBLAS through cgo (Debian
// libopenblas-dev; set OPENBLAS_NUM_THREADS=1). Without it they run in this package's AVX2
// kernel (gonum on CPUs without AVX2/FMA). BLASName reports which. The package changes no
// process-global setting; a learner command should call SetLearnerGC (GOGC=400) itself.
//
// README.md in this directory explains what was done to the gorgonia path and why, with
// measurements.
package nets
