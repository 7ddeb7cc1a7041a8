package lograte

import (
	"testing"
	"time"
)

// The log holds one line per peer and reason per interval, however many
// refusals.
func TestLogLimiter(t *testing.T) {
	l := New(10 * time.Second)
	t0 := time.Now()
	lines := 0
	for i := 0; i < 1000; i++ {
		if ok, _ := l.Allow("p|type_id", t0.Add(time.Duration(i)*time.Millisecond)); ok {
			lines++
		}
	}
	ok, held := l.Allow("p|type_id", t0.Add(11*time.Second))
	if lines != 1 || !ok || held != 999 {
		t.Fatalf("lines %d (want 1), next line allowed %v with %d held (want true, 999)", lines, ok, held)
	}
	if ok, _ := l.Allow("q|type_id", t0); !ok {
		t.Fatal("another peer's first line was held back")
	}
}
