"""``autograd.grad`` and ``autograd.backward``: the functional entry points to the engine."""

from __future__ import annotations

import numpy as np

from . import engine
from .tensor import Tensor, _as_grad


def _seq(x):
    return [x] if isinstance(x, Tensor) else list(x)


def _root_grads(outputs, grad_outputs):
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    grad_outputs = _seq(grad_outputs) if not isinstance(grad_outputs, Tensor) else [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"grad: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    out = []
    for o, g in zip(outputs, grad_outputs):
        if not o.requires_grad:
            raise RuntimeError("grad: one of the outputs does not require grad (no graph to differentiate)")
        if g is None:
            if o.data.size != 1:
                raise RuntimeError(f"grad can be implicitly created only for scalar outputs; an output has "
                                   f"shape {tuple(o.shape)}: pass grad_outputs")
            g = Tensor._make(np.ones_like(o.data))
        out.append(_as_grad(g, o))
    return out


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, only_inputs=True,
         allow_unused=False, is_grads_batched=False, materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a tuple (``.grad`` untouched).

    With ``create_graph=True`` the returned gradients are themselves differentiable: differentiate
    them again for second derivatives (Hessians, Hessian-vector products).

    >>> import chainrule as cr
    >>> x = cr.tensor(3.0, requires_grad=True)
    >>> (dy,) = cr.autograd.grad(x ** 3, x, create_graph=True)   # 3 x^2 = 27
    >>> (d2y,) = cr.autograd.grad(dy, x)                          # 6 x = 18
    >>> float(dy), float(d2y)
    (27.0, 18.0)

    As torch: ``only_inputs`` is accepted and ignored (deprecated there); ``materialize_grads=True``
    returns zeros for unused inputs and implies ``allow_unused`` (torch defaults allow_unused to None
    and rejects an explicit False with it); ``is_grads_batched=True`` treats the first dimension of
    every grad_output as a batch and returns gradients stacked along it (one backward pass per batch
    element, where torch vectorises).
    """
    if is_grads_batched:
        return _grad_batched(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused,
                             materialize_grads)
    outs = _seq(outputs)
    ins = _seq(inputs)
    if not ins:
        raise RuntimeError("grad: the `inputs` argument cannot be empty")
    for t in ins:
        if not isinstance(t, Tensor):
            raise TypeError(f"grad: inputs must be Tensors, got {type(t).__name__}")
        if not t.requires_grad:
            raise RuntimeError("grad: one of the differentiated Tensors does not require grad")
    if retain_graph is None:
        retain_graph = create_graph
    got = engine.run_backward(outs, _root_grads(outs, grad_outputs), retain_graph, create_graph,
                              capture={id(t): t for t in ins}, accumulate=False)
    result = []
    for i, t in enumerate(ins):
        g = got.get(id(t))
        if g is None:
            if materialize_grads:
                g = Tensor._make(np.zeros_like(t.data))
            elif not allow_unused:
                raise RuntimeError(f"grad: input {i} (shape {tuple(t.shape)}) was not used in the graph; "
                                   "pass allow_unused=True to get None for it")
        elif not create_graph and g.grad_fn is None and g.data.base is not None:
            g = Tensor._make(g.data.copy())
        result.append(g)
    return tuple(result)


def _grad_batched(outputs, inputs, grad_outputs, retain_graph, create_graph, allow_unused, materialize_grads):
    """``grad(is_grads_batched=True)``: one backward pass per row of the batched grad_outputs, stacked."""
    from . import ops  # lazy: ops imports this package

    outs = _seq(outputs)
    gos = _seq(grad_outputs) if grad_outputs is not None else [None] * len(outs)
    if any(g is None for g in gos):
        raise RuntimeError("grad(is_grads_batched=True): every grad_output must be a Tensor with a leading batch dim")
    gos = [g if isinstance(g, Tensor) else Tensor._make(np.asarray(g)) for g in gos]
    sizes = {int(g.shape[0]) if g.ndim else -1 for g in gos}
    if len(sizes) != 1 or -1 in sizes:
        raise RuntimeError("grad(is_grads_batched=True): grad_outputs need one common leading batch dimension, "
                           f"got shapes {[tuple(g.shape) for g in gos]}")
    (n,) = sizes
    keep = create_graph if retain_graph is None else retain_graph
    rows = [grad(outs, inputs, [g[b] for g in gos], retain_graph=keep or b < n - 1, create_graph=create_graph,
                 allow_unused=allow_unused, materialize_grads=materialize_grads) for b in range(n)]
    result = []
    for k, t in enumerate(_seq(inputs)):
        col = [r[k] for r in rows]
        if any(c is None for c in col):
            result.append(None)
        elif create_graph and n:
            result.append(ops.stack(col))
        else:
            result.append(Tensor._make(np.stack([c.data for c in col]) if n else np.zeros((0, *t.shape), t.data.dtype)))
    return tuple(result)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of several outputs at once into the leaves' ``.grad``."""
    outs = _seq(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    engine.run_backward(outs, _root_grads(outs, grad_tensors), retain_graph, create_graph)
