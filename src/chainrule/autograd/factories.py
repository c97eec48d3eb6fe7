"""Tensor factories with torch's names and dtype rules (``dtype=`` and ``requires_grad=`` on each)."""

from __future__ import annotations

import numpy as np

from .. import _dtypes
from .. import random as _random
from .tensor import Tensor

_as = _dtypes.as_dtype


def _finish(arr, requires_grad):
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def _size(size, kw=None):
    if kw is not None:  # torch's size= keyword: zeros(size=(2, 3))
        if size:
            raise TypeError("pass the sizes either positionally or as size=, not both")
        size = (kw,)
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    try:
        return tuple(int(s) for s in size)
    except TypeError:
        raise TypeError(f"sizes must be ints, got {size!r}") from None


def tensor(data, dtype=None, requires_grad=False, device=None) -> Tensor:
    """A new tensor that owns a copy of ``data`` (floats -> float32, ints -> int64, as torch)."""
    if isinstance(data, Tensor):
        data = data.data
    arr = _dtypes.infer_array(data, dtype)
    if arr is data or (isinstance(data, np.ndarray) and np.shares_memory(arr, data)):
        arr = arr.copy()
    return _finish(arr, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """Like ``tensor`` but shares memory with an ndarray when no conversion is needed."""
    if isinstance(data, Tensor):
        return data if dtype is None or data.dtype == _as(dtype) else data.to(dtype)
    return Tensor._make(_dtypes.infer_array(data, dtype))


def from_numpy(arr: np.ndarray) -> Tensor:
    """A tensor sharing memory with ``arr``, keeping its dtype (float64 stays float64)."""
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"from_numpy expects an np.ndarray, got {type(arr).__name__}")
    return Tensor._make(arr)


def _float_dtype(dtype):
    return _as(dtype) or _dtypes.get_default_dtype()


def zeros(*sizes, size=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(np.zeros(_size(sizes, size), dtype=_float_dtype(dtype)), requires_grad)


def ones(*sizes, size=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(np.ones(_size(sizes, size), dtype=_float_dtype(dtype)), requires_grad)


def empty(*sizes, size=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(np.empty(_size(sizes, size), dtype=_float_dtype(dtype)), requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    dt = _as(dtype)
    if dt is None:
        if isinstance(fill_value, np.generic):
            fill_value = fill_value.item()  # a NumPy scalar fills like the Python number (as torch)
        dt = _dtypes.infer_array(fill_value).dtype
    return _finish(np.full(_size((size,)), fill_value, dtype=dt), requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(np.eye(n, m, dtype=_float_dtype(dtype)), requires_grad)


def arange(start=0, end=None, step=1, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Values start, start + step, ... below end; int64 for int arguments, else float32."""
    if end is None:
        start, end = 0, start
    start, end, step = (v.item() if isinstance(v, (Tensor, np.generic)) else v for v in (start, end, step))
    dt = _as(dtype)
    if dt is None:
        all_int = all(isinstance(v, int) for v in (start, end, step))
        dt = _dtypes.int64 if all_int else _dtypes.get_default_dtype()
    return _finish(np.arange(start, end, step).astype(dt), requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(np.linspace(start, end, int(steps)).astype(_float_dtype(dtype)), requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(np.logspace(start, end, int(steps), base=base).astype(_float_dtype(dtype)), requires_grad)


def rand(*sizes, size=None, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Uniform on [0, 1) from the global generator (seeded by ``manual_seed``)."""
    dt = _float_dtype(dtype)
    return _finish(_random._rng(generator).random(_size(sizes, size), dtype=np.float64).astype(dt), requires_grad)


def randn(*sizes, size=None, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Standard normal samples from the global generator."""
    dt = _float_dtype(dtype)
    return _finish(_random._rng(generator).standard_normal(_size(sizes, size)).astype(dt), requires_grad)


def randint(low=0, high=None, size=None, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    """Integers in [low, high) (int64), torch's ``randint(low=0, high, size)``."""
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("randint: missing size, e.g. randint(0, 10, (3,))")
        low, high, size = 0, low, high
    if high is None:
        low, high = 0, low
    dt = _as(dtype) or _dtypes.int64
    return _finish(_random._rng(generator).integers(low, high, _size((size,))).astype(dt), requires_grad)


def randperm(n, generator=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    return _finish(_random._rng(generator).permutation(n).astype(_as(dtype) or _dtypes.int64), requires_grad)


def normal(mean, std, size, generator=None, dtype=None) -> Tensor:
    return _finish(_random._rng(generator).normal(mean, std, _size((size,))).astype(_float_dtype(dtype)), False)


def _like(fn):
    def f(x, dtype=None, requires_grad=False, device=None, **kw):
        dt = _as(dtype) or x.dtype
        return fn(*x.shape, dtype=dt, requires_grad=requires_grad, **kw)
    f.__name__ = fn.__name__ + "_like"
    f.__doc__ = f"``{fn.__name__}`` with the shape (and by default dtype) of ``x``."
    return f


zeros_like = _like(zeros)
ones_like = _like(ones)
empty_like = _like(empty)
rand_like = _like(rand)
randn_like = _like(randn)


def full_like(x, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
    return full(x.shape, fill_value, dtype=_as(dtype) or x.dtype, requires_grad=requires_grad)


def randint_like(x, low=0, high=None, dtype=None, requires_grad=False, device=None) -> Tensor:
    return randint(low, high, x.shape, dtype=_as(dtype) or x.dtype)
