package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/scheduler"
	"google.golang.org/protobuf/proto"

	"github.com/qfleet/qfleet/actors/lograte"
	"github.com/qfleet/qfleet/actors/sumtree"
	"github.com/qfleet/qfleet/envs"
	"github.com/qfleet/qfleet/messages"
	"github.com/qfleet/qfleet/messages/wire"
)

// replay is the replay role: it owns the experience table and the
// sample:insert rate limiter, grants runners credit for more experience, and
// answers the learner's sample requests when the limiter allows.
type replay struct {
	cfg        Config
	obsSize    int
	numActions int
	seed       uint64
	metrics    *Metrics
	log        *slog.Logger
	snap       SnapshotSpec
	frames     envs.ObsDType // Float32: float rows; Binary, Uint8: frames
	stack      int           // frames: frames an observation (frame_stack)
	channels   int           // frames: channels a frame

	table    *Table
	limiter  *RateLimiter
	rng      *rand.Rand
	rngState *rand.PCG // rng's source, saved in snapshots

	waiting  []*messages.SampleRequest // requests the limiter holds back, oldest first
	deferred []deferredCredit          // credits the limiter holds back
	heldAt   time.Time                 // the last credit of no transitions sent (holdCredit)

	streams    *streamBook      // per runner stream: transitions received (inserted or rejected), open gaps
	lost       uint64           // transitions that never arrived: gaps in the streams
	rejected   uint64           // transitions refused as malformed
	duplicates uint64           // transitions refused as already received (replayed messages)
	refusedLog *lograte.Limiter // refused experience (duplicates, impossible sizes), logged once per 10 s per runner

	writing  bool           // a snapshot is on its way to disk
	writes   sync.WaitGroup // that write's goroutine
	stopTick scheduler.CancelFunc
	// stopLinks ends the ticks that publish the runners' link rates,
	// started by the first experience from another host (links.go).
	stopLinks scheduler.CancelFunc
}

// SnapshotSpec configures the replay's snapshots. A replay that restarts
// (its actor under the supervisor, or its node with --resume) goes on from
// the newest snapshot instead of an empty table: a learner that resumes onto
// an empty replay forgets what it learned (the collapse users of RLlib and
// Acme report).
type SnapshotSpec struct {
	Dir     string        // where snapshots live (the checkpoint directory); "" disables them
	Every   time.Duration // snapshot interval; 0 disables snapshots
	Restore bool          // start from the newest snapshot in Dir, if there is one
	EnvID   string        // recorded in the snapshot and checked on restore
}

func (s SnapshotSpec) enabled() bool { return s.Dir != "" && s.Every > 0 }

// replayTick asks the replay for a periodic snapshot.
type replayTick struct{}

// replayLinksTick asks the replay to publish the runners' link rates.
type replayLinksTick struct{}

// snapshotWritten reports a snapshot write that ran off the actor.
type snapshotWritten struct {
	err         error
	pause, took time.Duration
	size        int
}

type deferredCredit struct {
	to  *actor.PID
	n   uint32
	seq uint64
}

// streamKey names one runner's stream of experience: its name and the
// incarnation of its process (a restarted runner process starts over).
type streamKey struct {
	runner      string
	incarnation uint64
}

func newReplay(cfg Config, obsSize, numActions int, seed uint64, m *Metrics, log *slog.Logger, snap SnapshotSpec, opts ...replayOption) actor.Producer {
	starts := 0
	return func() actor.Actor {
		// After a crash the supervisor builds a fresh replay: it goes on from
		// the last snapshot, when snapshots are on, whatever Restore says.
		s := snap
		s.Restore = snap.Restore || (starts > 0 && snap.enabled())
		starts++
		r := &replay{cfg: cfg, obsSize: obsSize, numActions: numActions, seed: seed, metrics: m, log: log.With("role", "replay"), snap: s}
		for _, o := range opts {
			o(r)
		}
		return r
	}
}

type replayOption func(*replay)

// withFrames makes the replay store observations of dtype (binary or
// uint8) as packed, deduplicated frames (see frameStore), stack of them an
// observation, of channels values a position (see stackedframes.go).
func withFrames(dtype envs.ObsDType, stack, channels int) replayOption {
	return func(r *replay) { r.frames, r.stack, r.channels = dtype, stack, channels }
}

func (r *replay) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *actor.Restarting:
		r.log.Warn("replay restarting")
		r.metrics.countRestart("replay", ctx.Self().GetId())
	case *actor.Started:
		if r.frames != envs.Float32 {
			r.table = NewStackedFrameTable(r.frames, r.obsSize, r.cfg.ReplayCapacity, r.stack, r.channels)
		} else {
			r.table = NewTable(r.obsSize, r.cfg.ReplayCapacity)
		}
		r.table.LimitActions(r.numActions)
		if r.cfg.Prioritized {
			r.table.Prioritize(r.cfg.PriorityExponent)
		}
		r.limiter = NewRateLimiter(r.cfg.SamplesPerInsert, r.cfg.MinReplaySize, r.cfg.RateTolerance)
		r.rngState = rand.NewPCG(r.seed, 0x7265706c6179)
		r.rng = rand.New(r.rngState)
		r.streams = newStreamBook()
		r.metrics.update(func(s *RunStatus) { s.replayLocal = true })
		r.refusedLog = lograte.New(10 * time.Second)
		if r.snap.Restore && r.snap.Dir != "" {
			r.restore()
		}
		if r.snap.enabled() {
			r.stopTick = scheduler.NewTimerScheduler(ctx).SendRepeatedly(r.snap.Every, r.snap.Every, ctx.Self(), &replayTick{})
		}
		r.log.Info("replay started", "capacity", r.cfg.ReplayCapacity, "min_size", r.cfg.MinReplaySize, "samples_per_insert", r.cfg.SamplesPerInsert, "size", r.table.Size())
	case *replayTick:
		r.snapshot(ctx)
	case *snapshotWritten:
		r.writing = false
		if msg.err != nil {
			// Training goes on; the error is reported, not fatal, once per
			// interval (the next snapshot is the next try).
			r.metrics.CheckpointFailures.Inc()
			r.log.Error("replay snapshot failed", "err", msg.err)
		} else {
			r.log.Info("replay snapshot written", "transitions", msg.size, "pause", msg.pause, "write", msg.took)
		}
	case *replayLinksTick:
		r.metrics.publishLinks(time.Now())
	case *actor.Stopping:
		if r.stopTick != nil {
			r.stopTick()
		}
		if r.stopLinks != nil {
			r.stopLinks()
		}
		if r.snap.enabled() {
			// A clean shutdown leaves the newest contents on disk, after any
			// periodic write still under way (or that older one would win).
			r.writes.Wait()
			start := time.Now()
			if err := WriteSnapshot(r.snap.Dir, r.captureAll().encode(r.snap.EnvID)); err != nil {
				r.metrics.CheckpointFailures.Inc()
				r.log.Error("replay snapshot at shutdown failed", "err", err)
			} else {
				r.log.Info("replay snapshot written at shutdown", "transitions", r.table.Size(), "took", time.Since(start))
			}
		}
	case *messages.ExperienceBatch:
		r.insert(ctx, msg)
		r.serve(ctx)
	case *messages.PackedExperience:
		n := proto.Size(msg)
		r.metrics.WireBytes.WithLabelValues("experience", "received").Add(float64(n))
		if r.stopLinks == nil {
			r.stopLinks = scheduler.NewTimerScheduler(ctx).SendRepeatedly(time.Second, time.Second, ctx.Self(), &replayLinksTick{})
		}
		if validLinkName(msg.GetRunner()) {
			r.metrics.linkExperienceReceived(msg.GetRunner(), n, time.Now())
		}
		if limit := r.maxBatch(); msg.GetCount() > limit {
			// No runner sends more than its credit window at once: a claim
			// beyond it would only make the decoder inflate a few bytes of
			// zstd into 100+ MB. Dropped unread, no credit.
			if ok, held := r.refusedLog.Allow("oversized:"+msg.GetRunner(), time.Now()); ok {
				r.log.Warn("packed experience refused unread: more transitions than any runner may send at once",
					"runner", msg.GetRunner(), "count", msg.GetCount(), "limit", limit, "refused_since_last_line", held)
			}
			return
		}
		var b *messages.ExperienceBatch
		err := fmt.Errorf("observation size %d, this replay's is %d", msg.GetObsSize(), r.obsSize)
		if int(msg.GetObsSize()) == r.obsSize {
			b, err = wire.UnpackExperience(msg)
		}
		if err != nil {
			// Refused and counted like any malformed batch; the credit goes back.
			b = &messages.ExperienceBatch{Runner: msg.GetRunner(), Count: msg.GetCount(), ReplyTo: msg.GetReplyTo()}
			r.log.Warn("packed experience refused", "runner", msg.GetRunner(), "err", err)
		}
		r.insert(ctx, b)
		r.serve(ctx)
	case *messages.PriorityUpdate:
		r.table.UpdatePriorities(msg.GetKeys(), msg.GetPriorities())
	case *messages.SampleRequest:
		if msg.GetBatchSize() == 0 || msg.GetReplyTo() == nil {
			r.log.Warn("sample request ignored: needs batch_size > 0 and reply_to", "batch_size", msg.GetBatchSize())
			return
		}
		for _, w := range r.waiting {
			if w.GetRequestId() == msg.GetRequestId() && proto.Equal(w.GetReplyTo(), msg.GetReplyTo()) {
				return // a re-sent request we already hold
			}
		}
		r.waiting = append(r.waiting, msg)
		r.serve(ctx)
	}
}

// insert checks and stores a batch, then returns the runner's credit now or,
// when the table is ahead of the learner, once the learner has caught up.
func (r *replay) insert(ctx actor.Context, b *messages.ExperienceBatch) {
	n := b.GetCount()
	if !r.account(b) {
		return
	}
	if err := r.table.CheckBatch(b); err != nil {
		// Refused and counted; the credit still goes back, or a runner
		// that sent one bad batch would lose part of its window for good.
		r.rejected += uint64(n)
		r.metrics.ExperienceRejected.Add(float64(n))
		r.metrics.update(func(s *RunStatus) { s.ExperienceRejected = r.rejected })
		r.log.Warn("experience rejected", "err", err)
	} else {
		evicted := r.table.evicted
		r.table.Insert(b)
		if d := r.table.evicted - evicted; d > 0 {
			if ok, held := r.refusedLog.Allow("evicted", time.Now()); ok {
				r.log.Warn("replay rows evicted: their stacked frames were overwritten (the frames of this stream rarely repeat; are the runners stacking with frame_stack?)",
					"evicted", d, "evicted_total", r.table.evicted, "size", r.table.Size(), "since_last_line", held)
			}
		}
		r.limiter.Inserted(int(n))
		r.metrics.ReplayInserted.Add(float64(n))
		r.metrics.ReplaySize.Set(float64(r.table.Size()))
		r.metrics.update(func(s *RunStatus) { s.ReplaySize, s.ReplayInserted = r.table.Size(), r.table.Inserted() })
	}
	to := PIDOf(b.GetReplyTo())
	if to == nil || n == 0 {
		return
	}
	if r.limiter.CanInsert() {
		ctx.Send(to, &messages.Credit{Transitions: n, Seq: b.GetSeq()})
	} else {
		r.deferred = append(r.deferred, deferredCredit{to: to, n: n, seq: b.GetSeq()})
		r.holdCredit(ctx, to, b.GetSeq())
	}
}

// holdCredit tells a runner whose credit the limiter holds back that its
// batch arrived: a credit of no transitions. A runner on another host that
// hears nothing for credit_timeout presumes its credit lost in flight and
// restores its window; with a slow learner (the Nature network's ~20
// updates/s) the limiter holds credit longer than that, and the restored
// windows ran the runners past the sample:insert ratio (3.4 samples per
// insert for a configured 8). keepHeld repeats it while credit is held.
func (r *replay) holdCredit(ctx actor.Context, to *actor.PID, seq uint64) {
	ctx.Send(to, &messages.Credit{Transitions: 0, Seq: seq})
	r.heldAt = time.Now()
}

// keepHeld repeats holdCredit, once a second at most, to every runner with
// credit held back, for its newest held batch.
func (r *replay) keepHeld(ctx actor.Context) {
	if len(r.deferred) == 0 || time.Since(r.heldAt) < time.Second {
		return
	}
	type held struct {
		to  *actor.PID
		seq uint64
	}
	newest := map[[2]string]held{} // by runner PID: each batch brings its own *PID
	for _, c := range r.deferred {
		newest[[2]string{c.to.GetAddress(), c.to.GetId()}] = held{c.to, c.seq}
	}
	for _, h := range newest {
		r.holdCredit(ctx, h.to, h.seq)
	}
}

// maxBatch is the most transitions one experience message may carry: a
// runner's whole credit window, or a batch with its n-step tail.
func (r *replay) maxBatch() uint32 {
	return uint32(max(r.cfg.CreditWindow, r.cfg.SendBatch+r.cfg.NStep))
}

// account counts what never arrived. A batch says how many transitions its
// runner sent before it; what this replay has not received of those is a
// gap: batches lost between hosts, or held by a replay that died (or by this
// one after its last snapshot). A batch that arrives after a later one fills
// its part of a gap back in. Batches without an incarnation (tools, old
// runners) are not accounted. It returns false for a duplicate (a range
// already received: a replayed message), which is refused without a credit
// and counted apart: the runner did not send it again, so it is in no
// term of the accounting.
func (r *replay) account(b *messages.ExperienceBatch) bool {
	if b.GetRunnerIncarnation() == 0 {
		return true
	}
	k := streamKey{b.GetRunner(), b.GetRunnerIncarnation()}
	outcome, gap := r.streams.record(k, b.GetSentBefore(), uint64(b.GetCount()))
	if outcome == streamDuplicate {
		r.duplicates += uint64(b.GetCount())
		r.metrics.ExperienceDuplicates.Add(float64(b.GetCount()))
		if ok, held := r.refusedLog.Allow(b.GetRunner(), time.Now()); ok {
			r.log.Warn("duplicate experience refused (already received)", "runner", b.GetRunner(),
				"sent_before", b.GetSentBefore(), "transitions", b.GetCount(), "refused_since_last_line", held)
		}
		return false
	}
	if gap != 0 {
		r.lost = uint64(int64(r.lost) + gap)
		if gap > 0 {
			r.log.Warn("experience lost before reaching the replay", "runner", b.GetRunner(), "transitions", gap)
		}
		r.metrics.ExperienceLost.Set(float64(r.lost))
	}
	r.metrics.update(func(s *RunStatus) {
		s.ExperienceLost = r.lost
		s.runner(b.GetRunner(), false, func(rs *RunnerStatus) {
			rs.ExperienceReceived += uint64(b.GetCount())
			rs.ExperienceLost = uint64(max(0, int64(rs.ExperienceLost)+gap))
		})
		if _, gone := s.Departed[b.GetRunner()]; gone {
			recountExperience(s) // a late batch of a departed runner settles it anew
		}
	})
	return true
}

// serve answers waiting sample requests while the limiter allows, then
// releases credits that the samples made room for.
func (r *replay) serve(ctx actor.Context) {
	for len(r.waiting) > 0 {
		req := r.waiting[0]
		n := int(req.GetBatchSize())
		if !r.limiter.CanSample(n) {
			break
		}
		r.waiting = r.waiting[1:]
		out := &messages.SampleBatch{RequestId: req.GetRequestId()}
		r.table.Sample(r.rng, n, r.beta(), out)
		r.limiter.Sampled(n)
		ctx.Send(PIDOf(req.GetReplyTo()), out)
	}
	for len(r.deferred) > 0 && r.limiter.CanInsert() {
		c := r.deferred[0]
		r.deferred = r.deferred[1:]
		ctx.Send(c.to, &messages.Credit{Transitions: c.n, Seq: c.seq})
	}
	r.keepHeld(ctx)
}

// snapshot starts a periodic snapshot: the rows are copied here, between two
// messages; encoding and the durable write run on another goroutine, which
// reports back with a snapshotWritten. One write at a time.
func (r *replay) snapshot(ctx actor.Context) {
	if r.writing {
		return
	}
	start := time.Now()
	c := r.captureAll()
	pause := time.Since(start)
	r.writing = true
	self, root, dir, env := ctx.Self(), ctx.ActorSystem().Root, r.snap.Dir, r.snap.EnvID
	r.writes.Add(1)
	go func() {
		defer r.writes.Done()
		t0 := time.Now()
		err := WriteSnapshot(dir, c.encode(env))
		root.Send(self, &snapshotWritten{err: err, pause: pause, took: time.Since(t0), size: len(c.actions)})
	}()
}

// captureAll copies the table and the replay's own state.
func (r *replay) captureAll() *tableCapture {
	c := r.table.capture()
	c.limiterInserted, c.limiterSmp = r.limiter.inserted, r.limiter.sampled
	c.streams = r.streams.received()
	c.lost, c.rejected = r.lost, r.rejected
	c.rng, _ = r.rngState.MarshalBinary()
	return c
}

// restore goes on from the newest good snapshot; without one the replay
// starts empty (and the runners' next batches show what it lost as gaps).
func (r *replay) restore() {
	s, skipped, err := ReadLatestSnapshot(r.snap.Dir)
	for _, e := range skipped {
		r.log.Error("corrupt replay snapshot skipped", "err", e)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		r.log.Info("no replay snapshot: starting empty", "dir", r.snap.Dir)
		return
	case err != nil:
		r.log.Error("replay snapshot unusable: starting empty", "err", err)
		return
	case s.GetEnv() != r.snap.EnvID:
		r.log.Error("replay snapshot is for another env: starting empty", "snapshot_env", s.GetEnv(), "env", r.snap.EnvID)
		return
	}
	if err := r.table.restore(s); err != nil {
		r.log.Error("replay snapshot unusable: starting empty", "err", err)
		return
	}
	if err := r.rngState.UnmarshalBinary(s.GetRngState()); err != nil {
		r.log.Warn("replay snapshot: sampling RNG not restored", "err", err)
	}
	r.limiter.inserted, r.limiter.sampled = s.GetLimiterInserted(), s.GetLimiterSampled()
	for _, st := range s.GetStreams() {
		r.streams.restore(streamKey{st.GetRunner(), st.GetIncarnation()}, st.GetReceived())
	}
	r.lost, r.rejected = s.GetLost(), s.GetRejected()
	r.metrics.ExperienceLost.Set(float64(r.lost))
	r.metrics.ReplaySize.Set(float64(r.table.Size()))
	r.metrics.update(func(st *RunStatus) {
		st.ReplaySize, st.ReplayInserted = r.table.Size(), r.table.Inserted()
		st.ExperienceLost, st.ExperienceRejected = r.lost, r.rejected
	})
	r.log.Warn("replay restored from snapshot", "transitions", r.table.Size(), "inserted", r.table.Inserted(),
		"age", time.Since(time.UnixMilli(s.GetUnixMillis())).Round(time.Millisecond))
}

// beta is the importance-sampling exponent, annealed from ImportanceBeta to 1
// over BetaAnnealUpdates learner updates (counted here as batches sampled).
func (r *replay) beta() float64 {
	updates := int64(r.limiter.sampled) / int64(max(1, r.cfg.BatchSize))
	return sumtree.BetaAt(updates, int64(r.cfg.BetaAnnealUpdates), r.cfg.ImportanceBeta)
}
