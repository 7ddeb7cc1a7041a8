"""CartPolePixels-v1: CartPole-v1 (cartpole.py's bit-exact port of qfleet's
CartPole) observed as one 84x84 gray uint8 frame, a port of qfleet's
envs/pixels. The frame is drawn from the float32 observation with float64
arithmetic in the order envs/pixels/pixels.go uses, and sin/cos as the same
Taylor polynomials (libm's differ between glibc and Go by an ulp on some
arguments), so for the same seed and actions the frames equal Go's byte for
byte (envs/external/pixels_test.go checks it through the subprocess bridge).

Run by qfleet (the subprocess transport) or as a server:
    python3 python/examples/cartpole_pixels.py --listen 127.0.0.1:5555 --envs 8
--max-episode-steps N sets another time limit (500 by default).
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cartpole import MAX_EPISODE_STEPS, Box, CartPole, Discrete, EnvSpec  # noqa: E402

# The geometry and gray levels of envs/pixels/pixels.go.
WIDTH = HEIGHT = 84
SCALE = 17.5  # px per metre: 84 / 4.8
CENTRE_X = 42.0
TRACK_ROW = 62
CART_TOP = 58
CART_HALF_W = 3.5
PIVOT_Y = 58.0
POLE_LENGTH = 17.5
POLE_HALF_W = 1.0
BACKGROUND, TRACK, CART, POLE = 0, 96, 160, 255

_COLS = np.arange(WIDTH, dtype=np.float64) + 0.5  # pixel centres
_ROWS = (np.arange(HEIGHT, dtype=np.float64) + 0.5 - PIVOT_Y)[:, None]


def sin_cos(t):
    """sin and cos of t by the Taylor polynomials of pixels.go's sinCos, in
    its order (Python evaluates a/b*c as (a/b)*c, as Go does)."""
    t2 = t * t
    s = t * (1.0 - t2 / 6.0 * (1.0 - t2 / 20.0 * (1.0 - t2 / 42.0)))
    c = 1.0 - t2 / 2.0 * (1.0 - t2 / 12.0 * (1.0 - t2 / 30.0 * (1.0 - t2 / 56.0)))
    return s, c


def render(x, theta):
    """The frame of the cart-pole whose float32 observation has cart
    position x and pole angle theta: a (84, 84, 1) uint8 array. A pixel
    belongs to a shape when its centre does; each numpy operation rounds on
    its own, as pixels.go's explicit float64 conversions make Go do."""
    f = np.full((HEIGHT, WIDTH), BACKGROUND, dtype=np.uint8)
    f[TRACK_ROW, :] = TRACK
    cx = CENTRE_X + float(x) * SCALE
    vx = _COLS - cx
    f[CART_TOP:TRACK_ROW, np.abs(vx) < CART_HALF_W] = CART
    s, c = sin_cos(float(theta))
    along = vx[None, :] * s - _ROWS * c
    across = vx[None, :] * c + _ROWS * s
    f[(along >= 0) & (along <= POLE_LENGTH) & (across >= -POLE_HALF_W) & (across <= POLE_HALF_W)] = POLE
    return f.reshape(HEIGHT, WIDTH, 1)


class CartPolePixels:
    """CartPole-v1's dynamics, seeds, rewards and time limit; a frame for an
    observation (no velocities in it: train with frame stacking)."""

    observation_space = Box((HEIGHT, WIDTH, 1), np.uint8)
    action_space = Discrete(2)

    def __init__(self, max_episode_steps=MAX_EPISODE_STEPS):
        self.cartpole = CartPole(max_episode_steps)
        self.spec = EnvSpec("CartPolePixels-v1", max_episode_steps, 475.0)

    @property
    def unwrapped(self):
        return self

    def reset(self, *, seed=None, options=None):
        obs, info = self.cartpole.reset(seed=seed, options=options)
        return render(obs[0], obs[2]), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.cartpole.step(action)
        return render(obs[0], obs[2]), reward, terminated, truncated, info

    def close(self):
        pass


if __name__ == "__main__":
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import qfleet_env

    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--max-episode-steps", type=int, default=MAX_EPISODE_STEPS)
    args, rest = p.parse_known_args()
    qfleet_env.serve(lambda: CartPolePixels(args.max_episode_steps), argv=rest)
