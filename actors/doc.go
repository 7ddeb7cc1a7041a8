// Package actors holds the roles of a qfleet run as protoactor actors and
// the protocol between them. The same code runs every role in one process
// (StartDev) or some of them on one cluster node (StartNode, with a
// Directory that follows gossip); only where a PID points differs.
//
// # The roles
//
//   - runner (runner.go): steps an env with an ε-greedy policy on its
//     behaviour copy of the Q-network, turns steps into n-step transitions
//     (nstep.go) and streams them to the replay in batches. The env is a
//     vector of envs_per_runner (envs.VecEnv), one batched forward pass per
//     step, each env with its own ε rung and n-step returns (runnerenvs.go).
//     Its experience sender (sender.go: outbox, credit window, packing,
//     lost links) and its weights client (weightsclient.go: subscription,
//     chunk assembly, newest weights only) are exported for programs that
//     stream experience or take weights without a runner.
//   - replay (replay.go): owns the experience table (table.go; frames.go
//     stores binary frames once), prioritized sampling (sumtree), the
//     sample:insert rate limiter (ratelimit.go), the runners' credit and
//     the books of their streams (streams.go, departed.go); it snapshots
//     itself (snapshot.go).
//   - learner (learner.go): keeps sample requests outstanding, trains the
//     online network on each batch (package nets), syncs the target,
//     publishes weights and writes checkpoints (checkpoint.go).
//   - broadcaster (broadcaster.go): keeps only the newest weights and gives
//     each subscribed runner one message in flight.
//   - stats (stats.go, on the learner's node): the episode books, mean100
//     and the stop rule; the evaluations' books (evalstats.go).
//   - evaluator (evaluator.go; optional: dev mode runs it when eval_every
//     > 0, a cluster node when --roles names it): takes the newest weights
//     with a WeightsClient as a runner does and, every eval_every env steps
//     of the run (as the weights carry them), plays eval_episodes greedy
//     episodes on an env of its own, on seeds of its own that are the same
//     at every evaluation (EvalSeed, EpisodeSeeds), and reports an
//     EvalReport to the stats. The stats hand it to the learner, which
//     keeps the weights of its last publications and writes the best
//     evaluated version as best.ckpt (best.go); stop_on: eval ends the run
//     on an evaluation's mean instead of mean100.
//
// Each node spawns its roles under one supervisor (supervision.go: a
// restart budget with back-off) by well-known names (ReplayName, ...), so
// that a role's PID is its node's remote address plus its name.
//
// # One transition, env to learner
//
// A runner steps its env; the n-step accumulator emits a transition
// (obs, action, n-step return, discount, next obs) into the batch being
// filled. A full batch (SendBatch transitions) waits in the runner's
// outbox until the replay has granted credit for it; then it goes as an
// ExperienceBatch to a replay on the same node, or packed by messages/wire
// (deduplicated observations, float16, zstd) as a PackedExperience to one
// on another host. The replay checks it (sizes, the stream's sequence:
// duplicates and late batches are counted, never inserted twice), inserts
// it, and returns a Credit for as many transitions. The learner's
// SampleRequest is answered when the rate limiter allows, with a
// SampleBatch; the learner trains on it and sends back PriorityUpdates.
//
// # One weights version, learner to runner
//
// Every PublishEvery updates the learner sends Weights (term and version:
// the term changes when a learner restarts from a checkpoint) to the
// broadcaster. The broadcaster keeps the newest only. A runner that
// subscribed (SubscribeWeights) and acknowledged its last message gets the
// newest: the Weights itself on the same node, or WeightsChunks (zstd,
// a delta against the version the runner acknowledged) one in flight over
// a remote link. The runner assembles the chunks, keeps the newest by
// (term, version) and loads them into its behaviour network between chunks
// of env steps.
//
// # Weights bandwidth budget
//
// Config.WeightsMaxRate and WeightsMinInterval cap what weights cost each
// runner on another host (weightsbudget.go): bytes are paid after they are
// sent (the link's clock moves on by bytes/rate from when they went, so over
// any window the bytes stay within rate·window plus one chunk, resends
// included), and a version starts no sooner than the interval after the
// previous one started. Whatever waits is chosen when the budget allows it,
// so a version that waited is replaced by a newer one. A runner on the
// broadcaster's node gets the Weights in memory and no budget. The budget
// never holds a runner silent for as long as its resubscribe window
// (Validate refuses such keys), and a runner that subscribes again keeps
// its budget, and its delta base when it still holds that version. The
// broadcaster and the replay book each runner's link (links.go): bytes and
// bytes/s each way, the version it has whole and its lag, in its
// RunnerStatus on their node.
//
// Delivery between actors is at most once (protoactor drops what was queued
// on a broken stream): everything that must arrive is acknowledged by its
// receiver — credits for experience, acks for weights — and a runner that
// loses its link to the replay restores its credit window instead of
// waiting forever.
package actors
