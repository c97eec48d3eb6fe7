"""Function transforms: gradients, vector-Jacobian and Jacobian-vector products, Jacobians, Hessians.

These take a *function* ``f`` (chainrule Tensors in, chainrule Tensors out) and return derivatives
of it, in the style of ``torch.func`` / JAX and ``torch.autograd.functional``::

    >>> import numpy as np, chainrule as cr
    >>> from chainrule.func import grad, hessian
    >>> f = lambda x: (x.sin() * x * x).sum()        # f(x) = sum_i sin(x_i) x_i^2
    >>> grad(f)(np.array([0.0, 1.0]))                 # 2 x sin x + x^2 cos x
    tensor([0.0000, 2.2232], dtype=chainrule.float64)

The maths, for f: R^n -> R^m with Jacobian J = df/dx (an m x n matrix):

* **vjp** (reverse mode, one backward pass): v in R^m  ->  J^T v in R^n.
  ``grad`` is the vjp of a scalar function with v = 1: the gradient is J^T (a column).
* **jvp** (forward mode): t in R^n  ->  J t in R^m, the directional derivative of f along t.
  chainrule has only reverse mode, so jvp uses the *double-vjp trick*: u -> g(u) = J^T u is linear
  in a dummy cotangent u, so its own vjp is (dg/du)^T t = (J^T)^T t = J t.  Two backward passes,
  the first one recorded (``create_graph``) so that the second can differentiate it with respect to u.
* **jacobian**: the full m x n matrix, one row per vjp with a unit cotangent e_i (row i = e_i^T J).
  The result has shape ``output.shape + input.shape``, as ``torch.autograd.functional.jacobian``.
* **hessian**: the Jacobian of the gradient, H_ij = d^2 f / dx_i dx_j (symmetric for smooth f).
  The gradient is computed with ``create_graph=True`` so that it can be differentiated again.
* **hvp**: H v without forming H: the vjp of the gradient, v^T H = (H v)^T (H is symmetric), i.e.
  the gradient of <grad f(x), v>: two backward passes, cost O(one gradient), not O(n gradients).

Inputs may be Tensors or arrays (or nested lists): they are copied into fresh leaf tensors that
require grad; a float64 array stays float64 (use float64 for numerical checks).

Nesting: when an argument is a Tensor that already requires grad (for example the input of an
enclosing ``grad``), ``grad``, ``value_and_grad`` and ``vjp`` differentiate through it and return
results that keep their graph (``create_graph``), so ``grad(grad(f))(x)`` is the second derivative.
Pass ``x.detach()`` to get plain values instead.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from . import _dtypes
from .autograd import api as _api
from .autograd import ops as _ops
from .autograd.function import enable_grad, is_grad_enabled
from .autograd.tensor import Tensor

__all__ = [
    "grad", "value_and_grad", "grad_and_value", "vjp", "jvp", "jacobian", "hessian", "hvp", "classify_critical_point",
    "CriticalPoint",
]


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
def _as_tuple(x) -> tuple:
    return tuple(x) if _is_multi(x) else (x,)


def _is_multi(x) -> bool:
    """A tuple, or a list of Tensors / arrays, means several inputs; a list of numbers is data."""
    if isinstance(x, tuple):
        return True
    return isinstance(x, list) and len(x) > 0 and all(isinstance(v, (Tensor, np.ndarray)) for v in x)


def _needs_graph(args) -> bool:
    """True when some argument is already part of a graph we must differentiate through (nesting)."""
    return is_grad_enabled() and any(isinstance(a, Tensor) and a.requires_grad for a in args)


def _make_input(x, keep_graph: bool = False) -> Tensor:
    """A leaf Tensor that requires grad holding a copy of ``x`` (Tensor, ndarray, list or number).

    With ``keep_graph`` a Tensor that already requires grad is used as it is, so derivatives flow
    on into the caller's graph.  Integer data becomes the default float dtype; float dtypes are kept.
    """
    if isinstance(x, Tensor):
        if keep_graph and x.requires_grad:
            return x
        data = x.data
    else:
        data = _dtypes.infer_array(x)
    data = np.array(data, copy=True)
    if data.dtype.kind not in "fc":
        data = data.astype(_dtypes.get_default_dtype())
    return Tensor._make(data, None, True)


def _as_tensor_like(v, like: Tensor, what: str) -> Tensor:
    """``v`` (Tensor or array) as a Tensor with the shape and dtype of ``like``."""
    t = v if isinstance(v, Tensor) else Tensor._make(np.asarray(v, dtype=like.data.dtype))
    if tuple(t.shape) != tuple(like.shape):
        raise ValueError(f"{what} has shape {tuple(t.shape)} but must match shape {tuple(like.shape)}")
    return t


def _check_tensor_outputs(outs, who: str) -> None:
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"{who}: f must return a chainrule Tensor (or a tuple of them), "
                            f"got {type(o).__name__}")


def _check_scalar(out, who: str) -> None:
    _check_tensor_outputs((out,), who)
    if out.data.size != 1:
        raise ValueError(f"{who}: f must return a scalar (one-element) Tensor, got shape {tuple(out.shape)}; "
                         "use vjp or jacobian for vector-valued functions")


def _split_aux(result, has_aux: bool, who: str):
    if not has_aux:
        return result, None
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise ValueError(f"{who}(has_aux=True): f must return a pair (output, aux)")
    return result[0], result[1]


def _detach_tree(x):
    """Detach every Tensor inside nested tuples / lists / dicts (auxiliary outputs)."""
    if isinstance(x, Tensor):
        return x.detach()
    if isinstance(x, tuple):
        return tuple(_detach_tree(v) for v in x)
    if isinstance(x, list):
        return [_detach_tree(v) for v in x]
    if isinstance(x, dict):
        return {k: _detach_tree(v) for k, v in x.items()}
    return x


def _zeros_like(x: Tensor) -> Tensor:
    return Tensor._make(np.zeros_like(x.data))


def _grads(outputs, inputs, cotangents, create_graph: bool, retain_graph: bool | None = None) -> list:
    """sum_k (d outputs_k / d inputs)^T cotangents_k for every input: one backward pass.

    A wrapper of ``autograd.grad`` for the transforms: outputs that do not depend on any input (no
    graph) contribute nothing, and an input no output depends on gets a zero gradient (as torch.func).
    ``cotangents[k]`` may be None for a one-element output (meaning 1).
    """
    pairs = [(o, c) for o, c in zip(outputs, cotangents, strict=True) if o.requires_grad]
    if not pairs:
        return [_zeros_like(x) for x in inputs]
    got = _api.grad([o for o, _ in pairs], list(inputs), grad_outputs=[c for _, c in pairs],
                    retain_graph=retain_graph, create_graph=create_graph, allow_unused=True,
                    materialize_grads=True)
    return list(got)


def _is_tree(x) -> bool:
    """A dict, or a tuple / list holding Tensors, arrays or dicts (at any depth): one pytree argument."""
    if isinstance(x, dict):
        return True
    return isinstance(x, (tuple, list)) and any(isinstance(v, (Tensor, np.ndarray)) or _is_tree(v) for v in x)


def _tree_leaves(x) -> list:
    if isinstance(x, dict):
        return [leaf for v in x.values() for leaf in _tree_leaves(v)]
    if _is_tree(x):
        return [leaf for v in x for leaf in _tree_leaves(v)]
    return [x]


def _tree_map(fn, x):
    """``x`` with every leaf replaced by ``fn(leaf)`` (leaves in the order of ``_tree_leaves``)."""
    if isinstance(x, dict):
        return {k: _tree_map(fn, v) for k, v in x.items()}
    if _is_tree(x):
        return type(x)(_tree_map(fn, v) for v in x)
    return fn(x)


def _argnums_tuple(argnums, nargs: int, who: str) -> tuple:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    if not nums:
        raise ValueError(f"{who}: argnums must name at least one argument")
    for i in nums:
        if not isinstance(i, int) or not -nargs <= i < nargs:
            raise ValueError(f"{who}: argnums {argnums!r} out of range for {nargs} positional argument(s)")
    nums = tuple(i % nargs for i in nums)
    if len(set(nums)) != len(nums):
        raise ValueError(f"{who}: argnums elements must be unique, got {argnums!r}")
    return nums


# ---------------------------------------------------------------------------------------------------
# grad, value_and_grad, vjp, jvp
# ---------------------------------------------------------------------------------------------------
def value_and_grad(f, argnums=0, has_aux: bool = False):
    """Return a function computing ``(f(*args), df/d args[argnums])`` in one forward + one backward.

    ``f`` must return a one-element Tensor.  The gradient is J^T 1, the vector of partial
    derivatives df/dx_i, with the shape of the argument.  ``argnums`` is an int (one gradient) or a
    tuple of ints (a tuple of gradients).  An argument may be a pytree (a tuple, list or dict of
    Tensors): its gradient has the same structure, as torch.func.  With ``has_aux=True`` f returns
    ``(output, aux)`` and the result is ``((output, aux), grad)`` (as JAX; aux is returned detached).

    >>> import chainrule as cr
    >>> from chainrule.func import value_and_grad
    >>> v, g = value_and_grad(lambda x: (x * x).sum())(cr.tensor([1.0, 2.0]))   # d/dx x^2 = 2x
    >>> v.item(), g.tolist()
    (5.0, [2.0, 4.0])
    """
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        nums = _argnums_tuple(argnums, len(args), "value_and_grad")
        nested = _needs_graph([leaf for i in nums for leaf in _tree_leaves(args[i])])
        args = list(args)
        for i in nums:
            args[i] = _tree_map(lambda a: _make_input(a, keep_graph=nested), args[i])
        xs = [leaf for i in nums for leaf in _tree_leaves(args[i])]
        with enable_grad():
            out, aux = _split_aux(f(*args, **kwargs), has_aux, "value_and_grad")
        _check_scalar(out, "grad")
        it = iter(_grads([out], xs, [None], create_graph=nested))
        gs = [_tree_map(lambda _: next(it), args[i]) for i in nums]
        g = gs[0] if isinstance(argnums, int) else tuple(gs)
        value = out if nested else out.detach()
        if has_aux:
            return (value, _detach_tree(aux)), g
        return value, g

    return wrapper


def grad(f, argnums=0, has_aux: bool = False):
    """Return the gradient function of a scalar function: ``grad(f)(x) = df/dx`` (like torch.func.grad).

    df/dx = J^T 1 for the 1 x n Jacobian J of f: one backward pass.  With ``has_aux=True`` f returns
    ``(output, aux)`` and the gradient function returns ``(grad, aux)``.  Transforms nest:
    ``grad(grad(f))(x)`` is f''(x) for scalar x.

    >>> import chainrule as cr
    >>> from chainrule.func import grad
    >>> d3 = grad(grad(grad(lambda x: x ** 4)))      # 24 x
    >>> d3(cr.tensor(2.0)).item()
    48.0
    """
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        if has_aux:
            return g, value[1]
        return g

    return wrapper


def grad_and_value(f, argnums=0, has_aux: bool = False):
    """torch.func's name and order: ``grad_and_value(f)(x) = (df/dx, f(x))``; with ``has_aux=True``
    the result is ``(grad, (output, aux))``.  ``value_and_grad`` is the same with the pair swapped."""
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        value, g = vg(*args, **kwargs)
        return g, value

    return wrapper


def vjp(f, *primals, has_aux: bool = False):
    """Vector-Jacobian product: ``output, vjp_fn = vjp(f, *primals)``; ``vjp_fn(v) = J^T v``.

    Evaluates f once and keeps its graph, so ``vjp_fn`` can be called many times (each call is one
    backward pass).  ``v`` has the structure and shapes of f's output (a Tensor, or one per output
    for a tuple output); ``vjp_fn`` returns a tuple with one gradient per primal, like
    ``torch.func.vjp``.  With ``has_aux=True`` f returns ``(output, aux)`` and vjp returns
    ``(output, vjp_fn, aux)``.

    The maths: for y = f(x) with Jacobian J = dy/dx, (J^T v)_j = sum_i v_i dy_i/dx_j, which is the
    gradient of the scalar <v, f(x)>.  A cotangent that requires grad gives a differentiable result
    (this is how ``jvp`` is built).
    """
    nested = _needs_graph(primals)
    xs = [_make_input(p, keep_graph=nested) for p in primals]
    with enable_grad():
        out, aux = _split_aux(f(*xs), has_aux, "vjp")
    outs = _as_tuple(out)
    _check_tensor_outputs(outs, "vjp")
    single = not isinstance(out, (tuple, list))

    def vjp_fn(*cotangents):
        if single and len(cotangents) == 1:
            vs = cotangents
        elif len(cotangents) == 1 and isinstance(cotangents[0], (tuple, list)):
            vs = tuple(cotangents[0])
        else:
            vs = cotangents
        if len(vs) != len(outs):
            raise ValueError(f"vjp_fn: expected {len(outs)} cotangent(s), one per output of f, got {len(vs)}")
        vs = [_as_tensor_like(v, o, "vjp_fn: the cotangent") for v, o in zip(vs, outs, strict=True)]
        create = nested or (is_grad_enabled() and any(v.requires_grad for v in vs))
        return tuple(_grads(outs, xs, vs, create_graph=create, retain_graph=True))

    shown = out if nested else _detach_tree(out)
    if has_aux:
        return shown, vjp_fn, _detach_tree(aux)
    return shown, vjp_fn


def jvp(f, primals, tangents, *, has_aux: bool = False, create_graph: bool = False):
    """Jacobian-vector product: ``(f(*primals), J @ tangents)`` (as ``torch.func.jvp``).

    J t is the directional derivative of f at x along t: d/de f(x + e t) at e = 0.

    chainrule has reverse mode only, so this uses the **double-vjp trick**: for a dummy cotangent u
    (any value, say 0), g(u) = J^T u is computed with ``create_graph=True`` so that g is a recorded,
    *linear* function of u.  Its vector-Jacobian product with t is (dg/du)^T t = (J^T)^T t = J t.
    Cost: two backward passes (the first one recorded), instead of one forward-mode pass.

    ``primals`` and ``tangents`` are tuples (a single Tensor is accepted too) with matching shapes.
    The result has the structure of f's output.  With ``has_aux=True`` f returns ``(output, aux)``
    and jvp returns ``(output, jvp_out, aux)``, as torch.func.jvp.
    """
    primals_t, tangents_t = _as_tuple(primals), _as_tuple(tangents)
    if len(primals_t) != len(tangents_t):
        raise ValueError(f"jvp: got {len(primals_t)} primals but {len(tangents_t)} tangents")
    xs = [_make_input(p, keep_graph=create_graph) for p in primals_t]
    ts = [_as_tensor_like(t, x, "jvp: a tangent") for t, x in zip(tangents_t, xs, strict=True)]
    with enable_grad():
        out, aux = _split_aux(f(*xs), has_aux, "jvp")
        outs: Sequence[Tensor] = _as_tuple(out)
        _check_tensor_outputs(outs, "jvp")
        # u: dummy cotangents; g(u) = J^T u is linear in u, so u's value does not matter.
        us = [Tensor._make(np.zeros_like(o.data), None, True) for o in outs]
        gs = _grads(outs, xs, us, create_graph=True, retain_graph=True)
        # vjp of u -> J^T u with the tangents: (J^T)^T t = J t, one Tensor per output.
        jv = _grads(gs, us, ts, create_graph=create_graph)
    if not create_graph:
        jv = [t.detach() for t in jv]
        outs = [o.detach() for o in outs]
    result = (tuple(outs), tuple(jv)) if isinstance(out, (tuple, list)) else (outs[0], jv[0])
    if has_aux:
        return (*result, aux if create_graph else _detach_tree(aux))
    return result


# ---------------------------------------------------------------------------------------------------
# jacobian, hessian, hvp
# ---------------------------------------------------------------------------------------------------
def _jacobian_of(y: Tensor, xs, create_graph: bool) -> list:
    """[dy/dx for x in xs], each of shape y.shape + x.shape, built row by row from unit vjps.

    Row i of the Jacobian is e_i^T J = (J^T e_i)^T: one backward pass with the unit cotangent e_i.
    """
    n = y.data.size
    rows: list[list[Tensor]] = [[] for _ in xs]
    for i in range(n):
        e = np.zeros(n, dtype=y.data.dtype)
        e[i] = 1.0
        e = Tensor._make(e.reshape(y.shape))
        row = _grads([y], xs, [e], create_graph=create_graph, retain_graph=True)  # e_i^T J, per input
        for r, g in zip(rows, row, strict=True):
            r.append(g)
    jac = []
    for r, x in zip(rows, xs, strict=True):
        shape = tuple(y.shape) + tuple(x.shape)
        if n == 0:
            jac.append(Tensor._make(np.zeros(shape, dtype=x.data.dtype)))
        elif create_graph:
            jac.append(_ops.reshape(_ops.stack(r), shape))
        else:
            jac.append(Tensor._make(np.stack([g.data for g in r]).reshape(shape)))
    return jac


def jacobian(f, inputs, create_graph: bool = False):
    """The Jacobian of f at ``inputs``, as ``torch.autograd.functional.jacobian``.

    For y = f(x), J[i..., j...] = dy[i...] / dx[j...], a Tensor of shape ``y.shape + x.shape``,
    computed row by row: row i is the vjp J^T e_i with the i-th unit cotangent (y.numel() backward
    passes).  ``inputs`` is one input (the result is a Tensor) or a tuple (the result is a tuple with
    one Jacobian per input); a tuple output of f gives a tuple over outputs of those.

    ``create_graph=True`` records the computation so that the Jacobian can be differentiated again
    (``hessian`` does this); an input that already requires grad is then differentiated through.

    >>> import chainrule as cr
    >>> from chainrule.func import jacobian
    >>> jacobian(lambda x: x * x, cr.tensor([1.0, 2.0]))      # diag(2 x)
    tensor([[2., 0.],
            [0., 4.]])
    """
    xs = [_make_input(x, keep_graph=create_graph) for x in _as_tuple(inputs)]
    with enable_grad():
        out = f(*xs)
    outs = _as_tuple(out)
    _check_tensor_outputs(outs, "jacobian")
    per_out = []
    for y in outs:
        jac = _jacobian_of(y, xs, create_graph)
        per_out.append(tuple(jac) if _is_multi(inputs) else jac[0])
    return tuple(per_out) if isinstance(out, (tuple, list)) else per_out[0]


def _gradient_fn(f, who: str):
    """x -> grad f(x), computed with create_graph=True so it can be differentiated again."""
    def gradient(*xs):
        with enable_grad():
            y = f(*xs)
        _check_scalar(y, who)
        return tuple(_grads([y], xs, [None], create_graph=True))
    return gradient


def hessian(f, inputs, create_graph: bool = False):
    """The Hessian of a scalar function: H_ij = d^2 f / (dx_i dx_j), the Jacobian of the gradient.

    The gradient x -> grad f(x) is built with ``create_graph=True`` (its backward pass is itself a
    recorded graph), then its Jacobian is taken row by row by ``jacobian``.  For one input of shape
    s the result has shape ``s + s``; for a tuple of inputs it is a tuple of tuples, ``H[i][j]`` of
    shape ``xi.shape + xj.shape``, as ``torch.autograd.functional.hessian``.

    Example (a lecture's quadratic): f(x) = x1^2 + x1 (1 - x2) + x2^2 - x2 x3 + x3^2 + x3 has
    H = [[2, -1, 0], [-1, 2, -1], [0, -1, 2]] everywhere, eigenvalues 2 + sqrt 2, 2, 2 - sqrt 2 > 0,
    so its critical point (-1, -1, -1) is a minimum (see ``classify_critical_point``).
    """
    gradient = _gradient_fn(f, "hessian")
    if _is_multi(inputs):
        return jacobian(gradient, tuple(inputs), create_graph=create_graph)
    return jacobian(lambda x: gradient(x)[0], inputs, create_graph=create_graph)


def hvp(f, inputs, v, create_graph: bool = False):
    """Hessian-vector product by double backward: returns ``(f(inputs), H v)`` like
    ``torch.autograd.functional.hvp``.

    H v is the gradient of the scalar <grad f(x), v>: first grad f(x) with ``create_graph=True``,
    then one more backward pass with cotangent v gives (d grad f / dx)^T v = H^T v = H v (H is
    symmetric).  Two backward passes, without ever forming the n x n matrix H: this is how
    second-order optimizers and curvature probes scale to millions of parameters.
    ``inputs`` and ``v`` are a Tensor each, or tuples of matching shapes (then H v is a tuple).
    """
    single = not _is_multi(inputs)
    xs = [_make_input(x, keep_graph=create_graph) for x in _as_tuple(inputs)]
    vs_in = _as_tuple(v)
    if len(vs_in) != len(xs):
        raise ValueError(f"hvp: got {len(xs)} inputs but {len(vs_in)} vectors v")
    vs = [_as_tensor_like(vi, x, "hvp: v") for vi, x in zip(vs_in, xs, strict=True)]
    with enable_grad():
        y = f(*xs)
        _check_scalar(y, "hvp")
        gs = _grads([y], xs, [None], create_graph=True)
        hv = _grads(gs, xs, vs, create_graph=create_graph)
    if not create_graph:
        y = y.detach()
        hv = [h.detach() for h in hv]
    return y, (hv[0] if single else tuple(hv))


# ---------------------------------------------------------------------------------------------------
# second-derivative test
# ---------------------------------------------------------------------------------------------------
class CriticalPoint(str):
    """The kind of a critical point ('minimum', 'maximum', 'saddle' or 'degenerate'), a ``str``
    that also carries the Hessian's ``eigenvalues`` (ascending)."""

    eigenvalues: np.ndarray

    def __new__(cls, kind: str, eigenvalues):
        obj = super().__new__(cls, kind)
        obj.eigenvalues = np.asarray(eigenvalues)
        return obj

    def __repr__(self) -> str:
        return f"CriticalPoint({str(self)!r}, eigenvalues={np.round(self.eigenvalues, 6).tolist()})"


def classify_critical_point(H, tol: float = 1e-8) -> CriticalPoint:
    """Second-derivative test at a point where the gradient is zero, from the Hessian's eigenvalues.

    H is symmetric, so it has real eigenvalues (the curvatures along its orthogonal eigenvectors):

    * all > 0: f curves up in every direction  -> 'minimum'  (H positive definite)
    * all < 0: f curves down in every direction -> 'maximum' (H negative definite)
    * some > 0 and some < 0                     -> 'saddle'  (H indefinite)
    * otherwise some are 0 (|lambda| <= tol * max(1, max |lambda|)) and the rest share a sign: the
      second-order test cannot decide                       -> 'degenerate'

    ``H`` is an (n, n) matrix (Tensor or array), or a ``hessian`` result of shape s + s, which is
    flattened to (n, n).  Returns a ``str`` subclass: compare it with 'minimum' etc., and read the
    eigenvalues (ascending) from ``.eigenvalues``.

    >>> classify_critical_point([[2.0, 0.0], [0.0, -2.0]])      # x^2 - y^2
    CriticalPoint('saddle', eigenvalues=[-2.0, 2.0])
    """
    a = np.asarray(H.data if isinstance(H, Tensor) else H, dtype=np.float64)
    n = int(round(np.sqrt(a.size)))
    if n * n != a.size or (a.ndim % 2 != 0 and a.ndim != 2):
        raise ValueError(f"classify_critical_point: H must be a square matrix, got shape {a.shape}")
    a = a.reshape(n, n)
    if not np.allclose(a, a.T, rtol=1e-6, atol=1e-8):
        raise ValueError("classify_critical_point: H is not symmetric (is it really a Hessian?)")
    eig = np.linalg.eigvalsh((a + a.T) / 2)
    cut = tol * max(1.0, float(np.max(np.abs(eig)))) if n else tol
    pos, neg = bool(np.any(eig > cut)), bool(np.any(eig < -cut))
    if pos and neg:
        kind = "saddle"
    elif np.any(np.abs(eig) <= cut):
        kind = "degenerate"
    else:
        kind = "minimum" if pos else "maximum"
    return CriticalPoint(kind, eig)
