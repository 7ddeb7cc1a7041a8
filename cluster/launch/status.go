package launch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// ClusterStatus is the part of the learner's /status that Status shows.
type ClusterStatus struct {
	Node     string   `json:"node"`
	Members  []string `json:"members"`
	Counters struct {
		EnvSteps       uint64 `json:"env_steps"`
		Episodes       uint64 `json:"episodes"`
		LearnerUpdates uint64 `json:"learner_updates"`
	} `json:"counters"`
	Mean100     *float64 `json:"mean_return_100"`
	Publication uint64   `json:"weights_publication"`
	Solved      bool     `json:"solved"`
	Uptime      float64  `json:"uptime_seconds"`
	Run         struct {
		Env          string   `json:"env"`
		TargetReturn *float64 `json:"target_return"`
		MaxSteps     uint64   `json:"max_steps"`
	} `json:"run"`
	Runners map[string]struct {
		EnvSteps uint64 `json:"env_steps"`
		Episodes uint64 `json:"episodes"`
	} `json:"runners"`
}

// readStatus reads h's node's /status through c.
func readStatus(ctx context.Context, c *conn) (ClusterStatus, error) {
	var st ClusterStatus
	body, err := c.httpGet(ctx, c.h.HTTP, "/status")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("/status: %v", err)
	}
	return st, nil
}

// waitMembers waits until the learner's /status lists every node of the
// cluster, printing the members whenever they change. Without a learner
// serving HTTP (a cluster of trials nodes) the nodes' own "joined" lines
// are all there is to wait for.
func (l *launcher) waitMembers(ctx context.Context, deadline time.Time) error {
	sh := l.spec.StatusHost()
	if sh == nil {
		l.out.line("cluster: every node joined (no learner serves /status to list the members)")
		return nil
	}
	c := l.conns[sh.Name]
	want := l.spec.Names()
	last := ""
	for {
		st, err := readStatus(ctx, c)
		if err == nil {
			sort.Strings(st.Members)
			if now := strings.Join(st.Members, ", "); now != last {
				last = now
				var missing []string
				for _, n := range want {
					if !slices.Contains(st.Members, n) {
						missing = append(missing, n)
					}
				}
				if len(missing) == 0 {
					since := ""
					if !l.started.IsZero() {
						since = fmt.Sprintf(", %.1f s after the first start", time.Since(l.started).Seconds())
					}
					l.out.line("cluster up: %d members (%s) in %s's /status%s", len(st.Members), now, sh.Name, since)
					return nil
				}
				l.out.line("cluster: members %s; waiting for %s", now, strings.Join(missing, ", "))
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return hostErr(sh, "the learner's /status did not answer within %v: %v", l.wait, err)
			}
			return hostErr(sh, "not every node joined within %v: members %s", l.wait, last)
		}
		if err != nil {
			// Is the learner's node still there to answer?
			if ns, serr := readState(ctx, c, 1); serr == nil && ns.pid == 0 {
				return hostErr(sh, "the learner's node ended before every member joined: %s", lastOf(ns.log))
			}
		}
		if err := sleep(ctx, l.poll); err != nil {
			return err
		}
	}
}

// Status prints every node's state (its process, from its pid file) and,
// from the learner's /status, the members and the run's progress. A host
// that cannot be reached is shown, and makes the error returned at the end.
func Status(ctx context.Context, s *Spec, o Options) error {
	conns, errs := connectAll(ctx, s.Hosts)
	defer closeAll(conns)
	states := make(map[string]string, len(s.Hosts))
	running := map[string]bool{}
	var mu sync.Mutex
	errs = append(errs, forEach(s.Hosts, func(h *Host) error {
		c := conns[h.Name]
		if c == nil {
			return nil
		}
		st, err := readState(ctx, c, 1)
		text := ""
		switch {
		case err != nil:
			text = "unknown: " + err.Error()
		case st.pid != 0 && st.unit != "":
			text = fmt.Sprintf("running (pid %d, systemd unit %s)", st.pid, st.unit)
		case st.pid != 0:
			text = fmt.Sprintf("running (pid %d)", st.pid)
		default:
			text = "not running; " + lastOf(st.log)
		}
		mu.Lock()
		states[h.Name], running[h.Name] = text, err == nil && st.pid != 0
		mu.Unlock()
		return err
	})...)
	for _, e := range errs {
		if he, ok := e.(*HostError); ok && states[he.Host] == "" {
			states[he.Host] = "unreachable: " + he.Err.Error()
		}
	}
	tw := tabwriter.NewWriter(o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tROLES\tSTATE")
	for _, h := range s.Hosts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Name, h.Address, strings.Join(h.Roles, ","), states[h.Name])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch sh := s.StatusHost(); {
	case sh == nil:
	case !running[sh.Name]:
		fmt.Fprintf(o.Out, "%s's node does not run: no /status to read\n", sh.Name)
	default:
		st, err := readStatus(ctx, conns[sh.Name])
		if err != nil {
			fmt.Fprintf(o.Out, "%s's /status: %v\n", sh.Name, err)
		} else {
			printRun(o.Out, sh.Name, st)
		}
	}
	if err := oneLine(errs); err != nil {
		return err
	}
	var down []string
	for _, h := range s.Hosts {
		if !running[h.Name] {
			down = append(down, h.Name)
		}
	}
	if len(down) > 0 {
		return &NodesDownError{Down: down, Of: len(s.Hosts)}
	}
	return nil
}

// NodesDownError is Status's answer when every host answered but nodes do
// not run: a script can tell a cluster that runs from one that does not
// by the exit code, as with systemctl status.
type NodesDownError struct {
	Down []string // the nodes that do not run, in the file's order
	Of   int      // the cluster's nodes
}

func (e *NodesDownError) Error() string {
	return fmt.Sprintf("%d of %d nodes do not run: %s", len(e.Down), e.Of, strings.Join(e.Down, ", "))
}

// printRun prints the learner's view of the cluster and the run.
func printRun(w io.Writer, node string, st ClusterStatus) {
	sort.Strings(st.Members)
	mean := "none yet"
	if st.Mean100 != nil {
		mean = fmt.Sprintf("%.1f", *st.Mean100)
	}
	target := ""
	if st.Run.TargetReturn != nil {
		target = fmt.Sprintf(" (target %g)", *st.Run.TargetReturn)
	}
	fmt.Fprintf(w, "%s's /status: members %s; %s: %d env steps, %d episodes, mean100 %s%s, solved %v, %d learner updates, weights publication %d, up %.0f s\n",
		node, strings.Join(st.Members, ", "), st.Run.Env, st.Counters.EnvSteps, st.Counters.Episodes, mean, target, st.Solved,
		st.Counters.LearnerUpdates, st.Publication, st.Uptime)
	names := make([]string, 0, len(st.Runners))
	for n := range st.Runners {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		r := st.Runners[n]
		fmt.Fprintf(w, "  runner %s: %d env steps, %d episodes\n", n, r.EnvSteps, r.Episodes)
	}
}

// Logs writes the last lines of node's log to w and, with follow, what it
// appends after, until ctx ends.
func Logs(ctx context.Context, s *Spec, node string, lines int, follow bool, w io.Writer) error {
	h := s.Host(node)
	if h == nil {
		return fmt.Errorf("no node %q in %s (nodes: %s)", node, s.Path, strings.Join(s.Names(), ", "))
	}
	c, err := dial(ctx, h)
	if err != nil {
		return err
	}
	defer c.Close()
	f := ""
	if follow {
		f = " -F"
	}
	script := prologue(h.Dir) + `[ -f "$D/node.log" ] || { echo "no log at $D/node.log: the node was never launched there" >&2; exit 1; }
exec tail -n ` + fmt.Sprint(lines) + f + ` "$D/node.log"
`
	var errb strings.Builder
	err = c.stream(ctx, script, nil, w, &errb)
	if ctx.Err() != nil && follow {
		return nil // the user stopped following
	}
	if err != nil {
		if line := lastLine(errb.String()); line != "" {
			return hostErr(h, "%s", line)
		}
		return hostErr(h, "%v", err)
	}
	return nil
}
