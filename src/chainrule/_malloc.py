"""Where arrays live: freed memory stays in the process (``tune``), long-lived arrays start at chosen
offsets within a page (``empty``), and small parameters lie back to back (``param_empty``, ``runs``).

Keeping freed memory means large temporaries don't page-fault on every training step:

NumPy allocates every array with ``malloc``.  glibc serves blocks above 128 KiB with fresh ``mmap``
pages and hands them back to the kernel on ``free``; a training step that creates and drops the same
few-megabyte activations then pays a page fault (and the kernel zeroing a page) per 4 KiB, every
step.  Measured in an MNIST training loop at batch 1024: ``X[idx].float() / 255`` took 1.45 ms per
step with glibc's defaults and 1.0 ms with these settings.  PyTorch avoids the same cost with its
caching allocator.

``tune()`` asks glibc (Linux only) to serve blocks up to 32 MiB from the heap and to keep up to
256 MiB of freed heap memory rather than trim it: a program's peak memory does not change, only how
soon freed memory goes back to the operating system.  ``import chainrule`` calls it; set
``CHAINRULE_MALLOC_TUNING=0`` to leave the allocator alone.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import weakref

import numpy as np

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def tune() -> bool:
    """Apply the settings once; True if they took effect."""
    global _done
    if _done or os.environ.get("CHAINRULE_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    _done = True
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt  # glibc; elsewhere (musl) there is none and we do nothing
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 256 << 20))


# ---- page offsets of long-lived arrays ---------------------------------------------------------------
#: Arrays smaller than this are allocated as usual (a few KiB cannot alias much, and they get no padding).
STAGGER_MIN_BYTES = 16384
_PAGE = 4096
_STEP = 1088          # 1 KiB + a cache line: successive arrays start in different quarters of a page
_next_slot = 0


def empty(shape, dtype, *, like=None, shift: int = 0):
    """``np.empty(shape, dtype)``, placed at a chosen offset within a 4 KiB page.

    Arrays that live for a whole training run and are streamed through together every step (the
    parameters, their gradients, the optimizer's momentum and moment buffers) are slower when they start
    at the same offset within a page: x86 cores then confuse loads from one with stores to another
    ("4K aliasing") and their cache lines compete for the same cache sets.  Where each array lands is
    otherwise up to ``malloc``: measured on the MNIST MLP at batch 32, the same program took 1.68–1.80 s per
    epoch depending on the process, and 1.53–1.57 s with the parameters staggered and each momentum buffer
    half a page away from its parameter (the hand-written NumPy MLP: 1.63–1.70 s against 1.39–1.46 s).

    ``like=None``: the next offset of a rotating sequence (parameters, one after another).  ``like=a``: the
    offset of ``a`` plus ``shift`` bytes (a buffer that is read together with ``a``).  The array is a view of a
    buffer one page larger; arrays under ``STAGGER_MIN_BYTES`` are plain ``np.empty``.
    """
    global _next_slot
    dt = np.dtype(dtype)
    shape = tuple(shape)
    nbytes = dt.itemsize * math.prod(shape)
    if nbytes < STAGGER_MIN_BYTES:
        return np.empty(shape, dt)
    if like is None:
        offset = _next_slot * _STEP
        _next_slot += 1
    else:
        offset = like.ctypes.data + shift
    raw = np.empty(nbytes + _PAGE, np.uint8)
    start = (offset - raw.ctypes.data) % _PAGE
    return raw[start:start + nbytes].view(dt).reshape(shape)


# ---- parameters back to back ---------------------------------------------------------------------------
#: Parameters up to this many bytes are carved one after another from shared blocks of ``ARENA_BLOCK`` bytes.
ARENA_MAX = 1 << 20
ARENA_BLOCK = 4 << 20
_ALIGN = 64           # each parameter starts on a cache line
_arena: list = [None, 0]          # the current block and how many of its bytes are handed out
_arena_lock = threading.Lock()
# The owners of the blocks, by id, while some parameter holds them.
_blocks: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def param_empty(shape, dtype):
    """Memory for a parameter (``nn.Linear``'s weight and bias), uninitialised.

    Parameters up to ``ARENA_MAX`` bytes are carved one after another, each on a 64-byte boundary, from
    shared blocks (zeroed, so the padding between them holds zeros): the parameters of a model built layer
    by layer then lie back to back, and ``optim.SGD`` updates such a run as one array instead of one
    parameter at a time (``runs``).  For the MNIST MLP that is 25 NumPy calls per step instead of 36, as
    many as the hand-written program with its flat parameter array needs.  Larger parameters get an array
    of their own (``empty``): their update is long enough that a few calls more do not count.
    """
    dt = np.dtype(dtype)
    shape = tuple(shape)
    nbytes = dt.itemsize * math.prod(shape)
    if nbytes > ARENA_MAX or _ALIGN % dt.itemsize:
        return empty(shape, dt)
    with _arena_lock:
        block, used = _arena
        start = -(-used // _ALIGN) * _ALIGN
        if block is None or start + nbytes > ARENA_BLOCK:
            block = empty((ARENA_BLOCK + _ALIGN,), np.uint8)
            block[...] = 0
            _blocks[id(root(block))] = root(block)
            start = -block.ctypes.data % _ALIGN
        _arena[:] = [block, start + nbytes]
    return block[start:start + nbytes].view(dt).reshape(shape)


def root(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (``a`` itself if it owns it)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def runs(arrays) -> list[tuple[int, int]]:
    """Index ranges ``[i, j)``, ``j - i >= 2``, of ``arrays`` that lie back to back in memory, in this order.

    Back to back: the same dtype, C-contiguous and writeable, views of one owner, each starting where the
    one before ends -- or, inside a block of ``param_empty``, at most one alignment's padding of zeros
    later.  ``span`` gives the flat array such a range covers.
    """
    found = []
    i = 0
    n = len(arrays)
    while i < n:
        j = i + 1
        a = arrays[i]
        owner = root(a)
        if a.flags.c_contiguous and a.flags.writeable and a.size and owner.flags.c_contiguous:
            slack = _ALIGN if _blocks.get(id(owner)) is owner else 1
            end = a.ctypes.data + a.nbytes
            while j < n:
                b = arrays[j]
                gap = b.ctypes.data - end
                if not (b.dtype == a.dtype and b.flags.c_contiguous and b.flags.writeable and b.size
                        and 0 <= gap < slack and (b.ctypes.data - a.ctypes.data) % a.itemsize == 0
                        and root(b) is owner):
                    break
                end = b.ctypes.data + b.nbytes
                j += 1
        if j - i >= 2:
            found.append((i, j))
        i = j
    return found


def span(first: np.ndarray, last: np.ndarray) -> np.ndarray | None:
    """The flat array from the start of ``first`` to the end of ``last``, two views of one C-contiguous owner
    (the ends of a range of ``runs``); None if they are not."""
    owner = root(first)
    start = first.ctypes.data - owner.ctypes.data
    stop = last.ctypes.data + last.nbytes - owner.ctypes.data
    if (root(last) is not owner or not owner.flags.c_contiguous or not 0 <= start <= stop <= owner.nbytes
            or (stop - start) % first.itemsize):
        return None
    return owner.reshape(-1).view(np.uint8)[start:stop].view(first.dtype)
