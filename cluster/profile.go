package cluster

import (
	"time"

	"github.com/hashicorp/memberlist"
)

// profile holds the memberlist timings of one failure-detection profile.
//
// How long memberlist takes to declare a silent node dead (SWIM + Lifeguard,
// memberlist v0.7.0, clusters of up to 10 nodes so that log10(N) scaling is 1):
//
//	wait for a prober's turn   0 … ProbeInterval·(N−1)/(N−1 probers) ≈ 0 … ProbeInterval
//	+ the failed probe         ProbeInterval (direct ping waits ProbeTimeout,
//	                           indirect and TCP pings use the rest of the interval)
//	+ suspicion                SuspicionMult·ProbeInterval, stretched up to
//	                           SuspicionMaxTimeoutMult times that while fewer than
//	                           SuspicionMult−2 other members confirm the suspicion
//
// memberlist's own presets give LAN 5.6–6.4 s and WAN ~39 s (measured, see
// cluster/README.md): the WAN preset probes every 5 s and suspects for 30 s. The
// profiles below trade probe traffic (one UDP ping of ~100 bytes per member
// per ProbeInterval) and false suspicions for speed. A false suspicion costs
// nothing visible: the suspect refutes it by gossip within the suspicion
// time, and Membership only reports members declared dead.
type profile struct {
	probeInterval    time.Duration
	probeTimeout     time.Duration // ≥ the link's 99th-percentile RTT
	suspicionMult    int
	suspicionMaxMult int
	gossipInterval   time.Duration
	gossipNodes      int
	tcpTimeout       time.Duration // stream (join, push/pull) connect and I/O timeout
	pushPullInterval time.Duration // full state sync; repairs anything gossip missed
	indirectChecks   int
	retransmitMult   int
	deadGossipTime   time.Duration // keep gossiping to a dead node so it can refute
	rejoinInterval   time.Duration // retry seeds that are not members (Membership)

	// bound is the worst detection time measured for this profile with
	// headroom for a loaded machine (README.md); FailureDetectionBound.
	bound time.Duration

	// The weights bandwidth budget a node on this profile starts from
	// (actors.Config weights_max_rate and weights_min_interval; a config
	// file or a flag overrides them), chosen from CartPole-v1 on two nodes,
	// 5 seeds (BENCHMARKS.md): a version at most every 50 ms solved as fast
	// as every publication (median 75k env steps against 100k) with 14×
	// fewer weights bytes; every 250 ms as fast again with 70× fewer; every
	// 1 s solved 3 of 5 within 300k, every 4 s 1 of 5: runners stepping 10k
	// times a second must not act on weights a second old.
	weightsMaxRate     int
	weightsMinInterval time.Duration
}

var profiles = map[string]profile{
	// Loopback: RTT is microseconds, so probe 5× a second and suspect for
	// two intervals (k = SuspicionMult−2 = 0: no confirmations awaited).
	// Expected ≈ 0.2 + 0.2 + 0.4 s.
	ProfileLocal: {
		probeInterval:    200 * time.Millisecond,
		probeTimeout:     100 * time.Millisecond,
		suspicionMult:    2,
		suspicionMaxMult: 3,
		gossipInterval:   50 * time.Millisecond,
		gossipNodes:      3,
		tcpTimeout:       time.Second,
		pushPullInterval: 5 * time.Second,
		indirectChecks:   1,
		retransmitMult:   3,
		deadGossipTime:   5 * time.Second,
		rejoinInterval:   time.Second,
		bound:            2 * time.Second,

		weightsMaxRate:     0,
		weightsMinInterval: 50 * time.Millisecond,
	},
	// One data centre: RTT well under 50 ms. Suspicion 1.5 s, at most 4.5 s
	// when no other member confirms. Expected ≈ 0.5 + 0.5 + 1.5 s.
	ProfileLAN: {
		probeInterval:    500 * time.Millisecond,
		probeTimeout:     250 * time.Millisecond,
		suspicionMult:    3,
		suspicionMaxMult: 3,
		gossipInterval:   100 * time.Millisecond,
		gossipNodes:      3,
		tcpTimeout:       3 * time.Second,
		pushPullInterval: 15 * time.Second,
		indirectChecks:   3,
		retransmitMult:   4,
		deadGossipTime:   15 * time.Second,
		rejoinInterval:   5 * time.Second,
		bound:            6 * time.Second,

		weightsMaxRate:     0,
		weightsMinInterval: 50 * time.Millisecond,
	},
	// Across the Internet, possibly over a saturated 2 Mbit/s link: a 600 ms
	// direct-ping timeout covers intercontinental RTTs (≤ 300 ms) plus
	// queueing, and the indirect/TCP pings get the other 600 ms. Suspicion
	// is a flat 3.6 s (3 probe intervals: time for a falsely suspected node
	// to hear of it and refute, even across a congested link); it is not
	// stretched while waiting for confirmations (SuspicionMaxTimeoutMult 1):
	// with a 1.5 s interval and a stretch of 2, late confirmations and
	// unlucky probe order pushed detection to 8.4 s on loopback, too close
	// to the target. Expected ≈ 0.6 + 1.2 + 3.6 s, worst (the dead node last
	// in every prober's round) ≈ 3·1.2 + 1.2 + 3.6 = 8.4 s: inside the 10 s
	// target, where memberlist's WAN preset takes ~39 s.
	ProfileWAN: {
		probeInterval:    1200 * time.Millisecond,
		probeTimeout:     600 * time.Millisecond,
		suspicionMult:    3,
		suspicionMaxMult: 1,
		gossipInterval:   300 * time.Millisecond,
		gossipNodes:      4,
		tcpTimeout:       10 * time.Second,
		pushPullInterval: 30 * time.Second,
		indirectChecks:   3,
		retransmitMult:   4,
		deadGossipTime:   30 * time.Second,
		rejoinInterval:   10 * time.Second,
		bound:            10 * time.Second,

		// 25 kB/s per runner: two runners take a fifth of a 2 Mbit/s
		// uplink (250 kB/s); a CartPole version (~12 kB as a delta) every
		// half second at most, a MinAtar one (~300 kB) every 12 s.
		weightsMaxRate:     25_000,
		weightsMinInterval: 250 * time.Millisecond,
	},
}

// WeightsBudget is the weights bandwidth budget a node on profile starts
// from: weights_max_rate (bytes/s per runner link, 0: unlimited) and
// weights_min_interval (0: none). ok is false for an unknown profile.
func WeightsBudget(profile string) (maxRate int, minInterval time.Duration, ok bool) {
	p, ok := profiles[profile]
	return p.weightsMaxRate, p.weightsMinInterval, ok
}

// apply sets the profile's timings on a memberlist config.
func (p profile) apply(c *memberlist.Config) {
	c.ProbeInterval = p.probeInterval
	c.ProbeTimeout = p.probeTimeout
	c.SuspicionMult = p.suspicionMult
	c.SuspicionMaxTimeoutMult = p.suspicionMaxMult
	c.GossipInterval = p.gossipInterval
	c.GossipNodes = p.gossipNodes
	c.TCPTimeout = p.tcpTimeout
	c.PushPullInterval = p.pushPullInterval
	c.IndirectChecks = p.indirectChecks
	c.RetransmitMult = p.retransmitMult
	c.GossipToTheDeadTime = p.deadGossipTime
}
