"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _check_nonnegative, _torch_switches

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (``torch.optim.RMSprop``), Hinton's lecture 6e.

    For each parameter ``p`` with gradient ``g``::

        g = -g                               if maximize
        g = g + weight_decay * p             if weight_decay != 0
        v = alpha * v + (1 - alpha) * g * g          running mean of g^2
        if centered:                                  subtract the squared running mean of g:
            g_avg = alpha * g_avg + (1 - alpha) * g   (computed as a lerp, as torch)
            avg = sqrt(v - g_avg * g_avg) + eps       an estimate of the standard deviation
        else:
            avg = sqrt(v) + eps
        if momentum > 0:
            b = momentum * b + g / avg
            p = p - lr * b
        else:
            p = p - lr * g / avg

    State: ``step``, ``square_avg`` (v), ``momentum_buffer`` (b, if momentum > 0) and
    ``grad_avg`` (g_avg, if centered).  Note that ``eps`` is added *outside* the square root.

    Args:
        params: parameters or parameter groups (see ``Optimizer``).
        lr: learning rate.
        alpha: smoothing constant of the running averages.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty coefficient.
        momentum: momentum factor.
        centered: normalise by the estimated variance of the gradient instead of its second
            moment.
        maximize: ascend the objective instead of descending it.
        capturable, foreach, differentiable: torch's implementation switches, accepted and ignored
            (``differentiable=True`` is refused).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
                 capturable: bool = False, foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                        centered=centered, maximize=maximize,
                        **_torch_switches(capturable=capturable, foreach=foreach, differentiable=differentiable))
        super().__init__(params, defaults)

    def _check_options(self, options):
        _check_nonnegative(options, "lr", "eps", "momentum", "weight_decay", "alpha")

    def _step_group(self, group):
        lr = float(group["lr"])
        alpha = float(group["alpha"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        momentum = float(group["momentum"])
        centered = bool(group["centered"])
        maximize = bool(group["maximize"])

        for p, param, grad in self._params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["square_avg"] = self._new_state(param, "square_avg")
            if momentum > 0 and "momentum_buffer" not in state:
                state["momentum_buffer"] = self._new_state(param, "momentum_buffer")
            if centered and "grad_avg" not in state:
                state["grad_avg"] = self._new_state(param, "grad_avg")
            state["step"] += 1
            g = self._effective_grad(param, grad, weight_decay, maximize)
            v = state["square_avg"].data
            avg = self._buffer(param, "tmp")

            # v = alpha * v + (1 - alpha) * g * g
            v *= alpha
            np.multiply(g, 1.0 - alpha, out=avg)
            avg *= g
            v += avg
            self._flush_subnormals(v, alpha)

            if centered:
                g_avg = state["grad_avg"].data
                np.subtract(g, g_avg, out=avg)     # g_avg = lerp(g_avg, g, 1 - alpha)
                avg *= 1.0 - alpha
                g_avg += avg
                self._flush_subnormals(g_avg, alpha)
                np.multiply(g_avg, g_avg, out=avg)
                np.subtract(v, avg, out=avg)
                np.sqrt(avg, out=avg)
            else:
                np.sqrt(v, out=avg)
            avg += eps

            np.divide(g, avg, out=avg)             # g / avg
            if momentum > 0:
                buf = state["momentum_buffer"].data
                buf *= momentum
                buf += avg
                self._flush_subnormals(buf, momentum)
                np.multiply(buf, -lr, out=avg)
            else:
                avg *= -lr
            param += avg
            self._mark_updated(p)
