"""Are preallocated buffers worth it?  The hand-written step against the same step with a fresh array for every value.

The issue lists "buffers reused across steps" among the levers, and a replay "with preallocated buffers".
chainrule's eager loop and its ``TrainStep`` replay both make a new array for every activation and every
intermediate (NumPy's allocator, with ``chainrule._malloc.tune``'s settings, hands the same memory back step
after step).  The hand-written yardstick (``mlp_numpy``) writes into buffers allocated once.  This script runs,
in one process and alternating epoch by epoch so both see the same machine:

* ``preallocated``: ``mlp_numpy.train_step`` as the benchmark runs it;
* ``fresh``: the same NumPy calls in the same order, but every activation, mask, logit and backward
  intermediate is a new array (``np.dot(x, W.T)`` instead of ``np.dot(x, W.T, out=h1)``, ...).  The weight and
  bias gradients still go into the flat gradient array (``out=``), so the optimizer step is the very same flat one.

Both are the same arithmetic: after every epoch the two copies of the weights are compared, and must be equal
bit for bit.  Each batch size runs twice, each time in a fresh process: with glibc's allocator as it comes,
and with the settings ``import chainrule`` applies (``_malloc.tune``: freed memory stays in the process).
Prints µs per step (median over the epochs) and fresh / preallocated.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/fresh_buffers.py [--threads 1] [--batches 32]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import mlp_numpy as mn
import numpy as np
from common import blas_info, blas_summary, load_mnist, run_in_subprocess, train_order

F32 = np.float32


def fresh_step(p: mn.Params, X: np.ndarray, y: np.ndarray, idx: np.ndarray) -> None:
    """``mlp_numpy.train_step`` with a new array for every value (gradients into ``p``'s flat array)."""
    W1, W2, W3 = p.W
    b1, b2, b3 = p.b
    gW1, gW2, gW3 = p.gW
    gb1, gb2, gb3 = p.gb
    n = len(idx)
    small = n <= 48                                  # the yardstick's rule for the swapped product
    x = np.divide(np.take(X, idx, axis=0, mode="clip"), F32(255.0), dtype=F32)
    yb = y[idx]
    h1 = np.ascontiguousarray(np.dot(W1, x.T).T) if small else np.dot(x, W1.T)
    h1 += b1
    h1 = np.maximum(h1, F32(0))
    h2 = np.ascontiguousarray(np.dot(W2, h1.T).T) if small else np.dot(h1, W2.T)
    h2 += b2
    h2 = np.maximum(h2, F32(0))
    z3 = np.dot(h2, W3.T)
    z3 += b3
    z3 = z3 - np.max(z3, axis=1, keepdims=True)      # softmax cross-entropy's gradient, (p - onehot) / n
    z3 = np.exp(z3)
    rsum = np.sum(z3, axis=1, keepdims=True)
    rsum *= F32(n)
    z3 = z3 / rsum
    z3[np.arange(n), yb] -= F32(1.0 / n)
    np.dot(z3.T, h2, out=gW3)
    np.sum(z3, axis=0, out=gb3)
    d2 = np.dot(z3, W3)
    d2 *= h2 > F32(0)
    np.dot(d2.T, h1, out=gW2)
    np.sum(d2, axis=0, out=gb2)
    d1 = np.dot(d2, W2)
    d1 *= h1 > F32(0)
    np.dot(d1.T, x, out=gW1)
    np.sum(d1, axis=0, out=gb1)
    p.sgd_step()


def compare(batch: int, tuned: bool, epochs: int = 3, subset: int | None = None) -> dict:
    """Worker: µs per step of both variants (medians over ``epochs`` alternating epochs), whether the weights
    agree, and whether chainrule's allocator settings were applied (``tuned``)."""
    if tuned:
        try:
            from chainrule import _malloc
        except ImportError:      # running from a checkout without installing
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
            from chainrule import _malloc
        _malloc.tune()
    X, y = load_mnist("train")
    if subset is not None:
        X, y = X[:subset], y[:subset]
    order = train_order(len(X), 0)
    steps = len(X) // batch
    pre, fresh = mn.Params(0), mn.Params(0)
    buf = mn.Buffers(batch)
    times: dict[str, list[float]] = {"preallocated": [], "fresh": []}
    same = True
    for _ in range(epochs):
        for name in times:
            t0 = time.perf_counter()
            for i in range(steps):
                idx = order[i * batch:(i + 1) * batch]
                if name == "fresh":
                    fresh_step(fresh, X, y, idx)
                else:
                    mn.train_step(pre, buf, X, y, idx)
            times[name].append((time.perf_counter() - t0) / steps * 1e6)
        same = same and np.array_equal(pre.flat, fresh.flat)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {**med, "ratio": med["fresh"] / med["preallocated"], "same_weights": bool(same),
            "blas": blas_summary(blas_info())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="32,128,1024")
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    print(f"threads: {args.threads}; µs per step, medians of {args.epochs} alternating epochs per process")
    print("| allocator | batch | preallocated | fresh | fresh / preallocated | same weights |")
    print("|---|---:|---:|---:|---:|---|")
    blas = ""
    for b in (int(v) for v in args.batches.split(",")):
        for tuned in (False, True):
            r = run_in_subprocess("fresh_buffers", "compare", {"batch": b, "tuned": tuned, "epochs": args.epochs},
                                  threads=args.threads)
            blas = r["blas"]
            who = "chainrule's settings" if tuned else "glibc defaults"
            print(f"| {who} | {b} | {r['preallocated']:.0f} | {r['fresh']:.0f} | {r['ratio']:.2f} | "
                  f"{r['same_weights']} |")
    print(f"BLAS in the workers: {blas}")


if __name__ == "__main__":
    main()
