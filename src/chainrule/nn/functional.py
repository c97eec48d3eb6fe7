"""``chainrule.nn.functional`` (conventionally ``F``): layers, activations and losses as functions.

The same maths as the modules, without state: ``F.linear(x, W, b)`` is ``nn.Linear``'s forward with
your own weights, ``F.cross_entropy(logits, y)`` is ``nn.CrossEntropyLoss()(logits, y)``.
Signatures follow ``torch.nn.functional``.
"""

from __future__ import annotations

import numpy as np

from ..autograd import ops as _ops
from ..autograd.tensor import Tensor
from .activation import _inplace, heaviside, sign
from .activation import elu as _elu
from .activation import log_softmax as _log_softmax
from .activation import softmax as _softmax
from .layers import dropout, linear
from .loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)

__all__ = [
    "linear", "relu", "leaky_relu", "sigmoid", "tanh", "softplus", "elu", "gelu", "softmax", "log_softmax",
    "dropout", "one_hot", "pad", "heaviside", "sign", "mse_loss", "l1_loss", "huber_loss", "smooth_l1_loss",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "nll_loss", "kl_div",
]


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """max(x, 0)."""
    return _inplace(input, _ops.relu, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """x for x > 0, negative_slope * x otherwise."""
    return _inplace(input, lambda t: _ops.leaky_relu(t, negative_slope), inplace)


def sigmoid(input: Tensor) -> Tensor:
    """1 / (1 + e^-x)."""
    return _ops.sigmoid(input)


def tanh(input: Tensor) -> Tensor:
    return _ops.tanh(input)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, linear where beta x > threshold."""
    return _ops.softplus(input, beta, threshold)


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha (e^x - 1) otherwise."""
    return _elu(input, alpha, inplace)


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """x Phi(x) (``approximate='tanh'``: the tanh approximation)."""
    return _ops.gelu(input, approximate)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """e^(x_i) / sum_j e^(x_j) along ``dim``."""
    return _softmax(input, dim, _stacklevel, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """x_i - log sum_j e^(x_j) along ``dim``."""
    return _log_softmax(input, dim, _stacklevel, dtype)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """Class indices of any shape (*) -> int64 tensor (*, num_classes) with a 1 at each index.

    ``num_classes=-1`` infers it as max(index) + 1.
    """
    y = tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if y.dtype.kind not in "iu":
        raise TypeError(f"one_hot is only applicable to index tensors (integers), got {y.dtype}")
    if y.size and y.min() < 0:
        raise RuntimeError(f"one_hot: class values must be non-negative, got {int(y.min())}")
    if num_classes == -1:
        if not y.size:
            raise RuntimeError("one_hot: can not infer the number of classes from an empty tensor; "
                               "pass num_classes")
        num_classes = int(y.max()) + 1
    if y.size and y.max() >= num_classes:
        raise RuntimeError(f"one_hot: class value {int(y.max())} is too large for num_classes={num_classes}")
    out = np.zeros(y.shape + (num_classes,), dtype=np.int64)
    np.put_along_axis(out, y[..., None].astype(np.int64), 1, axis=-1)
    return Tensor._make(out)


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad (``mode`` 'constant', 'reflect', 'replicate' or 'circular'; negative widths crop); ``pad`` lists
    (left, right) widths from the last dim backwards, as torch."""
    return _ops.pad(input, pad, mode, 0.0 if value is None else value)
