"""Datasets: anything with ``__len__`` and ``__getitem__`` (PyTorch's ``torch.utils.data`` classes).

A *dataset* answers two questions: how many samples are there (``len(ds)``) and what is sample ``i``
(``ds[i]``, usually an ``(input, target)`` tuple).  A ``DataLoader`` turns a dataset into batches.

>>> import numpy as np
>>> import chainrule as cr
>>> from chainrule.data import TensorDataset, random_split
>>> X = cr.from_numpy(np.arange(10, dtype=np.float32).reshape(5, 2))
>>> y = cr.tensor([0, 1, 0, 1, 1])
>>> ds = TensorDataset(X, y)
>>> len(ds)
5
>>> x0, y0 = ds[0]
>>> x0.tolist(), int(y0)
([0.0, 1.0], 0)
>>> train, val = random_split(ds, [0.6, 0.4], generator=cr.Generator(0))
>>> len(train), len(val)
(3, 2)

The batch protocol ``__getitems__``
-----------------------------------
A dataset may also define ``__getitems__(indices)`` to fetch a whole batch at once, which is much
faster than calling ``__getitem__`` once per sample.  chainrule's convention (the loader relies on it):

* return a **finished batch** -- a tuple, dict or Tensor exactly like ``default_collate`` would have
  built from ``[ds[i] for i in indices]`` -- and the loader hands it out unchanged; or
* return a **list of samples** (PyTorch's meaning of ``__getitems__``) and the loader collates it.

``TensorDataset``, ``Subset``, ``ConcatDataset`` and the MNIST datasets implement it.  The loader only
uses ``__getitems__`` with the default ``collate_fn``: a custom ``collate_fn`` always receives the
list of samples it expects.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

import numpy as np

from ..autograd import Tensor
from ..autograd.factories import as_tensor, from_numpy
from ..random import Generator, _rng

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "random_split"]


class Dataset:
    """Base class of map-style datasets: subclasses define ``__getitem__(index)`` and ``__len__()``.

    ``ds1 + ds2`` concatenates two datasets (a ``ConcatDataset``).

    >>> class Squares(Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, i):
    ...         if not 0 <= i < 4:
    ...             raise IndexError(i)
    ...         return i, i * i
    >>> Squares()[3]
    (3, 9)
    >>> len(Squares() + Squares())
    8
    """

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index)")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__()")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


# ---- helpers shared by the fast batch paths --------------------------------------------------------

def _as_index_array(indices, n: int) -> np.ndarray:
    """``indices`` as an int64 array with negative entries wrapped; IndexError if any is out of range.

    Checking the range here lets the gathers below use ``np.take(..., mode='clip')`` (no per-element
    bounds checks) without ever silently clipping a bad index.
    """
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        if idx.size == 0:
            return np.empty(0, dtype=np.int64)
        raise IndexError(f"batch indices must be integers, got an array of dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False).reshape(-1)
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < -n or hi >= n:
            bad = lo if lo < -n else hi
            raise IndexError(f"index {bad} is out of range for a dataset of length {n}")
        if lo < 0:
            idx = np.where(idx < 0, idx + n, idx)
    return idx


def _gather(array: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``array[idx]`` along the first axis into a fresh array (``idx`` already range-checked)."""
    out = np.empty((idx.size,) + array.shape[1:], dtype=array.dtype)
    return np.take(array, idx, axis=0, out=out, mode="clip")


class TensorDataset(Dataset):
    """Samples are slices along the first dimension of equally long tensors.

    ``ds[i] == (t[i] for t in tensors)``.  Arrays are wrapped with ``from_numpy`` (no copy), other
    data goes through ``as_tensor``.

    >>> import chainrule as cr
    >>> ds = TensorDataset(cr.zeros(3, 2), cr.tensor([1, 0, 1]))
    >>> [tuple(t.shape) for t in ds[0]]
    [(2,), ()]
    >>> TensorDataset(cr.zeros(3, 2), cr.zeros(4))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
      ...
    ValueError: TensorDataset: all tensors must have the same size in the first dimension, but tensor 0 ...
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor, e.g. TensorDataset(X, y)")
        converted = []
        for i, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                t = from_numpy(t) if isinstance(t, np.ndarray) else as_tensor(t)
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {i} is a scalar (0-d); every tensor needs a "
                                 "first dimension that indexes the samples")
            converted.append(t)
        n = converted[0].shape[0]
        for i, t in enumerate(converted[1:], start=1):
            if t.shape[0] != n:
                raise ValueError(
                    "TensorDataset: all tensors must have the same size in the first dimension, but "
                    f"tensor 0 has {n} (shape {tuple(converted[0].shape)}) and tensor {i} has "
                    f"{t.shape[0]} (shape {tuple(t.shape)})")
        self.tensors = tuple(converted)

    def __len__(self) -> int:
        return self.tensors[0].shape[0]

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices) -> tuple:
        """The batch ``(t[indices] for t in tensors)``, gathered with one ``np.take`` per tensor.

        Each call returns fresh arrays: the caller may keep (or modify) a batch while fetching more.
        """
        idx = _as_index_array(indices, len(self))
        out = []
        for t in self.tensors:
            if t.requires_grad:        # keep the autograd graph, as indexing would
                out.append(t[from_numpy(idx)])
            else:
                out.append(from_numpy(_gather(t.data, idx)))
        return tuple(out)


class Subset(Dataset):
    """The samples of ``dataset`` at positions ``indices`` (in that order).

    >>> s = Subset(list("abcdef"), [4, 0, 2])
    >>> len(s), s[0], s[2]
    (3, 'e', 'c')
    """

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices
        self._index_array = np.asarray(indices, dtype=np.int64).reshape(-1)

    def __len__(self) -> int:
        return len(self._index_array)

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[int(self._index_array[i]) for i in index]]
        return self.dataset[int(self._index_array[index])]

    def __getitems__(self, indices):
        idx = self._index_array[_as_index_array(indices, len(self))]
        getitems = getattr(self.dataset, "__getitems__", None)
        if getitems is not None:
            return getitems(idx)
        return [self.dataset[i] for i in idx.tolist()]      # a list of samples: the loader collates


class ConcatDataset(Dataset):
    """Several datasets one after the other: ``len`` is the sum of their lengths.

    >>> c = ConcatDataset([[1, 2, 3], [10, 20]])
    >>> len(c), c[2], c[3], c[-1]
    (5, 3, 10, 20)
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset needs at least one dataset")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def _locate(self, index: int) -> tuple[int, int]:
        """(which dataset, index inside it) for a global ``index``."""
        n = len(self)
        if index < 0:
            if -index > n:
                raise IndexError(f"index {index} is out of range for a dataset of length {n}")
            index += n
        elif index >= n:
            raise IndexError(f"index {index} is out of range for a dataset of length {n}")
        d = bisect.bisect_right(self.cumulative_sizes, index)
        return d, index - (self.cumulative_sizes[d - 1] if d else 0)

    def __getitem__(self, index):
        d, i = self._locate(int(index))
        return self.datasets[d][i]

    def __getitems__(self, indices):
        """Fetch each part's share of the batch with its own ``__getitems__`` and interleave them.

        Falls back to a list of samples when some part has no batch protocol or returns samples.
        """
        idx = _as_index_array(indices, len(self))
        which = np.searchsorted(self.cumulative_sizes, idx, side="right")
        starts = np.concatenate([[0], self.cumulative_sizes[:-1]])
        parts, positions = [], []
        for d in np.unique(which).tolist():
            getitems = getattr(self.datasets[d], "__getitems__", None)
            if getitems is None:
                return [self[i] for i in idx.tolist()]
            where = np.flatnonzero(which == d)
            part = getitems(idx[where] - starts[d])
            if isinstance(part, list):
                return [self[i] for i in idx.tolist()]
            parts.append(part)
            positions.append(where)
        if len(parts) == 1:
            return parts[0]
        # parts[k] holds batch positions positions[k]; undo that grouping
        order = np.argsort(np.concatenate(positions), kind="stable")
        return _concat_batches(parts, order)


def _concat_batches(parts: list, order: np.ndarray):
    """Concatenate collated batches along the first axis, then reorder the rows by ``order``."""
    first = parts[0]
    if isinstance(first, Tensor):
        return from_numpy(np.concatenate([p.data for p in parts])[order])
    if isinstance(first, np.ndarray):
        return np.concatenate(parts)[order]
    if isinstance(first, dict):
        return {k: _concat_batches([p[k] for p in parts], order) for k in first}
    if isinstance(first, tuple) and hasattr(first, "_fields"):           # namedtuple
        return type(first)(*(_concat_batches(list(col), order) for col in zip(*parts)))
    if isinstance(first, (tuple, list)):
        return type(first)(_concat_batches(list(col), order) for col in zip(*parts))
    raise TypeError(f"ConcatDataset: can't merge batches of type {type(first).__name__}")


def random_split(dataset, lengths: Sequence[int | float], generator: Generator | None = None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1 (then each part gets
    ``floor(frac * n)`` samples and the leftovers go one each to the first parts, as torch).  The
    permutation comes from ``generator`` (default: the global one seeded by ``manual_seed``).

    >>> import chainrule as cr
    >>> a, b = random_split(range(10), [0.7, 0.3], generator=cr.Generator(42))
    >>> len(a), len(b), sorted(list(a) + list(b)) == list(range(10))
    (7, 3, True)
    """
    n = len(dataset)
    lengths = list(lengths)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:        # fractions (torch's rule)
        for frac in lengths:
            if not 0 <= frac <= 1:
                raise ValueError(f"random_split: fraction {frac} is not between 0 and 1")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(int(x) != x or x < 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative ints or fractions summing to 1, "
                         f"got {lengths}")
    sizes = [int(x) for x in lengths]
    if sum(sizes) != n:
        raise ValueError(f"random_split: the lengths sum to {sum(sizes)} but the dataset has {n} samples")
    perm = _rng(generator).permutation(n)
    out, offset = [], 0
    for length in sizes:
        out.append(Subset(dataset, perm[offset:offset + length].tolist()))
        offset += length
    return out
