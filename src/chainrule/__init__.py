"""chainrule: backpropagation you can read — a small, fast, PyTorch-compatible deep-learning library.

>>> import chainrule as cr
>>> w = cr.tensor([2.0, -3.0, -3.0], requires_grad=True)
>>> x = cr.tensor([-1.0, -2.0, 1.0])
>>> f = cr.sigmoid((w * x).sum())      # the lectures' sigmoid neuron
>>> f.backward()
>>> [round(v, 2) for v in w.grad.tolist()]
[-0.2, -0.39, 0.2]
"""

from . import _dtypes
from ._dtypes import (
    bool_ as bool,  # noqa: A004
    double,
    float16,
    float32,
    float64,
    get_default_dtype,
    half,
    int8,
    int32,
    int64,
    long,
    set_default_dtype,
    uint8,
)
from ._dtypes import float as float  # noqa: A004
from ._dtypes import int as int  # noqa: A004
from . import autograd
from .autograd import Tensor, enable_grad, no_grad, set_grad_enabled, inference_mode, is_grad_enabled
from .autograd.factories import (
    arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like, linspace, logspace, normal,
    ones, ones_like, rand, rand_like, randint, randint_like, randn, randn_like, randperm, tensor, zeros,
    zeros_like,
)
from .autograd.ops import (
    abs, add, addmm, all, allclose, amax, amin, any, argmax, argmin, argsort, atan, bmm, broadcast_to, cat,
    ceil, chunk, clamp, clip, clone, concat, concatenate, cos, cosh, count_nonzero, cumprod, cumsum, diag,
    div, dot, einsum, elu, eq, equal, erf, exp, exp2, expand, expm1, flatten, flip, floor, fmod, gather, ge,
    gelu, gt, hstack, index_select, isclose, isfinite, isinf, isnan, kthvalue, le, leaky_relu, lerp, log,
    log10, log1p, log2, log_softmax, logical_not, logsumexp, lt, masked_select, matmul, max, maximum, mean,
    median, min, minimum, mm, moveaxis, mul, mv, nan_to_num, narrow, ne, neg, norm, outer, pad, permute, pow,
    prod, reciprocal, relu, remainder, repeat, reshape, roll, round, rsqrt, select, sigmoid, sign, sin, sinh,
    softmax, softplus, sort, split, sqrt, square, squeeze, stack, std, std_mean, sub, sum, sum_to, swapaxes,
    tan, tanh, topk, trace, transpose, tril, triu, true_divide, trunc, unbind, unflatten, unsqueeze, var,
    var_mean, vstack, where,
)
from .autograd.ops import linear as _linear  # noqa: F401  (nn.functional.linear)
from .random import Generator, get_rng_state, initial_seed, manual_seed, seed, set_rng_state

__version__ = "0.1.0"

from ._malloc import tune as _tune_malloc  # noqa: E402

_tune_malloc()

negative = neg
multiply = mul
subtract = sub
divide = div
arctan = atan
absolute = abs

# Submodules above the autograd layer load on first use, so `import chainrule` stays as cheap as NumPy.
_LAZY_MODULES = {"nn", "optim", "data", "train", "func", "viz", "scalar", "serialization", "plot", "demos", "cli", "io",
                 "threads"}
_LAZY_ATTRS = {"save": "io", "load": "io", "explain": "explain", "draw_graph": "viz",
               "set_num_threads": "threads", "get_num_threads": "threads"}


def __getattr__(name):
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_ATTRS:
        value = getattr(importlib.import_module(f".{_LAZY_ATTRS[name]}", __name__), name)
        globals()[name] = value  # importing chainrule.explain bound the module here: the function wins
        return value
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _LAZY_MODULES | set(_LAZY_ATTRS))
