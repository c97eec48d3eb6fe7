"""The yardstick: the best hand-written NumPy MLP we know how to write.

784-256-256-10 with ReLU, softmax cross-entropy (mean over the batch) and SGD
with momentum, lr 0.1, momentum 0.9, in torch's form::

    buf = momentum * buf + grad        (buf = grad on the first step)
    param -= lr * buf

Everything is float32.  Forward and backward are written out by hand; every
array the training step touches is allocated once per batch size and reused:
``np.take(..., out=)`` gathers the batch, ``np.dot(..., out=)`` does the
matrix products (transposed operands are passed as views, which BLAS reads
without a copy) and the elementwise work is done in place.  All parameters
(and their gradients and momentum buffers) live in one flat array each, so
the optimizer step is four vectorised passes (in L2-sized chunks) instead
of 4 x 6 small ones; the flat arrays start at staggered offsets within a page
(``staggered``).  Momentum entries that decay towards float32's subnormal
range are flushed to zero now and then (see ``Params.flush_tiny_momentum``):
without it, subnormal arithmetic made a batch-32 epoch about 3x slower, and
with it the trained weights are bit-for-bit the same.

``epoch(batch_size, seed, subset=None)`` trains one epoch from the shared
initial weights (``common.init_weights``) in the shared shuffled order
(``common.train_order``) and returns (training seconds, test accuracy).
The loss value itself is never needed for the update, so it is not computed.
"""

from __future__ import annotations

import time

import numpy as np
from common import SIZES, init_weights, load_mnist, train_order

LR = 0.1
MOMENTUM = 0.9
F32 = np.float32
CHUNK = 65536        # elements per chunk of the optimizer update (256 KiB)
FLUSH_EVERY = 32     # steps between flushes of near-subnormal momentum (0: never)
FLUSH_BELOW = 1e-30


def staggered(n: int, slot: int) -> np.ndarray:
    """A zeroed float32 array of ``n`` elements starting ``slot * 1088`` bytes into a 4 KiB page.

    The parameters, gradients, momentum and scratch are streamed through together every step; allocated
    one after the other with equal sizes, they would start at (nearly) the same offset within a page, where
    x86 cores mistake loads from one for stores to another (4K aliasing) and their lines share cache
    sets.  Staggered, an epoch at batch 32 took 1.39-1.46 s here, against 1.63-1.70 s as malloc placed them.
    """
    raw = np.zeros(n * 4 + 4096, dtype=np.uint8)
    start = (slot * 1088 - raw.ctypes.data) % 4096
    return raw[start:start + n * 4].view(F32)


class Params:
    """Weights, gradients and momentum buffers of the MLP, each one flat float32 array."""

    def __init__(self, seed: int, sizes: tuple[int, ...] = SIZES):
        layers = init_weights(seed, sizes)
        total = sum(w.size + b.size for w, b in layers)
        self.flat = staggered(total, 0)
        self.grad_flat = staggered(total, 1)
        self.mom_flat = staggered(total, 2)
        self.W, self.b, self.gW, self.gb = [], [], [], []
        off = 0
        for w, b in layers:
            for src, dst, gdst in ((w, self.W, self.gW), (b, self.b, self.gb)):
                n = src.size
                view = self.flat[off:off + n].reshape(src.shape)
                view[...] = src
                dst.append(view)
                gdst.append(self.grad_flat[off:off + n].reshape(src.shape))
                off += n
        # The update walks the flat arrays in cache-sized chunks so that the
        # four passes over a chunk hit L2 instead of memory; views built once.
        tmp = staggered(min(CHUNK, total), 3)
        self.chunks = [
            (self.flat[i:i + CHUNK], self.grad_flat[i:i + CHUNK],
             self.mom_flat[i:i + CHUNK], tmp[:min(CHUNK, total - i)])
            for i in range(0, total, CHUNK)
        ]
        self.flush_buf = staggered(total, 4)
        self.steps = 0

    def sgd_step(self, lr: float = LR, momentum: float = MOMENTUM) -> None:
        """torch.optim.SGD(momentum=m, dampening=0, nesterov=False, weight_decay=0)."""
        lr32, m32 = F32(lr), F32(momentum)
        for p, g, buf, tmp in self.chunks:
            np.multiply(buf, m32, out=buf)      # buf = m * buf
            np.add(buf, g, out=buf)             #       + g
            np.multiply(buf, lr32, out=tmp)
            np.subtract(p, tmp, out=p)          # p -= lr * buf
        self.steps += 1
        if FLUSH_EVERY and self.steps % FLUSH_EVERY == 0:
            self.flush_tiny_momentum()

    def flush_tiny_momentum(self) -> None:
        """Zero momentum entries below FLUSH_BELOW, before they turn subnormal.

        A weight whose gradient is exactly zero (a pixel blank in the whole
        batch, a dead ReLU unit) sees its momentum shrink by 0.9 each step and
        reach float32's subnormal range (< 1.2e-38) after some 800 steps.
        Arithmetic on subnormals takes a microcode assist on x86 (NumPy has no
        flush-to-zero switch), which tripled the time of a batch-32 epoch.
        Zeroing entries below 1e-30 every FLUSH_EVERY steps keeps them out of
        that range (at 0.9 a step they need ~175 steps to fall from 1e-30 to
        1.2e-38) and changes no weight: lr * 1e-30 is far below half an ulp of
        any weight, and of any non-zero gradient it would be added to.
        """
        mom, mask = self.mom_flat, self.flush_buf
        np.abs(mom, out=mask)
        np.greater_equal(mask, F32(FLUSH_BELOW), out=mask)
        np.multiply(mom, mask, out=mom)


class Buffers:
    """Every activation / gradient array a training step of batch size ``n`` needs."""

    def __init__(self, n: int, sizes: tuple[int, ...] = SIZES):
        d, h1, h2, k = sizes
        self.n = n
        self.xu8 = np.empty((n, d), dtype=np.uint8)
        self.x = np.empty((n, d), dtype=F32)
        self.h1 = np.empty((n, h1), dtype=F32)
        self.h2 = np.empty((n, h2), dtype=F32)
        self.z3 = np.empty((n, k), dtype=F32)
        self.m1 = np.empty((n, h1), dtype=F32)   # ReLU masks as 0/1 floats
        self.m2 = np.empty((n, h2), dtype=F32)
        self.d1 = np.empty((n, h1), dtype=F32)
        self.d2 = np.empty((n, h2), dtype=F32)
        self.rmax = np.empty((n, 1), dtype=F32)
        self.rsum = np.empty((n, 1), dtype=F32)
        self.rows = np.arange(n)
        # Transposed scratch for the swapped product at small batches (the rule chainrule's Linear uses).
        small = n <= 48
        self.h1T = np.empty((h1, n), dtype=F32) if small and h1 >= 256 and d >= 256 else None
        self.h2T = np.empty((h2, n), dtype=F32) if small and h2 >= 256 and h1 >= 256 else None


def linear(x: np.ndarray, W: np.ndarray, out: np.ndarray, outT: np.ndarray | None) -> None:
    """out = x @ W.T; for small batches as (W @ x.T).T, which OpenBLAS runs up to 1.9x faster."""
    if outT is None:
        np.dot(x, W.T, out=out)
    else:
        np.dot(W, x.T, out=outT)
        np.copyto(out, outT.T)


def train_step(p: Params, buf: Buffers, X: np.ndarray, y: np.ndarray, idx: np.ndarray) -> None:
    """One SGD step on the images X[idx] (uint8) with labels y[idx]."""
    yb = gather(buf, X, y, idx)
    forward(p, buf)
    loss_grad(buf, yb)
    backward(p, buf)
    p.sgd_step()


def gather(buf: Buffers, X: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The batch: uint8 images -> float32 / 255 in ``buf.x``; returns the labels."""
    np.take(X, idx, axis=0, out=buf.xu8, mode="clip")
    np.divide(buf.xu8, F32(255.0), out=buf.x)
    return y[idx]


def forward(p: Params, buf: Buffers) -> None:
    """h1 = relu(x W1^T + b1), h2 = relu(h1 W2^T + b2), z3 = h2 W3^T + b3, all in place."""
    W1, W2, W3 = p.W
    b1, b2, b3 = p.b
    x, h1, h2, z3 = buf.x, buf.h1, buf.h2, buf.z3
    linear(x, W1, h1, buf.h1T)
    h1 += b1
    np.maximum(h1, F32(0), out=h1)
    linear(h1, W2, h2, buf.h2T)
    h2 += b2
    np.maximum(h2, F32(0), out=h2)
    np.dot(h2, W3.T, out=z3)
    z3 += b3


def loss_grad(buf: Buffers, yb: np.ndarray) -> None:
    """Softmax cross-entropy's gradient wrt the logits, (softmax - onehot) / n, over ``buf.z3``."""
    z3, rmax, rsum = buf.z3, buf.rmax, buf.rsum
    n = len(yb)
    np.max(z3, axis=1, keepdims=True, out=rmax)
    z3 -= rmax
    np.exp(z3, out=z3)
    np.sum(z3, axis=1, keepdims=True, out=rsum)
    rsum *= F32(n)
    np.divide(z3, rsum, out=z3)
    z3[buf.rows, yb] -= F32(1.0 / n)


def backward(p: Params, buf: Buffers) -> None:
    """Weight and bias gradients into ``p.gW`` / ``p.gb``; the first layer needs no input gradient."""
    _, W2, W3 = p.W
    gW1, gW2, gW3 = p.gW
    gb1, gb2, gb3 = p.gb
    x, h1, h2, z3 = buf.x, buf.h1, buf.h2, buf.z3
    m1, m2, d1, d2 = buf.m1, buf.m2, buf.d1, buf.d2
    np.dot(z3.T, h2, out=gW3)
    np.sum(z3, axis=0, out=gb3)
    np.dot(z3, W3, out=d2)
    np.greater(h2, F32(0), out=m2)
    d2 *= m2
    np.dot(d2.T, h1, out=gW2)
    np.sum(d2, axis=0, out=gb2)
    np.dot(d2, W2, out=d1)
    np.greater(h1, F32(0), out=m1)
    d1 *= m1
    np.dot(d1.T, x, out=gW1)
    np.sum(d1, axis=0, out=gb1)


def predict(p: Params, X: np.ndarray, chunk: int = 2000) -> np.ndarray:
    """Class predictions for uint8 images X (not timed)."""
    out = np.empty(len(X), dtype=np.int64)
    for i in range(0, len(X), chunk):
        x = X[i:i + chunk].astype(F32) / F32(255.0)
        h = np.maximum(x @ p.W[0].T + p.b[0], 0)
        h = np.maximum(h @ p.W[1].T + p.b[1], 0)
        out[i:i + chunk] = np.argmax(h @ p.W[2].T + p.b[2], axis=1)
    return out


def train(batch_size: int, seed: int = 0, subset: int | None = None) -> tuple[float, Params]:
    """Train one epoch; return (seconds for the training loop, trained parameters)."""
    X, y = load_mnist("train")
    if subset is not None:
        X, y = X[:subset], y[:subset]
    n = len(X)
    order = train_order(n, seed)
    p = Params(seed)
    full = Buffers(batch_size)
    tail = n % batch_size
    last = Buffers(tail) if tail else None

    t0 = time.perf_counter()
    for start in range(0, n - tail, batch_size):
        train_step(p, full, X, y, order[start:start + batch_size])
    if last is not None:
        train_step(p, last, X, y, order[n - tail:])
    seconds = time.perf_counter() - t0
    return seconds, p


def epoch(batch_size: int, seed: int = 0, subset: int | None = None) -> tuple[float, float]:
    """Train one epoch; return (seconds for the training loop, test accuracy)."""
    seconds, p = train(batch_size, seed, subset)
    Xte, yte = load_mnist("test")
    acc = float(np.mean(predict(p, Xte) == yte))
    return seconds, acc


def extra_info() -> dict:
    return {"flush_every": FLUSH_EVERY, "flush_below": FLUSH_BELOW, "chunk": CHUNK}


if __name__ == "__main__":
    import sys

    bs = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    print(epoch(bs, 0))
