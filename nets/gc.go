package nets

import "runtime/debug"

// LearnerGCPercent is the GOGC value recommended for a learner process. Each gorgonia update
// still allocates the graph's intermediate tensors (the TapeMachine drops them on Reset), so
// with the default GOGC=100 the collector runs several times per update at small batch;
// 400 cut GC cycles 4–5× in measurements, at the cost of a larger heap (tens of MB).
const LearnerGCPercent = 400

// SetLearnerGC sets GOGC to LearnerGCPercent and returns the previous setting. It is
// process-global, so the library never calls it: a learner command calls it once at start
// (or sets GOGC=400 in the environment).
func SetLearnerGC() (previous int) { return debug.SetGCPercent(LearnerGCPercent) }
