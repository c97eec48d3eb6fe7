"""The MLP benchmark in plain PyTorch eager mode (CPU), written the way its docs teach.

784-256-256-10 ``nn.Sequential`` of ``Linear``/``ReLU``, ``F.cross_entropy``,
``optim.SGD(lr=0.1, momentum=0.9)`` with its defaults, starting from the shared
initial weights (``common.init_weights``) and visiting the training images in
the shared shuffled order (``common.train_order``).  The images stay uint8 in
one tensor; each batch is indexed, then ``.float().div_(255)`` (in place, as
chainrule's worker does).  No torch.compile,
no channels-last or other tuning: this is the eager baseline.

The thread count comes from OMP_NUM_THREADS / ``torch.set_num_threads``, which
``common.run_in_subprocess`` sets before the worker runs.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from common import SIZES, init_weights, load_mnist, train_order
from torch import nn

LR = 0.1
MOMENTUM = 0.9

if "OMP_NUM_THREADS" in os.environ:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def build_model(seed: int) -> nn.Sequential:
    """784-256-256-10 ReLU MLP holding the shared initial weights."""
    d, h1, h2, k = SIZES
    model = nn.Sequential(
        nn.Linear(d, h1), nn.ReLU(),
        nn.Linear(h1, h2), nn.ReLU(),
        nn.Linear(h2, k),
    )
    linears = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for lin, (w, b) in zip(linears, init_weights(seed), strict=True):
            lin.weight.copy_(torch.from_numpy(w))
            lin.bias.copy_(torch.from_numpy(b))
    return model


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Test accuracy (not timed)."""
    model.eval()
    with torch.no_grad():
        pred = model(X.float() / 255).argmax(dim=1)
    model.train()
    return float((pred == y).float().mean())


def epoch(batch_size: int, seed: int = 0, subset: int | None = None) -> tuple[float, float]:
    """Train one epoch; return (seconds for the training loop, test accuracy)."""
    Xn, yn = load_mnist("train")
    if subset is not None:
        Xn, yn = Xn[:subset], yn[:subset]
    X = torch.from_numpy(Xn)                       # uint8 (N, 784)
    y = torch.from_numpy(yn)                       # int64 (N,)
    order = torch.from_numpy(train_order(len(Xn), seed))
    model = build_model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    n = len(Xn)

    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        xb = X[idx].float().div_(255)
        yb = y[idx]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    seconds = time.perf_counter() - t0

    Xte, yte = load_mnist("test")
    acc = accuracy(model, torch.from_numpy(Xte), torch.from_numpy(yte))
    return seconds, acc


def extra_info() -> dict:
    return {"torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads()}


if __name__ == "__main__":
    import sys

    bs = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    print(epoch(bs, 0), np.__version__, torch.__version__)
