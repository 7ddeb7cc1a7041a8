"""The Python CartPole's own step rate, in a plain loop (alternating
actions, as BenchmarkBridge's, and a reset at every episode's end): the
baseline the bridge is measured against. Prints one line: steps/s."""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python", "examples"))
from cartpole import CartPole  # noqa: E402

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
env = CartPole()
env.reset(seed=1)
start = time.perf_counter()
for k in range(steps):
    obs, r, term, trunc, _ = env.step(k & 1)
    if term or trunc:
        env.reset()
print(steps / (time.perf_counter() - start))
