"""The MLP benchmark in chainrule with ``train.TrainStep``: the same loop as ``mlp_chainrule``, whose body
(zero_grad, forward, cross-entropy, backward, SGD step) is recorded once and then replayed.

Same model, weights, batches and arithmetic as ``mlp_chainrule`` (the weights after an epoch are equal bit
for bit: ``tests/test_benchmarks.py``); only the Python around each operation is skipped.
"""

from __future__ import annotations

import sys
import time

from common import load_mnist, train_order
from mlp_chainrule import LR, MOMENTUM, accuracy, build_model, cr

import chainrule.nn.functional as F
from chainrule.train import TrainStep


def epoch(batch_size: int, seed: int = 0, subset: int | None = None) -> tuple[float, float]:
    """Train one epoch; return (seconds for the training loop, test accuracy)."""
    X, y = load_mnist("train")
    if subset is not None:
        X, y = X[:subset], y[:subset]
    order = train_order(len(X), seed)
    model = build_model(seed)
    opt = cr.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    step = TrainStep(model, F.cross_entropy, opt)
    n = len(X)
    Xt, yt = cr.from_numpy(X), cr.from_numpy(y)

    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        step(Xt[idx].float().div_(255), yt[idx])
    seconds = time.perf_counter() - t0
    if step.problem is not None:
        raise RuntimeError(f"TrainStep did not replay: {step.problem}")

    Xte, yte = load_mnist("test")
    return seconds, accuracy(model, Xte, yte)


if __name__ == "__main__":
    bs = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    print(epoch(bs, 0))
