// Package bench measures qfleet's cross-host flows between real processes
// over protoactor remote on loopback, as 'qfleet bench' runs them:
//
//   - Wire: a runner process streams CartPole-v1 experience to the real
//     replay actor in this process, through the runner's own
//     actors.ExperienceSender (credit window, packing with frames, float16
//     and zstd); it reports transitions/s inserted, wire bytes per
//     transition and CPU.
//   - Weights: the real broadcaster actor in this process sends weights to
//     runner processes that take them with the runner's own
//     actors.WeightsClient; it reports the time from publishing a version to
//     every runner acting on it.
//
// Every side is its own OS process: this package re-executes Executable
// with "bench --bench-child KIND ..." for the other sides (Child is their
// body) and stops them when the benchmark ends, however it ends.
package bench
