"""Gradient checks: compare the engine's gradients with central finite differences (float64).

For f: R^n -> R^m and a random cotangent v, the analytic vector-Jacobian product J^T v from
backward must match the numerical one, column by column:
    (J^T v)_i  ~=  v . (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)
The check passes when |analytic - numeric| <= atol + rtol |numeric| for every element.
"""

from __future__ import annotations

import numpy as np

from . import function as _fn
from .api import grad as _grad
from .tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by gradcheck when the analytic and numerical gradients differ (as torch's GradcheckError)."""


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _flat_outputs(out):
    outs = [o for o in _as_tuple(out) if isinstance(o, Tensor)]
    return outs


def _numeric_vjp(fn, inputs, i, vs, eps):
    x = inputs[i]
    flat = x.data.reshape(-1)
    num = np.zeros(flat.shape, dtype=np.float64)
    with _fn.no_grad():
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            fp = [o.data.copy() for o in _flat_outputs(fn(*inputs))]  # outputs may be views of x
            flat[k] = orig - eps
            fm = [o.data.copy() for o in _flat_outputs(fn(*inputs))]
            flat[k] = orig
            num[k] = sum(float(np.sum((a - b) * v)) for a, b, v in zip(fp, fm, vs)) / (2 * eps)
    return num.reshape(x.shape)


def _check_torch_options(who, unsupported):
    """torch's option names are accepted; ones asking for a check chainrule cannot do raise clearly."""
    for name, value in unsupported.items():
        if value:
            raise NotImplementedError(f"{who}: {name}=True is not supported (chainrule has reverse mode only "
                                      "and no vmap); leave it False")


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0, *, nondet_tol=0.0,
              check_undefined_grad=True, check_grad_dtypes=False, check_batched_grad=False,
              check_batched_forward_grad=False, check_forward_ad=False, check_backward_ad=True, fast_mode=False,
              masked=None):
    """True if the engine's gradients of ``fn`` at ``inputs`` match finite differences.

    ``inputs``: a Tensor or tuple; float64 tensors with ``requires_grad=True`` are checked (others
    are constants).  On a mismatch raises ``GradcheckError`` naming the input, the worst element and
    both values (or returns False with ``raise_exception=False``).

    >>> import chainrule as cr
    >>> x = cr.tensor([0.5, -1.0], dtype=cr.float64, requires_grad=True)
    >>> cr.autograd.gradcheck(lambda t: (t.sin() * t).sum(), (x,))
    True

    torch's keyword options are accepted: ``nondet_tol``, ``check_undefined_grad``, ``fast_mode`` and
    ``masked`` are ignored (chainrule's backward is deterministic; the check is always the full
    "slow mode" one), ``check_grad_dtypes`` also checks that each gradient has its input's dtype,
    ``check_backward_ad=False`` skips the check; the batched and forward-mode checks raise
    ``NotImplementedError`` when asked for.
    """
    _check_torch_options("gradcheck", {"check_batched_grad": check_batched_grad, "check_forward_ad": check_forward_ad,
                                       "check_batched_forward_grad": check_batched_forward_grad})
    inputs = _as_tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise ValueError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64 "
                             "(use dtype=chainrule.float64)")
    if not check_backward_ad:
        return True
    rng = np.random.default_rng(seed)
    with _fn.enable_grad():
        outs = _flat_outputs(fn(*inputs))
    diff_outs = [o for o in outs if o.requires_grad]
    vs = [rng.standard_normal(o.shape) if o.requires_grad else np.zeros(o.shape) for o in outs]
    if diff_outs:
        gvs = [Tensor._make(v.astype(o.dtype)) for o, v in zip(outs, vs) if o.requires_grad]
        analytic = _grad(diff_outs, [inputs[i] for i in checked], grad_outputs=gvs, allow_unused=True,
                         retain_graph=True)
    else:
        analytic = [None] * len(checked)
    for i, a in zip(checked, analytic):
        if check_grad_dtypes and a is not None and a.dtype != inputs[i].dtype:
            return _fail(raise_exception, f"gradcheck: gradient for input {i} has dtype {a.dtype}, "
                                          f"expected {inputs[i].dtype}")
        a = np.zeros(inputs[i].shape) if a is None else a.data
        if a.shape != inputs[i].shape:
            return _fail(raise_exception, f"gradcheck: gradient for input {i} has shape {a.shape}, "
                                          f"expected {tuple(inputs[i].shape)}")
        n = _numeric_vjp(fn, inputs, i, vs, eps)
        err = np.abs(a - n) - (atol + rtol * np.abs(n))
        if err.size and (np.max(err) > 0 or not np.all(np.isfinite(a))):
            k = np.unravel_index(int(np.argmax(np.where(np.isfinite(err), err, np.inf))), err.shape)
            return _fail(raise_exception,
                         f"gradcheck: Jacobian mismatch for input {i} at index {tuple(int(j) for j in k)}: "
                         f"analytic {a[k]:.8g}, numerical {n[k]:.8g} (atol={atol}, rtol={rtol})")
    return True


def _fail(raise_exception, msg):
    if raise_exception:
        raise GradcheckError(msg)
    return False


def gradgradcheck(fn, inputs, grad_outputs=None, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=1, *,
                  gen_non_contig_grad_outputs=False, nondet_tol=0.0, check_undefined_grad=True,
                  check_grad_dtypes=False, check_batched_grad=False, check_fwd_over_rev=False,
                  check_rev_over_rev=True, fast_mode=False, masked=False):
    """Check second derivatives: gradcheck applied to x -> (dfn/dx)^T v, the engine's own backward
    recorded with ``create_graph=True``.

    ``grad_outputs`` (the v's, one per output of ``fn``; the third positional argument, as torch)
    defaults to random ones.  torch's keyword options are accepted as in ``gradcheck``;
    ``check_rev_over_rev=False`` skips the check and ``check_fwd_over_rev=True`` raises.
    """
    _check_torch_options("gradgradcheck", {"check_batched_grad": check_batched_grad,
                                           "check_fwd_over_rev": check_fwd_over_rev})
    if not check_rev_over_rev:
        return True
    inputs = _as_tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    rng = np.random.default_rng(seed)
    with _fn.enable_grad():
        outs0 = [o for o in _flat_outputs(fn(*inputs)) if o.requires_grad]
    if grad_outputs is None:
        vs = [Tensor._make(rng.standard_normal(o.shape).astype(o.dtype)) for o in outs0]
    else:
        given = _as_tuple(grad_outputs)
        if len(given) != len(outs0):
            raise ValueError(f"gradgradcheck: got {len(given)} grad_outputs for {len(outs0)} differentiable outputs")
        vs = [v if isinstance(v, Tensor) else Tensor._make(np.asarray(v, dtype=o.dtype)) for v, o in zip(given, outs0)]

    def first_grads(*xs):
        with _fn.enable_grad():  # gradcheck's finite differences run under no_grad
            outs = [o for o in _flat_outputs(fn(*xs)) if o.requires_grad]
            gs = _grad(outs, [xs[i] for i in checked], grad_outputs=vs, create_graph=True, allow_unused=True,
                       materialize_grads=True)
        return tuple(gs)

    return gradcheck(first_grads, inputs, eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception,
                     seed=seed, check_grad_dtypes=check_grad_dtypes)
