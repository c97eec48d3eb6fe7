"""Weight initialisation (``torch.nn.init``): fill a tensor in place and return it.

Why the scale matters: for y = W x with n = fan_in inputs of unit variance and weights of variance
s^2, Var(y) = n s^2.  Keeping activations (and, backwards, gradients) at a stable size through many
layers needs s^2 ~ 1/n, adjusted by a *gain* for the nonlinearity that follows:

* Xavier/Glorot (tanh, sigmoid): Var(W) = gain^2 * 2 / (fan_in + fan_out)
* Kaiming/He (ReLU family):      Var(W) = gain^2 / fan   (fan = fan_in or fan_out)

A uniform U(-b, b) has variance b^2 / 3, hence the sqrt(3) in the uniform versions.

Every function writes the tensor's buffer directly (no graph is recorded, as under ``no_grad``),
draws from chainrule's global generator unless ``generator`` is given, and is reproducible with
``chainrule.manual_seed``.
"""

from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..autograd import ops as _ops
from ..autograd.tensor import Tensor

__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_",
]


def _write(tensor: Tensor, values) -> Tensor:
    """Copy ``values`` into the tensor's buffer, converted to its dtype (in place, no graph)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init functions expect a chainrule Tensor, got {type(tensor).__name__}")
    _ops._write(tensor, values)
    return tensor


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity (torch's table).

    ====================  =====================================
    linear, conv*, sigmoid  1
    tanh                    5/3
    relu                    sqrt(2)
    leaky_relu              sqrt(2 / (1 + negative_slope^2))  (param = negative_slope, default 0.01)
    selu                    3/4
    ====================  =====================================
    """
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel): in * k and out * k, k = prod(kernel)."""
    if tensor.ndim < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with U(a, b)."""
    return _write(tensor, _random._rng(generator).uniform(a, b, tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with N(mean, std^2)."""
    return _write(tensor, _random._rng(generator).normal(mean, std, tensor.shape))


# Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
_PPF_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
          -3.066479806614716e+01, 2.506628277459239e+00)
_PPF_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
          -1.328068155288572e+01, 1.0)
_PPF_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
          4.374664141464968e+00, 2.938163982698783e+00)
_PPF_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00, 1.0)


def _norm_ppf(p: np.ndarray) -> np.ndarray:
    """The z with Phi(z) = p, for p in (0, 1), Phi the standard normal CDF."""
    q = np.sqrt(-2.0 * np.log(np.minimum(p, 1.0 - p)))  # the tails: |z| ~ q
    tail = np.polyval(_PPF_C, q) / np.polyval(_PPF_D, q)
    r = (p - 0.5) ** 2
    mid = (p - 0.5) * np.polyval(_PPF_A, r) / np.polyval(_PPF_B, r)
    return np.where(np.abs(p - 0.5) <= 0.5 - 0.02425, mid, np.where(p < 0.5, tail, -tail))


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None) -> Tensor:
    """Fill with N(mean, std^2) restricted to [a, b] (absolute bounds, as torch).

    Inverse-CDF sampling, as torch: z = Phi^-1(u) with u uniform on [Phi(alpha), Phi(beta)], alpha and
    beta the bounds in std units; it takes one draw per value however far into a tail [a, b] lies.
    """
    rng = _random._rng(generator)
    if std == 0:
        return _write(tensor, np.clip(mean, a, b))
    alpha, beta = (a - mean) / std, (b - mean) / std
    flip = alpha > 0  # sample the mirror image [-beta, -alpha] instead: Phi is exact near 0, not near 1
    if flip:
        alpha, beta = -beta, -alpha
    lo, hi = (0.5 * math.erfc(-t / math.sqrt(2.0)) for t in (alpha, beta))
    u = np.clip(rng.uniform(lo, hi, tensor.shape), np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).epsneg)
    z = np.clip(_norm_ppf(u), alpha, beta)
    return _write(tensor, np.clip(mean + std * (-z if flip else z), a, b))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with the value ``val``."""
    return _write(tensor, val)


def ones_(tensor: Tensor) -> Tensor:
    return _write(tensor, 1)


def zeros_(tensor: Tensor) -> Tensor:
    return _write(tensor, 0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity (ones on the diagonal, as many as fit)."""
    if tensor.ndim != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _write(tensor, np.eye(*tensor.shape))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                     generator=None) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan), gain = calculate_gain(nonlinearity, a).

    ``a`` is the negative slope of the leaky ReLU that follows (0 for ReLU).  ``nn.Linear`` uses
    a = sqrt(5), which gives b = 1 / sqrt(fan_in).
    """
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
                    generator=None) -> Tensor:
    """He normal: N(0, std^2) with std = gain / sqrt(fan)."""
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def orthogonal_(tensor: Tensor, gain: float = 1, generator=None) -> Tensor:
    """A (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2013); trailing dims are flattened.

    Q of the QR factorisation of a Gaussian matrix, with column signs fixed by sign(diag R) so that
    Q is uniformly distributed over orthogonal matrices.
    """
    if tensor.ndim < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _random._rng(generator).standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _write(tensor, (gain * q).reshape(tensor.shape))
