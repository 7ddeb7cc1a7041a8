"""CartPole-v1 with Gymnasium's Env API, without Gymnasium: a port of
qfleet's envs/cartpole.go, which reproduces Gymnasium's CartPole-v1 bit for
bit. Float64 state, float32 observations, the same constants and order of
operations, and the reset drawn from np.random.default_rng(seed) (PCG64, as
Gymnasium seeds its envs; a reset without a seed continues that stream).

Run by qfleet (the subprocess transport) or as a server:
    python3 python/examples/cartpole.py --listen 127.0.0.1:5555 --envs 8
--max-episode-steps N sets another time limit (500 by default).
"""

import argparse
import math
import os
import sys

import numpy as np

# The constants as the float64 values envs/cartpole.go uses (Python
# computes the derived ones to these same values).
GRAVITY = 9.8
MASSPOLE = 0.1
TOTAL_MASS = 1.1
LENGTH = 0.5
POLEMASS_LENGTH = 0.05
FORCE_MAG = 10.0
TAU = 0.02
FOUR_THIRDS = 4.0 / 3.0
THETA_THRESHOLD = 0.20943951023931953
X_THRESHOLD = 2.4
MAX_EPISODE_STEPS = 500
RESET_BOUND = 0.05


class Box:
    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, np.dtype(dtype)


class Discrete:
    def __init__(self, n):
        self.n, self.start = n, 0


class EnvSpec:
    def __init__(self, id, max_episode_steps, reward_threshold):
        self.id, self.max_episode_steps, self.reward_threshold = id, max_episode_steps, reward_threshold


class CartPole:
    """CartPole-v1 as gym.make returns it: the physics in a 500-step time limit."""

    observation_space = Box((4,), np.float32)
    action_space = Discrete(2)

    def __init__(self, max_episode_steps=MAX_EPISODE_STEPS):
        # Another time limit is what gym.make(..., max_episode_steps=n) gives.
        self.spec = EnvSpec("CartPole-v1", max_episode_steps, 475.0)
        self.np_random = None
        self.state = None
        self.elapsed = 0
        self.steps_beyond_terminated = None

    @property
    def unwrapped(self):
        return self

    def reset(self, *, seed=None, options=None):
        if seed is not None or self.np_random is None:
            self.np_random = np.random.default_rng(seed)
        self.state = self.np_random.uniform(low=-RESET_BOUND, high=RESET_BOUND, size=(4,)).tolist()
        self.elapsed = 0
        self.steps_beyond_terminated = None
        return np.array(self.state, dtype=np.float32), {}

    def step(self, action):
        if action == 1:
            force = FORCE_MAG
        elif action == 0:
            force = -FORCE_MAG
        else:
            raise ValueError(f"invalid action {action!r} (want 0 or 1)")
        if self.state is None:
            raise RuntimeError("step before reset")
        x, x_dot, theta, theta_dot = self.state
        costheta, sintheta = math.cos(theta), math.sin(theta)
        # The association of envs/cartpole.go (left to right, as Python
        # evaluates): any other order rounds differently.
        temp = (force + POLEMASS_LENGTH * (theta_dot * theta_dot) * sintheta) / TOTAL_MASS
        thetaacc = (GRAVITY * sintheta - costheta * temp) / (
            LENGTH * (FOUR_THIRDS - MASSPOLE * (costheta * costheta) / TOTAL_MASS)
        )
        xacc = temp - POLEMASS_LENGTH * thetaacc * costheta / TOTAL_MASS
        # Explicit Euler: positions advance with the old velocities.
        x, x_dot, theta, theta_dot = x + TAU * x_dot, x_dot + TAU * xacc, theta + TAU * theta_dot, theta_dot + TAU * thetaacc
        self.state = [x, x_dot, theta, theta_dot]

        terminated = x < -X_THRESHOLD or x > X_THRESHOLD or theta < -THETA_THRESHOLD or theta > THETA_THRESHOLD
        if not terminated:
            reward = 1.0
        elif self.steps_beyond_terminated is None:  # the pole just fell: this step still earns 1
            self.steps_beyond_terminated = 0
            reward = 1.0
        else:
            self.steps_beyond_terminated += 1
            reward = 0.0
        self.elapsed += 1
        truncated = self.elapsed >= self.spec.max_episode_steps
        return np.array(self.state, dtype=np.float32), reward, terminated, truncated, {}

    def close(self):
        pass


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import qfleet_env

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--max-episode-steps", type=int, default=MAX_EPISODE_STEPS)
    args, rest = p.parse_known_args()
    qfleet_env.serve(lambda: CartPole(args.max_episode_steps), argv=rest)
