"""PyTorch reference for nets.BenchmarkLearnerUpdateNature: DQN updates/s of the Nature network.

The same update as qfleet's learner (nets.Trainer.Update), on one CPU thread:
  Nature DQN (Mnih et al. 2015): 84x84x4 uint8 frames / 255 -> Conv 32 8x8/4 -> Conv 64 4x4/2
  -> Conv 64 3x3/1 -> Linear 3136->512 -> Linear 512->A, ReLU after each hidden layer;
  double-DQN target r + disc * Q_target(s', argmax_a Q_online(s', a)) under no_grad,
  Huber (smooth L1, delta 1) on Q(s, a) - target, mean over the batch,
  global gradient-norm clip at 10, Adam (lr 5e-4, PyTorch's default betas and eps).
Batches are random uint8 frames, drawn once (8 batches, cycled) so that the timing is the update.

Run with Debian's torch (apt-get install -y python3-torch), not a pyenv python:
  /usr/bin/python3 python/bench/nature_torch.py --actions 6 --updates 200
It prints one line: updates/s (wall clock) and per CPU second of the process.
"""

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def nature_net(channels: int, actions: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(channels, 32, 8, stride=4), nn.ReLU(),
        nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
        nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(),
        nn.Flatten(),
        nn.Linear(7 * 7 * 64, 512), nn.ReLU(),
        nn.Linear(512, actions),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--actions", type=int, default=6)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--updates", type=int, default=200, help="timed updates (after 10 warm-up ones)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    online = nature_net(4, args.actions)
    target = nature_net(4, args.actions)
    target.load_state_dict(online.state_dict())
    opt = torch.optim.Adam(online.parameters(), lr=5e-4)
    n_params = sum(p.numel() for p in online.parameters())

    b = args.batch
    batches = []
    for _ in range(8):
        batches.append((
            torch.randint(0, 256, (b, 4, 84, 84), dtype=torch.uint8),
            torch.randint(0, args.actions, (b,)),
            torch.randn(b),
            torch.where(torch.rand(b) < 0.1, 0.0, 0.99),
            torch.randint(0, 256, (b, 4, 84, 84), dtype=torch.uint8),
        ))

    def update(i: int) -> float:
        obs, act, rew, disc, next_obs = batches[i % len(batches)]
        with torch.no_grad():
            s2 = next_obs.float() / 255.0
            a2 = online(s2).argmax(1, keepdim=True)
            y = rew + disc * target(s2).gather(1, a2).squeeze(1)
        q = online(obs.float() / 255.0).gather(1, act.unsqueeze(1)).squeeze(1)
        loss = F.smooth_l1_loss(q, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(online.parameters(), 10.0)
        opt.step()
        return loss.item()

    for i in range(10):
        update(i)
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(args.updates):
        update(i)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"pytorch {torch.__version__} threads={torch.get_num_threads()} actions={args.actions} "
          f"batch={b} params={n_params}: {args.updates / wall:.2f} updates/s, "
          f"{args.updates / cpu:.2f} updates/cpu-s")


if __name__ == "__main__":
    main()
