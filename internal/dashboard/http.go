package dashboard

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/qfleet/qfleet/actors"
)

// httpView is what the --http endpoints show of a node.
type httpView struct {
	node    string
	roles   []string
	members func() []Member // this node included
	metrics *actors.Metrics
	started time.Time
	run     Run
	history *history
	pprof   bool // serve /debug/pprof/ (--pprof)
}

// runInfo is the run's fixed settings the dashboard draws against.
type Run struct {
	Env            string   `json:"env"`
	Seed           uint64   `json:"seed"`
	TargetReturn   *float64 `json:"target_return"` // null when not finite
	MaxSteps       uint64   `json:"max_steps"`
	ReplayCapacity int      `json:"replay_capacity"`
}

// memberInfo is one cluster member as /status shows it.
type Member struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	// State: alive or leaving (live), left or failed (gone: remembered from
	// the membership events, which the member table forgets).
	State        string  `json:"state"`
	StateSeconds float64 `json:"state_seconds"` // how long it has been in State as this node saw it (0: unknown)
	Self         bool    `json:"self"`
}

// LiveNames are the names of the live members: /status's "members".
func LiveNames(ms []Member) []string {
	var names []string
	for _, m := range ms {
		if m.State == "alive" || m.State == "leaving" {
			names = append(names, m.Name)
		}
	}
	return names
}

// httpLimits bound what one client can take of the node's HTTP server: the
// --http port may be reachable by anyone on the network, and without limits
// a client that connects and sends nothing, or a header byte a second, holds
// a connection and its goroutine for ever.
type httpLimits struct {
	// ReadHeader: the request line and headers must be in by then, however
	// slowly they trickle in (slowloris); a person's or Prometheus's request
	// takes milliseconds, so 5 s forgives any real link.
	ReadHeader time.Duration
	// Read: the whole request. No endpoint takes a body, so it only has to
	// cover the headers; it is there so no read runs without a deadline.
	Read time.Duration
	// Write: from the end of the request headers to the last response byte.
	// /history (about 1 MB when full) and /metrics must get through a slow
	// link, and pprof's CPU profile takes 30 s by default before it sends a
	// byte (net/http/pprof refuses a profile as long as the write timeout),
	// so 60 s; a client that reads slower than that is cut off.
	Write time.Duration
	// Idle: a kept-alive connection between requests. The dashboard polls
	// every second and Prometheus scrapes every 15-60 s, both on a kept
	// connection; a minute frees those of closed tabs and gone scrapers.
	Idle time.Duration
	// MaxHeaderBytes: browsers send a few KiB of headers, even with cookies;
	// 64 KiB leaves room for that and refuses (431) a client that would make
	// the node buffer megabytes of headers.
	MaxHeaderBytes int
}

// defaultHTTPLimits are the limits of every --http server; tests build
// servers with shorter ones.
var defaultHTTPLimits = httpLimits{
	ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 60 * time.Second,
	Idle: 60 * time.Second, MaxHeaderBytes: 64 << 10,
}

// newHTTPServer is the server for h with the default limits: every server
// the node runs is made here, so none goes without them.
func newHTTPServer(h http.Handler) *http.Server { return newHTTPServerWith(h, defaultHTTPLimits) }

func newHTTPServerWith(h http.Handler, l httpLimits) *http.Server {
	return &http.Server{
		Handler: h, ReadHeaderTimeout: l.ReadHeader, ReadTimeout: l.Read, WriteTimeout: l.Write,
		IdleTimeout: l.Idle, MaxHeaderBytes: l.MaxHeaderBytes,
	}
}

// readOnly answers any method but GET and HEAD with 405 and the methods
// that work: nothing the node serves changes state, and a method-less
// pattern (/metrics, /status) would otherwise run its handler for a POST
// or a DELETE as if it were a GET, which misleads whoever sent it.
func readOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, r.Method+" not allowed: the node's HTTP endpoints are read-only (GET, HEAD)", http.StatusMethodNotAllowed)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// processGatherer has the Go runtime's and the process's metrics
// (go_goroutines, go_memstats_*, process_resident_memory_bytes, ...). They
// describe the process, not a node, so they live in one registry per
// process, beside each node's own: tests run many nodes in one process, and
// code that gathers a node's registry (bench) does not pay for them.
var processGatherer = sync.OnceValue(func() prometheus.Gatherer {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
})

// mountPprof serves the Go profiles under /debug/pprof/ on mux. Importing
// net/http/pprof also fills http.DefaultServeMux, which nothing here serves:
// the profiles are only on a node's own mux, and only with --pprof.
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index) // the index and the named profiles (heap, goroutine, ...)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol) // GET and POST: 'go tool pprof' posts addresses
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// newHTTPHandler serves /metrics (Prometheus text), /status (JSON), /history
// (JSON) and / (the dashboard), all read-only, and with v.pprof the Go
// profiles; on muxes of its own, never the default one.
func newHTTPHandler(v httpView) http.Handler {
	mux := http.NewServeMux()
	m := v.metrics
	mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{m.Registry, processGatherer()}, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(statusOf(v, m.NodeStatus()))
	})
	serveDashboard(mux, v.history, v.started)
	top := http.NewServeMux()
	top.Handle("/", readOnly(mux))
	if v.pprof {
		mountPprof(top)
	}
	return top
}

// statusOf is /status: the node, its members, and the counts of the roles it
// has, none of the others' (a learner count of 0 on a runner's node would
// read as a stalled learner). On a node with runners and no learner, the
// counts, returns and runners are its own runners' (actors.Metrics.NodeStatus).
func statusOf(v httpView, st actors.RunStatus) map[string]any {
	has := func(role string) bool { return slices.Contains(v.roles, role) }
	learner, runner, replay := has(actors.RoleLearner), has(actors.RoleRunner), has(actors.RoleReplay)
	members := v.members()
	out := map[string]any{
		"node": v.node, "roles": v.roles, "members": LiveNames(members),
		"uptime_seconds": time.Since(v.started).Seconds(),
		"member_info":    members, "restarts": st.Restarts, "stopped_roles": st.StoppedRoles, "run": v.run,
	}
	counters := map[string]any{}
	if learner || runner {
		// The run's (learner) or this node's runners' (runner only).
		counters["env_steps"], counters["episodes"] = st.EnvSteps, st.Episodes
		counters["experience_sent"], counters["experience_dropped"] = st.ExperienceSent, st.ExperienceDropped
		out["runners"] = st.Runners
		out["mean_return_100_episodes"] = st.Mean100Count
		// null until an episode (at ε ≤ 0.05 for mean_return_100) ended
		out["mean_return_100"], out["mean_return_100_all"] = defined(st.Mean100), defined(st.Mean100All)
		out["weights_version"] = st.WeightsVersion // published (learner), or the oldest acted on (runners)
		out["weights_term"], out["weights_publication"] = actors.SplitVersion(st.WeightsVersion)
		out["weights_lag"] = runnerLags(st, learner)
	}
	if learner {
		counters["learner_updates"] = st.LearnerUpdates
		out["departed_runners"] = st.Departed // runners of nodes gossip declared gone: when, why, their last counts
		out["solved"] = st.Solved
		// Evaluations (the evaluator role): null until the first.
		out["evaluations"], out["last_eval"], out["best_eval"] = st.Evaluations, st.LastEval, st.BestEval
	}
	if replay {
		counters["experience_rejected"], counters["experience_lost"] = st.ExperienceRejected, st.ExperienceLost
		counters["experience_lost_departed"] = st.ExperienceLostDeparted
		counters["replay_inserted"], counters["replay_size"] = st.ReplayInserted, st.ReplaySize
	}
	out["counters"] = counters
	return out
}

// runnerLags is each runner's weights lag in publications: on the learner's
// node behind its published version, as of the runner's last report
// (actors.WeightsLag; runners of another learner term are left out: they do
// not compare); on a runner's own node behind the newest it heard of.
func runnerLags(st actors.RunStatus, learner bool) map[string]uint64 {
	lags := map[string]uint64{}
	for name, r := range st.Runners {
		if !learner {
			lags[name] = r.WeightsLagPublications // behind the newest the runner heard of
		} else if lag, ok := actors.WeightsLag(st.WeightsVersion, r.WeightsVersion); ok {
			lags[name] = lag
		}
	}
	return lags
}
