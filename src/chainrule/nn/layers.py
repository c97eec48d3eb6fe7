"""Layers and containers: Linear, Sequential, ModuleList, ModuleDict, Concat, Flatten, Dropout, ...

Containers name their children ``"0"``, ``"1"``, ... so that parameter names (``0.weight``) are the
ones torch uses and checkpoints load in either library.
"""

from __future__ import annotations

import math
import operator
from collections import OrderedDict

import numpy as np

from .. import _dtypes, _malloc
from .. import random as _random
from ..autograd import ops as _ops
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from . import init
from .module import Module, _addindent
from .parameter import Parameter


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b, W of shape (out_features, in_features): one fused graph node."""
    return _ops.linear(input, weight, bias)


def _dim(d: int, ndim: int, name: str, shape) -> int:
    """``d`` in [0, ndim) (negative counts from the end), or an IndexError naming the input's shape."""
    n = max(ndim, 1)
    if not -n <= d < n:
        raise IndexError(f"{name}: dimension {d} is out of range for an input of shape {tuple(shape)} "
                         f"(expected to be in range of [{-n}, {n - 1}])")
    return d % n


class Linear(Module):
    """y = x W^T + b, an affine map from ``in_features`` to ``out_features`` (torch layout).

    ``weight`` has shape (out_features, in_features), ``bias`` (out_features,).  Both start as
    U(-1/sqrt(in_features), 1/sqrt(in_features)), torch's default: ``kaiming_uniform_(a=sqrt(5))``
    gives bound = gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)), i.e. 1/sqrt(fan_in).

    The forward pass is one fused graph node (``autograd.ops.Linear``), not a matmul plus an add.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        dt = _dtypes.as_dtype(dtype) or _dtypes.get_default_dtype()
        # Back to back with the other small parameters made before and after it, so that the optimizer can
        # update them as one array; large ones staggered within a page (``chainrule._malloc.param_empty``).
        self.weight = Parameter(_malloc.param_empty((self.out_features, self.in_features), dt))
        if bias:
            self.bias = Parameter(_malloc.param_empty((self.out_features,), dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        p = self._parameters      # not self.weight: Module.__getattr__ costs ~0.4 us a lookup
        return _ops.linear(x, p["weight"], p["bias"])

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """y = x (a placeholder; accepts and ignores any constructor arguments, as torch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one: (N, 1, 28, 28) -> (N, 784) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        s = _dim(self.start_dim, x.ndim, "Flatten", x.shape)
        e = _dim(self.end_dim, x.ndim, "Flatten", x.shape)
        if s > e:
            raise RuntimeError(f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} "
                               f"for an input of shape {tuple(x.shape)}")
        return _ops.flatten(x, s, e)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size``: (N, 784) -> (N, 1, 28, 28) with dim=1, (1, 28, 28)."""

    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        if not isinstance(unflattened_size, (tuple, list)):
            raise TypeError(f"Unflatten: unflattened_size must be a tuple or list of ints, "
                            f"got {type(unflattened_size).__name__}")
        self.dim = dim
        self.unflattened_size = unflattened_size  # kept as given (a list stays a list), as torch

    def forward(self, x):
        if x.ndim == 0:
            raise RuntimeError("Unflatten: input must have at least 1 dimension, got a 0-d tensor")
        _dim(self.dim, x.ndim, "Unflatten", x.shape)
        sizes = list(self.unflattened_size)
        if sizes.count(-1) > 1:
            raise RuntimeError(f"Unflatten: only one size can be inferred (-1), got {self.unflattened_size}")
        if sizes.count(-1) == 1:  # one size may be inferred, as torch
            known = int(np.prod([s for s in sizes if s != -1]))
            sizes[sizes.index(-1)] = x.shape[self.dim] // known if known else 0
        if int(np.prod(sizes)) != x.shape[self.dim]:
            raise RuntimeError(f"Unflatten: sizes {self.unflattened_size} don't multiply up to the size of "
                               f"dim {self.dim} ({x.shape[self.dim]}) of the input {tuple(x.shape)}")
        return _ops.unflatten(x, self.dim, sizes)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


# ---------------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------------
class DropoutFunction(Function):
    """Inverted dropout: y = x * m, m_i = 1/(1-p) with probability 1-p, else 0.  dL/dx = g * m.

    Scaling the kept units by 1/(1-p) keeps E[y] = x, so evaluation needs no rescaling.  The mask is
    drawn once in forward (from chainrule's generator) and saved for backward.
    """

    saves_inputs = False

    def forward(self, x):
        p = self.p
        if p == 1.0:
            self.m = np.zeros(x.shape, dtype=x.dtype)
        else:
            keep = _random._rng(self.generator).random(x.shape, dtype=np.float32) >= p
            self.m = keep * x.dtype.type(1.0 / (1.0 - p))
        return x * self.m

    def backward(self, g):
        return g * Tensor._make(self.m)

    def backward_np(self, g):
        return g * self.m


def _check_p(p) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False,
            generator=None) -> Tensor:
    """Functional dropout: identity unless ``training`` (see ``DropoutFunction``).

    ``inplace=True`` writes the result into ``input`` and returns it, as torch.
    """
    p = _check_p(p)
    if not training or p == 0.0:
        return input
    if input.data.dtype.kind != "f":
        raise TypeError(f"dropout: expected a floating-point input, got {input.dtype}")
    if inplace:
        return _ops.inplace(input, lambda t: DropoutFunction.apply(t, p=p, generator=generator))
    return DropoutFunction.apply(input, p=p, generator=generator)


class Dropout(Module):
    """Zero each element with probability ``p`` during training, scale the rest by 1/(1-p).

    In ``eval()`` mode it is the identity.  The masks come from the global generator, so
    ``chainrule.manual_seed`` makes them reproducible.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        _check_p(p)
        self.p = p
        self.inplace = inplace

    def forward(self, x):
        return dropout(x, self.p, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


# ---------------------------------------------------------------------------------------------------
# containers
# ---------------------------------------------------------------------------------------------------
def _index(idx: int, n: int, what: str) -> int:
    idx = operator.index(idx)  # ints (and NumPy ints) only: seq[1.5] and seq['a'] are TypeErrors, as torch
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for {what} of length {n}")
    return idx % n


class Sequential(Module):
    """Apply modules one after another: ``Sequential(f, g, h)(x) = h(g(f(x)))``.

    Children are named "0", "1", ... (or by the keys of an OrderedDict argument).  Supports
    ``len``, iteration, ``seq[i]``, ``seq[a:b]`` (a Sequential), ``append``, ``extend``, ``insert``.
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], (OrderedDict, dict)):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for i, module in enumerate(args):
                self.add_module(str(i), module)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        items = list(self._modules.items())
        if isinstance(idx, slice):
            return type(self)(OrderedDict(items[idx]))
        return items[_index(idx, len(items), "Sequential")][1]

    def __setitem__(self, idx: int, module: Module) -> None:
        key = list(self._modules)[_index(idx, len(self), "Sequential")]
        self.add_module(key, module)

    def __delitem__(self, idx) -> None:
        keys = list(self._modules)
        for key in (keys[idx] if isinstance(idx, slice) else [keys[_index(idx, len(keys), "Sequential")]]):
            del self._modules[key]
        # renumber so that the names stay 0..n-1 (as torch)
        modules = list(self._modules.values())
        self._modules.clear()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules) -> Sequential:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> Sequential:
        if not isinstance(module, Module):
            raise AssertionError(f"module should be of type Module, got {type(module).__name__}")
        n = len(self)
        if not -n <= index <= n:
            raise IndexError(f"Index out of range: {index}")
        modules = list(self._modules.values())
        modules.insert(index, module)  # list semantics, as torch: insert(-1, m) goes before the last module
        self._modules.clear()
        for i, m in enumerate(modules):
            self._modules[str(i)] = m
        return self

    def pop(self, idx: int | slice) -> Module:
        """Remove and return the module at ``idx`` (the rest are renumbered, as ``del``)."""
        module = self[idx]
        del self[idx]
        return module

    def __add__(self, other: Sequential) -> Sequential:
        return Sequential(*self, *other)

    def __iadd__(self, other: Sequential) -> Sequential:
        return self.extend(other)


class ModuleList(Module):
    """A list of modules, registered (so their parameters are found) but with no forward of its own."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return type(self)(mods[idx])
        return mods[_index(idx, len(mods), "ModuleList")]

    def __setitem__(self, idx: int, module: Module) -> None:
        self.add_module(str(_index(idx, len(self), "ModuleList")), module)

    def __delitem__(self, idx) -> None:
        mods = list(self._modules.values())
        del mods[idx]
        self._modules.clear()
        for i, m in enumerate(mods):
            self._modules[str(i)] = m

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def pop(self, idx: int | slice) -> Module:
        """Remove and return the module at ``idx`` (the rest are renumbered, as ``del``)."""
        module = self[idx]
        del self[idx]
        return module

    def extend(self, modules) -> ModuleList:
        for m in modules:
            self.append(m)
        return self

    def insert(self, index: int, module: Module) -> None:
        mods = list(self._modules.values())
        mods.insert(index, module)
        self._modules.clear()
        for i, m in enumerate(mods):
            self.add_module(str(i), m)

    def __iadd__(self, modules) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other) -> ModuleList:
        return ModuleList([*self, *other])

    def __repr__(self) -> str:
        # torch compresses runs of identical children: "(0-2): 3 x Linear(...)"
        reprs = [repr(m) for m in self]
        if not reprs:
            return "ModuleList()"
        lines, start = [], 0
        for end in range(1, len(reprs) + 1):
            if end < len(reprs) and reprs[end] == reprs[start]:
                continue
            body = _addindent(reprs[start], 2)
            if end - start == 1:
                lines.append(f"({start}): {body}")
            else:
                lines.append(f"({start}-{end - 1}): {end - start} x {body}")
            start = end
        return "ModuleList(\n  " + "\n  ".join(lines) + "\n)"


class ModuleDict(Module):
    """An ordered dict of named modules (registered), e.g. one head per task."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, key) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()

    def pop(self, key: str) -> Module:
        return self._modules.pop(key)

    def clear(self) -> None:
        self._modules.clear()

    def update(self, modules) -> None:
        pairs = modules.items() if hasattr(modules, "items") else modules
        for key, module in pairs:
            self[key] = module


class Concat(Module):
    """Apply every branch to the same input and concatenate the outputs: f1(x) ⊕ f2(x) ⊕ ...

    ``Concat(Linear(4, 3), Linear(4, 5))(x)`` has 3 + 5 = 8 features (``dim=-1``).  By the chain
    rule the gradient reaching x is the sum of the branches' gradients (x fans out to each).
    """

    def __init__(self, *branches: Module, dim: int = -1):
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        for i, b in enumerate(branches):
            self.add_module(str(i), b)
        self.dim = dim

    def forward(self, x):
        return _ops.cat([branch(x) for branch in self._modules.values()], dim=self.dim)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, idx: int) -> Module:
        return list(self._modules.values())[_index(idx, len(self), "Concat")]

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
