package actors

import (
	"strings"
	"time"
)

// DepartedRunner is a runner whose node gossip declared gone: it leaves the
// live runners of /status and is kept here, with when and why, and its
// share of the experience accounting settled.
type DepartedRunner struct {
	RunnerStatus
	At  time.Time `json:"at"`
	Why string    `json:"why"` // "failed" or "left"
}

// maxDeparted bounds the departed list: the oldest are forgotten first
// (their settled counts stay in the totals).
const maxDeparted = 256

// RunnerNodeDeparted moves the runners of node (named "<node>/runner-i")
// from the live runners to the departed ones. A runner heard from again (a
// frozen node that came back) returns to the live ones by itself.
func (m *Metrics) RunnerNodeDeparted(node, why string, at time.Time) {
	m.update(func(s *RunStatus) {
		for name, r := range s.Runners {
			if !strings.HasPrefix(name, node+"/") {
				continue
			}
			delete(s.Runners, name)
			if s.Departed == nil {
				s.Departed = map[string]DepartedRunner{}
			}
			if len(s.Departed) >= maxDeparted {
				oldest := ""
				for k, d := range s.Departed {
					if oldest == "" || d.At.Before(s.Departed[oldest].At) {
						oldest = k
					}
				}
				s.settledSent += settledSent(s.Departed[oldest].RunnerStatus, s.replayLocal)
				s.settledDropped += s.Departed[oldest].ExperienceDropped
				s.settledLostDeparted += lostDeparted(s.Departed[oldest].RunnerStatus, s.replayLocal)
				delete(s.Departed, oldest)
			}
			s.Departed[name] = DepartedRunner{RunnerStatus: r, At: at, Why: why}
		}
		recountExperience(s)
	})
}

// runner applies f to the status of runner name, live or departed; a
// progress report (back=true) from a departed runner brings it back.
func (s *RunStatus) runner(name string, back bool, f func(r *RunnerStatus)) {
	if d, ok := s.Departed[name]; ok {
		if !back {
			f(&d.RunnerStatus)
			s.Departed[name] = d
			return
		}
		delete(s.Departed, name)
		s.Runners[name] = d.RunnerStatus
	}
	r, ok := s.Runners[name]
	if !ok && len(s.Runners) >= MaxRunners {
		return // invented names do not grow the books
	}
	f(&r)
	s.Runners[name] = r
}

// settledSent is what a departed runner sent, as far as anyone can know: its
// last report, or more when the replay (on this node) received more from it
// than it had reported before it died.
func settledSent(r RunnerStatus, replayLocal bool) uint64 {
	if !replayLocal {
		return r.ExperienceSent
	}
	return max(r.ExperienceSent, r.ExperienceReceived+r.ExperienceLost)
}

// lostDeparted is what a departed runner had sent that never reached the
// replay and never will be shown lost by a later batch: what was in flight
// when it died. Known only where the replay is.
func lostDeparted(r RunnerStatus, replayLocal bool) uint64 {
	if !replayLocal {
		return 0
	}
	return settledSent(r, true) - r.ExperienceReceived - r.ExperienceLost
}

// recountExperience sums the runners' experience counts, live and departed:
// Σ sent = replay_inserted + experience_rejected + experience_lost +
// experience_lost_departed + in flight (live runners only).
func recountExperience(s *RunStatus) {
	s.ExperienceSent, s.ExperienceDropped, s.ExperienceLostDeparted = s.settledSent, s.settledDropped, s.settledLostDeparted
	for _, r := range s.Runners {
		s.ExperienceSent += r.ExperienceSent
		s.ExperienceDropped += r.ExperienceDropped
	}
	for _, d := range s.Departed {
		s.ExperienceSent += settledSent(d.RunnerStatus, s.replayLocal)
		s.ExperienceDropped += d.ExperienceDropped
		s.ExperienceLostDeparted += lostDeparted(d.RunnerStatus, s.replayLocal)
	}
}
