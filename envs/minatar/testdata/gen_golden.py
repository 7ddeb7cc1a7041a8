#!/usr/bin/env python3
"""Regenerates the golden episodes of Breakout, Asterix and Freeway in envs/minatar.

Run once, by hand; the Go tests never run Python. The outputs are committed:
  envs/minatar/breakout_golden_test.go
  envs/minatar/asterix_golden_test.go
  envs/minatar/freeway_golden_test.go

It runs the reference MinAtar source (kenjyoung/MinAtar @ 4241f24685622cfb52f843cab9bbcf385a53484a,
the `minatar/` directory) with Debian's python3 and python3-numpy (1.24.2 was used); nothing else is
needed, since environment.py only warns when matplotlib is missing:

  git --git-dir=<MinAtar clone>/.git archive 4241f24 minatar | tar -x -C /tmp/minatar-src
  /usr/bin/python3 envs/minatar/testdata/gen_golden.py /tmp/minatar-src envs/minatar && gofmt -w envs/minatar

Each Environment's RandomState (shared by the wrapper and the game, as Environment.seed makes it) is
replaced by a recording wrapper that logs every rand()/randint() call and its result, a sized call
as that many scalar draws. The Go test replays those values through an injected Rand and fails if
the Go code asks for a different kind, range, count or order of draws. numpy's stream itself is not
reproduced; only the values the reference drew matter.

A session is one Environment used for several episodes in a row (so the sticky-action memory
carries over between episodes, as in the reference) with one action policy. -v1 sessions pick
agent actions from the minimal set and map them as minatar/gym.py does. Each episode records, for
the reset and every step, the FNV-1a 32 hash of the state's bytes (bool (10,10,C) C-order = the Go
observation's channel-last order), and per step the agent action, reward and terminal flag. Every
episode also takes 2 steps after the terminal one, which must return (0, True) and leave the
state alone while still drawing the sticky check.
"""
import copy
import os
import sys

import numpy as np

src_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/minatar-src"
out_dir = sys.argv[2] if len(sys.argv) > 2 else "."
sys.path.insert(0, src_dir)

import logging  # noqa: E402

logging.disable(logging.WARNING)  # "Cannot import matplotlib" is expected
from minatar import Environment  # noqa: E402

MINATAR_COMMIT = "4241f24685622cfb52f843cab9bbcf385a53484a"
POST_TERMINAL_STEPS = 2


class RecordingRandom:
    """A numpy RandomState that logs every draw as a token of the Go test's format:
    a float for rand(), "i<low>:<high>=<value>" for randint(low, high)."""

    def __init__(self, seed):
        self.rs = np.random.RandomState(seed)
        self.log = []

    def rand(self, *size):
        v = self.rs.rand(*size)
        for x in np.ravel(v):
            self.log.append(repr(float(x)))
        return v

    def randint(self, low, high=None, size=None):
        v = self.rs.randint(low, high, size)
        lo, hi = (0, low) if high is None else (low, high)
        for x in np.ravel(v):
            self.log.append("i%d:%d=%d" % (lo, hi, int(x)))
        return v

    def take(self):
        out, self.log = self.log, []
        return out


def fnv32(state):
    h = 0x811C9DC5
    for b in np.ascontiguousarray(state, dtype=np.uint8).tobytes():
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


# Policies: f(env, rng, action_set) -> index into action_set. rng is the policy's own
# numpy Generator, never the recorded RandomState.

def random_policy(env, rng, action_set):
    return int(rng.integers(len(action_set)))


def pick(action_set, rng, full_action):
    """Index of full_action in action_set, or a random index if the set lacks it."""
    if full_action in action_set:
        return action_set.index(full_action)
    return int(rng.integers(len(action_set)))


def breakout_tracker(env, rng, action_set):
    # Move the paddle toward where the ball will come down: simulate a copy of the game with
    # no-ops until the ball is in row 8 heading down, and aim at that column (the centre
    # bounce) or, a third of the time, the next one (the edge bounce). 5% random. Keeps the
    # ball alive long enough to clear all bricks (so they refill), reach the ceiling through
    # cleared columns and meet the strike quirk.
    g = env.env
    if rng.random() < 0.05:
        return random_policy(env, rng, action_set)
    rec, g.random = g.random, None
    try:
        sim = copy.deepcopy(g)
    finally:
        g.random = rec
    target = sim.ball_x
    for _ in range(40):
        if sim.ball_y == 8 and sim.ball_dir in (2, 3):
            target = sim.ball_x
            if int(g.brick_map.sum()) % 3 == 0:
                # Sometimes aim for an edge hit instead (the paddle under the ball's next
                # column), which sends the ball back the way it came: varied angles reach
                # the ceiling through cleared columns.
                target = min(9, max(0, target + (1 if sim.ball_dir == 2 else -1)))
            break
        sim.act(0)
        if sim.terminal:
            break
    if g.pos < target:
        return pick(action_set, rng, 3)
    if g.pos > target:
        return pick(action_set, rng, 1)
    return pick(action_set, rng, 0)


def asterix_survivor(env, rng, action_set):
    # Depth-3 lookahead on copies of the game (with throwaway RNGs for spawns): prefer actions
    # that survive, then ones safe to repeat (sticky), then ones that stay off the edge columns,
    # then ones that collect gold. 2% random. Lives long enough to
    # reach every ramp (spawn and move speed 1 at step 918).
    g = env.env
    rec, g.random = g.random, None
    try:
        def alive(game, depth):
            if depth == 0:
                return True
            for b in action_set:
                sim = copy.deepcopy(game)
                sim.random = np.random.RandomState(int(rng.integers(1 << 30)))
                if not sim.act(b)[1] and alive(sim, depth - 1):
                    return True
            return False

        scores = []
        for i, a in enumerate(action_set):
            sim = copy.deepcopy(g)
            sim.random = np.random.RandomState(int(rng.integers(1 << 30)))
            r, t = sim.act(a)
            ok = not t and alive(sim, 2)
            # A sticky step repeats this action next time: prefer actions safe to repeat.
            again = copy.deepcopy(sim)
            again.random = np.random.RandomState(int(rng.integers(1 << 30)))
            repeat_ok = ok and not again.act(a)[1]
            # Entities spawn in the two edge columns and the lookahead cannot know where:
            # keep away from them.
            inner = 2 <= sim.player_x <= 7
            scores.append((ok, repeat_ok, inner, r, rng.random(), i))
    finally:
        g.random = rec
    if rng.random() < 0.02:
        return random_policy(env, rng, action_set)
    return max(scores)[-1]


def freeway_up(env, rng, action_set):
    # Mostly up: many crossings, so many car re-randomisations.
    if rng.random() < 0.75:
        return pick(action_set, rng, 2)
    return random_policy(env, rng, action_set)


GAMES = {
    "breakout": ("Breakout", [0, 1, 3]),
    "asterix": ("Asterix", [0, 1, 2, 3, 4]),
    "freeway": ("Freeway", [0, 2, 4]),
}

# (version, sticky, ramping, seed, policy, episodes, step cap per episode)
SESSIONS = {
    "breakout": [
        ("v0", 0.1, True, 1, random_policy, 8, 5000),
        ("v1", 0.5, True, 2, random_policy, 6, 5000),
        ("v0", 0.1, True, 3, breakout_tracker, 4, 1500),
        ("v1", 0.0, True, 4, breakout_tracker, 3, 1500),
        ("v0", 0.3, False, 5, breakout_tracker, 2, 1500),
    ],
    "asterix": [
        ("v0", 0.1, True, 1, random_policy, 8, 5000),
        ("v1", 0.1, True, 2, asterix_survivor, 2, 1200),
        ("v0", 0.0, True, 6, asterix_survivor, 2, 1200),
        ("v0", 0.3, False, 3, asterix_survivor, 2, 500),
        ("v1", 0.0, True, 4, random_policy, 4, 5000),
    ],
    "freeway": [
        ("v0", 0.1, True, 1, random_policy, 1, 5000),
        ("v1", 0.1, True, 2, freeway_up, 2, 5000),
    ],
}


def run_session(game, version, sticky, ramping, seed, policy, n_episodes, cap):
    _, minimal = GAMES[game]
    env = Environment(game, sticky_action_prob=sticky, difficulty_ramping=ramping)
    rec = RecordingRandom(seed)
    env.random = rec
    env.env.random = rec
    action_set = list(range(6)) if version == "v0" else minimal
    prng = np.random.default_rng(1000 + seed)
    episodes = []
    for _ in range(n_episodes):
        env.reset()
        ep = {"actions": [], "rewards": [], "terminals": [], "hashes": [fnv32(env.state())]}
        post = 0
        while len(ep["actions"]) < cap and post < POST_TERMINAL_STEPS:
            if ep["terminals"] and ep["terminals"][-1]:
                post += 1
            i = policy(env, prng, action_set)
            r, t = env.act(action_set[i])
            ep["actions"].append(i)
            ep["rewards"].append(int(r))
            ep["terminals"].append(bool(t))
            ep["hashes"].append(fnv32(env.state()))
            assert r == int(r)
        ep["draws"] = rec.take()
        episodes.append(ep)
    return episodes


def chunks(seq, n):
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def go_string(text, width=100):
    """A Go string literal of text split into concatenated lines of at most width chars."""
    if not text:
        return '""'
    return " +\n\t\t\t\t".join('"%s"' % c for c in chunks(text, width))


def go_raw(tokens, per_line):
    lines = [" ".join(c) for c in chunks(tokens, per_line)]
    return "`\n" + "\n".join(lines) + "\n`"


def write_game(game):
    name, _ = GAMES[game]
    var = game + "Goldens"
    out = []
    out.append("// Code generated by envs/minatar/testdata/gen_golden.py from MinAtar %s and numpy %s. DO NOT EDIT.\n"
               % (MINATAR_COMMIT[:7], np.__version__))
    out.append("package minatar\n")
    out.append("// %s are recorded reference sessions of MinAtar/%s (see recordedSession)." % (var, name))
    out.append("var %s = []recordedSession{" % var)
    total = 0
    for (version, sticky, ramping, seed, policy, n_ep, cap) in SESSIONS[game]:
        episodes = run_session(game, version, sticky, ramping, seed, policy, n_ep, cap)
        out.append("\t{")
        out.append('\t\tid: "MinAtar/%s-%s", sticky: %r, ramping: %s, seed: %d, policy: "%s",'
                   % (name, version, sticky, "true" if ramping else "false", seed, policy.__name__))
        out.append("\t\tepisodes: []recordedEpisode{")
        for ep in episodes:
            steps = len(ep["actions"])
            total += steps
            ret = sum(ep["rewards"])
            out.append("\t\t\t{ // %d steps, return %d, terminal %s" % (steps, ret, any(ep["terminals"])))
            out.append("\t\t\t\tactions: " + go_string("".join(str(a) for a in ep["actions"])) + ",")
            out.append("\t\t\t\trewards: " + go_string("".join(str(r) for r in ep["rewards"])) + ",")
            out.append("\t\t\t\tterminals: " + go_string("".join("1" if t else "0" for t in ep["terminals"])) + ",")
            out.append("\t\t\t\tdraws: " + go_raw(ep["draws"], 5) + ",")
            out.append("\t\t\t\thashes: " + go_raw(["%08x" % h for h in ep["hashes"]], 12) + ",")
            out.append("\t\t\t},")
        out.append("\t\t},")
        out.append("\t},")
    out.append("}\n")
    path = os.path.join(out_dir, game + "_golden_test.go")
    with open(path, "w") as f:
        f.write("\n".join(out))
    print("%s: %d steps" % (path, total))


for game in (sys.argv[3:] or GAMES):
    write_game(game)
