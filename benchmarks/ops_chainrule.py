"""Per-op overhead of chainrule: the same 100-op chain as ``ops_torch`` (x*1.0001, x+0.001, tanh, x*c).

Rows: forward under ``no_grad`` (no graph recorded), forward recording the graph, and forward +
backward (``y.backward(ones)``), in microseconds per op; and the scalar engine (``chainrule.scalar``)
on the same chain for ``run_scalar``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

try:
    import chainrule as cr
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import chainrule as cr

from common import CHAIN_LEN, OPS, SHAPE, A, B, C, us_per_op


def chain(x, c):
    for _ in range(CHAIN_LEN // 4):
        x = x * A
        x = x + B
        x = x.tanh()
        x = x * c
    return x


def _rows(x0, c, iters, reps, kind):
    def fwd_nograd():
        with cr.no_grad():
            chain(x0, c)

    leaf = x0.clone().requires_grad_(True)
    seed_grad = cr.ones_like(x0)

    def fwd_bwd():
        leaf.grad = None
        chain(leaf, c).backward(seed_grad)

    def fwd_graph():
        chain(leaf, c)

    return [
        {"name": f"chainrule {kind}: forward, no_grad", "us_per_op": us_per_op(fwd_nograd, iters, reps)},
        {"name": f"chainrule {kind}: forward, recording graph", "us_per_op": us_per_op(fwd_graph, iters, reps)},
        {"name": f"chainrule {kind}: forward + backward", "us_per_op": us_per_op(fwd_bwd, iters, reps)},
    ]


def run(reps: int = 5, iters: int = 200) -> dict:
    x0 = cr.full(SHAPE, 0.5)
    c = cr.full(SHAPE, C)
    return {"bench": "ops", "shape": list(SHAPE), "chain_len": CHAIN_LEN, "ops": list(OPS),
            "numpy": np.__version__, "rows": _rows(x0, c, iters, reps, "(8,) tensor")}


def run_scalar(reps: int = 5, iters: int = 500) -> dict:
    from chainrule.scalar import Value

    rows = _rows(cr.tensor(0.5), cr.tensor(C), iters, reps, "0-d tensor")

    def value_chain():
        x, c = Value(0.5), Value(C)
        for _ in range(CHAIN_LEN // 4):
            x = (x * A + B).tanh() * c
        x.backward()

    rows.append({"name": "chainrule.scalar Value: forward + backward",
                 "us_per_op": us_per_op(value_chain, iters, reps)})
    return {"bench": "scalar", "chain_len": CHAIN_LEN, "rows": rows}


if __name__ == "__main__":
    for row in run(reps=3)["rows"]:
        print(f"{row['name']:50s} {row['us_per_op']['median']:.2f} us/op")
