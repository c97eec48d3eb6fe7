"""BLAS thread control: ``chainrule.set_num_threads`` / ``get_num_threads`` (torch's names).

chainrule's heavy lifting is NumPy's BLAS (matrix products).  On small problems a second thread buys
little (measured here on a 784-256-256-10 MLP: batch 32 trains at the same speed with one thread or
two, batch 128 about 15 % faster with two), and when another program keeps one of the cores busy,
threads that wait on each other can make an epoch ten times slower.  ``chainrule train`` therefore uses
one thread unless given ``--threads``; ``threads_for_batch`` suggests a count for an idle machine.
Uses threadpoolctl, which finds the BLAS that NumPy actually loaded (OpenBLAS, MKL or BLIS).
"""

from __future__ import annotations

import os

_controller = None


def _blas():
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
    return _controller


def get_num_threads() -> int:
    """Threads NumPy's BLAS uses now."""
    infos = [i for i in _blas().info() if i["user_api"] == "blas"]
    return max((i["num_threads"] for i in infos), default=1)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in NumPy's BLAS from now on (like ``torch.set_num_threads``)."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: expected a positive int, got {n!r}")
    _blas().limit(limits=n, user_api="blas")


def max_threads() -> int:
    """The threads this process may use: OMP/OPENBLAS_NUM_THREADS if set, else the CPUs it may run on."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        v = os.environ.get(var)
        if v and v.isdigit() and int(v) > 0:
            return int(v)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def threads_for_batch(batch_size: int) -> int:
    """A BLAS thread count for this batch size on an idle machine: 1 below 64 rows, where a second
    thread gains nothing, else every core this process may use."""
    return 1 if batch_size < 64 else max_threads()
