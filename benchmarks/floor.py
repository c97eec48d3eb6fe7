"""How fast could *any* NumPy program run the MLP epoch?  A floor, set against torch's epoch.

The issue's targets against torch at batch 128 (chainrule / torch <= 0.75) and at batch 1024 with two threads
(<= 0.95) ask for more than the hand-written NumPy step reaches.  This script asks whether a better NumPy
program could reach them.  In one process it times, each alone and hot in cache (so the sum is optimistic),
the kernels a training step cannot do without:

* GEMM: the step's eight matrix products (three forward, two input gradients, three weight gradients), in
  whichever of the two layouts ``x W^T`` / ``(W x^T)^T`` is faster for the forward ones;
* elementwise: the batch gather and scaling (``np.take`` + one dividing cast), the three bias adds, ReLU and
  its mask, the softmax-cross-entropy gradient and the three bias-gradient sums, all into preallocated
  buffers;
* optimizer: the SGD-momentum update over one flat array of all 269k parameters in cache-sized pieces (four
  passes, ``mlp_numpy.Params.sgd_step``).

No Python between them is counted.  The floor of an epoch is the sum times the number of steps.  torch's
epoch comes from ``mlp_torch.epoch`` in a process of its own with the same thread count (median of
``--reps`` after a warm-up), and the table prints floor / torch next to the issue's target.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/floor.py [--threads 2,1] [--batches 128,1024]``
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from common import SIZES, blas_info, blas_summary, load_mnist, run_in_subprocess, timeit, train_order

F32 = np.float32
TARGETS = {32: 0.75, 128: 0.75, 1024: 0.95}   # chainrule / torch, issue 6


def _median_us(fn, reps: int = 300) -> float:
    return statistics.median(timeit(fn, reps, warmup=30)) * 1e6


def floor_step(batch: int, reps: int = 300) -> dict:
    """Worker: the floor of one step at ``batch`` (µs per part, medians of ``reps`` calls), with the BLAS
    threads the harness set."""
    import mlp_numpy as mn

    X, _ = load_mnist("train")
    idx = train_order(len(X), 0)[:batch]
    p, buf = mn.Params(0), mn.Buffers(batch)
    d, h1, h2, k = SIZES
    rng = np.random.default_rng(0)
    g3 = rng.random((batch, k), F32)
    g2, g1 = rng.random((batch, h2), F32), rng.random((batch, h1), F32)
    (W1, W2, W3), (gW1, gW2, gW3) = p.W, p.gW
    x, a1, a2, z3 = buf.x, buf.h1, buf.h2, buf.z3
    mn.gather(buf, X, np.zeros(len(X), np.int64), idx)
    h1T, h2T = np.empty((h1, batch), F32), np.empty((h2, batch), F32)

    def plain():
        np.dot(x, W1.T, out=a1)
        np.dot(a1, W2.T, out=a2)

    def swapped():
        np.dot(W1, x.T, out=h1T)
        np.copyto(a1, h1T.T)
        np.dot(W2, a1.T, out=h2T)
        np.copyto(a2, h2T.T)

    def rest():
        np.dot(a2, W3.T, out=z3)
        np.dot(g3.T, a2, out=gW3)
        np.dot(g3, W3, out=buf.d2)
        np.dot(g2.T, a1, out=gW2)
        np.dot(g2, W2, out=buf.d1)
        np.dot(g1.T, x, out=gW1)

    gemm = min(_median_us(plain, reps), _median_us(swapped, reps)) + _median_us(rest, reps)

    yb = rng.integers(0, k, batch)
    gb1, gb2, gb3 = p.gb
    b1, b2, b3 = p.b

    def elementwise():
        np.take(X, idx, axis=0, out=buf.xu8, mode="clip")
        np.divide(buf.xu8, F32(255.0), out=x)
        for a, b, m, g, gb in ((a1, b1, buf.m1, g1, gb1), (a2, b2, buf.m2, g2, gb2)):
            a += b
            np.maximum(a, F32(0), out=a)
            np.greater(a, F32(0), out=m)
            g *= m
            np.sum(g, axis=0, out=gb)
        np.add(z3, b3, out=z3)
        mn.loss_grad(buf, yb)
        np.sum(z3, axis=0, out=gb3)

    elem = _median_us(elementwise, reps)
    opt = _median_us(p.sgd_step, reps)
    return {"batch": batch, "gemm_us": gemm, "elementwise_us": elem, "optimizer_us": opt,
            "blas": blas_summary(blas_info())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--batches", default="32,128,1024")
    ap.add_argument("--reps", type=int, default=3, help="timed torch epochs per cell (after one warm-up)")
    args = ap.parse_args()
    n = len(load_mnist("train")[0])
    rows = []
    for threads in map(int, args.threads.split(",")):
        for batch in map(int, args.batches.split(",")):
            f = run_in_subprocess("floor", "floor_step", {"batch": batch}, threads=threads)
            torch = run_in_subprocess("common", "repeat_epoch", {"module": "mlp_torch", "batch_size": batch,
                                                                 "reps": args.reps}, threads=threads)
            steps = -(-n // batch)
            per_step = f["gemm_us"] + f["elementwise_us"] + f["optimizer_us"]
            t_torch = statistics.median(torch["times"])
            rows.append((threads, batch, f, per_step * steps / 1e6, t_torch))
            print(f"threads {threads}, batch {batch}: {f['blas']}", flush=True)
    print("\nµs per step; epoch floor = step floor x steps per epoch; torch = its epoch, median\n")
    print("| threads | batch | GEMM | elementwise | optimizer | step floor | epoch floor s | torch s "
          "| floor / torch | target |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for threads, batch, f, floor_s, t_torch in rows:
        step = f["gemm_us"] + f["elementwise_us"] + f["optimizer_us"]
        print(f"| {threads} | {batch} | {f['gemm_us']:.0f} | {f['elementwise_us']:.0f} | {f['optimizer_us']:.0f} "
              f"| {step:.0f} | {floor_s:.3f} | {t_torch:.3f} | {floor_s / t_torch:.2f} "
              f"| ≤ {TARGETS.get(batch, float('nan')):.2f} |")


if __name__ == "__main__":
    main()
