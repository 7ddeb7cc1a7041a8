package actors

// RateLimiter keeps the ratio of sampled to inserted transitions near a target,
// like Reverb's SampleToInsertRatio: the learner cannot overfit a table that the
// runners are not refreshing, and runners cannot outrun the learner (which
// would spend env steps that never get learned from).
//
// With diff = inserted·ratio − sampled, sampling is allowed while
// diff ≥ minSize·ratio − tolerance and inserting while
// diff ≤ minSize·ratio + tolerance; the two never block at once. A ratio of 0
// disables the limiter (inserts always allowed; samples after minSize).
type RateLimiter struct {
	ratio     float64
	minSize   uint64
	tolerance float64
	inserted  uint64
	sampled   uint64
}

// NewRateLimiter returns a limiter; see the type comment for the rule.
func NewRateLimiter(samplesPerInsert float64, minSize int, tolerance float64) *RateLimiter {
	return &RateLimiter{ratio: samplesPerInsert, minSize: uint64(minSize), tolerance: tolerance}
}

func (l *RateLimiter) diff() float64 {
	return float64(l.inserted)*l.ratio - float64(l.sampled)
}

// CanSample reports whether a batch of n samples may be drawn now.
func (l *RateLimiter) CanSample(n int) bool {
	if l.inserted < l.minSize {
		return false
	}
	if l.ratio == 0 {
		return true
	}
	return l.diff()-float64(n) >= float64(l.minSize)*l.ratio-l.tolerance
}

// CanInsert reports whether inserts are allowed now.
func (l *RateLimiter) CanInsert() bool {
	if l.ratio == 0 || l.inserted < l.minSize {
		return true
	}
	return l.diff() <= float64(l.minSize)*l.ratio+l.tolerance
}

// Inserted records n inserted transitions.
func (l *RateLimiter) Inserted(n int) { l.inserted += uint64(n) }

// Sampled records n sampled transitions.
func (l *RateLimiter) Sampled(n int) { l.sampled += uint64(n) }
