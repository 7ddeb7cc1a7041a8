"""The Python CartPole stepped as Gymnasium's AsyncVectorEnv steps envs:
one process per env, commands over a multiprocessing Pipe, observations
written into shared memory, the parent stepping every env each step (send
every action, then receive every result) with same-step autoreset, as
BenchmarkBridge steps them through the env protocol. Written after
gymnasium/vector/async_vector_env.py (its _async_worker, step_async and
step_wait), without Gymnasium. Usage: mp_bench.py ENVS STEPS (vector steps);
prints one line: env steps/s."""

import multiprocessing as mp
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python", "examples"))
from cartpole import CartPole  # noqa: E402

OBS = 4


def worker(index, pipe, parent_pipe, shared):
    env = CartPole()
    obs_buf = np.frombuffer(shared, dtype=np.float32).reshape(-1, OBS)
    parent_pipe.close()
    while True:
        command, data = pipe.recv()
        if command == "reset":
            obs, info = env.reset(**data)
            obs_buf[index] = obs
            pipe.send(((None, info), True))
        elif command == "step":
            obs, reward, terminated, truncated, info = env.step(data)
            if terminated or truncated:
                final_obs, final_info = obs, info
                obs, info = env.reset()
                info = {"final_info": final_info, "final_obs": final_obs, **info}
            obs_buf[index] = obs
            pipe.send(((None, reward, terminated, truncated, info), True))
        elif command == "close":
            pipe.send((None, True))
            break


def main():
    n, steps = int(sys.argv[1]), int(sys.argv[2])
    ctx = mp.get_context("fork")
    shared = ctx.RawArray("f", n * OBS)
    obs = np.frombuffer(shared, dtype=np.float32).reshape(n, OBS)
    pipes, procs = [], []
    for i in range(n):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=worker, args=(i, child, parent, shared), daemon=True)
        p.start()
        child.close()
        pipes.append(parent)
        procs.append(p)
    for i, pipe in enumerate(pipes):
        pipe.send(("reset", {"seed": i}))
    for pipe in pipes:
        pipe.recv()
    start = time.perf_counter()
    for k in range(steps):
        actions = np.array([(k + j) & 1 for j in range(n)], dtype=np.int64)
        for pipe, a in zip(pipes, actions):  # step_async
            pipe.send(("step", a))
        rewards, terms, truncs, infos = [], [], [], {}
        for j, pipe in enumerate(pipes):  # step_wait
            (_, r, te, tr, info), ok = pipe.recv()
            rewards.append(r)
            terms.append(te)
            truncs.append(tr)
            if info:
                infos[j] = info
        batch = (obs.copy(), np.array(rewards, dtype=np.float64), np.array(terms, dtype=np.bool_),
                 np.array(truncs, dtype=np.bool_), infos)
    elapsed = time.perf_counter() - start
    del batch
    for pipe in pipes:
        pipe.send(("close", None))
        pipe.recv()
    for p in procs:
        p.join()
    print(steps * n / elapsed)


if __name__ == "__main__":
    main()
