"""Misbehaving envs for envs/external's tests: python3 bad_env.py MODE.

Each mode breaks one promise at the third step (or earlier, where the mode
says so); the Go side must turn each into one clear error, except "prints",
"spawn" and "mixed_rows", which must simply work."""

import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python"))
import qfleet_env  # noqa: E402

MODE = sys.argv[1]


class Box:
    shape, dtype = (4,), np.dtype(np.float32)


class Discrete:
    n = 2


class Bad:
    observation_space, action_space = Box(), Discrete()

    def __init__(self):
        self.t = 0
        if MODE == "raise_make":
            raise RuntimeError("cannot make the env")
        if MODE == "spawn":
            child = subprocess.Popen(["sleep", "300"])
            print(f"child pid {child.pid}")

    def reset(self, seed=None, options=None):
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.t += 1
        obs = np.full(4, self.t % 2, np.float32)
        if MODE == "mixed_rows":
            # Rows that are not float32 arrays of their own: float64, a
            # list, a strided view. Every value is t + index / 4.
            row = [self.t + i / 4 for i in range(4)]
            obs = [np.array(row), row, np.array([row, row], np.float32).T[:, 0], np.array(row, np.float32)][self.t % 4]
        if MODE == "prints":
            print("stdout noise", self.t)
            print("stderr noise", self.t, file=sys.stderr)
            os.write(1, b"raw bytes on fd 1 without a newline ")
        if self.t == 3:
            if MODE == "raise_step":
                raise ValueError("boom at step 3")
            if MODE == "exit_step":
                print("about to exit", file=sys.stderr, flush=True)
                os._exit(3)
            if MODE == "hang_step":
                time.sleep(600)
            if MODE == "wrong_shape":
                obs = np.zeros(3, np.float32)
            if MODE == "nan_obs":
                obs[1] = np.nan
            if MODE == "nan_reward":
                return obs, float("nan"), False, False, {}
            if MODE == "binary2":
                obs = np.full(4, 2, np.float32)
        return obs, 1.0, self.t % 5 == 0, False, {}


if MODE == "exit_start":
    print("failing before serve", file=sys.stderr)
    sys.exit(5)
if MODE == "version":
    qfleet_env.PROTOCOL_VERSION = 2
qfleet_env.serve(Bad, env_id="Bad-v0", obs_dtype="binary" if MODE == "binary2" else None, argv=[])
