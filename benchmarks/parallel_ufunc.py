"""Can a second core speed up NumPy's elementwise work?  One thread against two Python threads, same arithmetic.

torch runs its elementwise ops and its optimizer on every core (OpenMP); NumPy's ufuncs run on the calling
thread.  From Python the only way to put them on two cores is a second thread (ufunc loops release the GIL),
each thread taking half of the rows.  This times, right after the matrix product that precedes them in a
training step (so BLAS's threads are in the state a step leaves them in), pieces of the 784-256-256-10 MLP's
step done by one thread and split between the calling thread and a waiting worker thread:

* ``relu``: ``y = max(h, 0)`` and the mask ``h > 0`` on the (B, 256) hidden layer;
* ``relu backward``: ``g * mask``;
* ``sgd``: the SGD-momentum update of all 269,322 parameters (four passes per 65,536-element piece), the
  pieces dealt alternately to the two threads;
* ``handoff``: waking the worker and waiting for it, with no work (the fixed cost of every split).

The split computes the same numbers (checked for both ReLU pieces; the SGD split only deals whole
pieces out); only the time differs.  Medians of ``--reps`` runs, µs.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/parallel_ufunc.py [--threads 2]``
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import numpy as np

PARAMS = (256 * 784, 256, 256 * 256, 256, 10 * 256, 10)
PIECE = 65536


class Worker:
    """A thread that runs one job at a time: ``start(job)`` hands it over, ``wait()`` waits for the end."""

    def __init__(self) -> None:
        self._go, self._done = threading.Event(), threading.Event()
        self._job = None
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            self._job()
            self._done.set()

    def start(self, job) -> None:
        self._job = job
        self._done.clear()
        self._go.set()

    def wait(self) -> None:
        self._done.wait()


def _relu(h, y, m):
    np.maximum(h, 0, out=y)
    np.greater(h, 0, out=m)


def _relu_backward(g, m, out):
    np.multiply(g, m, out=out)


def _sgd(pieces):
    for p, g, b, t in pieces:
        np.multiply(b, 0.9, out=b)
        np.add(b, g, out=b)
        np.multiply(b, -0.1, out=t)
        np.add(p, t, out=p)


def measure(batch: int, reps: int = 300, seed: int = 0) -> dict[str, tuple[float, float]]:
    """{work: (µs with one thread, µs split between two)} at this batch size."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 784), dtype=np.float32)
    w = rng.standard_normal((256, 784), dtype=np.float32)
    h = x @ w.T
    g = rng.standard_normal(h.shape, dtype=np.float32)
    y, m, gx = np.empty_like(h), np.empty(h.shape, bool), np.empty_like(h)
    half = batch // 2
    flat = [rng.standard_normal(sum(PARAMS), dtype=np.float32) * 0.01 for _ in range(3)]
    tmps = [np.empty(PIECE, np.float32) for _ in range(2)]
    cuts = [slice(i, i + PIECE) for i in range(0, flat[0].size, PIECE)]
    pieces = [(flat[0][c], flat[1][c], flat[2][c], tmps[k % 2][:flat[0][c].size]) for k, c in enumerate(cuts)]
    worker = Worker()

    def split(first, second):
        def run():
            worker.start(first)
            second()
            worker.wait()
        return run

    works = {
        "relu": (lambda: _relu(h, y, m),
                 split(lambda: _relu(h[:half], y[:half], m[:half]), lambda: _relu(h[half:], y[half:], m[half:]))),
        "relu backward": (lambda: _relu_backward(g, m, gx),
                          split(lambda: _relu_backward(g[:half], m[:half], gx[:half]),
                                lambda: _relu_backward(g[half:], m[half:], gx[half:]))),
        "sgd": (lambda: _sgd(pieces), split(lambda: _sgd(pieces[0::2]), lambda: _sgd(pieces[1::2]))),
        "handoff": (lambda: None, split(lambda: None, lambda: None)),
    }
    out = {}
    for name, (one, two) in works.items():
        times: list[list[float]] = [[], []]
        for _ in range(reps):
            for k, fn in enumerate((one, two)):
                _ = x @ w.T             # what precedes this work in a step: a product on BLAS's threads
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        out[name] = (statistics.median(times[0]) * 1e6, statistics.median(times[1]) * 1e6)
    # the same numbers either way
    for name, outs in (("relu", (y, m)), ("relu backward", (gx,))):
        one, two = works[name]
        one()
        before = [a.copy() for a in outs]
        two()
        assert all(np.array_equal(a, b) for a, b in zip(outs, before)), name
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads for the products (default 2)")
    ap.add_argument("--batches", default="32,128,1024")
    ap.add_argument("--reps", type=int, default=300)
    args = ap.parse_args()
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=args.threads, user_api="blas"):
        print(f"BLAS threads: {args.threads}; µs, median of {args.reps}")
        print("| batch | work | one thread | two threads | two / one |")
        print("|---:|---|---:|---:|---:|")
        for batch in map(int, args.batches.split(",")):
            for name, (one, two) in measure(batch, args.reps).items():
                ratio = "" if name == "handoff" else f"{two / one:.2f}"
                print(f"| {batch} | {name} | {one:.1f} | {two:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
