"""The MLP benchmark in scikit-learn: ``MLPClassifier`` with the SGD solver.

MLPClassifier(hidden_layer_sizes=(256, 256), activation='relu', solver='sgd',
learning_rate_init=0.1, momentum=0.9, nesterovs_momentum=False, alpha=0,
batch_size=B, max_iter=1, shuffle=True, random_state=seed): one ``fit`` is one
epoch (its ConvergenceWarning about max_iter=1 is silenced).  The input is the
float32 array X / 255, made before the clock starts; sklearn keeps float32
throughout.  sklearn's momentum update (v = m v - lr g; p += v) is the same as
torch's for a constant learning rate.

Two differences from the other competitors, both inherent to sklearn's API:

* it shuffles with its own RandomState(seed), so it visits the images in
  a different order than ``common.train_order``;
* its loss is computed every batch (it reports it in ``loss_curve_``).

The initial weights are the shared ones (``common.init_weights``): a subclass
overrides the private ``_init_coef`` hook that sklearn calls once per layer.
If a future sklearn drops that hook, the run falls back to sklearn's own
Glorot init and says so in the result (``shared_init``).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from common import init_weights, load_mnist
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

LR = 0.1
MOMENTUM = 0.9


class _SharedInitMLP(MLPClassifier):
    """MLPClassifier whose layers start from ``common.init_weights``."""

    _shared_layers: list[tuple[np.ndarray, np.ndarray]] = []
    _shared_used = 0

    def _init_coef(self, fan_in, fan_out, dtype):
        for w, b in type(self)._shared_layers:
            if w.shape == (fan_out, fan_in):
                type(self)._shared_used += 1
                return (np.ascontiguousarray(w.T, dtype=dtype), b.astype(dtype, copy=True))
        return super()._init_coef(fan_in, fan_out, dtype)


def make_classifier(batch_size: int, seed: int) -> MLPClassifier:
    _SharedInitMLP._shared_layers = init_weights(seed)
    _SharedInitMLP._shared_used = 0
    return _SharedInitMLP(
        hidden_layer_sizes=(256, 256), activation="relu", solver="sgd",
        learning_rate="constant", learning_rate_init=LR, momentum=MOMENTUM,
        nesterovs_momentum=False, alpha=0.0, batch_size=batch_size, max_iter=1,
        shuffle=True, random_state=seed, early_stopping=False, tol=0.0,
    )


_FLOAT_CACHE: dict[int | None, np.ndarray] = {}


def _float_images(X: np.ndarray, key: int | None) -> np.ndarray:
    if key not in _FLOAT_CACHE:
        _FLOAT_CACHE.clear()
        _FLOAT_CACHE[key] = X.astype(np.float32) / np.float32(255.0)
    return _FLOAT_CACHE[key]


def epoch(batch_size: int, seed: int = 0, subset: int | None = None) -> tuple[float, float]:
    """Train one epoch; return (seconds for ``fit``, test accuracy)."""
    Xn, yn = load_mnist("train")
    if subset is not None:
        Xn, yn = Xn[:subset], yn[:subset]
    X = _float_images(Xn, subset)
    clf = make_classifier(batch_size, seed)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(X, yn)
        seconds = time.perf_counter() - t0

    Xte, yte = load_mnist("test")
    acc = float(np.mean(clf.predict(Xte.astype(np.float32) / np.float32(255.0)) == yte))
    return seconds, acc


def shared_init_used() -> bool:
    """True when the last classifier started from the shared weights (all 3 layers)."""
    return _SharedInitMLP._shared_used == 3


def extra_info() -> dict:
    return {"shared_init": shared_init_used(),
            "visit_order": "sklearn's own shuffle (RandomState(seed))"}


if __name__ == "__main__":
    import sys

    bs = int(sys.argv[1]) if len(sys.argv) > 1 else 128
    print(epoch(bs, 0), shared_init_used())
