package actors

import (
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// The broadcaster's bandwidth budget, driven through a runner "on another
// host": an address resolver hands the broadcaster's sends to that address
// to the test, with the time each was sent, and the test plays the runner
// (acknowledging chunks, or not).

const fakeHost = "fake-host:1"

// fakeLink records what the broadcaster sends to fakeHost.
type fakeLink struct {
	mu   sync.Mutex
	sent []sentChunk
	ch   chan sentChunk
}

type sentChunk struct {
	c  *messages.WeightsChunk
	at time.Time
	n  int // bytes as the broadcaster counts them
}

func (f *fakeLink) SendUserMessage(_ *actor.PID, m any) {
	if c, ok := m.(*messages.WeightsChunk); ok {
		s := sentChunk{c, time.Now(), proto.Size(c)}
		f.mu.Lock()
		f.sent = append(f.sent, s)
		f.mu.Unlock()
		f.ch <- s
	}
}
func (f *fakeLink) SendSystemMessage(*actor.PID, any) {}
func (f *fakeLink) Stop(*actor.PID)                   {}

func (f *fakeLink) all() []sentChunk {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sentChunk(nil), f.sent...)
}

// budgetRig is a broadcaster with a runner on fakeHost.
type budgetRig struct {
	t      *testing.T
	sys    *actor.ActorSystem
	b      *actor.PID
	runner *actor.PID
	link   *fakeLink
	m      *Metrics
	rng    *rand.Rand
	params int
}

func newBudgetRig(t *testing.T, cfg Config) *budgetRig {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	sys := newTestSystem(t)
	link := &fakeLink{ch: make(chan sentChunk, 100_000)}
	sys.ProcessRegistry.RegisterAddressResolver(func(p *actor.PID) (actor.Process, bool) { return link, p.Address == fakeHost })
	m := NewMetrics()
	b, err := sys.Root.SpawnNamed(actor.PropsFromProducer(newBroadcaster(cfg, m, slog.New(slog.DiscardHandler))), BroadcasterName)
	if err != nil {
		t.Fatal(err)
	}
	return &budgetRig{t: t, sys: sys, b: b, runner: actor.NewPID(fakeHost, "qfleet/runner-0"), link: link, m: m,
		rng: rand.New(rand.NewPCG(1, 2)), params: 20_000}
}

// publish sends publication k of term 1 with random parameters (constant
// ones compress to nothing: the budget would never bind).
func (r *budgetRig) publish(k uint64) {
	p := make([]float32, r.params)
	for i := range p {
		p[i] = r.rng.Float32()
	}
	r.sys.Root.Send(r.b, &messages.Weights{Version: 1<<40 | k, Term: 1, Params: p})
}

func (r *budgetRig) subscribe(name string, base wire.Version) {
	r.sys.Root.Send(r.b, &messages.SubscribeWeights{Runner: RefOf(r.runner), RunnerName: name, BaseVersion: base.Version, BaseTerm: base.Term})
}

func (r *budgetRig) ack(c *messages.WeightsChunk) {
	r.sys.Root.Send(r.b, &messages.WeightsChunkAck{Runner: RefOf(r.runner), Version: c.GetVersion(), Term: c.GetTerm(), Index: c.GetIndex()})
}

// ackAll plays a runner that acknowledges every chunk at once, until stop.
func (r *budgetRig) ackAll(stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case s := <-r.link.ch:
				r.ack(s.c)
			case <-stop:
				return
			}
		}
	}()
	return &wg
}

// nextChunk waits for the broadcaster's next chunk to the runner.
func (r *budgetRig) nextChunk(within time.Duration) (sentChunk, bool) {
	select {
	case s := <-r.link.ch:
		return s, true
	case <-time.After(within):
		return sentChunk{}, false
	}
}

// With weights_max_rate, the bytes sent to a runner over any window stay
// within rate·window plus one chunk, and the budget is used (the runner
// wants more than it allows all along). The rate is measured from the
// first send to the last, without the last chunk (paid after it went): a
// wake-up that comes late on a loaded machine loses time, it never adds
// bytes, so only the upper bound is exact.
func TestBroadcasterBudgetKeepsRate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WeightsChunkBytes = 4096
	cfg.WeightsMaxRate = 20_000
	r := newBudgetRig(t, cfg)
	r.subscribe("B/runner-0", wire.Version{})
	stop := make(chan struct{})
	wg := r.ackAll(stop)
	start := time.Now()
	for k := uint64(1); time.Since(start) < 3*time.Second; k++ {
		r.publish(k)
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	sent := r.link.all()
	maxChunk, total := 0, 0
	for _, s := range sent {
		maxChunk, total = max(maxChunk, s.n), total+s.n
	}
	// Every window from one send to a later one. The times are taken where
	// the chunks arrive: a chunk delivered late on a loaded machine makes
	// the window after it look shorter by the delay (7,316 bytes in 0.180 s
	// against a bound of 7,264 in one CI run), so 20 ms of it is allowed.
	const jitter = 0.020
	for i := range sent {
		bytes := 0
		for j := i; j < len(sent); j++ {
			bytes += sent[j].n
			window := sent[j].at.Sub(sent[i].at).Seconds()
			if limit := float64(cfg.WeightsMaxRate)*(window+jitter) + float64(maxChunk); float64(bytes) > limit {
				t.Fatalf("%d bytes sent in %.3fs (chunks %d..%d), over rate·window + one chunk = %.0f", bytes, window, i, j, limit)
			}
		}
	}
	last := sent[len(sent)-1]
	span := last.at.Sub(sent[0].at).Seconds()
	got := float64(total-last.n) / span
	if got < 0.75*float64(cfg.WeightsMaxRate) || got > float64(cfg.WeightsMaxRate)*1.001 {
		t.Errorf("%d bytes in %.2fs = %.0f B/s, want the budget %d B/s (less only by late wake-ups)", total-last.n, span, got, cfg.WeightsMaxRate)
	}
	l := r.m.Links()["B/runner-0"]
	if l.WeightsBytesSent != uint64(total) {
		t.Errorf("link books %d weights bytes sent to B/runner-0, the runner got %d", l.WeightsBytesSent, total)
	}
	if l.WeightsBytesPerS < 0.6*float64(cfg.WeightsMaxRate) || l.WeightsBytesPerS > 1.2*float64(cfg.WeightsMaxRate) {
		t.Errorf("link meter says %.0f B/s, want about %d", l.WeightsBytesPerS, cfg.WeightsMaxRate)
	}
	t.Logf("%d chunks, %d bytes from the first send to the last in %.2fs (%.0f B/s); largest chunk %d", len(sent), total-last.n, span, got, maxChunk)
}

// With weights_min_interval, versions start no closer than the interval,
// and the version a runner gets after a wait is the newest: one published
// while it waited and then superseded is never sent.
func TestBroadcasterBudgetMinIntervalNewestOnly(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WeightsMinInterval = 500 * time.Millisecond
	r := newBudgetRig(t, cfg)
	r.params = 1000
	r.subscribe("B/runner-0", wire.Version{})
	r.publish(1)
	first, ok := r.nextChunk(2 * time.Second)
	if !ok || first.c.GetVersion()&(1<<40-1) != 1 {
		t.Fatalf("first version not sent at once (got %v)", first.c)
	}
	r.ack(first.c) // one chunk: v1 whole
	r.publish(2)
	time.Sleep(100 * time.Millisecond)
	r.publish(3)
	s, ok := r.nextChunk(2 * time.Second)
	if !ok {
		t.Fatal("no version after the interval")
	}
	if v := s.c.GetVersion() & (1<<40 - 1); v != 3 {
		t.Errorf("after the wait the runner got publication %d, want the newest, 3 (2 was superseded while it waited)", v)
	}
	if gap := s.at.Sub(first.at); gap < cfg.WeightsMinInterval {
		t.Errorf("second version started %v after the first, want >= %v", gap, cfg.WeightsMinInterval)
	}
	if s.c.GetBaseVersion() != 1<<40|1 {
		t.Errorf("second version is a delta against %d, want against publication 1", s.c.GetBaseVersion())
	}

	// Publishing all along: starts keep the interval.
	r.ack(s.c)
	stop := make(chan struct{})
	wg := r.ackAll(stop)
	for k := uint64(4); k < 4+60; k++ {
		r.publish(k)
		time.Sleep(25 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	var starts []time.Time
	for _, c := range r.link.all() {
		if c.c.GetIndex() == 0 {
			starts = append(starts, c.at)
		}
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < cfg.WeightsMinInterval {
			t.Errorf("versions %d and %d started %v apart, want >= %v", i-1, i, gap, cfg.WeightsMinInterval)
		}
	}
	if len(starts) < 4 { // 1.5 s of publications at 0.5 s apart, the first two above
		t.Errorf("%d versions started, want >= 4: the runner should get a version each interval", len(starts))
	}
}

// A runner on the broadcaster's node carries no bytes: the budget does not
// hold it, while a remote runner of the same broadcaster waits.
func TestBroadcasterBudgetSparesLocalRunners(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WeightsMinInterval = maxWeightsSilence
	cfg.WeightsMaxRate = minWeightsRate(cfg.WeightsChunkBytes)
	r := newBudgetRig(t, cfg)
	r.params = 1000
	localCh := spawnProbe(t, r.sys, "local-runner")
	local := actor.NewPID(r.sys.Address(), "local-runner")
	r.sys.Root.Send(r.b, &messages.SubscribeWeights{Runner: RefOf(local), RunnerName: "A/runner-0"})
	r.subscribe("B/runner-0", wire.Version{})
	for k := uint64(1); k <= 5; k++ {
		r.publish(k)
		w := next[*messages.Weights](t, localCh)
		if w.GetVersion()&(1<<40-1) != k {
			t.Fatalf("local runner got publication %d, want %d at once", w.GetVersion()&(1<<40-1), k)
		}
		r.sys.Root.Send(r.b, &messages.WeightsAck{Runner: RefOf(local), Version: w.GetVersion(), Term: w.GetTerm()})
	}
	// The remote runner got v1's start, then waits for the interval.
	var versions []uint64
	for {
		s, ok := r.nextChunk(300 * time.Millisecond)
		if !ok {
			break
		}
		r.ack(s.c)
		if s.c.GetIndex() == 0 {
			versions = append(versions, s.c.GetVersion()&(1<<40-1))
		}
	}
	if len(versions) != 1 || versions[0] != 1 {
		t.Errorf("remote runner started versions %v within the interval, want [1]", versions)
	}
}

// A budget wait is not a lost chunk: with chunks 2.4 s apart (longer than
// the resend timeout), a runner that acknowledges each gets each exactly
// once.
func TestBroadcasterBudgetWaitIsNoResend(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WeightsChunkBytes = 2048
	cfg.WeightsMaxRate = 900 // a chunk of ~2.1 kB every ~2.4 s
	cfg.WeightsDelta = false
	r := newBudgetRig(t, cfg)
	r.params = 1000 // 4 kB raw, random: two chunks
	r.subscribe("B/runner-0", wire.Version{})
	r.publish(1)
	seen := map[uint32]int{}
	var total uint32
	for len(seen) < 2 {
		s, ok := r.nextChunk(4 * time.Second)
		if !ok {
			t.Fatalf("chunks seen %v: the next did not come", seen)
		}
		seen[s.c.GetIndex()]++
		total = s.c.GetTotal()
		r.ack(s.c)
	}
	if total != 2 {
		t.Fatalf("the version went in %d chunks, the test wants 2", total)
	}
	if s, ok := r.nextChunk(2500 * time.Millisecond); ok {
		seen[s.c.GetIndex()]++
	}
	for i, n := range seen {
		if n != 1 {
			t.Errorf("chunk %d sent %d times, want once (budget waits are not losses)", i, n)
		}
	}
	if n := r.m.Links()["B/runner-0"].WeightsChunksResent; n != 0 {
		t.Errorf("%d chunks counted resent", n)
	}
}

// Chunks never acknowledged are sent again after resendAfter, counted, and
// paid for as the first time.
func TestBroadcasterBudgetPaysResends(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WeightsChunkBytes = 2048
	cfg.WeightsMaxRate = 20_000 // ~0.1 s a chunk
	r := newBudgetRig(t, cfg)
	r.params = 1500 // three chunks
	r.subscribe("B/runner-0", wire.Version{})
	r.publish(1)
	var got []sentChunk
	for len(got) < 6 {
		s, ok := r.nextChunk(resendAfter + 2*time.Second)
		if !ok {
			t.Fatalf("after %d chunks no more came: unacknowledged chunks are not sent again", len(got))
		}
		got = append(got, s)
	}
	if got[0].c.GetTotal() != 3 {
		t.Fatalf("the version went in %d chunks, the test wants 3", got[0].c.GetTotal())
	}
	for i, s := range got {
		if want := uint32(i % 3); s.c.GetIndex() != want {
			t.Fatalf("chunk %d sent was index %d, want %d (the three, then the three again)", i, s.c.GetIndex(), want)
		}
		if i == 0 {
			continue
		}
		gap := s.at.Sub(got[i-1].at)
		if paid := time.Duration(float64(got[i-1].n) / float64(cfg.WeightsMaxRate) * float64(time.Second)); gap < paid {
			t.Errorf("chunk %d went %v after the previous, before its %d bytes were paid (%v)", i, gap, got[i-1].n, paid)
		}
		if i == 3 && gap < resendAfter {
			t.Errorf("sent again %v after the last send, before the resend timeout %v", gap, resendAfter)
		}
	}
	time.Sleep(1100 * time.Millisecond) // a tick: the books take the count
	if n := r.m.Links()["B/runner-0"].WeightsChunksResent; n != 3 {
		t.Errorf("%d chunks counted resent, want 3", n)
	}
}

// A runner that subscribes again keeps its delta base only when it still
// holds that version (it says so), and keeps its budget either way.
func TestBroadcasterResubscribeKeepsBase(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WeightsMinInterval = 400 * time.Millisecond
	r := newBudgetRig(t, cfg)
	r.params = 1000
	r.subscribe("B/runner-0", wire.Version{})
	r.publish(1)
	s, ok := r.nextChunk(time.Second)
	if !ok {
		t.Fatal("publication 1 not sent")
	}
	r.ack(s.c)
	v1 := wire.Version{Term: 1, Version: 1<<40 | 1}

	r.subscribe("B/runner-0", v1) // holds v1: a delta against it
	r.publish(2)
	s, ok = r.nextChunk(2 * time.Second)
	if !ok {
		t.Fatal("publication 2 not sent")
	}
	if s.c.GetBaseVersion() != v1.Version {
		t.Errorf("after a resubscription holding v1, v2 went against base %d, want v1", s.c.GetBaseVersion())
	}
	r.ack(s.c)

	start := time.Now()
	r.subscribe("B/runner-0", wire.Version{}) // holds nothing (a restarted runner): whole
	r.publish(3)
	s, ok = r.nextChunk(2 * time.Second)
	if !ok {
		t.Fatal("publication 3 not sent")
	}
	if s.c.GetBaseVersion() != 0 {
		t.Errorf("to a runner holding nothing v3 went as a delta against %d", s.c.GetBaseVersion())
	}
	if time.Since(start) < 200*time.Millisecond {
		t.Errorf("v3 went %v after v2's start: the resubscription reset the interval (%v)", time.Since(start), cfg.WeightsMinInterval)
	}
}

// A subscription's runner name is input from another host: a huge, binary
// or blank one names the link by the runner's PID instead, and so does a
// name another runner here already goes by.
func TestBroadcasterHostileRunnerNames(t *testing.T) {
	r := newBudgetRig(t, DefaultConfig())
	r.params = 100
	r.publish(1)
	huge := string(make([]byte, 1<<20))
	for i, name := range []string{huge, "B/\x00runner", "\xff\xfe", "  ", "B/runner-\n0", "B/runner-0"} {
		pid := actor.NewPID(fakeHost, "qfleet/runner-"+string(rune('a'+i)))
		r.sys.Root.Send(r.b, &messages.SubscribeWeights{Runner: RefOf(pid), RunnerName: name})
	}
	// One more claims a name already taken.
	dup := actor.NewPID(fakeHost, "qfleet/runner-dup")
	r.sys.Root.Send(r.b, &messages.SubscribeWeights{Runner: RefOf(dup), RunnerName: "B/runner-0"})
	for range 7 {
		if _, ok := r.nextChunk(2 * time.Second); !ok {
			t.Fatal("a subscriber got no weights")
		}
	}
	r.sys.Root.Send(r.b, &broadcasterTick{}) // the books' names are set by then
	time.Sleep(100 * time.Millisecond)
	links := r.m.Links()
	if len(links) != 7 {
		t.Errorf("%d links booked, want 7", len(links))
	}
	for name := range links {
		if len(name) > maxLinkName {
			t.Errorf("a link is named by %d bytes", len(name))
		}
		if name != "B/runner-0" && !strings.HasPrefix(name, fakeHost+"/qfleet/runner-") {
			t.Errorf("link named %q: neither the valid name nor the runner's PID", name)
		}
	}
	if _, ok := links["B/runner-0"]; !ok {
		t.Error("the valid name is not booked")
	}
	if _, ok := links[fakeHost+"/qfleet/runner-dup"]; !ok {
		t.Error("the runner claiming a name in use is not booked by its PID")
	}
}

func TestValidLinkName(t *testing.T) {
	for name, want := range map[string]bool{
		"B/runner-0": true, "gpu-box.example/runner-12": true, "Ünïcode/runner-0": true,
		"": false, " B/runner-0": false, "B/runner-0 ": false, "B/run\tner": false, "\x00": false, "\xff": false,
		string(make([]byte, maxLinkName+1)): false,
	} {
		if got := validLinkName(name); got != want {
			t.Errorf("validLinkName(%q) = %v, want %v", name, got, want)
		}
	}
}

// The pay-after-send clock on its own, over a simulated minute of a runner
// that always wants more: every window holds rate·T + one chunk.
func TestLinkBudgetWindows(t *testing.T) {
	b := linkBudget{rate: 10_000, minInterval: 300 * time.Millisecond}
	now := time.Unix(1000, 0)
	type send struct {
		at time.Time
		n  int
	}
	var sends []send
	rng := rand.New(rand.NewPCG(3, 4))
	for len(sends) < 2000 {
		at := b.sendAt()
		if len(sends)%5 == 0 { // a new version every 5 chunks
			at = b.startAt()
		}
		if at.After(now) {
			now = at
		}
		now = now.Add(time.Duration(rng.IntN(3)) * time.Millisecond) // late wake-ups
		if len(sends)%5 == 0 {
			b.started()
		}
		n := 200 + rng.IntN(4000)
		b.paid(now, n)
		sends = append(sends, send{now, n})
	}
	for i := range sends {
		bytes := 0
		for j := i; j < len(sends) && j < i+200; j++ {
			bytes += sends[j].n
			if limit := b.rate*sends[j].at.Sub(sends[i].at).Seconds() + 4200; float64(bytes) > limit {
				t.Fatalf("%d bytes in the window from send %d to %d, over %.0f", bytes, i, j, limit)
			}
		}
	}
	for i := 5; i < len(sends); i += 5 {
		if d := sends[i].at.Sub(sends[i-5].at); d < b.minInterval {
			t.Fatalf("versions started %v apart", d)
		}
	}
}

func TestRateMeter(t *testing.T) {
	var m rateMeter
	t0 := time.Unix(5000, 0)
	if r := m.rate(t0); r != 0 {
		t.Errorf("empty meter: %v", r)
	}
	for i := range 300 { // 1000 B every 100 ms for 30 s: 10 kB/s
		m.add(t0.Add(time.Duration(i)*100*time.Millisecond), 1000)
	}
	now := t0.Add(30 * time.Second)
	if r := m.rate(now); r < 9_500 || r > 10_500 {
		t.Errorf("steady 10 kB/s reads %.0f", r)
	}
	if r := m.rate(now.Add(11 * time.Second)); r != 0 {
		t.Errorf("11 s after the last bytes the rate is %.0f, want 0", r)
	}
	var young rateMeter
	young.add(t0, 5000)
	if r := young.rate(t0.Add(2 * time.Second)); r != 2500 {
		t.Errorf("5 kB over a 2 s old meter reads %.0f, want 2500", r)
	}
}

// publishLinks writes the books into the runners' statuses that exist (the
// stats' runners, live or departed), and makes none up.
func TestPublishLinksIntoRunnerStatus(t *testing.T) {
	m := NewMetrics()
	now := time.Now()
	m.update(func(s *RunStatus) {
		s.Runners["B/runner-0"] = RunnerStatus{EnvSteps: 7}
		s.Departed = map[string]DepartedRunner{"C/runner-0": {Why: "left"}}
	})
	m.linkWeightsSent("B/runner-0", 3000, now)
	m.linkExperienceReceived("B/runner-0", 1000, now)
	m.linkWeights("B/runner-0", wire.Version{Term: 2, Version: 2<<40 | 9}, 4, 1.5)
	m.linkWeightsSent("C/runner-0", 10, now)
	m.linkWeightsSent("stranger", 10, now)
	m.publishLinks(now)
	st := m.Status()
	r := st.Runners["B/runner-0"]
	if r.EnvSteps != 7 || r.WeightsBytesSent != 3000 || r.ExperienceBytesReceived != 1000 || r.WeightsBytesPerS == 0 || r.ExperienceBytesPerS == 0 {
		t.Errorf("B/runner-0: %+v", r)
	}
	if r.WeightsAckedTerm != 2 || r.WeightsAckedPublication != 9 || r.WeightsLagPublications != 4 || r.WeightsLagSeconds != 1.5 {
		t.Errorf("B/runner-0 weights: acked t%d/v%d lag %d, %.1fs", r.WeightsAckedTerm, r.WeightsAckedPublication, r.WeightsLagPublications, r.WeightsLagSeconds)
	}
	if st.Departed["C/runner-0"].WeightsBytesSent != 10 {
		t.Errorf("departed runner: %+v", st.Departed["C/runner-0"])
	}
	if _, ok := st.Runners["stranger"]; ok {
		t.Error("a link the stats do not know became a runner")
	}
}

func TestPublicationsBehind(t *testing.T) {
	v := func(term, count uint64) wire.Version { return wire.Version{Term: term, Version: term<<40 | count} }
	for _, c := range []struct {
		latest, acked wire.Version
		want          uint64
	}{
		{v(1, 10), v(1, 10), 0}, {v(1, 10), v(1, 7), 3}, {v(2, 5), v(1, 70), 5}, {v(1, 3), wire.Version{}, 3}, {v(1, 3), v(1, 9), 0},
	} {
		if got := publicationsBehind(c.latest, c.acked); got != c.want {
			t.Errorf("publicationsBehind(%v, %v) = %d, want %d", c.latest, c.acked, got, c.want)
		}
	}
}

// The budget's keys: each in its range, and a rate too low to send one
// chunk before a runner would subscribe again is refused, naming the key.
func TestWeightsBudgetConfigRules(t *testing.T) {
	for _, c := range []struct {
		rate     int
		interval time.Duration
		chunk    int
		bad      string // the key the error names; "" valid
	}{
		{0, 0, 32 << 10, ""},
		{20_000, 250 * time.Millisecond, 32 << 10, ""},
		{minWeightsRate(32 << 10), maxWeightsSilence, 32 << 10, ""},
		{minWeightsRate(32<<10) - 1, 0, 32 << 10, "weights_max_rate"},
		{2000, 0, 32 << 10, "weights_max_rate"},
		{2000, 0, 4096, ""}, // smaller chunks: 2000 B/s sends one in ~2 s
		{-1, 0, 32 << 10, "weights_max_rate"},
		{0, maxWeightsSilence + time.Millisecond, 32 << 10, "weights_min_interval"},
		{0, -time.Second, 32 << 10, "weights_min_interval"},
	} {
		cfg := DefaultConfig()
		cfg.WeightsMaxRate, cfg.WeightsMinInterval, cfg.WeightsChunkBytes = c.rate, c.interval, c.chunk
		err := cfg.Validate()
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("rate %d, interval %v, chunk %d: %v", c.rate, c.interval, c.chunk, err)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("rate %d, interval %v, chunk %d: error %v, want one naming %s", c.rate, c.interval, c.chunk, err, c.bad)
		}
	}
	if d := time.Duration(float64(32<<10+weightsChunkOverhead) / float64(minWeightsRate(32<<10)) * float64(time.Second)); d > maxWeightsSilence || maxWeightsSilence >= resubscribeAfter {
		t.Errorf("a chunk at the lowest rate takes %v; the budget may hold a runner %v; it subscribes again after %v", d, maxWeightsSilence, resubscribeAfter)
	}
}
