"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, _check_betas, _check_nonnegative, _torch_switches

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam (``torch.optim.Adam``), Kingma & Ba 2014.

    For each parameter ``p`` with gradient ``g``, at step ``t = 1, 2, ...``::

        g = -g                               if maximize
        p = p * (1 - lr * weight_decay)      if decoupled_weight_decay   (AdamW)
        g = g + weight_decay * p             otherwise, if weight_decay != 0   (L2 penalty)
        m = beta1 * m + (1 - beta1) * g              first moment   (computed as a lerp, as torch)
        v = beta2 * v + (1 - beta2) * g * g          second moment
        v_max = max(v_max, v)                if amsgrad, and then v_max replaces v below
        m_hat = m / (1 - beta1 ** t)                 bias corrections: m and v start at 0
        v_hat = v / (1 - beta2 ** t)
        p = p - lr * m_hat / (sqrt(v_hat) + eps)

    The last line is computed as torch does: ``denom = sqrt(v) / sqrt(1 - beta2**t) + eps`` and
    ``p -= lr / (1 - beta1**t) * m / denom``.  State: ``step``, ``exp_avg`` (m),
    ``exp_avg_sq`` (v) and, with amsgrad, ``max_exp_avg_sq``.

    Args:
        params: parameters or parameter groups (see ``Optimizer``).
        lr: learning rate.
        betas: decay rates ``(beta1, beta2)`` of the two moving averages, each in [0, 1).
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty (Adam) or decoupled decay rate (AdamW).
        amsgrad: use the running maximum of ``v`` (Reddi et al. 2018).
        maximize: ascend the objective instead of descending it.
        decoupled_weight_decay: decay the weights directly (AdamW) instead of adding an L2 term
            to the gradient.
        foreach, capturable, differentiable, fused: torch's implementation switches, accepted and
            ignored (``differentiable=True`` is refused).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None, decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas) if isinstance(betas, list) else betas, eps=eps,
                        weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
                        **_torch_switches(foreach=foreach, capturable=capturable, differentiable=differentiable,
                                          fused=fused),
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    def _check_options(self, options):
        _check_nonnegative(options, "lr", "eps", "weight_decay")
        _check_betas(options["betas"])

    def _step_group(self, group):
        lr = float(group["lr"])
        beta1, beta2 = (float(b) for b in group["betas"])
        eps = float(group["eps"])
        weight_decay = float(group["weight_decay"])
        amsgrad = bool(group["amsgrad"])
        maximize = bool(group["maximize"])
        decoupled = bool(group["decoupled_weight_decay"])

        for p, param, grad in self._params_with_grad(group):
            state = self.state[p]
            if not state:
                state["step"] = 0
                state["exp_avg"] = self._new_state(param, "exp_avg")
                state["exp_avg_sq"] = self._new_state(param, "exp_avg_sq")
            if amsgrad and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = self._new_state(param, "max_exp_avg_sq")
            state["step"] += 1
            t = state["step"]
            m = state["exp_avg"].data
            v = state["exp_avg_sq"].data
            tmp = self._buffer(param, "tmp")

            if weight_decay != 0 and decoupled:
                param *= 1.0 - lr * weight_decay
                g = self._effective_grad(param, grad, 0.0, maximize)
            else:
                g = self._effective_grad(param, grad, weight_decay, maximize)

            # m = lerp(m, g, 1 - beta1) = m + (1 - beta1) * (g - m)
            np.subtract(g, m, out=tmp)
            tmp *= 1.0 - beta1
            m += tmp
            # v = beta2 * v + (1 - beta2) * g * g
            v *= beta2
            np.multiply(g, 1.0 - beta2, out=tmp)
            tmp *= g
            v += tmp
            self._flush_subnormals(m, beta1)
            self._flush_subnormals(v, beta2)

            step_size = lr / (1.0 - beta1 ** t)
            bias_correction2_sqrt = (1.0 - beta2 ** t) ** 0.5
            if amsgrad:
                v_max = state["max_exp_avg_sq"].data
                np.maximum(v_max, v, out=v_max)
                v = v_max
            np.sqrt(v, out=tmp)                    # denom = sqrt(v) / sqrt(bc2) + eps
            tmp /= bias_correction2_sqrt
            tmp += eps
            np.divide(m, tmp, out=tmp)             # p -= step_size * m / denom
            tmp *= -step_size
            param += tmp
            self._mark_updated(p)


class AdamW(Adam):
    r"""Adam with decoupled weight decay (``torch.optim.AdamW``), Loshchilov & Hutter 2019.

    Identical to ``Adam`` except that weight decay shrinks the weights directly,
    ``p = p * (1 - lr * weight_decay)``, before the Adam step, instead of adding
    ``weight_decay * p`` to the gradient (where Adam's normalisation would weaken it).  The
    default ``weight_decay`` is 1e-2.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False, *, maximize: bool = False,
                 foreach: bool | None = None, capturable: bool = False, differentiable: bool = False,
                 fused: bool | None = None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         foreach=foreach, maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused, decoupled_weight_decay=True)
