"""Adagrad: per-coordinate learning rates from the sum of all past squared gradients."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _check_nonnegative, _torch_switches

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (``torch.optim.Adagrad``), Duchi et al. 2011.

    For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

        g = -g                               if maximize
        g = g + weight_decay * p             if weight_decay != 0
        clr = lr / (1 + (t - 1) * lr_decay)          decayed learning rate
        s = s + g * g                                s starts at initial_accumulator_value
        p = p - clr * g / (sqrt(s) + eps)

    Coordinates with large past gradients take small steps.  ``s`` only grows, so the effective
    learning rate shrinks monotonically (it needs no subnormal flushing).  State: ``step`` and
    ``sum`` (s), created for every parameter when the optimizer is constructed, as in torch.

    Args:
        params: parameters or parameter groups (see ``Optimizer``).
        lr: learning rate.
        lr_decay: learning-rate decay per step.
        weight_decay: L2 penalty coefficient.
        initial_accumulator_value: starting value of ``s``.
        eps: added to the denominator for numerical stability.
        maximize: ascend the objective instead of descending it.
        foreach, differentiable, fused: torch's implementation switches, accepted and ignored
            (``differentiable=True`` is refused).
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False, fused: bool | None = None):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, maximize=maximize,
                        **_torch_switches(foreach=foreach, differentiable=differentiable, fused=fused))
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group)

    def _check_options(self, options):
        _check_nonnegative(options, "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps")

    def _init_state(self, p, group):
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["sum"] = self._new_state(p.data, "sum", float(group["initial_accumulator_value"]))
        return state

    def _step_group(self, group):
        lr = float(group["lr"])
        lr_decay = float(group["lr_decay"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        maximize = bool(group["maximize"])

        for p, param, grad in self._params_with_grad(group):
            state = self._init_state(p, group)     # (a group added after construction)
            state["step"] += 1
            clr = lr / (1.0 + (state["step"] - 1) * lr_decay)
            g = self._effective_grad(param, grad, weight_decay, maximize)
            s = state["sum"].data
            tmp = self._buffer(param, "tmp")

            np.multiply(g, g, out=tmp)             # s += g * g
            s += tmp
            np.sqrt(s, out=tmp)                    # std = sqrt(s) + eps
            tmp += eps
            np.divide(g, tmp, out=tmp)             # p -= clr * g / std
            tmp *= -clr
            param += tmp
            self._mark_updated(p)
