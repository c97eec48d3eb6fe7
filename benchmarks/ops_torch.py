"""Per-op overhead: how long one tiny elementwise op costs, framework overhead included.

The chain (CHAIN_LEN = 100 ops) applies, 25 times over, these four ops in order:

    1. x = x * 1.0001      multiply by a Python scalar
    2. x = x + 0.001       add a Python scalar
    3. x = tanh(x)         unary function
    4. x = x * c           multiply by a tensor of the same shape (c = 0.999)

on a float32 tensor of shape (8,), so the arithmetic is negligible and the
time is the dispatch / allocation / graph-recording cost.  Results are
microseconds per op: each rep times ``iters`` whole chains, and the table
shows the median (min-max) over reps.

``run(reps)`` measures:
  * torch forward under ``torch.no_grad()``;
  * torch forward + backward: the leaf has requires_grad=True, the chain is
    recorded, then ``y.backward(ones)`` (no extra reduction op); the time is
    divided by the 100 forward ops, so it is "forward+backward cost per op";
  * the NumPy floor: the same chain as plain ufunc calls (``np.multiply(x,
    1.0001)``, ...), each allocating its result like the frameworks do;
  * NumPy in place (``out=`` into a preallocated array): the floor below the
    floor, with no allocation at all.

``run_scalar(reps)`` does the same chain on scalars: torch 0-d tensors
(no_grad, and with autograd), NumPy float32 scalars, and Python floats with
``math.tanh`` (the cheapest a scalar-autograd engine written in Python could
dispatch one op).
"""

from __future__ import annotations

import math
import os

import numpy as np
import torch
from common import CHAIN_LEN, OPS, SHAPE, A, B, C, us_per_op  # noqa: F401  (re-exported)

if "OMP_NUM_THREADS" in os.environ:
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))



# ---------------------------------------------------------------- the chains

def chain_torch(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    for _ in range(CHAIN_LEN // 4):
        x = x * A
        x = x + B
        x = x.tanh()
        x = x * c
    return x


def chain_numpy(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    mul, add, tanh = np.multiply, np.add, np.tanh
    for _ in range(CHAIN_LEN // 4):
        x = mul(x, A)
        x = add(x, B)
        x = tanh(x)
        x = mul(x, c)
    return x


def chain_numpy_inplace(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    mul, add, tanh = np.multiply, np.add, np.tanh
    for _ in range(CHAIN_LEN // 4):
        mul(x, A, out=x)
        add(x, B, out=x)
        tanh(x, out=x)
        mul(x, c, out=x)
    return x


def chain_python(x: float, c: float) -> float:
    tanh = math.tanh
    for _ in range(CHAIN_LEN // 4):
        x = x * A
        x = x + B
        x = tanh(x)
        x = x * c
    return x


# ------------------------------------------------------------------- timing

def _torch_rows(x0: torch.Tensor, c: torch.Tensor, iters: int, reps: int, kind: str):
    def fwd_nograd():
        with torch.no_grad():
            chain_torch(x0, c)

    leaf = x0.clone().requires_grad_(True)
    seed_grad = torch.ones_like(x0)

    def fwd_bwd():
        leaf.grad = None
        chain_torch(leaf, c).backward(seed_grad)

    def fwd_grad_only():
        chain_torch(leaf, c)

    return [
        {"name": f"torch {kind}: forward, no_grad", "us_per_op": us_per_op(fwd_nograd, iters, reps)},
        {"name": f"torch {kind}: forward, recording graph",
         "us_per_op": us_per_op(fwd_grad_only, iters, reps)},
        {"name": f"torch {kind}: forward + backward", "us_per_op": us_per_op(fwd_bwd, iters, reps)},
    ]


def run(reps: int = 5, iters: int = 200) -> dict:
    """Per-op overhead on a (8,) float32 tensor; see the module docstring."""
    x0 = torch.full(SHAPE, 0.5, dtype=torch.float32)
    c = torch.full(SHAPE, C, dtype=torch.float32)
    rows = _torch_rows(x0, c, iters, reps, "(8,) tensor")
    xn = np.full(SHAPE, 0.5, dtype=np.float32)
    cn = np.full(SHAPE, C, dtype=np.float32)
    assert chain_numpy(xn, cn).dtype == np.float32
    buf = xn.copy()
    rows += [
        {"name": "numpy ufuncs, allocating (floor)",
         "us_per_op": us_per_op(lambda: chain_numpy(xn, cn), iters, reps)},
        {"name": "numpy ufuncs, out= in place",
         "us_per_op": us_per_op(lambda: chain_numpy_inplace(buf, cn), iters, reps)},
    ]
    return {"bench": "ops", "shape": list(SHAPE), "chain_len": CHAIN_LEN, "ops": list(OPS),
            "iters_per_rep": iters, "torch": torch.__version__, "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(), "rows": rows}


def run_scalar(reps: int = 5, iters: int = 500) -> dict:
    """The same chain on scalars: 0-d torch tensors, NumPy float32 scalars, Python floats."""
    x0 = torch.tensor(0.5, dtype=torch.float32)
    c = torch.tensor(C, dtype=torch.float32)
    rows = _torch_rows(x0, c, iters, reps, "0-d tensor")
    xs, cs = np.float32(0.5), np.float32(C)
    assert isinstance(chain_numpy(xs, cs), np.float32)
    rows += [
        {"name": "numpy float32 scalars (ufuncs)",
         "us_per_op": us_per_op(lambda: chain_numpy(xs, cs), iters, reps)},
        {"name": "python floats + math.tanh (floor)",
         "us_per_op": us_per_op(lambda: chain_python(0.5, C), iters, reps)},
    ]
    return {"bench": "scalar", "shape": [], "chain_len": CHAIN_LEN, "ops": list(OPS),
            "iters_per_rep": iters, "torch": torch.__version__, "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(), "rows": rows}


if __name__ == "__main__":
    for res in (run(5), run_scalar(5)):
        for row in res["rows"]:
            s = row["us_per_op"]
            print(f"{row['name']:45s} {s['median']:7.3f} us/op ({s['min']:.3f}-{s['max']:.3f})")
