package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Membership is this node's memberlist member and its view of the others.
//
// Concurrency: every method is safe for concurrent use. Event handlers and
// subscribers are served by one goroutine, in the order changes were learned.
// memberlist itself calls into the member table while holding its own lock,
// so nothing here calls back into memberlist from those callbacks.
type Membership struct {
	cfg  Config
	ml   *memberlist.Memberlist
	log  *slog.Logger
	now  func() time.Time
	opts options

	// Local metadata. memberlist reads meta from its own goroutines
	// (NodeMeta); metaMu serialises changes to local.
	meta   atomic.Pointer[[]byte]
	metaMu sync.Mutex
	local  nodeMeta

	mu        sync.Mutex
	members   map[string]Member // live members (Alive, Leaving), self included
	queue     []Event           // learned, not yet dispatched
	listeners map[int]func(Event)
	subs      map[int]*subscriber
	nextID    int
	closed    bool

	wake chan struct{} // dispatcher has work; capacity 1
	done chan struct{} // closed by Shutdown
	wg   sync.WaitGroup

	lifeMu   sync.Mutex // Leave vs Shutdown: memberlist panics on Leave after Shutdown
	shutdown atomic.Bool
}

type subscriber struct {
	ch   chan Event
	gone chan struct{} // closed by the cancel func; unblocks a pending send

	mu     sync.Mutex // held by the dispatcher while sending to ch
	closed bool       // ch is closed
}

func (s *subscriber) close() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.ch)
	}
	s.mu.Unlock()
}

// Option adjusts Start.
type Option func(*options)

type options struct {
	handlers       []func(Event)
	joinTimeout    time.Duration
	rejoinInterval time.Duration
	rejoinSet      bool
	now            func() time.Time
	tune           func(*memberlist.Config)
}

// WithEventHandler calls f for every Event, from the dispatch goroutine, in
// order, starting with this node's own Joined. f must not block for long: it
// delays every other handler and subscriber.
func WithEventHandler(f func(Event)) Option {
	return func(o *options) { o.handlers = append(o.handlers, f) }
}

// WithJoinTimeout keeps retrying the seeds for up to d before Start gives up
// (default 0: one attempt). Useful when nodes start in any order.
func WithJoinTimeout(d time.Duration) Option {
	return func(o *options) { o.joinTimeout = d }
}

// WithRejoinInterval sets how often seeds that are not live members are
// joined again (default: the profile's, 1–10 s; 0 disables). Without it a
// node whose seed crashed and restarted never finds it again: memberlist
// stops probing dead members, and the restarted seed knows nobody.
func WithRejoinInterval(d time.Duration) Option {
	return func(o *options) { o.rejoinInterval, o.rejoinSet = d, true }
}

// WithClock replaces time.Now (member timestamps, the default epoch).
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithMemberlistConfig lets f adjust the memberlist configuration after the
// profile is applied: an escape hatch for tuning and tests. Changing Name,
// Delegate, Events or the logger breaks Membership.
func WithMemberlistConfig(f func(*memberlist.Config)) Option {
	return func(o *options) { o.tune = f }
}

// Start creates this node's memberlist member, advertising its roles, remote
// address and epoch, and joins the seeds in cfg.Join. With no seeds the node
// is the first of a new cluster. Errors: ErrInvalidConfig, ErrMetaTooLarge,
// a bind failure naming GossipAddr, ErrJoin naming the seeds.
func Start(cfg Config, opts ...Option) (*Membership, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	prof := profiles[cfg.Profile]
	if !o.rejoinSet {
		o.rejoinInterval = prof.rejoinInterval
	}
	log := cfg.Logger
	if log == nil {
		log = discardLogger()
	}
	log = log.With("node", cfg.NodeName)
	cfg.Roles = slices.Clone(cfg.Roles)
	cfg.Join = slices.Clone(cfg.Join)
	if cfg.Epoch == 0 {
		cfg.Epoch = uint64(o.now().UnixNano())
	}

	m := &Membership{
		cfg:       cfg,
		log:       log,
		now:       o.now,
		opts:      o,
		local:     nodeMeta{Version: metaVersion, Roles: cfg.Roles, Remote: cfg.RemoteAddr, Epoch: cfg.Epoch, Runners: cfg.Runners},
		members:   map[string]Member{},
		listeners: map[int]func(Event){},
		subs:      map[int]*subscriber{},
		wake:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	// memberlist panics on oversized metadata: check before it asks.
	b, err := m.local.encode()
	if err != nil {
		return nil, err
	}
	m.meta.Store(&b)

	mc, err := m.memberlistConfig(prof)
	if err != nil {
		return nil, err
	}
	m.wg.Add(1)
	go m.dispatch()

	m.ml, err = memberlist.Create(mc)
	if err != nil {
		m.stopLoops()
		return nil, fmt.Errorf("gossip on %s: %w", cfg.GossipAddr, err)
	}
	if len(cfg.Join) > 0 {
		if err := m.join(); err != nil {
			return nil, errors.Join(err, m.Shutdown())
		}
	}
	if len(cfg.Join) > 0 && o.rejoinInterval > 0 {
		m.wg.Add(1)
		go m.rejoinLoop()
	}
	self := m.LocalMember()
	log.Info("cluster member started", "gossip", self.GossipAddr, "remote", cfg.RemoteAddr,
		"roles", strings.Join(cfg.Roles, ","), "profile", cfg.Profile, "encrypted", len(cfg.ClusterKey) > 0)
	return m, nil
}

func (m *Membership) memberlistConfig(prof profile) (*memberlist.Config, error) {
	c := memberlist.DefaultLANConfig()
	prof.apply(c)
	c.Name = m.cfg.NodeName
	ip, port, err := splitIPPort(m.cfg.GossipAddr, false)
	if err != nil {
		return nil, fmt.Errorf("%w: GossipAddr %q: %v", ErrInvalidConfig, m.cfg.GossipAddr, err)
	}
	c.BindAddr, c.BindPort = ip.String(), port
	c.AdvertisePort = port
	if m.cfg.AdvertiseAddr != "" {
		aip, aport, err := splitIPPort(m.cfg.AdvertiseAddr, true)
		if err != nil {
			return nil, fmt.Errorf("%w: AdvertiseAddr %q: %v", ErrInvalidConfig, m.cfg.AdvertiseAddr, err)
		}
		c.AdvertiseAddr = aip.String()
		if aport != 0 {
			c.AdvertisePort = aport
		}
	}
	if len(m.cfg.ClusterKey) > 0 {
		c.SecretKey = slices.Clone(m.cfg.ClusterKey)
	}
	c.Label = m.cfg.Label
	d := &delegate{m: m}
	c.Delegate = d
	c.Events = d
	c.Logger = memberlistLogger(m.log)
	c.LogOutput = nil
	if m.opts.tune != nil {
		m.opts.tune(c)
	}
	return c, nil
}

// join contacts the seeds, retrying until the join timeout.
func (m *Membership) join() error {
	deadline := m.now().Add(m.opts.joinTimeout)
	for {
		n, err := m.ml.Join(m.cfg.Join)
		if n > 0 {
			m.log.Info("joined cluster", "seeds_reached", n, "members", m.NumMembers())
			return nil
		}
		if !m.now().Before(deadline) {
			return fmt.Errorf("%w: no seed of %s reachable (%v); check the addresses, that the seeds run, the cluster key and the label",
				ErrJoin, strings.Join(m.cfg.Join, ", "), err)
		}
		select {
		case <-time.After(time.Second):
		case <-m.done:
			return ErrShutdown
		}
	}
}

// rejoinLoop joins every seed that is not a live member, every
// rejoinInterval, until Shutdown.
func (m *Membership) rejoinLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.rejoinInterval)
	defer t.Stop()
	for {
		select {
		case <-m.done:
			return
		case <-t.C:
		}
		live := map[string]bool{}
		for _, mem := range m.Members() {
			live[mem.GossipAddr] = true
		}
		for _, seed := range m.cfg.Join {
			if m.seedIsMember(seed, live) {
				continue
			}
			if m.shutdown.Load() {
				return
			}
			if n, err := m.ml.Join([]string{seed}); n > 0 {
				m.log.Info("rejoined seed", "seed", seed)
			} else {
				m.log.Debug("seed still unreachable", "seed", seed, "err", err)
			}
		}
	}
}

func (m *Membership) seedIsMember(seed string, live map[string]bool) bool {
	if live[seed] {
		return true
	}
	host, port, err := net.SplitHostPort(seed)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if live[net.JoinHostPort(ip.IP.String(), port)] {
			return true
		}
	}
	return false
}

// Members returns the live members (alive or leaving), this node included,
// sorted by name.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	out := make([]Member, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, mem.clone())
	}
	m.mu.Unlock()
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// NumMembers counts the live members, this node included
// (qfleet_cluster_members).
func (m *Membership) NumMembers() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.members)
}

// LocalMember describes this node, with the gossip address actually bound
// (port 0 resolved).
func (m *Membership) LocalMember() Member {
	m.mu.Lock()
	mem, ok := m.members[m.cfg.NodeName]
	m.mu.Unlock()
	if ok {
		return mem.clone()
	}
	// After Leave the table no longer holds us.
	n := m.ml.LocalNode()
	return Member{Name: n.Name, GossipAddr: n.Address(), RemoteAddr: m.cfg.RemoteAddr,
		Roles: slices.Clone(m.cfg.Roles), Epoch: m.cfg.Epoch, Runners: m.cfg.Runners, State: StateLeft}
}

// Subscribe returns a channel of every later Event and a cancel func that
// ends the subscription. Read promptly: a subscriber that stops reading
// delays all others (events are never dropped). The channel is closed by
// cancel or Shutdown.
func (m *Membership) Subscribe() (<-chan Event, func()) {
	s := &subscriber{ch: make(chan Event, 64), gone: make(chan struct{})}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		close(s.ch)
		return s.ch, func() {}
	}
	id := m.nextID
	m.nextID++
	m.subs[id] = s
	m.mu.Unlock()
	var once sync.Once
	return s.ch, func() {
		once.Do(func() {
			m.mu.Lock()
			delete(m.subs, id)
			m.mu.Unlock()
			close(s.gone)
			s.close()
		})
	}
}

// addListener registers f like WithEventHandler, after Start.
func (m *Membership) addListener(f func(Event)) (remove func()) {
	m.mu.Lock()
	id := m.nextID
	m.nextID++
	m.listeners[id] = f
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.listeners, id)
		m.mu.Unlock()
	}
}

// Leave announces a graceful departure and waits up to timeout for it to
// spread: peers report this node Left (not Failed) and the Directory stops
// handing out its PIDs. Call Shutdown afterwards.
//
// memberlist's leave notification carries no reason (the State field of the
// Node it passes is never set), and its gossip may reach a peer late or only
// through the next push/pull. So the leave is announced three ways, in
// order: a "leaving" notice sent to every live member over TCP, the leaving
// flag in the metadata (gossip, also carried by push/pull), and memberlist's
// own leave. A peer that hears the leave before either notice reports
// Failed; either way the member is dropped.
func (m *Membership) Leave(timeout time.Duration) error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.shutdown.Load() {
		return ErrShutdown
	}
	start := m.now()
	m.metaMu.Lock()
	next := m.local
	next.Leaving = true
	b, err := next.encode()
	if err == nil {
		m.local = next
		m.meta.Store(&b)
	}
	m.metaMu.Unlock()
	if err != nil {
		return err
	}
	m.sendLeavingNotices(timeout / 3)
	// memberlist's leave message supersedes (invalidates) a queued update
	// about the same node, so the flag must be out before the leave.
	if err := m.ml.UpdateNode(timeout / 3); err != nil {
		m.log.Warn("leaving flag not fully gossiped", "err", err)
	}
	remaining := timeout - m.now().Sub(start)
	if remaining < 50*time.Millisecond {
		remaining = 50 * time.Millisecond
	}
	if err := m.ml.Leave(remaining); err != nil {
		return fmt.Errorf("leave %s: %w", m.cfg.NodeName, err)
	}
	m.log.Info("left cluster", "took", m.now().Sub(start))
	return nil
}

// leavingNotice prefixes the direct "I am leaving" message; the node name
// follows. Only members that share the key and label can deliver it.
const leavingNotice = "qfleet.leaving/v1:"

// sendLeavingNotices tells every live member, over TCP and in parallel, that
// this node is leaving; it waits at most wait.
func (m *Membership) sendLeavingNotices(wait time.Duration) {
	msg := []byte(leavingNotice + m.cfg.NodeName)
	var wg sync.WaitGroup
	for _, n := range m.ml.Members() {
		if n.Name == m.cfg.NodeName {
			continue
		}
		wg.Add(1)
		go func(n *memberlist.Node) {
			defer wg.Done()
			if err := m.ml.SendReliable(n, msg); err != nil {
				m.log.Debug("leaving notice not delivered", "member", n.Name, "err", err)
			}
		}(n)
	}
	sent := make(chan struct{})
	go func() { wg.Wait(); close(sent) }()
	select {
	case <-sent:
	case <-time.After(wait):
		m.log.Warn("leaving notices still in flight", "waited", wait)
	}
}

// markLeaving records a member's leaving notice (from NotifyMsg, outside
// memberlist's locks).
func (m *Membership) markLeaving(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev, ok := m.members[name]
	if !ok || prev.State != StateAlive {
		return
	}
	mem := prev.clone()
	mem.State = StateLeaving
	mem.Since = m.now()
	m.members[name] = mem
	m.enqueue(Event{Kind: Updated, Member: mem, Previous: prev})
}

// Shutdown stops gossip without a goodbye: peers report this node Failed
// after failure detection (call Leave first for a graceful exit). Event
// channels are closed. Safe to call more than once.
func (m *Membership) Shutdown() error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	if m.shutdown.Swap(true) {
		return nil
	}
	err := m.ml.Shutdown()
	m.stopLoops()
	return err
}

func (m *Membership) stopLoops() {
	m.mu.Lock()
	m.closed = true
	subs := m.subs
	m.subs = map[int]*subscriber{}
	m.mu.Unlock()
	close(m.done)
	m.wg.Wait()
	for _, s := range subs {
		s.close()
	}
}

// record updates the table and queues the event. Called by memberlist with
// its node lock held: no calls back into memberlist from here.
func (m *Membership) record(kind EventKind, n *memberlist.Node) {
	meta, err := decodeMeta(n.Meta)
	if err != nil {
		m.log.Warn("member without usable metadata", "member", n.Name, "err", err)
	}
	now := m.now()
	mem := Member{Name: n.Name, GossipAddr: n.Address(), RemoteAddr: meta.Remote,
		Roles: slices.Clone(meta.Roles), Epoch: meta.Epoch, Runners: meta.Runners, State: StateAlive, Since: now}
	if meta.Leaving {
		mem.State = StateLeaving
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	prev, known := m.members[n.Name]
	ev := Event{Kind: kind, Member: mem}
	switch kind {
	case Joined:
		if known {
			ev.Previous = prev // a rejoin: the directory resets endpoints of a member that had failed
		}
		m.members[n.Name] = mem
	case Updated:
		if known && prev.State == StateLeaving && mem.Epoch == prev.Epoch {
			mem.State = StateLeaving // the direct notice came before the flag
		}
		if !known {
			ev.Kind = Joined
		} else {
			ev.Previous = prev
			if prev.State == mem.State {
				mem.Since = prev.Since
				ev.Member = mem
			}
		}
		m.members[n.Name] = mem
	default: // gone: Left or Failed, decided here
		ev.Kind = Failed
		if meta.Leaving || (known && prev.State == StateLeaving) {
			ev.Kind = Left
		}
		mem.State = StateFailed
		if ev.Kind == Left {
			mem.State = StateLeft
		}
		ev.Member = mem
		delete(m.members, n.Name)
	}
	m.enqueue(ev)
}

// enqueue queues ev for the dispatcher; m.mu held.
func (m *Membership) enqueue(ev Event) {
	if m.closed {
		return
	}
	m.queue = append(m.queue, ev)
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// dispatch delivers queued events to handlers, listeners and subscribers.
func (m *Membership) dispatch() {
	defer m.wg.Done()
	for {
		select {
		case <-m.done:
			return
		case <-m.wake:
		}
		for {
			m.mu.Lock()
			if len(m.queue) == 0 {
				m.mu.Unlock()
				break
			}
			ev := m.queue[0]
			m.queue = m.queue[1:]
			listeners := make([]func(Event), 0, len(m.listeners))
			for _, id := range sortedKeys(m.listeners) {
				listeners = append(listeners, m.listeners[id])
			}
			subs := make([]*subscriber, 0, len(m.subs))
			for _, id := range sortedKeys(m.subs) {
				subs = append(subs, m.subs[id])
			}
			m.mu.Unlock()

			m.log.Debug("member event", "event", ev.Kind.String(), "member", ev.Member.Name, "state", ev.Member.State.String())
			for _, h := range m.opts.handlers {
				h(ev)
			}
			for _, l := range listeners {
				l(ev)
			}
			for _, s := range subs {
				if !m.send(s, ev) {
					return
				}
			}
		}
	}
}

// send delivers ev to s unless s is cancelled; false after Shutdown.
func (m *Membership) send(s *subscriber, ev Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	select {
	case s.ch <- ev:
	case <-s.gone:
	case <-m.done:
		return false
	}
	return true
}

func sortedKeys[V any](mp map[int]V) []int {
	keys := make([]int, 0, len(mp))
	for k := range mp {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// delegate adapts memberlist's callbacks without exporting them on
// Membership.
type delegate struct{ m *Membership }

var (
	_ memberlist.Delegate      = (*delegate)(nil)
	_ memberlist.EventDelegate = (*delegate)(nil)
)

func (d *delegate) NodeMeta(limit int) []byte {
	b := *d.m.meta.Load()
	if len(b) > limit { // never: encode checks MetaMaxSize first
		return nil
	}
	return b
}
func (d *delegate) NotifyMsg(b []byte) {
	if name, ok := strings.CutPrefix(string(b), leavingNotice); ok {
		d.m.markLeaving(name)
	}
}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *delegate) LocalState(join bool) []byte                { return nil }
func (d *delegate) MergeRemoteState(buf []byte, join bool)     {}
func (d *delegate) NotifyJoin(n *memberlist.Node)              { d.m.record(Joined, n) }
func (d *delegate) NotifyUpdate(n *memberlist.Node)            { d.m.record(Updated, n) }
func (d *delegate) NotifyLeave(n *memberlist.Node)             { d.m.record(Left, n) }
