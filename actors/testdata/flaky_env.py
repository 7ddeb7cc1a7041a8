"""A Python env for actors' tests that raises after FAIL_AFTER steps of its
process (python3 flaky_env.py FAIL_AFTER): a runner whose external env
fails must be restarted with a fresh env process, its experience books
exact. Episodes of 10 steps, reward 1 a step."""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import qfleet_env  # noqa: E402

FAIL_AFTER = int(sys.argv[1])
steps = 0


class Box:
    shape, dtype = (4,), np.dtype(np.float32)


class Discrete:
    n = 2


class Flaky:
    observation_space, action_space = Box(), Discrete()

    def reset(self, seed=None, options=None):
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        global steps
        steps += 1
        if steps > FAIL_AFTER:
            raise ValueError(f"flaky env: boom after {FAIL_AFTER} steps")
        self.t += 1
        return np.full(4, self.t / 10, np.float32), 1.0, self.t == 10, False, {}


qfleet_env.serve(Flaky, env_id="Flaky-v0", argv=[])
