"""``DataLoader``: turn a dataset into an iterable of (shuffled) batches, like ``torch.utils.data``.

>>> import chainrule as cr
>>> from chainrule.data import DataLoader, TensorDataset
>>> X = cr.arange(10).float().reshape(5, 2)
>>> y = cr.tensor([0, 1, 0, 1, 1])
>>> loader = DataLoader(TensorDataset(X, y), batch_size=2)
>>> len(loader)                       # ceil(5 / 2) batches
3
>>> [tuple(xb.shape) for xb, yb in loader]
[(2, 2), (2, 2), (1, 2)]
>>> _ = cr.manual_seed(0)
>>> order1 = [yb.tolist() for _, yb in DataLoader(TensorDataset(X, y), batch_size=5, shuffle=True)]
>>> _ = cr.manual_seed(0)             # same seed, same order, bit for bit
>>> order1 == [yb.tolist() for _, yb in DataLoader(TensorDataset(X, y), batch_size=5, shuffle=True)]
True

How a batch is made
-------------------
1. The sampler yields sample indices (``0, 1, 2, ...`` or, with ``shuffle=True``, a fresh random
   permutation at the start of every epoch, drawn from ``generator`` or chainrule's global generator).
2. The indices are cut into groups of ``batch_size`` (the last one shorter unless ``drop_last``).
3. Each group becomes a batch: ``collate_fn([dataset[i] for i in group])``.  When the dataset has a
   batch method ``__getitems__`` and ``collate_fn`` is the default, the loader calls it instead: one
   vectorised gather per batch instead of ``batch_size`` Python calls (see ``chainrule.data.dataset``).

Everything runs in the calling process; ``num_workers`` and friends are accepted for compatibility
with PyTorch code and ignored.
"""

from __future__ import annotations

import collections.abc
import itertools

import numpy as np

from .. import _dtypes
from ..autograd import Tensor
from ..autograd.factories import from_numpy
from ..autograd.ops import stack
from ..random import Generator, _rng

__all__ = ["DataLoader", "default_collate", "default_convert", "Sampler", "SequentialSampler", "RandomSampler",
           "SubsetRandomSampler", "BatchSampler"]


# ---- samplers ---------------------------------------------------------------------------------------

class Sampler:
    """Base class: an iterable of dataset indices with a length (subclasses define both)."""

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__()")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must implement __len__()")


class _ArraySampler(Sampler):
    """A sampler that makes all of an epoch's indices at once, as an int64 array (``_index_array``).

    The loader then slices batches out of that array instead of looping over every index in Python.
    """

    def __iter__(self):
        return iter(self._index_array().tolist())

    def _index_array(self) -> np.ndarray:
        raise NotImplementedError


def _has_index_array(sampler) -> bool:
    """True if ``sampler``'s indices are exactly its ``_index_array()`` (its ``__iter__`` not overridden)."""
    return isinstance(sampler, _ArraySampler) and type(sampler).__iter__ is _ArraySampler.__iter__


class SequentialSampler(_ArraySampler):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source):
        self.data_source = data_source

    def __len__(self) -> int:
        return len(self.data_source)

    def _index_array(self) -> np.ndarray:
        return np.arange(len(self.data_source), dtype=np.int64)


class RandomSampler(_ArraySampler):
    """A random permutation of the indices (or ``num_samples`` draws with ``replacement=True``).

    Each ``iter()`` draws new random numbers from ``generator`` (default: the global generator), so
    after ``cr.manual_seed(s)`` the sequence of epochs is reproducible bit for bit.
    """

    def __init__(self, data_source, replacement: bool = False, num_samples: int | None = None,
                 generator: Generator | None = None):
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if num_samples is not None and (not isinstance(num_samples, int) or num_samples <= 0):
            raise ValueError(f"num_samples should be a positive integer, got {num_samples!r}")

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __len__(self) -> int:
        return self.num_samples

    def _index_array(self) -> np.ndarray:
        n, rng = len(self.data_source), _rng(self.generator)
        if self.replacement:
            return rng.integers(0, n, size=self.num_samples, dtype=np.int64)
        # num_samples larger than n: whole permutations back to back, as torch
        reps = -(-self.num_samples // n) if n else 0
        perms = [rng.permutation(n) for _ in range(max(reps, 1))]
        return np.concatenate(perms)[:self.num_samples].astype(np.int64, copy=False)


class SubsetRandomSampler(_ArraySampler):
    """The given ``indices`` in a random order (new order each epoch)."""

    def __init__(self, indices, generator: Generator | None = None):
        self.indices = indices
        self.generator = generator

    def __len__(self) -> int:
        return len(self.indices)

    def _index_array(self) -> np.ndarray:
        idx = np.asarray(self.indices, dtype=np.int64)
        return idx[_rng(self.generator).permutation(len(idx))]


class BatchSampler(Sampler):
    """Group the indices of ``sampler`` into lists of ``batch_size``.

    >>> list(BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]
    """

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        for batch in self._index_batches():
            yield batch.tolist()

    def _index_batches(self):
        """Yield int64 index arrays, one per batch."""
        bs = self.batch_size
        if _has_index_array(self.sampler):                   # fast: slice one big array
            idx = self.sampler._index_array()
            stop = len(idx) - len(idx) % bs if self.drop_last else len(idx)
            return (idx[i:i + bs] for i in range(0, stop, bs))
        return self._chunks(iter(self.sampler))

    def _chunks(self, it):
        while True:
            chunk = list(itertools.islice(it, self.batch_size))
            if not chunk or (self.drop_last and len(chunk) < self.batch_size):
                return
            yield np.asarray(chunk, dtype=np.int64)


# ---- collation -------------------------------------------------------------------------------------

def _number_batch(values: list):
    """Python numbers -> a tensor: ints -> int64, floats -> the default float dtype, bools -> bool."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        arr = arr.astype(_dtypes.get_default_dtype(), copy=False)
    elif arr.dtype.kind in "iu":
        arr = arr.astype(np.int64, copy=False)
    return from_numpy(arr)


def _check_same_shape(items) -> None:
    shapes = {tuple(x.shape) for x in items}
    if len(shapes) > 1:
        raise RuntimeError(f"default_collate: can't stack samples of different shapes {sorted(shapes)}; "
                           "pad them to one shape or pass a collate_fn")


def default_collate(batch: list):
    """Merge a list of samples into a batch, stacking along a new first dimension.

    Like ``torch.utils.data.default_collate``:

    ===============================  =============================================================
    each sample is                   the batch is
    ===============================  =============================================================
    Tensor                           ``stack(samples)``
    ndarray or NumPy scalar          a Tensor of the stacked arrays (dtype kept)
    int / float / bool               an int64 / float32 (default dtype) / bool Tensor of shape (B,)
    str or bytes                     the list unchanged
    dict                             a dict: each key collated over the samples
    tuple / list / namedtuple        the same container: each position collated (all the same length)
    ===============================  =============================================================

    Differences from torch: Python floats become float32 (the default dtype), not float64, and
    tuples stay tuples (torch turns them into lists).

    >>> import chainrule as cr
    >>> xb, yb = default_collate([(cr.tensor([1.0, 2.0]), 0), (cr.tensor([3.0, 4.0]), 1)])
    >>> tuple(xb.shape), yb.dtype
    ((2, 2), dtype('int64'))
    >>> d = default_collate([{"x": 1.5, "name": "a"}, {"x": 2.5, "name": "b"}])
    >>> d["x"].tolist(), d["name"]
    ([1.5, 2.5], ['a', 'b'])
    """
    if not isinstance(batch, collections.abc.Sequence) or len(batch) == 0:
        raise TypeError("default_collate expects a non-empty list of samples")
    elem = batch[0]
    if isinstance(elem, Tensor):
        _check_same_shape(batch)
        if any(t.requires_grad for t in batch):
            return stack(list(batch))              # differentiable
        return from_numpy(np.stack([t.data for t in batch]))
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OSUV":
            raise TypeError(f"default_collate: can't batch numpy arrays of dtype {elem.dtype}")
        _check_same_shape(batch)
        return from_numpy(np.stack(batch))
    if isinstance(elem, np.generic):
        return from_numpy(np.asarray(batch))
    if isinstance(elem, (bool, int, float)):
        return _number_batch(batch)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        out = {key: default_collate([d[key] for d in batch]) for key in elem}
        if type(elem) is dict:
            return out
        try:
            # e.g. an OrderedDict stays one; a Mapping type that can't be built from a dict falls back below
            return type(elem)(out)  # type: ignore[call-arg]  # mypy only knows the abstract Mapping here
        except TypeError:
            return out
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):      # namedtuple
        return type(elem)(*(default_collate(list(col)) for col in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(s) != size for s in batch):
            raise RuntimeError("default_collate: each sample in the batch must have the same length "
                               f"(got lengths {sorted({len(s) for s in batch})})")
        columns = [default_collate(list(col)) for col in zip(*batch)]
        return tuple(columns) if isinstance(elem, tuple) else columns
    raise TypeError("default_collate: samples must be Tensors, numpy arrays, numbers, strings, dicts, "
                    f"tuples or lists; found {type(elem).__name__}")


def default_convert(data):
    """One sample with its NumPy arrays made Tensors, everything else as is (torch's ``default_convert``).

    The default ``collate_fn`` of a ``DataLoader`` with ``batch_size=None`` (no batching).  Containers
    are converted element by element; as in ``default_collate``, tuples stay tuples.

    >>> import numpy as np
    >>> x, y = default_convert((np.zeros(2, np.float32), 3))
    >>> type(x).__name__, y
    ('Tensor', 3)
    """
    if isinstance(data, (np.ndarray, np.generic)):
        return data if data.dtype.kind in "OSUV" else from_numpy(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        out = {key: default_convert(value) for key, value in data.items()}
        try:
            return out if type(data) is dict else type(data)(out)  # type: ignore[call-arg]
        except TypeError:
            return out
    if isinstance(data, tuple) and hasattr(data, "_fields"):      # namedtuple
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (tuple, list)):
        return type(data)(default_convert(d) for d in data)
    return data


# ---- the loader ------------------------------------------------------------------------------------

class DataLoader:
    """Iterate over ``dataset`` in batches of ``batch_size``.

    Args:
        dataset: any object with ``__len__`` and ``__getitem__`` (optionally ``__getitems__``).
        batch_size: samples per batch; ``None`` turns batching off: the loader yields
            ``collate_fn(dataset[i])`` one sample at a time (default ``collate_fn``: ``default_convert``).
        shuffle: draw a new random order every epoch (from ``generator``, else the global generator
            seeded by ``cr.manual_seed``), reproducible bit for bit.
        sampler: an iterable of indices to use instead of (0..n-1 / a shuffle).  Excludes ``shuffle``.
        batch_sampler: an iterable of index lists; excludes ``batch_size``, ``shuffle``, ``sampler``
            and ``drop_last``.
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        collate_fn: merges a list of samples into a batch (default: ``default_collate``).
        generator: a ``chainrule.Generator`` for the shuffle.
        num_workers, pin_memory, timeout, worker_init_fn, multiprocessing_context, prefetch_factor,
            persistent_workers, pin_memory_device, in_order: accepted so PyTorch code runs unchanged;
            chainrule always loads in the main process, in order.

    ``len(loader)`` is the number of batches per epoch.

    >>> import chainrule as cr
    >>> from chainrule.data import TensorDataset
    >>> dl = DataLoader(TensorDataset(cr.zeros(10, 3)), batch_size=4, drop_last=True)
    >>> len(dl), [tuple(b[0].shape) for b in dl]
    (2, [(4, 3), (4, 3)])
    """

    def __init__(self, dataset, batch_size: int | None = 1, shuffle: bool | None = None, sampler=None,
                 batch_sampler=None, num_workers: int = 0, collate_fn=None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0, worker_init_fn=None, multiprocessing_context=None,
                 generator: Generator | None = None, *, prefetch_factor=None,
                 persistent_workers: bool = False, pin_memory_device: str = "", in_order: bool = True):
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None:
            if drop_last:
                raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive "
                                 "with drop_last")
        elif isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if sampler is None:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_sampler is None and batch_size is not None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.generator = generator
        if collate_fn is None:
            collate_fn = default_collate if batch_sampler is not None else default_convert
        self.collate_fn = collate_fn
        self.num_workers = num_workers
        self.pin_memory = pin_memory

    def __len__(self) -> int:
        return len(self.sampler if self.batch_sampler is None else self.batch_sampler)

    def _index_batches(self):
        if isinstance(self.batch_sampler, BatchSampler):
            return self.batch_sampler._index_batches()
        return (np.asarray(b, dtype=np.int64) for b in self.batch_sampler)

    def __iter__(self):
        # _index_batches() / iter(sampler) draw the epoch's random order right now, when iteration starts.
        if self.batch_sampler is None:                     # batch_size=None: one sample at a time
            return map(lambda i: self.collate_fn(self.dataset[i]), iter(self.sampler))
        return self._batches(self._index_batches())

    def _batches(self, index_batches):
        getitems = getattr(self.dataset, "__getitems__", None)
        if self.collate_fn is not default_collate:
            getitems = None             # a custom collate_fn gets the list of samples it expects
        collate, dataset = self.collate_fn, self.dataset
        for idx in index_batches:
            if getitems is not None:
                batch = getitems(idx)
                # A list means "samples" (torch's convention); anything else is a finished batch.
                yield collate(batch) if isinstance(batch, list) else batch
            else:
                yield collate([dataset[i] for i in idx.tolist()])

    def __repr__(self) -> str:
        return (f"DataLoader(dataset={type(self.dataset).__name__} of {len(self.dataset)}, "
                f"batch_size={self.batch_size}, batches={len(self)})")
