package dashboard

import (
	"context"
	"net"
	"slices"
	"time"

	"github.com/qfleet/qfleet/actors"
)

// Options are what a node's dashboard shows.
type Options struct {
	Node    string
	Roles   []string
	Members func() []Member // this node included; nil: this node alone
	Metrics *actors.Metrics
	Started time.Time
	Run     Run
	Resumed bool // a resumed learner's update count jumps to the checkpoint's once: not a rate
	Pprof   bool // serve /debug/pprof/ as well
}

// Serve serves the dashboard, /status, /history and /metrics on ln until
// the returned stop is called. The history behind the curves is kept only
// while it serves.
func Serve(ln net.Listener, o Options) (stop func()) {
	members := o.Members
	if members == nil {
		self := []Member{{Name: o.Node, Roles: o.Roles, State: "alive", Self: true}}
		members = func() []Member { return self }
	}
	hist := newHistory(historyLen)
	ctx, cancel := context.WithCancel(context.Background())
	go recordHistory(ctx, hist, &sampler{m: o.Metrics, learner: slices.Contains(o.Roles, actors.RoleLearner),
		resumed: o.Resumed, started: o.Started}, historyEvery)
	srv := newHTTPServer(newHTTPHandler(httpView{
		node: o.Node, roles: o.Roles, members: members, metrics: o.Metrics, started: o.Started, history: hist,
		run: o.Run, pprof: o.Pprof,
	}))
	go srv.Serve(ln) //nolint:errcheck // returns when the listener closes at exit
	return func() { srv.Close(); cancel() }
}

// Defined is &x for a finite x, else nil: JSON's null for "not known".
func Defined(x float64) *float64 { return defined(x) }
