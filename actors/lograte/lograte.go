// Package lograte lets one log line per key through per interval and counts
// the rest, so that a peer sending garbage in a loop costs a line every few
// seconds instead of filling a disk.
package lograte

import (
	"sync"
	"time"
)

// Limiter holds the last line's time per key. The key is chosen by the
// caller (peer and reason, or the message's fixed part). Safe for
// concurrent use.
type Limiter struct {
	every time.Duration
	mu    sync.Mutex
	keys  map[string]*logKey
}

type logKey struct {
	last       time.Time
	suppressed uint64
}

// maxKeys bounds the limiter's memory under a flood of distinct keys
// (many peers): when full it starts over, which at worst lets one more line
// per key through.
const maxKeys = 1024

// New returns a Limiter that lets a line per key through per every.
func New(every time.Duration) *Limiter {
	return &Limiter{every: every, keys: map[string]*logKey{}}
}

// Allow reports whether a line for key may be logged now and, if so, how
// many lines for it were held back since the last one.
func (l *Limiter) Allow(key string, now time.Time) (ok bool, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.keys[key]
	if k == nil {
		if len(l.keys) >= maxKeys {
			clear(l.keys)
		}
		k = &logKey{}
		l.keys[key] = k
	} else if now.Sub(k.last) < l.every {
		k.suppressed++
		return false, 0
	}
	suppressed, k.suppressed, k.last = k.suppressed, 0, now
	return true, suppressed
}
