package actors

import (
	"testing"
	"time"
)

// A departed runner leaves the live runners and settles its share of the
// accounting exactly: what it reported and what the replay got decide what
// it sent; what was in flight when it went is counted lost with it; a late
// batch settles it anew; a runner heard from again is back.
func TestDepartedRunnerSettlesAccounting(t *testing.T) {
	m := NewMetrics()
	m.update(func(s *RunStatus) { s.replayLocal = true })
	set := func(name string, sent, received, lost uint64) {
		m.update(func(s *RunStatus) {
			s.runner(name, false, func(r *RunnerStatus) {
				r.ExperienceSent, r.ExperienceReceived, r.ExperienceLost = sent, received, lost
			})
			recountExperience(s)
		})
	}
	set("B/runner-0", 1200, 1000, 50) // 150 in flight at its last report
	set("B/runner-1", 1000, 1100, 0)  // sent 100 more than it had reported
	set("C/runner-0", 500, 480, 0)    // live: its 20 stay in flight
	m.RunnerNodeDeparted("B", "failed", time.Now())
	st := m.Status()
	if len(st.Runners) != 1 || len(st.Departed) != 2 || st.Departed["B/runner-0"].Why != "failed" {
		t.Fatalf("runners %v, departed %v", st.Runners, st.Departed)
	}
	// sent = 1200 + 1100 + 500; lost with departed runners = 150.
	if st.ExperienceSent != 2800 || st.ExperienceLostDeparted != 150 {
		t.Fatalf("sent %d (want 2800), lost with departed runners %d (want 150)", st.ExperienceSent, st.ExperienceLostDeparted)
	}
	// A batch of B/runner-0 that was in flight arrives after all.
	m.update(func(s *RunStatus) {
		s.runner("B/runner-0", false, func(r *RunnerStatus) { r.ExperienceReceived += 100 })
		recountExperience(s)
	})
	if st := m.Status(); st.ExperienceLostDeparted != 50 || len(st.Runners) != 1 {
		t.Fatalf("after a late batch: lost with departed runners %d (want 50), live runners %d (want 1)", st.ExperienceLostDeparted, len(st.Runners))
	}
	// B comes back (a frozen host continued): its runners report again.
	m.update(func(s *RunStatus) {
		s.runner("B/runner-0", true, func(r *RunnerStatus) { r.ExperienceSent = 1300 })
		recountExperience(s)
	})
	if st := m.Status(); len(st.Runners) != 2 || len(st.Departed) != 1 || st.ExperienceLostDeparted != 0 {
		t.Fatalf("after B/runner-0 is back: runners %d (want 2), departed %d (want 1), lost with departed %d (want 0)",
			len(st.Runners), len(st.Departed), st.ExperienceLostDeparted)
	}
}
