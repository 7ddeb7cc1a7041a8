package cluster

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qfleet/qfleet/internal/testutil"
)

// testLogger routes logs at level and above to t.Log until the test ends.
func testLogger(t testing.TB, level slog.Level) *slog.Logger {
	l, _ := testutil.Logger(t, level)
	return l
}

// eventLog records the events of one Membership for assertions.
type eventLog struct {
	mu     sync.Mutex
	events []timedEvent
}

type timedEvent struct {
	Event
	at time.Time
}

func (l *eventLog) handle(ev Event) {
	l.mu.Lock()
	l.events = append(l.events, timedEvent{ev, time.Now()})
	l.mu.Unlock()
}

// find returns the first event of kind about member.
func (l *eventLog) find(kind EventKind, member string) (timedEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		if e.Kind == kind && e.Member.Name == member {
			return e, true
		}
	}
	return timedEvent{}, false
}

func (l *eventLog) about(member string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.events {
		if e.Member.Name == member {
			fmt.Fprintf(&b, "[%v %v at %s] ", e.Kind, e.Member.State, e.at.Format("15:04:05.000"))
		}
	}
	return b.String()
}

// waitFor polls until an event of kind about member was recorded.
func (l *eventLog) waitFor(t testing.TB, kind EventKind, member string, total time.Duration) timedEvent {
	t.Helper()
	var found timedEvent
	testutil.CheckFor(t, total, 20*time.Millisecond, func() error {
		e, ok := l.find(kind, member)
		if !ok {
			return fmt.Errorf("no %v event for %s; events about it: %s", kind, member, l.about(member))
		}
		found = e
		return nil
	})
	return found
}

// testNode starts a member on loopback with a free port, stopped at cleanup.
func testNode(t testing.TB, name string, roles []string, remoteAddr string, join []string, mutate func(*Config), opts ...Option) (*Membership, *eventLog) {
	t.Helper()
	cfg := DefaultLocalConfig()
	cfg.NodeName = name
	cfg.Roles = roles
	cfg.RemoteAddr = remoteAddr
	cfg.Join = join
	cfg.Logger = testLogger(t, slog.LevelWarn).With("test_node", name)
	if mutate != nil {
		mutate(&cfg)
	}
	log := &eventLog{}
	m, err := Start(cfg, append([]Option{WithEventHandler(log.handle)}, opts...)...)
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(); err != nil {
			t.Errorf("shutdown %s: %v", name, err)
		}
	})
	return m, log
}
