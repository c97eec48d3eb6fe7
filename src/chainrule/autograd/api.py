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


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False,
         materialize_grads=False):
    """Gradients of ``outputs`` with respect to ``inputs``, returned as a tuple (``.grad`` untouched).

    With ``create_graph=True`` the returned gradients are themselves differentiable: differentiate
    them again for second derivatives (Hessians, Hessian-vector products).

    >>> import chainrule as cr
    >>> x = cr.tensor(3.0, requires_grad=True)
    >>> (dy,) = cr.autograd.grad(x ** 3, x, create_graph=True)   # 3 x^2 = 27
    >>> (d2y,) = cr.autograd.grad(dy, x)                          # 6 x = 18
    >>> float(dy), float(d2y)
    (27.0, 18.0)
    """
    outs = _seq(outputs)
    ins = _seq(inputs)
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


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of several outputs at once into the leaves' ``.grad``."""
    outs = _seq(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    engine.run_backward(outs, _root_grads(outs, grad_tensors), retain_graph, create_graph)
