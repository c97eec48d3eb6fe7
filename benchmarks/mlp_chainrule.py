"""The MLP benchmark in chainrule, written the way its README teaches (the plain PyTorch-style loop).

784-256-256-10 ``nn.Sequential`` of ``Linear``/``ReLU``, ``F.cross_entropy``, ``optim.SGD(lr=0.1,
momentum=0.9)``, starting from the shared initial weights (``common.init_weights``) and visiting the
training images in the shared shuffled order (``common.train_order``).  The images stay uint8; each
batch is gathered and scaled by 1/255 in place, ``Xt[idx].float().div_(255)``, the same line as the torch
worker's (in place: one pass over the batch instead of two, in both libraries).

The BLAS thread count is the one the harness sets (OMP/OPENBLAS_NUM_THREADS), as for the other
competitors.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

try:
    import chainrule as cr
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import chainrule as cr

from common import SIZES, init_weights, load_mnist, train_order

import chainrule.nn.functional as F
from chainrule import nn

LR = 0.1
MOMENTUM = 0.9


def build_model(seed: int) -> nn.Sequential:
    d, h1, h2, k = SIZES
    model = nn.Sequential(nn.Linear(d, h1), nn.ReLU(), nn.Linear(h1, h2), nn.ReLU(), nn.Linear(h2, k))
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with cr.no_grad():
        for lin, (w, b) in zip(linears, init_weights(seed)):
            lin.weight.copy_(cr.from_numpy(w))
            lin.bias.copy_(cr.from_numpy(b))
    return model


def accuracy(model, X: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with cr.no_grad():
        pred = model(cr.from_numpy(X.astype(np.float32) / 255)).argmax(dim=1).numpy()
    model.train()
    return float((pred == y).mean())


def epoch(batch_size: int, seed: int = 0, subset: int | None = None) -> tuple[float, float]:
    """Train one epoch; return (seconds for the training loop, test accuracy)."""
    X, y = load_mnist("train")
    if subset is not None:
        X, y = X[:subset], y[:subset]
    order = train_order(len(X), seed)
    model = build_model(seed)
    opt = cr.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    n = len(X)
    Xt, yt = cr.from_numpy(X), cr.from_numpy(y)

    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        xb = Xt[idx].float().div_(255)
        yb = yt[idx]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0

    Xte, yte = load_mnist("test")
    return seconds, accuracy(model, Xte, yte)


if __name__ == "__main__":
    bs = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    print(epoch(bs, 0))
