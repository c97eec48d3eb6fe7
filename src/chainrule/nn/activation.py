"""Activation modules: the nonlinearities placed between layers (``torch.nn.ReLU`` and friends).

Each module is a thin wrapper around an op of ``chainrule.autograd.ops`` whose docstring gives the
derivative.  Without a nonlinearity a stack of Linear layers collapses into a single affine map
(W2 (W1 x + b1) + b2 = W x + b), which is why the XOR problem needs one.

The threshold units ``Heaviside`` and ``Sign`` are the historical perceptron activations.  They are
here to show why gradient descent needs smooth activations: a step function is flat everywhere
except at 0, so its derivative is 0 almost everywhere and no learning signal flows back through it
(their backward returns zeros, the derivative wherever it exists).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..autograd import ops as _ops
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .layers import _dim
from .module import Module


# ---------------------------------------------------------------------------------------------------
# threshold units (zero gradient)
# ---------------------------------------------------------------------------------------------------
class HeavisideFunction(Function):
    """y = 1 if x > 0, 0 if x < 0, ``value`` at x = 0.  dL/dx = 0 (the derivative where it exists)."""

    saves_inputs = False

    def forward(self, x):
        return np.heaviside(x, self.value).astype(x.dtype, copy=False)

    def backward(self, g):
        return _ops.zeros_like(g)

    def backward_np(self, g):
        return np.zeros_like(g)


class SignFunction(Function):
    """y = sign(x) in {-1, 0, 1}.  dL/dx = 0 (flat on both sides of the jump)."""

    saves_inputs = False

    def forward(self, x):
        return np.sign(x)

    def backward(self, g):
        return _ops.zeros_like(g)

    def backward_np(self, g):
        return np.zeros_like(g)


def heaviside(x: Tensor, value: float = 0.0) -> Tensor:
    """The unit step H(x) (``value`` at 0), differentiable with a zero gradient."""
    return HeavisideFunction.apply(x, value=value)


def sign(x: Tensor) -> Tensor:
    """sign(x), differentiable with a zero gradient (``chainrule.sign`` records no graph at all)."""
    return SignFunction.apply(x)


def _inplace(x: Tensor, fn, inplace: bool) -> Tensor:
    """``fn(x)``, written back into x when ``inplace`` (torch's ``inplace=True`` flag)."""
    return _ops.inplace(x, fn) if inplace else fn(x)


class ELUInplaceFunction(Function):
    """ELU for ``inplace=True``: backward reads the output, not the overwritten input (as torch's elu_).

    y = x if x > 0 else alpha (e^x - 1);  dL/dx = g if x > 0 else g (y + alpha)  (= g alpha e^x).
    """

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.m = x > 0
        self.y = np.where(self.m, x, self.alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)
        return self.y

    def backward(self, g):
        return _ops.where(self.m, g, g * (self.output() + self.alpha))

    def backward_np(self, g):
        return np.where(self.m, g, g * (self.y + self.alpha))


def elu(x: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x for x > 0, alpha (e^x - 1) otherwise; ``inplace`` overwrites x and still has a gradient."""
    if inplace:
        return _ops.inplace(x, lambda t: ELUInplaceFunction.apply(t, alpha=alpha))
    return _ops.elu(x, alpha)


def _softmax_dim(x: Tensor, dim: int | None, name: str, stacklevel: int) -> int | None:
    """Check ``dim`` against the input (an IndexError naming the shape); warn as torch when it is None."""
    if dim is None:
        warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include "
                      "dim=X as an argument.", UserWarning, stacklevel=stacklevel + 1)
        return None
    _dim(dim, x.ndim, name, x.shape)
    return dim


def softmax(x: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """e^(x_i) / sum_j e^(x_j) along ``dim`` (None: torch's legacy implicit choice, with its warning)."""
    return _ops.softmax(x, _softmax_dim(x, dim, "softmax", _stacklevel), dtype)


def log_softmax(x: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """x_i - log sum_j e^(x_j) along ``dim`` (None: torch's legacy implicit choice, with its warning)."""
    return _ops.log_softmax(x, _softmax_dim(x, dim, "log_softmax", _stacklevel), dtype)


# ---------------------------------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------------------------------
class Heaviside(Module):
    """Threshold unit y = H(x): 1 for x > 0, 0 for x < 0, ``value`` at 0.  Its gradient is zero."""

    def __init__(self, value: float = 0.0):
        super().__init__()
        self.value = value

    def forward(self, x):
        return heaviside(x, self.value)

    def extra_repr(self) -> str:
        return f"value={self.value}" if self.value != 0.0 else ""


class Sign(Module):
    """Threshold unit y = sign(x) in {-1, 0, 1}.  Its gradient is zero."""

    def forward(self, x):
        return sign(x)


class Sigmoid(Module):
    """y = 1 / (1 + e^-x), dy/dx = y (1 - y) (at most 1/4: deep sigmoid stacks shrink gradients)."""

    def forward(self, x):
        return _ops.sigmoid(x)


class Tanh(Module):
    """y = tanh x, dy/dx = 1 - y^2 (zero-centred, with gradient 1 at 0)."""

    def forward(self, x):
        return _ops.tanh(x)


class ReLU(Module):
    """y = max(x, 0), dy/dx = [x > 0]."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def forward(self, x):
        return _inplace(x, _ops.relu, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """y = x for x > 0, ``negative_slope`` * x otherwise (a small gradient for negative inputs)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def forward(self, x):
        return _inplace(x, lambda t: _ops.leaky_relu(t, self.negative_slope), self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Softplus(Module):
    """y = log(1 + e^(beta x)) / beta, a smooth ReLU (linear where beta x > ``threshold``).

    dy/dx = sigmoid(beta x).
    """

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x):
        return _ops.softplus(x, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class ELU(Module):
    """y = x for x > 0, alpha (e^x - 1) otherwise."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def forward(self, x):
        return elu(x, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class GELU(Module):
    """y = x Phi(x), Phi the standard normal CDF (``approximate='tanh'``: the tanh formula)."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        return _ops.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """y_i = e^(x_i) / sum_j e^(x_j) along ``dim``: turns scores into probabilities."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return softmax(x, self.dim, _stacklevel=4)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """y_i = x_i - log sum_j e^(x_j) along ``dim`` (stable; pair it with NLLLoss)."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return log_softmax(x, self.dim, _stacklevel=4)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
