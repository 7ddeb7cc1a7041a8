package qfleet

import (
	"fmt"
	"testing"
	"time"

	"github.com/qfleet/qfleet/cluster"
	"github.com/qfleet/qfleet/internal/dashboard"
)

func TestDashboardGoneMembers(t *testing.T) {
	g := newGoneMembers()
	t0 := time.Now()
	runner := cluster.Member{Name: "B", Roles: []string{"runner"}}
	failed, left := runner, cluster.Member{Name: "C", Roles: []string{"runner"}, State: cluster.StateLeft}
	failed.State = cluster.StateFailed
	g.note(cluster.Event{Kind: cluster.Failed, Member: failed}, t0)
	g.note(cluster.Event{Kind: cluster.Left, Member: left}, t0)
	live := []cluster.Member{{Name: "A", Roles: []string{"learner"}, State: cluster.StateAlive, Since: t0}}
	got := g.with(live, "A", t0.Add(5*time.Second))
	if s := fmt.Sprint(got); s != "[{A [learner] alive 5 true} {B [runner] failed 5 false} {C [runner] left 5 false}]" {
		t.Errorf("with = %s", s)
	}
	if names := dashboard.LiveNames(got); fmt.Sprint(names) != "[A]" {
		t.Errorf("LiveNames = %v, want [A]", names)
	}
	back := runner
	back.State = cluster.StateAlive
	g.note(cluster.Event{Kind: cluster.Joined, Member: back}, t0)
	if got := g.with(live, "A", t0); len(got) != 2 || got[1].Name != "C" {
		t.Errorf("after B rejoined: %v, want A and C (B is in the live table again, not gone)", got)
	}
	for i := range maxGoneMembers + 10 {
		g.note(cluster.Event{Kind: cluster.Failed, Member: cluster.Member{Name: fmt.Sprint("n", i), State: cluster.StateFailed}}, t0.Add(time.Duration(i)*time.Second))
	}
	if got := g.with(nil, "A", t0); len(got) != maxGoneMembers {
		t.Errorf("%d gone members remembered, want at most %d", len(got), maxGoneMembers)
	}
}
