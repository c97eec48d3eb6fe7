"""Small synthetic datasets for first experiments: logic gates, moons, spirals, circles, 1-D regression.

Every function returns ``(X, y)`` as Tensors: ``X`` float32 of shape ``(n, 2)`` (``(n, 1)`` for
regression), ``y`` int64 class labels of shape ``(n,)`` (float32 ``(n, 1)`` targets for regression).
They plug straight into ``TensorDataset``:

>>> import chainrule as cr
>>> from chainrule.data import DataLoader, TensorDataset, toy
>>> X, y = toy.two_moons(200, noise=0.1, seed=0)
>>> tuple(X.shape), str(X.dtype), tuple(y.shape), str(y.dtype)
((200, 2), 'float32', (200,), 'int64')
>>> loader = DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)
>>> len(loader)
7

Randomness: pass ``seed`` for a fixed dataset (same seed, same numbers, bit for bit), or
``generator`` (a ``chainrule.Generator``); with neither, numbers come from the global generator
seeded by ``cr.manual_seed``.  For a binary cross-entropy / MSE loss on a single output use
``y.float().unsqueeze(1)`` as the target.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..autograd import Tensor
from ..autograd.factories import from_numpy
from ..random import Generator, _rng

__all__ = ["xor", "and_gate", "or_gate", "two_moons", "spirals", "circles", "regression_1d", "make_loader"]


def _numpy_rng(seed: int | None, generator: Generator | None) -> np.random.Generator:
    if seed is not None and generator is not None:
        raise ValueError("pass seed or generator, not both")
    if seed is not None:
        return Generator(seed).numpy
    return _rng(generator)


def _out(X: np.ndarray, y: np.ndarray) -> tuple[Tensor, Tensor]:
    return from_numpy(np.ascontiguousarray(X, dtype=np.float32)), from_numpy(np.ascontiguousarray(y))


def _shuffled(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, shuffle: bool):
    if not shuffle:
        return X, y
    perm = rng.permutation(len(X))
    return X[perm], y[perm]


# ---- logic gates -----------------------------------------------------------------------------------

_CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)


def _gate(truth: list[int], n_samples: int | None, noise: float, seed, generator):
    labels = np.array(truth, dtype=np.int64)
    if n_samples is None:                      # the four corners of the truth table, in order
        if noise:
            rng = _numpy_rng(seed, generator)
            return _out(_CORNERS + noise * rng.standard_normal((4, 2)), labels)
        return _out(_CORNERS.copy(), labels)
    rng = _numpy_rng(seed, generator)
    corner = rng.permutation(np.arange(n_samples) % 4)          # balanced: n/4 of each corner
    X = _CORNERS[corner] + noise * rng.standard_normal((n_samples, 2))
    return _out(X, labels[corner])


def xor(n_samples: int | None = None, noise: float = 0.0, seed: int | None = None,
        generator: Generator | None = None) -> tuple[Tensor, Tensor]:
    """XOR: label 1 when exactly one input is 1 -- the classic problem a single neuron can't solve.

    With ``n_samples=None`` the four points of the truth table; otherwise ``n_samples`` points drawn
    around the corners (equally many per corner, in random order) with Gaussian ``noise``.

    >>> X, y = xor()
    >>> X.tolist(), y.tolist()
    ([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], [0, 1, 1, 0])
    >>> X, y = xor(100, noise=0.1, seed=0)
    >>> tuple(X.shape), int(y.sum())
    ((100, 2), 50)
    """
    return _gate([0, 1, 1, 0], n_samples, noise, seed, generator)


def and_gate(n_samples: int | None = None, noise: float = 0.0, seed: int | None = None,
             generator: Generator | None = None) -> tuple[Tensor, Tensor]:
    """AND: label 1 only when both inputs are 1 (linearly separable).  Arguments as ``xor``.

    >>> and_gate()[1].tolist()
    [0, 0, 0, 1]
    """
    return _gate([0, 0, 0, 1], n_samples, noise, seed, generator)


def or_gate(n_samples: int | None = None, noise: float = 0.0, seed: int | None = None,
            generator: Generator | None = None) -> tuple[Tensor, Tensor]:
    """OR: label 1 when at least one input is 1 (linearly separable).  Arguments as ``xor``.

    >>> or_gate()[1].tolist()
    [0, 1, 1, 1]
    """
    return _gate([0, 1, 1, 1], n_samples, noise, seed, generator)


# ---- 2-D classification ----------------------------------------------------------------------------

def two_moons(n_samples: int = 100, noise: float = 0.1, seed: int | None = None,
              generator: Generator | None = None, shuffle: bool = True) -> tuple[Tensor, Tensor]:
    """Two interleaving half circles (scikit-learn's ``make_moons``): class 0 on top, class 1 below.

    >>> X, y = two_moons(101, noise=0.0, shuffle=False)
    >>> int((y == 0).sum()), int((y == 1).sum())
    (50, 51)
    """
    rng = _numpy_rng(seed, generator)
    n_top = n_samples // 2
    n_bottom = n_samples - n_top
    t_top = np.linspace(0, math.pi, n_top)
    t_bottom = np.linspace(0, math.pi, n_bottom)
    X = np.concatenate([np.stack([np.cos(t_top), np.sin(t_top)], axis=1),
                        np.stack([1 - np.cos(t_bottom), 0.5 - np.sin(t_bottom)], axis=1)])
    y = np.concatenate([np.zeros(n_top, np.int64), np.ones(n_bottom, np.int64)])
    if noise:
        X = X + noise * rng.standard_normal(X.shape)
    return _out(*_shuffled(X, y, rng, shuffle))


def spirals(n_samples: int = 300, classes: int = 2, noise: float = 0.2, seed: int | None = None,
            generator: Generator | None = None, shuffle: bool = True) -> tuple[Tensor, Tensor]:
    """``classes`` interleaved spiral arms (the CS231n spiral), ``n_samples`` points in total.

    Arm ``k`` has radius growing from 0 to 1 while its angle turns through 4 radians, starting at
    ``4k``; ``noise`` jitters the angle.  Not linearly separable: a good test for a small MLP.

    >>> X, y = spirals(300, classes=3, seed=0)
    >>> tuple(X.shape), sorted(set(y.tolist()))
    ((300, 2), [0, 1, 2])
    """
    if classes < 2:
        raise ValueError(f"spirals needs at least 2 classes, got {classes}")
    rng = _numpy_rng(seed, generator)
    sizes = [n_samples // classes + (k < n_samples % classes) for k in range(classes)]
    xs, ys = [], []
    for k, m in enumerate(sizes):
        r = np.linspace(0.0, 1.0, m)
        t = np.linspace(4.0 * k, 4.0 * (k + 1), m) + noise * rng.standard_normal(m)
        xs.append(np.stack([r * np.sin(t), r * np.cos(t)], axis=1))
        ys.append(np.full(m, k, dtype=np.int64))
    return _out(*_shuffled(np.concatenate(xs), np.concatenate(ys), rng, shuffle))


def circles(n_samples: int = 100, noise: float = 0.05, factor: float = 0.5, seed: int | None = None,
            generator: Generator | None = None, shuffle: bool = True) -> tuple[Tensor, Tensor]:
    """A small circle (class 1, radius ``factor``) inside a big one (class 0, radius 1).

    >>> X, y = circles(100, noise=0.0, shuffle=False)
    >>> float(X[:50].norm(dim=1).mean()), float(X[50:].norm(dim=1).mean())
    (1.0, 0.5)
    """
    if not 0 < factor < 1:
        raise ValueError(f"factor must be between 0 and 1, got {factor}")
    rng = _numpy_rng(seed, generator)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, 2 * math.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * math.pi, n_in, endpoint=False)
    X = np.concatenate([np.stack([np.cos(t_out), np.sin(t_out)], axis=1),
                        factor * np.stack([np.cos(t_in), np.sin(t_in)], axis=1)])
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    if noise:
        X = X + noise * rng.standard_normal(X.shape)
    return _out(*_shuffled(X, y, rng, shuffle))


# ---- regression ------------------------------------------------------------------------------------

def regression_1d(n_samples: int = 100, noise: float = 0.1, fn: Callable = np.sin, low: float = -math.pi,
                  high: float = math.pi, seed: int | None = None,
                  generator: Generator | None = None) -> tuple[Tensor, Tensor]:
    """Noisy samples of ``y = fn(x) + noise * N(0, 1)`` with ``x`` uniform in ``[low, high)``.

    Returns ``X`` and ``y``, both float32 of shape ``(n, 1)`` (ready for ``nn.Linear`` and
    ``MSELoss``), in random order of ``x``; sort by ``X[:, 0]`` to plot a curve.

    >>> X, y = regression_1d(50, noise=0.0, seed=0)
    >>> tuple(X.shape), tuple(y.shape)
    ((50, 1), (50, 1))
    >>> bool(((y - X.sin()).abs() < 1e-6).all())
    True
    """
    rng = _numpy_rng(seed, generator)
    x = rng.uniform(low, high, size=(n_samples, 1)).astype(np.float32)
    y = np.asarray(fn(x.astype(np.float64)), dtype=np.float64) + noise * rng.standard_normal((n_samples, 1))
    return _out(x, y.astype(np.float32))


def make_loader(X, y, batch_size: int = 32, shuffle: bool = True, generator: Generator | None = None):
    """``DataLoader(TensorDataset(X, y), batch_size, shuffle)`` in one call.

    >>> loader = make_loader(*xor(), batch_size=2)
    >>> len(loader)
    2
    """
    from .dataloader import DataLoader
    from .dataset import TensorDataset
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=shuffle, generator=generator)
