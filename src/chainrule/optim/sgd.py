"""Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

import functools

import numpy as np

from .optimizer import Optimizer, _as_float, _check_nonnegative, _torch_switches

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent (``torch.optim.SGD``).

    For each parameter ``p`` with gradient ``g``, at step ``t``::

        g = -g                       if maximize
        g = g + weight_decay * p     if weight_decay != 0     (L2 penalty)
        if momentum != 0:
            b = g                                 at t = 1 (no dampening on the first step)
            b = momentum * b + (1 - dampening) * g           afterwards
            g = g + momentum * b     if nesterov
            g = b                    otherwise
        p = p - lr * g

    The momentum buffer ``b`` is ``state[p]["momentum_buffer"]``.

    Args:
        params: parameters or parameter groups (see ``Optimizer``).
        lr: learning rate.
        momentum: momentum factor (0 = plain SGD).
        dampening: scales the new gradient's contribution to the momentum buffer by
            ``1 - dampening``.
        weight_decay: L2 penalty coefficient.
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: ascend the objective instead of descending it.
        foreach, differentiable, fused: torch's implementation switches, accepted and ignored
            (``differentiable=True`` is refused).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False, *,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize,
                        **_torch_switches(foreach=foreach, differentiable=differentiable, fused=fused))
        super().__init__(params, defaults)
        self._views: dict = {}    # per parameter: its update's plan (see _pieces)
        self._factor_key = None   # the factors of the last step, as 0-d arrays (see _factors)
        self._factor_arrays: tuple = ()

    def _check_options(self, options):
        _check_nonnegative(options, "lr", "momentum", "weight_decay")
        if options["nesterov"] and (_as_float("momentum", options["momentum"]) <= 0
                                    or _as_float("dampening", options["dampening"]) != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={options['momentum']}, dampening={options['dampening']})")

    def _step_group(self, group):
        lr = float(group["lr"])
        momentum = float(group["momentum"])
        dampening = float(group["dampening"])
        weight_decay = float(group["weight_decay"])
        nesterov = bool(group["nesterov"])
        maximize = bool(group["maximize"])

        plain = not maximize and weight_decay == 0
        flush = momentum != 0 and self._flush_due(momentum)
        common = plain and momentum != 0 and dampening == 0 and not nesterov
        state_of, plans = self.state, self._views
        mul, add = np.multiply, np.add
        dtype = factors = None
        for p in group["params"]:
            grad = p.grad
            if grad is None:
                continue
            param, g = p.data, grad.data
            if param.dtype is not dtype:
                # The factors as 0-d arrays of the parameter's dtype: the same numbers NumPy would make of
                # the Python floats, without converting them again in every call (~0.3 us a call).
                dtype = param.dtype
                factors = self._factors(dtype, momentum, -lr, 1.0 - dampening)
            m, neg_lr, keep = factors
            plan = plans.get(p)
            if (common and plan is not None and plan[0] is param and plan[1] is state_of.get(p)
                    and plan[2] is plan[1].get("momentum_buffer") and plan[2].data is plan[3]):
                # The common case after the first step, on the plan kept from the last one:
                # buf = m * buf + g;  p = p + (-lr) * buf
                if g.shape != param.shape:
                    raise RuntimeError(f"a parameter of shape {param.shape} has a gradient of shape {g.shape}")
                pieces = plan[4]
                if pieces is None:
                    buf, t = plan[3], plan[5]
                    mul(buf, m, out=buf)
                    add(buf, g, out=buf)
                    mul(buf, neg_lr, out=t)
                    add(param, t, out=param)
                else:
                    fg = g.reshape(-1)          # a copy if g is not contiguous: the same numbers
                    for sl, pc, bc, t in pieces:
                        mul(bc, m, out=bc)
                        add(bc, fg[sl], out=bc)
                        mul(bc, neg_lr, out=t)
                        add(pc, t, out=pc)
                if flush:
                    self._flush_subnormals(plan[3], momentum)
                p._version += 1                 # updated in place (see _mark_updated)
                continue
            if g.shape != param.shape:
                raise RuntimeError(f"a parameter of shape {param.shape} has a gradient of shape {g.shape}")
            if not plain:
                g = self._effective_grad(param, g, weight_decay, maximize)
            if momentum == 0:
                for pc, gc, _, t in self._pieces(p, param, g, None):
                    mul(gc, neg_lr, out=t)
                    add(pc, t, out=pc)
                p._version += 1
                continue
            state = state_of[p]
            buf_t = state.get("momentum_buffer")
            if buf_t is None:                       # first step: the buffer is the gradient
                buf_t = state["momentum_buffer"] = self._new_state(param, "momentum_buffer", g, g.dtype)
                first = True
            else:
                first = False
            for pc, gc, bc, t in self._pieces(p, param, g, buf_t.data):
                if not first:
                    mul(bc, m, out=bc)
                    if dampening == 0:
                        add(bc, gc, out=bc)
                    else:
                        mul(gc, keep, out=t)
                        add(bc, t, out=bc)
                if nesterov:
                    mul(bc, m, out=t)
                    add(gc, t, out=t)               # g + momentum * buf
                    mul(t, neg_lr, out=t)
                else:
                    mul(bc, neg_lr, out=t)
                add(pc, t, out=pc)
            if flush and not first:
                self._flush_subnormals(buf_t.data, momentum)
            p._version += 1                         # updated in place (see _mark_updated)

    def _factors(self, dtype, *values):
        """``values`` as 0-d arrays of ``dtype``, kept while they stay the same."""
        key = (dtype, values)
        if self._factor_key != key:
            self._factor_key = key
            self._factor_arrays = tuple(np.array(v, dtype) for v in values)
        return self._factor_arrays

    def _pieces(self, p, param, g, buf):
        """Matching views (param, grad, buffer, scratch) of at most ``CHUNK`` elements.

        The update's four passes run piece by piece, so a piece stays in cache between them:
        measured 15 % faster than whole-array passes on a 784x256 weight.  Arrays that are not
        C-contiguous are updated whole (their ``reshape(-1)`` would be a copy).  The views of the
        parameter, the buffer and the scratch are kept between steps (``p.data`` and the buffer stay
        the same arrays) in a plan ``(param, state, buffer Tensor, buffer, pieces, scratch)`` that the
        common case in ``_step_group`` runs directly; the gradient, a new array after each backward, is
        cut up each time.
        """
        plan = self._views.get(p)
        state = self.state.get(p)
        buf_t = None if state is None else state.get("momentum_buffer")
        if plan is None or plan[0] is not param or plan[3] is not buf or plan[1] is not state or plan[2] is not buf_t:
            if param.size <= CHUNK:
                plan = (param, state, buf_t, buf, None, self._buffer(param, "tmp"))
            elif not (param.flags.c_contiguous and (buf is None or buf.flags.c_contiguous)):
                return ((param, g, buf, self._buffer(param, "tmp")),)
            else:
                tmp = self._buffer(param, "chunk", shape=(CHUNK,))
                fp = param.reshape(-1)
                fb = None if buf is None else buf.reshape(-1)
                plan = (param, state, buf_t, buf, [
                    (sl, fp[sl], None if fb is None else fb[sl], tmp[:sl.stop - sl.start])
                    for sl in _chunks(param.size)], None)
            self._views[p] = plan
        pieces = plan[4]
        if pieces is None:
            return ((param, g, buf, plan[5]),)
        if not g.flags.c_contiguous:
            return ((param, g, buf, self._buffer(param, "tmp")),)
        fg = g.reshape(-1)
        return [(pc, fg[sl], bc, t) for sl, pc, bc, t in pieces]


@functools.lru_cache(maxsize=64)
def _chunks(size: int) -> tuple[slice, ...]:
    return tuple(slice(i, min(i + CHUNK, size)) for i in range(0, size, CHUNK))


CHUNK = 65536  # elements per piece: four float32 pieces of 256 KiB fit in a core's L2 cache
