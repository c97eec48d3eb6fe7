"""The eight matrix products of one MLP training step, NumPy (its BLAS) against torch, same operands.

784-256-256-10 MLP at batch B: three forward products, two backward input-gradient products and three
weight-gradient products (the first layer needs no input gradient).  Each library runs in its own
process with the same thread count; each product is the median of 300 calls after a warm-up.

With ``--layout`` it times NumPy alone, in two layouts of the weights: torch's, ``W`` (out, in) C-ordered,
as chainrule stores it, and ``W^T`` C-ordered (``W`` Fortran-ordered), where the weight gradient comes out in
the weight's order when computed as ``(x^T g)^T``.  Same products, same numbers; only OpenBLAS's speed differs.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gemm_step.py [--threads 2] [--layout]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

NAMES = ["x W1^T", "h1 W2^T", "h2 W3^T", "g3^T h2", "g3 W3", "g2^T h1", "g2 W2", "g2^T x"]
KINDS = ["forward"] * 3 + ["weight grad", "input grad"] * 2 + ["weight grad"]   # what each product is


def _operands(batch: int):
    rng = np.random.default_rng(0)
    f = np.float32
    x, h1, h2 = rng.random((batch, 784), f), rng.random((batch, 256), f), rng.random((batch, 256), f)
    W1, W2, W3 = rng.random((256, 784), f), rng.random((256, 256), f), rng.random((10, 256), f)
    g3, g2 = rng.random((batch, 10), f), rng.random((batch, 256), f)
    return [(x, W1.T), (h1, W2.T), (h2, W3.T), (g3.T, h2), (g3, W3), (g2.T, h1), (g2, W2), (g2.T, x)]


def _operands_transposed(batch: int):
    """The same eight products with every weight stored as W^T (C-ordered): ``x @ Wt``, ``(h^T g)^T``, ``g @ Wt^T``."""
    prods = _operands(batch)
    out = []
    for kind, (a, b) in zip(KINDS, prods):
        if kind == "forward":                   # x @ W^T = x @ Wt, Wt C-ordered
            out.append((a, np.ascontiguousarray(b)))
        elif kind == "weight grad":             # g^T h = (h^T g)^T: compute h^T g
            out.append((b.T, a.T))
        else:                                   # input grad: g @ W, W = Wt^T (Fortran-ordered)
            out.append((a, np.asfortranarray(b)))
    return out


def measure(lib: str, batch: int, threads: int) -> list[float]:
    """Median µs of each product in this process (``numpy-wt``: NumPy with the weights stored transposed)."""
    prods = _operands_transposed(batch) if lib == "numpy-wt" else _operands(batch)
    if lib == "torch":
        import torch

        torch.set_num_threads(threads)

        def conv(a):  # the same memory layout: a transposed view stays a transposed view
            return torch.from_numpy(np.ascontiguousarray(a)) if a.flags.c_contiguous \
                else torch.from_numpy(np.ascontiguousarray(a.T)).T

        prods = [(conv(a), conv(b)) for a, b in prods]
        mm = torch.mm
    else:
        mm = np.matmul
    out = []
    for a, b in prods:
        for _ in range(30):
            mm(a, b)
        ts = []
        for _ in range(300):
            t0 = time.perf_counter()
            mm(a, b)
            ts.append(time.perf_counter() - t0)
        out.append(statistics.median(ts) * 1e6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", default="32,128,1024")
    ap.add_argument("--layout", action="store_true", help="NumPy alone, weights as W and as W^T")
    ap.add_argument("--worker", nargs=2, metavar=("LIB", "BATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker[0], int(args.worker[1]), args.threads)))
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OPENBLAS_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads))
    print(f"threads: {args.threads}; µs per product (median of 300)")
    print("| batch | library | " + " | ".join(NAMES) + " | total |")
    print("|---:|---|" + "---:|" * (len(NAMES) + 1))
    for batch in map(int, args.batches.split(",")):
        for lib in (("numpy", "numpy-wt") if args.layout else ("numpy", "torch")):
            proc = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--worker", lib,
                                   str(batch)], env=env, capture_output=True, text=True)
            if proc.returncode:
                print(f"| {batch} | {lib} | failed: {proc.stderr.strip().splitlines()[-1]} |")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"| {batch} | {lib} | " + " | ".join(f"{v:.0f}" for v in r) + f" | {sum(r):.0f} |")


if __name__ == "__main__":
    main()
