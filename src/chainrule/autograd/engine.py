"""The backward engine: reverse-mode automatic differentiation over the graph of ``Function`` nodes.

Backpropagation is the chain rule applied backwards: visit the nodes from the output to the inputs
in reverse topological order, and at each node turn the *upstream* gradient dL/dy into the
*downstream* gradients dL/dx_i = (dy/dx_i)^T dL/dy with the node's ``backward``.  A value used by
several consumers (fan-out) receives the sum of their gradients.

The topological order is found with an explicit stack, so a chain of 100,000 ops needs no recursion.
"""

from __future__ import annotations

import operator

import numpy as np

from . import function as _fn
from .function import _version_sum

_add = np.add
_ndarray = np.ndarray


class GraphFreedError(RuntimeError):
    pass


def _topo_order(roots):
    """Nodes reachable from ``roots``, each after every node that consumes it (outputs first).

    A node is created after the nodes of its inputs, so ordering by creation number (``_seq``),
    newest first, is a topological order: one flat traversal and a sort, no recursion.
    """
    seen = set(roots)
    stack = list(seen)
    pop, push, add = stack.pop, stack.append, seen.add
    while stack:
        for t in pop().inputs:
            p = t.grad_fn
            if p is not None and p not in seen:
                add(p)
                push(p)
    return sorted(seen, key=_seq, reverse=True)


_seq = operator.attrgetter("_seq")


def _unrebind(roots):
    """Give nodes recorded before an in-place op on one of their inputs the value they used.

    A node holds its input Tensors, and an in-place op (``y.add_(1)``) re-attaches ``y`` to a new node
    created later (``ops.inplace``), which stores the pre-update tensor as ``_rebased_from``.  A node
    older than its input's ``grad_fn`` (or that node itself, for ``h.add_(h)``) therefore saw an earlier
    version: follow ``_rebased_from`` back to it, so gradients reach the graph that value came from, as in
    torch.  Returns the nodes reached.
    """
    seen = set(roots)
    stack = list(seen)
    while stack:
        node = stack.pop()
        s = node._seq
        ins = node.inputs
        for i, t in enumerate(node.inputs):
            p = t.grad_fn
            if p is not None and p._seq >= s:   # >=: h.add_(h) makes the node its own input's grad_fn
                while p is not None and p._seq >= s and "_rebased_from" in p.__dict__:
                    t = p.__dict__["_rebased_from"]
                    p = t.grad_fn
                ins = ins[:i] + (t,) + ins[i + 1:]
            if p is not None and p not in seen:
                seen.add(p)
                stack.append(p)
        if ins is not node.inputs:
            node.inputs = ins
    return seen


def _check_versions(node) -> None:
    if node._dirty:
        raise RuntimeError(
            f"{node.name}: its output, needed for the gradient, was modified by an in-place operation "
            "after it was computed; use the out-of-place form (e.g. x = x + 1 instead of x.add_(1))")
    vsum = node._vsum
    if vsum >= 0 and vsum != _version_sum(node.inputs):
        changed = [t for t in node.inputs if t._version]
        raise RuntimeError(
            f"{node.name}: one of the variables needed for gradient computation has been modified by an "
            f"in-place operation (a tensor of shape {tuple(changed[0].shape) if changed else '?'} is at "
            f"version {changed[0]._version if changed else '?'}); use the out-of-place form, or clone() "
            "the value before modifying it")


def run_backward(roots, root_grads, retain_graph, create_graph, capture=None, accumulate=True):
    """Propagate ``root_grads`` (Tensors) from ``roots`` (Tensors) to the leaves.

    First-order backward (``create_graph=False``) passes raw ndarrays between nodes and uses an op's
    ``backward_np`` when it has one; otherwise each node's ``backward`` runs on Tensors, recorded
    when ``create_graph`` so the result can be differentiated again.

    ``capture``: {id(tensor): tensor} whose gradients are returned in a dict (``autograd.grad``);
    with ``accumulate=False`` no leaf's ``.grad`` is touched.
    """
    Tensor = _fn._Tensor
    make = Tensor._make
    grads = {}  # node -> gradient of that node's output so far
    owned = set()  # nodes whose gradient buffer the engine allocated (safe to add into in place)
    captured = {}
    cap_nodes = {}
    if capture:
        for t in capture.values():
            if t.grad_fn is not None:
                cap_nodes[t.grad_fn] = t
    leaf_roots = []
    for t, g in zip(roots, root_grads):
        if not create_graph:
            g = g.data
        node = t.grad_fn
        if node is None:
            leaf_roots.append((t, g))
        elif node in grads:
            grads[node] = grads[node] + g
            owned.add(node)
        else:
            grads[node] = g
    root_nodes = [t.grad_fn for t in roots if t.grad_fn is not None]
    order = _topo_order(root_nodes)
    if order and order[-1]._seq < _fn._rebind_seq:  # rare: part of the graph predates an in-place op
        order = sorted(_unrebind(root_nodes), key=_seq, reverse=True)
    anomaly = _fn._anomaly
    fast_leaf = not create_graph and not capture and accumulate
    prev_mode = _fn._grad_enabled
    _fn._grad_enabled = create_graph
    try:
        for t, g in leaf_roots:
            _deliver_leaf(t, g, None, create_graph, capture, captured, accumulate)
        for node in order:
            g = grads.pop(node, None)
            if g is None:
                continue
            if node._freed:
                raise GraphFreedError(
                    f"trying to backward through the graph a second time ({node.name}): its saved "
                    "values were freed by the first backward; pass retain_graph=True to the first "
                    "backward (or autograd.grad) if you need to backward twice")
            if cap_nodes and node in cap_nodes:
                captured[id(cap_nodes[node])] = g if create_graph else make(g)
            if node._retained is not None:
                out = node._retained()
                if out is not None:
                    out.grad = g if create_graph else make(g.copy())
            vsum = node._vsum
            if vsum >= 0:
                ins = node.inputs
                if (ins[0]._version if len(ins) == 1 else _version_sum(ins)) != vsum:
                    _check_versions(node)
            if node._dirty:
                _check_versions(node)
            if create_graph:
                gins = node.backward(g)
            elif node.backward_np is not None:
                gins = node.backward_np(g)
            else:
                gins = node.backward_via_tensors(g)
            if gins.__class__ is not tuple:
                gins = (gins,)
            if anomaly:
                _check_finite(node, gins)
            for t, gi in zip(node.inputs, gins):
                if gi is None or not t.requires_grad:
                    continue
                if not create_graph and gi.__class__ is not _ndarray:
                    gi = np.asarray(gi)  # NumPy turns 0-d results into scalars
                p = t.grad_fn
                if p is None:
                    if (fast_leaf and t.grad is None and gi is not g and gi.base is None and gi.flags.writeable
                            and gi.dtype == t.data.dtype):
                        t.grad = make(gi)           # _deliver_leaf's common case, inlined (hot path)
                    else:
                        _deliver_leaf(t, gi, g, create_graph, capture, captured, accumulate)
                elif p not in grads:
                    grads[p] = gi
                elif create_graph:
                    grads[p] = grads[p] + gi
                elif p not in owned:
                    s = grads[p] + gi  # a fresh buffer: later contributions are added into it in place
                    grads[p] = s if s.__class__ is _ndarray else np.asarray(s)
                    owned.add(p)
                else:
                    _add(grads[p], gi, out=grads[p])
            if not retain_graph:
                if node._keep:
                    node.release()
                else:  # inlined release(): this loop is the hot path of every backward
                    d = node.__dict__
                    d.clear()
                    d["_freed"] = True
    finally:
        _fn._grad_enabled = prev_mode
    return captured


def _deliver_leaf(t, gi, upstream, create_graph, capture, captured, accumulate):
    """Add gradient ``gi`` (a Tensor under create_graph, else an ndarray) into leaf ``t``."""
    make = _fn._Tensor._make
    if capture is not None and id(t) in capture:
        key = id(t)
        gt = gi if create_graph else make(gi)
        captured[key] = gt if key not in captured else captured[key] + gt
    if not accumulate:
        return
    if create_graph:
        t.grad = gi if t.grad is None else t.grad + gi
    elif t.grad is None:
        if gi is upstream or gi.base is not None or not gi.flags.writeable or gi.dtype != t.data.dtype:
            # The engine may hand one buffer to several places (x + x, views): own a copy.
            gi = gi.astype(t.data.dtype, copy=True)
        t.grad = make(gi)
    elif t.grad.grad_fn is not None:
        t.grad = t.grad + make(gi)
    else:
        _add(t.grad.data, gi, out=t.grad.data)


def _check_finite(node, gins) -> None:
    for i, gi in enumerate(gins):
        if gi is None:
            continue
        a = gi.data if hasattr(gi, "grad_fn") else gi
        if not np.all(np.isfinite(a)):
            bad = "NaN" if np.isnan(a).any() else "Inf"
            raise RuntimeError(
                f"anomaly detected: {node.name}.backward returned {bad} values in the gradient of "
                f"its input {i} (shape {tuple(a.shape)})")
