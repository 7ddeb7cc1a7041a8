#!/usr/bin/env python3
"""Regenerates the Seaquest and Space Invaders golden tests of envs/minatar.

Run once, by hand; the Go tests never run Python. The outputs are committed:
  envs/minatar/seaquest_golden_test.go
  envs/minatar/space_invaders_golden_test.go

It runs the real MinAtar source (kenjyoung/MinAtar @ 4241f24685622cfb52f843cab9bbcf385a53484a)
through minatar.Environment, whose wrapper draws the sticky-action check. Every random
draw goes through a recording wrapper around the seeded numpy RandomState, patched into
both the Environment and the game, so the Go test can replay the exact draws and fail
if the Go code draws a different kind, count or order. Needs only Debian's numpy
(python3-numpy 1.24 was used; matplotlib is optional and not needed):

  PYTHONPATH=/path/to/MinAtar /usr/bin/python3 envs/minatar/testdata/gen_golden_seaquest_si.py envs/minatar \
    && gofmt -w envs/minatar/seaquest_golden_test.go envs/minatar/space_invaders_golden_test.go

Episodes come from three kinds of policy: uniform random actions (short episodes that
die by collision or by surfacing without divers), and two planners that read the game's
internals and look a few steps ahead on deep copies of the game (with their own RNG, so
the recorded stream is untouched) to survive long enough to reach surfacing with and
without 6 divers, difficulty ramping, oxygen running out, and cleared alien waves. The
actions recorded are the ones passed to Environment.act, before the sticky check.

Golden format, one Go raw string per episode, one line per reset or step:
  action;reward;terminal;draws;state
action is "R" on the reset line. draws are space-separated tokens in call order: "f<repr>"
for rand() and "i<low>,<high>=<value>" for randint(low, high). state lists, in index
order, the cells of the boolean state that differ from the previous line's state (the
reset line: from all-false), three digits each: y, x, channel. The Go test rebuilds
each full state from these and compares it whole.
"""
import copy
import os
import sys

import numpy as np

from minatar import Environment

out_dir = sys.argv[1] if len(sys.argv) > 1 else "."

ACTIONS = ['n', 'l', 'u', 'r', 'd', 'f']


class Recorder:
    """A numpy RandomState that logs every draw. Only the calls MinAtar makes exist."""

    def __init__(self, rs):
        self.rs = rs
        self.log = []

    def rand(self, *args):
        assert not args, args
        v = self.rs.rand()
        self.log.append("f" + repr(float(v)))
        return v

    def randint(self, low, high=None, size=None):
        assert high is not None and size is None, (low, high, size)
        v = self.rs.randint(low, high)
        self.log.append("i%d,%d=%d" % (low, high, int(v)))
        return v

    def take(self):
        out, self.log = " ".join(self.log), []
        return out


# Look-ahead copies draw from here, never from the recorded stream. Reseeded for every
# session, so each session's episodes do not depend on the ones generated before it.
SIM_RNG = np.random.RandomState(0)


def clone(game):
    """A deep copy of the game for look-ahead, drawing from SIM_RNG instead."""
    rnd = game.random
    game.random = None
    try:
        g = copy.deepcopy(game)
    finally:
        game.random = rnd
    g.random = SIM_RNG
    return g


def state_cells(game):
    return {"%d%d%d" % (y, x, c) for y, x, c in np.argwhere(game.state())}


def encode_delta(prev, cur):
    return "".join(sorted(prev ^ cur))


# ---------------------------------------------------------------- policies

def survives(game, depth, moves, ok):
    """Whether some sequence of depth moves keeps the game alive and ok()."""
    if depth == 0:
        return True
    for a in moves:
        g = clone(game)
        _, t = g.act(a)
        if not t and ok(g) and survives(g, depth - 1, moves, ok):
            return True
    return False


class SeaquestPlanner:
    """Collects divers, shoots what is in line, surfaces when full or low on oxygen.

    never_surface: stays underwater until the oxygen runs out.
    """

    def __init__(self, seed, never_surface=False, eps=0.1, depth=3, full=6):
        self.rng = np.random.RandomState(seed)
        self.never_surface = never_surface
        self.eps = eps
        self.depth = depth
        self.full = full

    def ok(self, g):
        return not (self.never_surface and g.sub_y == 0 and not g.surface)

    def target(self, g):
        if not self.never_surface:
            # diver_count can be negative after a full surfacing (the reference's quirk);
            # surfacing is then safe, so refill whenever it is not exactly 0.
            low = g.oxygen < 16 + 3 * g.sub_y + int(self.rng.randint(0, 30))
            if g.diver_count >= self.full or (g.diver_count != 0 and low):
                return (g.sub_x, 0)
        if g.divers and g.diver_count < 6:
            d = min(g.divers, key=lambda d: abs(d[0] - g.sub_x) + abs(d[1] - g.sub_y))
            return (d[0], d[1])
        return (4, 1 + int(self.rng.randint(0, 8)) if self.rng.rand() < 0.05 else max(1, g.sub_y))

    def __call__(self, env):
        g = env.env
        safe = []
        for a in range(6):
            h = clone(g)
            r, t = h.act(a)
            if not t and self.ok(h) and survives(h, self.depth - 1, [0, 1, 2, 3, 4], self.ok):
                safe.append((a, h, r))
        if not safe:
            return int(self.rng.randint(0, 6))
        if self.rng.rand() < self.eps:
            return safe[self.rng.randint(0, len(safe))][0]
        tx, ty = self.target(g)
        facing = 1 if g.sub_or else -1
        in_line = any(e[1] == g.sub_y and (e[0] - g.sub_x) * facing > 0 for e in g.e_fish + g.e_subs)
        best, best_score = [], None
        for a, h, r in safe:
            score = abs(h.sub_x - tx) + abs(h.sub_y - ty) - 3 * r
            if a == 5 and in_line and g.shot_timer == 0:
                score -= 2
            if best_score is None or score < best_score:
                best, best_score = [a], score
            elif score == best_score:
                best.append(a)
        return best[self.rng.randint(0, len(best))]


class InvadersPlanner:
    """Aims: walks to the nearest column from which a shot would hit, fires, dodges by look-ahead."""

    def __init__(self, seed, eps=0.1, depth=3):
        self.rng = np.random.RandomState(seed)
        self.eps = eps
        self.depth = depth

    def hits_from(self, g, col):
        """Whether walking to col, firing and waiting scores, in a noise-free simulation."""
        h = clone(g)
        while h.pos != col:
            h.act(1 if col < h.pos else 3)
            if h.terminal:
                return False
        while h.shot_timer > 0 and not h.terminal:
            h.act(0)
        r, _ = h.act(5)
        for _ in range(10):
            if r > 0 or h.terminal:
                break
            r, _ = h.act(0)
        return r > 0 and not h.terminal

    def __call__(self, env):
        g = env.env
        safe = []
        for a in [0, 1, 3, 5]:
            h = clone(g)
            r, t = h.act(a)
            if not t and survives(h, self.depth - 1, [0, 1, 3, 5], lambda _: True):
                safe.append((a, h, r))
        if not safe:
            return int(self.rng.choice([0, 1, 3, 5]))
        if self.rng.rand() < self.eps:
            return safe[self.rng.randint(0, len(safe))][0]
        cols = sorted(range(10), key=lambda c: abs(c - g.pos))
        tx = next((c for c in cols if self.hits_from(g, c)), g.pos)
        best, best_score = [], None
        for a, h, r in safe:
            score = abs(h.pos - tx) - 5 * r
            if a == 5 and tx == g.pos and g.shot_timer == 0:
                score -= 3
            # A sticky step can repeat the last action, so keep out from under bullets early.
            if h.e_bullet_map[:, h.pos].sum() > 0:
                score += 8
            if best_score is None or score < best_score:
                best, best_score = [a], score
            elif score == best_score:
                best.append(a)
        return best[self.rng.randint(0, len(best))]


class RandomPolicy:
    def __init__(self, seed, actions=range(6)):
        self.rng = np.random.RandomState(seed)
        self.actions = list(actions)

    def __call__(self, env):
        return self.actions[self.rng.randint(0, len(self.actions))]


# ---------------------------------------------------------------- recording

def duplicates(game, lists):
    """How many entries of the entity lists equal an earlier one by value."""
    n = 0
    for name in lists:
        l = getattr(game, name)
        n += sum(1 for i in range(len(l)) if l[i] in l[:i])
    return n


def record_session(game_name, seed, sticky, ramping, policies, max_steps, post_terminal=2, dup_lists=()):
    SIM_RNG.seed(seed)
    env = Environment(game_name, sticky_action_prob=sticky, difficulty_ramping=ramping)
    env.seed(seed)
    rec = Recorder(env.random)
    env.random = rec
    env.env.random = rec
    episodes, stats = [], []
    for policy in policies:
        env.reset()
        prev = state_cells(env.env)
        lines = ["R;;;%s;%s" % (rec.take(), encode_delta(set(), prev))]
        terminal, steps, ret, dups, extra = False, 0, 0, 0, 0
        info = {"surface6": 0, "surface": 0, "surface_negative": 0, "oxygen_out": False, "max_ramp": 0, "waves": 0, "max_entities": 0}
        while steps < max_steps and extra < post_terminal:
            g = env.env
            a = int(policy(env)) if not terminal else int(np.random.RandomState(steps).randint(0, 6))
            before = (getattr(g, "diver_count", 0), getattr(g, "oxygen", 0), getattr(g, "sub_y", 1))
            aliens_before = int(np.count_nonzero(g.alien_map)) if hasattr(g, "alien_map") else 0
            r, t = env.act(a)
            if game_name == "seaquest" and not terminal:
                if before[2] > 0 and g.sub_y == 0 and not t:
                    info["surface"] += 1
                    if before[0] == 6:
                        info["surface6"] += 1
                    if before[0] < 0:
                        info["surface_negative"] += 1
                if t and before[1] <= 0:
                    info["oxygen_out"] = True
                info["max_entities"] = max(info["max_entities"], len(g.e_fish) + len(g.e_subs) + len(g.divers))
                dups += duplicates(g, dup_lists)
            if game_name == "space_invaders" and not terminal:
                if r > 0 and aliens_before == r:
                    info["waves"] += 1
                if t:
                    info["cause"] = "bullet" if g.e_bullet_map[9, g.pos] else "alien"
            if game_name == "seaquest" and not terminal and t:
                info["cause"] = ("oxygen" if before[1] <= 0 else
                                 "surface0" if g.sub_y == 0 and before[2] > 0 else "collision")
            info["max_ramp"] = max(info["max_ramp"], g.ramp_index)
            cur = state_cells(g)
            lines.append("%d;%d;%d;%s;%s" % (a, int(r), int(t), rec.take(), encode_delta(prev, cur)))
            prev = cur
            ret += int(r)
            steps += 1
            if terminal:
                extra += 1
            terminal = terminal or bool(t)
        info.update(steps=steps, ret=ret, terminal=terminal, dups=dups)
        stats.append(info)
        episodes.append(lines)
    return {"seed": seed, "sticky": sticky, "ramping": ramping, "episodes": episodes}, stats


def write_go(path, var, what, sessions):
    with open(path, "w") as f:
        f.write("// Code generated by envs/minatar/testdata/gen_golden_seaquest_si.py from MinAtar 4241f24\n")
        f.write("// and numpy %s. DO NOT EDIT.\n\n" % np.__version__)
        f.write("package minatar\n\n")
        f.write("// %s\n" % what)
        f.write("var %s = []sqsiSession{\n" % var)
        for s in sessions:
            f.write("\t{seed: %d, sticky: %r, ramping: %s, episodes: []string{\n" % (
                s["seed"], s["sticky"], "true" if s["ramping"] else "false"))
            for ep in s["episodes"]:
                f.write("\t\t`" + "\n".join(ep) + "`,\n")
            f.write("\t}},\n")
        f.write("}\n")


def main():
    sys.setrecursionlimit(10000)

    sq_sessions = []

    def sq(seed, sticky, ramping, policies, max_steps):
        s, stats = record_session("seaquest", seed, sticky, ramping, policies, max_steps,
                                  dup_lists=("f_bullets", "e_bullets", "e_fish", "e_subs", "divers"))
        for st in stats:
            print("seaquest seed %d:" % seed, st, file=sys.stderr)
        sq_sessions.append(s)

    # Random play: collisions and surfacing without divers; last_action carries over.
    sq(1, 0.1, True, [RandomPolicy(100 + i) for i in range(6)], 400)
    # Planners: surfacing with and without 6 divers, with a negative diver count after a
    # full surfacing, ramping down to a spawn every few steps, long episodes.
    sq(10, 0.1, True, [SeaquestPlanner(10, depth=4, eps=0.05)], 3000)
    sq(22, 0.1, True, [SeaquestPlanner(22, depth=4, eps=0.05)], 3000)
    # Surfacing with every diver: ramping to its end (a spawn every step, move_speed 2).
    sq(51, 0.1, True, [SeaquestPlanner(51, depth=4, eps=0.03, full=1)], 3000)
    # Never surfacing: oxygen runs out.
    sq(4, 0.1, True, [SeaquestPlanner(9, never_surface=True, eps=0.05)], 400)
    # No ramping, more sticky actions.
    sq(33, 0.3, False, [SeaquestPlanner(33, depth=4, eps=0.05), RandomPolicy(11)], 1500)

    write_go(os.path.join(out_dir, "seaquest_golden_test.go"), "seaquestGoldens",
             "Recorded MinAtar seaquest sessions (one Environment each; see the generator).", sq_sessions)

    si_sessions = []

    def si(seed, sticky, ramping, policies, max_steps):
        s, stats = record_session("space_invaders", seed, sticky, ramping, policies, max_steps)
        for st in stats:
            print("space_invaders seed %d:" % seed, st, file=sys.stderr)
        si_sessions.append(s)

    si(1, 0.1, True, [RandomPolicy(200 + i) for i in range(4)], 400)
    si(2, 0.1, True, [InvadersPlanner(21)], 1500)
    si(3, 0.1, True, [InvadersPlanner(22, eps=0.3), RandomPolicy(23, [0, 1, 3, 5])], 800)
    si(4, 0.3, False, [InvadersPlanner(24)], 1000)

    write_go(os.path.join(out_dir, "space_invaders_golden_test.go"), "spaceInvadersGoldens",
             "Recorded MinAtar space_invaders sessions (one Environment each; see the generator).", si_sessions)


if __name__ == "__main__":
    main()
