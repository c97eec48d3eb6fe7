"""Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor
from .optimizer import Optimizer, _as_float, _check_nonnegative

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
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize)
        super().__init__(params, defaults)

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

        for p, param, grad in self._params_with_grad(group):
            g = self._effective_grad(param, grad, weight_decay, maximize)
            tmp = self._buffer(param, "tmp")
            if momentum != 0:
                state = self.state[p]
                buf_t = state.get("momentum_buffer")
                if buf_t is None:                       # first step: the buffer is the gradient
                    buf = g.copy()
                    state["momentum_buffer"] = Tensor(buf)
                else:
                    buf = buf_t.data
                    buf *= momentum
                    if dampening == 0:
                        buf += g
                    else:
                        np.multiply(g, 1.0 - dampening, out=tmp)
                        buf += tmp
                    self._flush_subnormals(buf, momentum)
                if nesterov:
                    np.multiply(buf, momentum, out=tmp)
                    np.add(g, tmp, out=tmp)             # g + momentum * buf
                    g = tmp
                else:
                    g = buf
            np.multiply(g, -lr, out=tmp)
            param += tmp
            self._mark_updated(p)
