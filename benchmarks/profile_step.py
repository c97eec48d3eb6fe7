"""Where the time of one chainrule training step goes (784-256-256-10 MLP, SGD momentum, MNIST).

For a batch size B it times, each as the median of many repetitions inside the real training loop's
working set:

* the whole step (gather + forward + loss + backward + optimizer), as ``mlp_chainrule`` runs it (with
  ``--step``: as ``mlp_chainrule_step`` does, through ``train.TrainStep``);
* GEMM: the eight matrix products of the step done with NumPy alone (3 forward, 5 backward: the
  first layer needs no input gradient);
* elementwise: the same step's elementwise work done with NumPy alone (batch scaling, bias adds,
  ReLU and its mask, softmax cross-entropy and its gradient, bias-gradient sums);
* optimizer: ``opt.step()``;
* Python: what is left — chainrule's own overhead (modules, graph recording, the backward engine,
  allocation of fresh arrays).

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_step.py [--threads 2] [--step]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

try:
    import chainrule as cr
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import chainrule as cr

import mlp_chainrule as mc
from common import load_mnist, timeit, train_order

from chainrule.train import TrainStep

F32 = np.float32


def _median_us(fn, reps: int) -> float:
    return statistics.median(timeit(fn, reps)) * 1e6


def profile(batch: int, reps: int = 200, replay: bool = False) -> dict[str, float]:
    X, y = load_mnist("train")
    order = train_order(len(X), 0)
    model = mc.build_model(0)
    opt = cr.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_step = TrainStep(model, mc.F.cross_entropy, opt, replay=replay)
    Xt, yt = cr.from_numpy(X), cr.from_numpy(y)
    W = [m.weight.data for m in model if isinstance(m, cr.nn.Linear)]
    b = [m.bias.data for m in model if isinstance(m, cr.nn.Linear)]
    batches = [order[i:i + batch] for i in range(0, len(X) - batch + 1, batch)]
    k = [0]

    def next_idx():
        k[0] = (k[0] + 1) % len(batches)
        return batches[k[0]]

    def step():
        idx = next_idx()
        train_step(Xt[idx].float().div_(255), yt[idx])   # replay=False: the plain loop's body, eagerly

    def optimizer():
        opt.step()

    for _ in range(50):  # warm up: momentum buffers exist, caches hold the working set
        step()
    total = _median_us(step, reps)
    t_opt = _median_us(optimizer, reps)

    x = np.take(X, next_idx(), axis=0).astype(F32) / F32(255)
    h1 = np.maximum(x @ W[0].T + b[0], 0)
    h2 = np.maximum(h1 @ W[1].T + b[1], 0)
    g3 = np.ones((batch, 10), F32)
    g2 = np.ones((batch, 256), F32)

    # The forward products exactly as chainrule's Linear computes them (its small-batch rule included).
    lin = cr.autograd.ops.Linear.__new__(cr.autograd.ops.Linear).forward

    def gemm():
        lin(x, W[0])
        lin(h1, W[1])
        lin(h2, W[2])
        g3.T @ h2
        g3 @ W[2]
        g2.T @ h1
        g2 @ W[1]
        g2.T @ x

    yb = y[next_idx()]
    rows = np.arange(batch)

    def elementwise():
        np.take(X, next_idx(), axis=0).astype(F32) / F32(255)
        for h, bb in ((h1, b[0]), (h2, b[1])):
            z = h + bb
            m = z > 0
            np.maximum(z, 0)
            g2 * m
            g2.sum(axis=0)
        z = h2[:, :10] + b[2]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        p = e / e.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore"):  # stand-in logits: only the work matters, not the value
            float(-np.log(p[rows, yb]).mean())
        p[rows, yb] -= 1
        p.sum(axis=0)

    t_gemm = _median_us(gemm, reps)
    t_elem = _median_us(elementwise, reps)
    return {"batch": batch, "total_us": total, "gemm_us": t_gemm, "elementwise_us": t_elem,
            "optimizer_us": t_opt, "python_us": max(total - t_gemm - t_elem - t_opt, 0.0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batches", default="32,1024")
    ap.add_argument("--step", action="store_true", help="profile the step through train.TrainStep (replayed)")
    args = ap.parse_args()
    if args.threads:
        cr.set_num_threads(args.threads)
    print(f"threads: {cr.get_num_threads()}")
    print("| batch | step µs | GEMM | elementwise | optimizer | Python + allocation |")
    print("|---:|---:|---:|---:|---:|---:|")
    for bs in map(int, args.batches.split(",")):
        r = profile(bs, replay=args.step)
        t = r["total_us"]
        cells = [f"{r[k]:.0f} ({100 * r[k] / t:.0f} %)" for k in ("gemm_us", "elementwise_us", "optimizer_us",
                                                               "python_us")]
        print(f"| {bs} | {t:.0f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
