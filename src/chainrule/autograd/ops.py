"""Every differentiable operation: a ``Function`` class (forward on arrays, backward on Tensors).

To add an op:
1. write its class here: ``forward`` on ndarrays, ``backward`` with chainrule's own ops (so it can be
   differentiated again), and ``sum_to`` where inputs may have been broadcast;
2. add the functional form below its class and, if torch has it as a method, its name to
   ``tensor._METHODS``;
3. add one line to the table in ``tests/op_table.py``: it is then gradchecked (first and second
   order, several shapes) and compared with torch.

Local derivatives are in the docstrings: for y = f(x), backward receives g = dL/dy and returns
dL/dx = g * f'(x) (elementwise ops) or the vector-Jacobian product J^T g (the rest).  An optional
``backward_np`` repeats the rule on ndarrays for speed (first-order backward only).

Sections, in order (each op's class is followed by its functional form):

=================================  =========================================================
helpers                            dtype promotion, dims, ``sum_to`` (undoes broadcasting)
broadcasting pair                  ``SumTo`` <-> ``BroadcastTo``: each is the other's adjoint
arithmetic                         + - * / ** with tensors, and the scalar-operand variants
elementwise functions              exp, log, sqrt, sin, ..., activations, maximum, where
no-grad elementwise ops            comparisons, sign, isnan, floor, isclose, ... (no gradient)
reductions                         sum, mean, var, std, amax, max/min(dim), logsumexp, prod, norm, cumsum, cumprod
shape and indexing                 reshape, permute, getitem <-> IndexAdd, gather, cat, pad, ...
linear algebra                     matmul (1-D, 2-D, batched), einsum and the fused ``Linear``
softmax family                     softmax, log_softmax (stable)
dtype, copies, in-place            cast, clone, the in-place machinery (``inplace``)
small factories, sorting           zeros_like, ...; sort, topk, median, kthvalue (values are a gather)
=================================  =========================================================
"""

from __future__ import annotations

import builtins
import math
from collections import namedtuple

import numpy as np

from .. import _dtypes
from .. import random as _random
from . import function as _fnmod
from .function import Function

Tensor = None  # bound by tensor.py
_make = None


def _bind_tensor(cls):
    global Tensor, _make
    Tensor = cls
    _make = cls._make


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
def as_tensor_like(x, like=None):
    """Make ``x`` a Tensor; Python numbers take ``like``'s dtype (no upcast of float32)."""
    if isinstance(x, Tensor):
        return x
    if like is not None and isinstance(x, (int, float, bool, np.number, np.bool_)):
        dt = like.data.dtype
        if dt.kind in "iub" and isinstance(x, (float, np.floating)):
            dt = _dtypes.get_default_dtype()
        return _make(np.asarray(x, dtype=dt))
    return _make(_dtypes.infer_array(x))


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def promote(a, b):
    """Torch's type promotion for two tensors.

    A higher category (bool < integer < float) wins; within one category the wider dtype wins, except
    that a 0-d tensor beside a tensor with dimensions counts like a Python number: it changes the
    result only if its category is higher (float32 tensor * 0-d float64 tensor stays float32).
    """
    da, db = a.data.dtype, b.data.dtype
    if da == db:
        return a, b
    ca, cb = _CATEGORY[da.kind], _CATEGORY[db.kind]
    za, zb = a.data.ndim == 0, b.data.ndim == 0
    if za != zb:
        zero, dims = (da, db) if za else (db, da)
        dt = zero if _CATEGORY[zero.kind] > _CATEGORY[dims.kind] else dims
    elif ca != cb:
        dt = da if ca > cb else db
    else:
        dt = np.promote_types(da, db)
    return (a if da == dt else cast(a, dt)), (b if db == dt else cast(b, dt))


def _tensors(a, b):
    a = as_tensor_like(a, b if isinstance(b, Tensor) else None)
    b = as_tensor_like(b, a)
    return promote(a, b)


def _floatify(a):
    """Integer inputs of float functions (exp, sqrt, /) compute in the default float dtype, as torch."""
    return a if a.dtype.kind == "f" else a.astype(_dtypes.get_default_dtype())


def _dims(dim, ndim):
    """Normalise ``dim`` (None, int or tuple) to a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, (int, np.integer)):
        dim = (dim,)
    out = []
    for d in dim:
        d = int(d)
        n = builtins.max(ndim, 1)
        if not -n <= d < n:
            raise IndexError(f"dimension out of range (expected to be in range of [{-n}, {n - 1}], but got {d})")
        out.append(d % ndim if ndim else 0)
    return tuple(sorted(set(out)))


def _keep_shape(shape, axes):
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


def sum_to(g, shape):
    """Reduce a broadcast gradient back to ``shape``: the one place broadcasting is undone."""
    if g.data.shape == tuple(shape):
        return g
    return SumTo.apply(g, shape=tuple(shape))


def _sum_to_array(a, shape):
    if a.shape == shape:
        return a
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and a.shape[i + lead] != 1)
    r = a.sum(axis=axes, keepdims=True) if axes else a
    return r.reshape(shape)


def _shape_error(op, a, b, why):
    return RuntimeError(f"{op}: {tuple(a)} and {tuple(b)}: {why}")


def _check_broadcast(op, x, y):
    """Raise a clear error (op name and both shapes) when x and y cannot broadcast."""
    try:
        return np.broadcast_shapes(x.shape, y.shape)
    except ValueError:
        raise _shape_error(op, x.shape, y.shape, "shapes cannot be broadcast together") from None


# ---------------------------------------------------------------------------------------------------
# broadcasting pair: broadcast_to <-> sum_to
# ---------------------------------------------------------------------------------------------------
class SumTo(Function):
    """y = sum of x over the broadcast axes, shaped ``shape``.  dL/dx = broadcast(g)."""

    saves_inputs = False

    def forward(self, x):
        self.xshape = x.shape
        return _sum_to_array(x, self.shape)

    def backward(self, g):
        return broadcast_to(g, self.xshape)

    def backward_np(self, g):
        return np.broadcast_to(g, self.xshape)


class BroadcastTo(Function):
    """y = x repeated along broadcast axes.  dL/dx = sum_to(g, x.shape)."""

    saves_inputs = False

    def forward(self, x):
        self.xshape = x.shape
        try:
            return np.broadcast_to(x, self.shape)
        except ValueError:
            raise _shape_error("expand", x.shape, self.shape, "the tensor cannot be expanded to this "
                               "shape (only size-1 dimensions can grow)") from None

    def backward(self, g):
        return sum_to(g, self.xshape)

    def backward_np(self, g):
        return _sum_to_array(g, self.xshape)


def broadcast_to(x, shape):
    shape = tuple(int(s) for s in shape)
    if x.data.shape == shape:
        return x
    return BroadcastTo.apply(x, shape=shape)


def expand(x, shape):
    """torch's expand: -1 keeps a dimension's size."""
    shape = tuple(shape)
    lead = len(shape) - x.ndim
    if lead < 0:
        raise RuntimeError(f"expand: the number of sizes provided ({len(shape)}) must be greater or equal "
                           f"to the number of dimensions in the tensor ({x.ndim})")
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(shape))
    return broadcast_to(x, shape)


# ---------------------------------------------------------------------------------------------------
# arithmetic
# ---------------------------------------------------------------------------------------------------
class Add(Function):
    """y = a + b.  dL/da = g, dL/db = g (reduced over broadcast axes)."""

    saves_inputs = False

    def forward(self, a, b):
        if a.shape != b.shape:
            self.shapes = (a.shape, b.shape)
            _check_broadcast("add", a, b)
        return a + b

    def backward(self, g):
        shapes = self.__dict__.get("shapes")
        if shapes is None:
            return g, g
        return sum_to(g, shapes[0]), sum_to(g, shapes[1])

    def backward_np(self, g):
        shapes = self.__dict__.get("shapes")
        if shapes is None:
            return g, g
        return _sum_to_array(g, shapes[0]), _sum_to_array(g, shapes[1])


class Sub(Function):
    """y = a - b.  dL/da = g, dL/db = -g."""

    saves_inputs = False

    def forward(self, a, b):
        if a.shape != b.shape:
            self.shapes = (a.shape, b.shape)
            _check_broadcast("sub", a, b)
        return a - b

    def backward(self, g):
        shapes = self.__dict__.get("shapes")
        nb = -g if self.needs_input_grad[1] else None
        if shapes is None:
            return g, nb
        return sum_to(g, shapes[0]), (None if nb is None else sum_to(nb, shapes[1]))

    def backward_np(self, g):
        shapes = self.__dict__.get("shapes")
        if shapes is None:
            return g, -g
        return _sum_to_array(g, shapes[0]), _sum_to_array(-g, shapes[1])


class Mul(Function):
    """y = a * b.  dL/da = g * b, dL/db = g * a."""

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("mul", a, b)
        return a * b

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        ga = sum_to(g * b, a.data.shape) if na else None
        gb = sum_to(g * a, b.data.shape) if nb else None
        return ga, gb

    def backward_np(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        return (_sum_to_array(g * b.data, a.data.shape) if na else None,
                _sum_to_array(g * a.data, b.data.shape) if nb else None)


class Div(Function):
    """y = a / b.  dL/da = g / b, dL/db = -g a / b^2."""

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("div", a, b)
        return _floatify(a) / _floatify(b)  # int / int is float32, as torch (not NumPy's float64)

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        ga = sum_to(g / b, a.data.shape) if na else None
        gb = sum_to(-(g * a) / (b * b), b.data.shape) if nb else None
        return ga, gb

    def backward_np(self, g):
        a, b = self.inputs[0].data, self.inputs[1].data
        na, nb = self.needs_input_grad
        return (_sum_to_array(g / b, a.shape) if na else None,
                _sum_to_array(-g * a / (b * b), b.shape) if nb else None)


class Pow(Function):
    """y = a ** b.  dL/da = g b a^(b-1), dL/db = g y log a (0 where a = 0)."""

    def forward(self, a, b):
        if a.dtype.kind in "iu" and b.dtype.kind in "iu":
            return np.power(a, b)  # int ** int stays int, as torch (negative powers raise)
        return np.power(_floatify(a), b)

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        ga = sum_to(g * b * a ** (b - 1.0), a.data.shape) if na else None
        gb = None
        if nb:
            safe = where(a == 0, ones_like(a), a)
            gb = sum_to(where(a == 0, zeros_like(g), g * (a ** b) * log(safe)), b.data.shape)
        return ga, gb


class Neg(Function):
    """y = -x.  dL/dx = -g."""

    saves_inputs = False

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g

    def backward_np(self, g):
        return -g


class AddScalar(Function):
    """y = x + c.  dL/dx = g."""

    _keep = ("c",)

    saves_inputs = False

    def forward(self, x):
        return x + self.c

    def backward(self, g):
        return g

    def backward_np(self, g):
        return g


class MulScalar(Function):
    """y = c x.  dL/dx = c g."""

    _keep = ("c",)

    saves_inputs = False

    def forward(self, x):
        return x * self.c

    def backward(self, g):
        return g * self.c

    def backward_np(self, g):
        return g * self.c


class DivScalar(Function):
    """y = x / c.  dL/dx = g / c."""

    _keep = ("c",)

    saves_inputs = False

    def forward(self, x):
        return _floatify(x) / self.c

    def backward(self, g):
        return g / self.c

    def backward_np(self, g):
        return g / self.c


class RSubScalar(Function):
    """y = c - x.  dL/dx = -g."""

    _keep = ("c",)

    saves_inputs = False

    def forward(self, x):
        return self.c - x

    def backward(self, g):
        return -g

    def backward_np(self, g):
        return -g


class RDivScalar(Function):
    """y = c / x.  dL/dx = -c g / x^2."""

    _keep = ("c",)

    def forward(self, x):
        return self.c / _floatify(x)

    def backward(self, g):
        x = self.inputs[0]
        return g * (-self.c) / (x * x)

    def backward_np(self, g):
        x = self.inputs[0].data
        return g * (-self.c) / (x * x)


class PowScalar(Function):
    """y = x ** c.  dL/dx = c g x^(c-1)."""

    _keep = ("c",)

    def forward(self, x):
        c = self.c
        if x.dtype.kind == "b" and isinstance(c, bool):
            return np.power(x, c).astype(bool)  # bool ** bool stays bool, as torch
        if c == 2 and x.dtype.kind != "b":
            return x * x
        return np.power(_floatify(x) if isinstance(c, float) or c < 0 else x, c)

    def backward(self, g):
        c = self.c
        x = self.inputs[0]
        if c == 0:
            return g * 0.0
        if c == 2:
            return g * (x * 2.0)
        if c == 1:
            return g
        return g * (x ** (c - 1) * c)

    def backward_np(self, g):
        c, x = self.c, self.inputs[0].data
        if c == 2:
            return g * (x * 2.0)
        return g * (c * x ** (c - 1)) if c != 0 else g * 0.0


class RPowScalar(Function):
    """y = c ** x.  dL/dx = g y log c."""

    _keep = ("c",)

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        c = self.c
        int_pow = x.dtype.kind in "iu" and isinstance(c, int)  # bool is an int here: True ** x is 1 ** x
        self.y = np.power(int(c), x) if int_pow else np.power(c, _floatify(x))  # 3 ** int tensor stays int
        return self.y

    def backward(self, g):
        return g * self.output() * math.log(self.c)


def _scalar(c, x):
    """A Python number to combine with x without changing x's float dtype (NEP 50 rules)."""
    if c.__class__ is float or c.__class__ is int:
        return c
    if isinstance(c, (np.floating, float)):
        return float(c)
    if isinstance(c, (bool, np.bool_)):
        return bool(c)  # bool tensor + True stays bool, as torch (NumPy makes bool + 1 an int)
    if isinstance(c, (np.integer, int)):
        return int(c)
    raise TypeError(f"unsupported operand: Tensor and {type(c).__name__}")


def _scalar_op(cls, x, c):
    if isinstance(c, Tensor):  # a Tensor subclass (Parameter) on the right: the general op
        return None
    if not isinstance(c, (int, float, np.number, np.bool_)):
        if isinstance(c, (np.ndarray, list, tuple)):
            return None
        raise TypeError(f"unsupported operand type for Tensor op: {type(c).__name__}")
    c = _scalar(c, x)
    if c.__class__ is float and x.data.dtype.kind != "f":
        x = cast(x, _dtypes.get_default_dtype())
    return cls.apply(x, c=c)


def add_scalar(x, c):
    r = _scalar_op(AddScalar, x, c)
    return r if r is not None else add(x, c)


def mul_scalar(x, c):
    r = _scalar_op(MulScalar, x, c)
    return r if r is not None else mul(x, c)


def rsub_scalar(x, c):
    r = _scalar_op(RSubScalar, x, c)
    return r if r is not None else sub(c, x)


def div_scalar(x, c):
    r = _scalar_op(DivScalar, x, c)
    return r if r is not None else div(x, c)


def rdiv_scalar(x, c):
    r = _scalar_op(RDivScalar, x, c)
    return r if r is not None else div(c, x)


def pow_scalar(x, c):
    r = _scalar_op(PowScalar, x, c)
    return r if r is not None else pow(x, c)


def rpow_scalar(x, c):
    r = _scalar_op(RPowScalar, x, c)
    return r if r is not None else pow(c, x)


def _binary(cls, opname, a, b):
    a, b = _tensors(a, b)
    if a.data.shape != b.data.shape:
        _check_broadcast(opname, a, b)
    return cls.apply(a, b)


def add(a, b, alpha=1):
    return _binary(Add, "add", a, b if alpha == 1 else b * alpha)


def sub(a, b, alpha=1):
    return _binary(Sub, "sub", a, b if alpha == 1 else b * alpha)


def mul(a, b):
    return _binary(Mul, "mul", a, b)


def div(a, b, rounding_mode=None):
    if rounding_mode is not None:
        a, b = _tensors(a, b)
        r = np.floor_divide(a.data, b.data) if rounding_mode == "floor" else np.trunc(a.data / b.data)
        return _make(r.astype(np.result_type(a.data, b.data)))
    return _binary(Div, "div", a, b)


true_divide = div


def pow(a, b):  # noqa: A001
    if not isinstance(b, Tensor) and isinstance(a, Tensor):
        return pow_scalar(a, b)
    return _binary(Pow, "pow", a, b)


def neg(x):
    return Neg.apply(x)


# ---------------------------------------------------------------------------------------------------
# elementwise functions
# ---------------------------------------------------------------------------------------------------
class Exp(Function):
    """y = e^x.  dL/dx = g y."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.y = np.exp(_floatify(x))
        return self.y

    def backward(self, g):
        return g * self.output()

    def backward_np(self, g):
        return g * self.y


class Expm1(Function):
    """y = e^x - 1.  dL/dx = g e^x."""

    def forward(self, x):
        return np.expm1(_floatify(x))

    def backward(self, g):
        return g * exp(self.inputs[0])


class Log(Function):
    """y = ln x.  dL/dx = g / x."""

    def forward(self, x):
        return np.log(_floatify(x))

    def backward(self, g):
        return g / self.inputs[0]

    def backward_np(self, g):
        return g / self.inputs[0].data


class Log1p(Function):
    """y = ln(1 + x).  dL/dx = g / (1 + x)."""

    def forward(self, x):
        return np.log1p(_floatify(x))

    def backward(self, g):
        return g / (self.inputs[0] + 1.0)


class Sqrt(Function):
    """y = sqrt(x).  dL/dx = g / (2 y)."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.y = np.sqrt(_floatify(x))
        return self.y

    def backward(self, g):
        return g / (self.output() * 2.0)

    def backward_np(self, g):
        return g / (self.y * 2.0)


class Sin(Function):
    """y = sin x.  dL/dx = g cos x."""

    def forward(self, x):
        return np.sin(_floatify(x))

    def backward(self, g):
        return g * cos(self.inputs[0])

    def backward_np(self, g):
        return g * np.cos(self.inputs[0].data)


class Cos(Function):
    """y = cos x.  dL/dx = -g sin x."""

    def forward(self, x):
        return np.cos(_floatify(x))

    def backward(self, g):
        return g * -sin(self.inputs[0])

    def backward_np(self, g):
        return g * -np.sin(self.inputs[0].data)


class Tan(Function):
    """y = tan x.  dL/dx = g (1 + y^2)."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.y = np.tan(_floatify(x))
        return self.y

    def backward(self, g):
        y = self.output()
        return g * (y * y + 1.0)


class Atan(Function):
    """y = atan x.  dL/dx = g / (1 + x^2)."""

    def forward(self, x):
        return np.arctan(_floatify(x))

    def backward(self, g):
        x = self.inputs[0]
        return g / (x * x + 1.0)


class Sinh(Function):
    """y = sinh x.  dL/dx = g cosh x."""

    def forward(self, x):
        return np.sinh(_floatify(x))

    def backward(self, g):
        return g * cosh(self.inputs[0])


class Cosh(Function):
    """y = cosh x.  dL/dx = g sinh x."""

    def forward(self, x):
        return np.cosh(_floatify(x))

    def backward(self, g):
        return g * sinh(self.inputs[0])


class Abs(Function):
    """y = |x|.  dL/dx = g sign(x) (0 at 0, as torch)."""

    def forward(self, x):
        return np.abs(x)

    def backward(self, g):
        return g * sign(self.inputs[0])


class Tanh(Function):
    """y = tanh x.  dL/dx = g (1 - y^2)."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        self.y = np.tanh(_floatify(x))
        return self.y

    def backward(self, g):
        y = self.output()
        return g * (1.0 - y * y)

    def backward_np(self, g):
        y = self.y
        return g * (1.0 - y * y)


class Sigmoid(Function):
    """y = 1 / (1 + e^-x), computed stably.  dL/dx = g y (1 - y)."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        x = _floatify(x)
        # e^-|x| never overflows; the two branches are the same function.
        z = np.exp(-np.abs(x))
        self.y = np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)
        return self.y

    def backward(self, g):
        y = self.output()
        return g * (y * (1.0 - y))

    def backward_np(self, g):
        y = self.y
        return g * (y * (1.0 - y))


class Mask(Function):
    """y = x * m for a constant 0/1 (or constant-valued) mask m.  dL/dx = g m.

    The backward of relu, leaky_relu, clamp and max reductions: piecewise-linear functions whose
    derivative is a constant between kinks (their second derivative is zero almost everywhere).
    """

    saves_inputs = False

    def forward(self, x):
        return x * self.m

    def backward(self, g):
        return Mask.apply(g, m=self.m)

    def backward_np(self, g):
        return g * self.m


class ReLU(Function):
    """y = max(x, 0).  dL/dx = g [x > 0]."""

    saves_inputs = False

    def forward(self, x):
        self.m = x > 0
        return np.maximum(x, 0, dtype=x.dtype) if x.dtype.kind == "f" else x * self.m

    def backward(self, g):
        return Mask.apply(g, m=self.m)

    def backward_np(self, g):
        return g * self.m


class LeakyReLU(Function):
    """y = x if x > 0 else a x.  dL/dx = g (1 if x > 0 else a)."""

    saves_inputs = False

    def forward(self, x):
        self.m = np.where(x > 0, 1.0, self.slope).astype(x.dtype)
        return x * self.m

    def backward(self, g):
        return Mask.apply(g, m=self.m)

    def backward_np(self, g):
        return g * self.m


class Clamp(Function):
    """y = min(max(x, lo), hi).  dL/dx = g [lo <= x <= hi] (as torch: inclusive)."""

    saves_inputs = False

    def forward(self, x):
        lo, hi = self.lo, self.hi
        m = np.ones(x.shape, dtype=bool)
        if lo is not None:
            m &= x >= lo
        if hi is not None:
            m &= x <= hi
        self.m = m
        return np.clip(x, lo, hi).astype(x.dtype, copy=False)

    def backward(self, g):
        return Mask.apply(g, m=self.m)

    def backward_np(self, g):
        return g * self.m


class Softplus(Function):
    """y = ln(1 + e^(b x)) / b (linear above ``threshold``).  dL/dx = g sigmoid(b x)."""

    def forward(self, x):
        x = _floatify(x)
        bx = x * self.beta
        y = (np.logaddexp(0, bx) / self.beta).astype(x.dtype, copy=False)
        return np.where(bx > self.threshold, x, y)

    def backward(self, g):
        x = self.inputs[0]
        s = sigmoid(x * self.beta) if self.beta != 1 else sigmoid(x)
        lin = x.data * self.beta > self.threshold
        return where(lin, g, g * s) if lin.any() else g * s


class ELU(Function):
    """y = x if x > 0 else a (e^x - 1).  dL/dx = g (1 if x > 0 else a e^x)."""

    def forward(self, x):
        x = _floatify(x)
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)

    def backward(self, g):
        x = self.inputs[0]
        pos = x.data > 0
        return where(pos, g, g * (exp(minimum(x, zeros_like(x))) * self.alpha))


def _erf(x):
    """erf for arrays, via Numerical Recipes' Chebyshev erfc (relative error < 1.2e-7)."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(-z * z + poly)
    return np.where(x >= 0, 1.0 - erfc, erfc - 1.0).astype(x.dtype, copy=False)


try:  # exact erf when the platform's libm is reachable through NumPy's math module
    _math_erf: np.ufunc | None = np.frompyfunc(math.erf, 1, 1)
except Exception:  # pragma: no cover
    _math_erf = None


def _erf_exact(x):
    # float64 (and small tensors) get libm's exact erf; large float32 tensors the fast approximation,
    # whose error (1.2e-7 relative) is about one float32 ulp.
    if _math_erf is not None and (x.size <= 4096 or x.dtype == np.float64):
        return np.asarray(_math_erf(x), dtype=np.float64).astype(x.dtype)
    return _erf(x)


class Erf(Function):
    """y = erf x.  dL/dx = g 2/sqrt(pi) e^(-x^2)."""

    def forward(self, x):
        return _erf_exact(_floatify(x))

    def backward(self, g):
        x = self.inputs[0]
        return g * (exp(-(x * x)) * (2.0 / math.sqrt(math.pi)))


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x, approximate="none"):
    """GELU: x Phi(x) (exact, via erf) or the tanh approximation, written with differentiable ops."""
    if approximate == "tanh":
        inner = (x + (x * x * x) * 0.044715) * _SQRT_2_OVER_PI
        return x * 0.5 * (tanh(inner) + 1.0)
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(x)


class GELU(Function):
    """y = x Phi(x), Phi the standard normal CDF.  dL/dx = g (Phi(x) + x phi(x))."""

    def forward(self, x):
        x = _floatify(x)
        return (x * 0.5 * (1.0 + _erf_exact(x / math.sqrt(2.0)))).astype(x.dtype, copy=False)

    def backward(self, g):
        x = self.inputs[0]
        cdf = (erf(x * (1.0 / math.sqrt(2.0))) + 1.0) * 0.5
        pdf = exp(x * x * -0.5) * (1.0 / math.sqrt(2.0 * math.pi))
        return g * (cdf + x * pdf)


class Maximum(Function):
    """y = max(a, b) elementwise.  The gradient goes to the larger input; a tie splits it in half."""

    def forward(self, a, b):
        return np.maximum(a, b)

    def backward(self, g):
        return _minmax_backward(self, g, np.greater)


class Minimum(Function):
    """y = min(a, b) elementwise.  The gradient goes to the smaller input; a tie splits it in half."""

    def forward(self, a, b):
        return np.minimum(a, b)

    def backward(self, g):
        return _minmax_backward(self, g, np.less)


def _minmax_backward(node, g, wins):
    a, b = node.inputs
    dt = g.data.dtype
    wa = np.where(wins(a.data, b.data), 1.0, np.where(a.data == b.data, 0.5, 0.0)).astype(dt)
    ga = sum_to(Mask.apply(g, m=wa), a.data.shape) if node.needs_input_grad[0] else None
    gb = sum_to(Mask.apply(g, m=(1.0 - wa).astype(dt)), b.data.shape) if node.needs_input_grad[1] else None
    return ga, gb


class Where(Function):
    """y = a where cond else b.  dL/da = g [cond], dL/db = g [not cond]."""

    saves_inputs = False

    def forward(self, a, b):
        return np.where(self.cond, a, b)

    def backward(self, g):
        a, b = self.inputs
        c = self.cond
        ga = sum_to(Mask.apply(g, m=c), a.data.shape) if self.needs_input_grad[0] else None
        gb = sum_to(Mask.apply(g, m=~c), b.data.shape) if self.needs_input_grad[1] else None
        return ga, gb

    def backward_np(self, g):
        a, b = self.inputs
        c = self.cond
        return (_sum_to_array(g * c, a.data.shape) if self.needs_input_grad[0] else None,
                _sum_to_array(g * ~c, b.data.shape) if self.needs_input_grad[1] else None)


def _unary(cls):
    def f(x):
        return cls.apply(x)
    f.__name__ = cls.__name__.lower()
    f.__doc__ = cls.__doc__
    return f


exp = _unary(Exp)
expm1 = _unary(Expm1)
log = _unary(Log)
log1p = _unary(Log1p)
sqrt = _unary(Sqrt)
sin = _unary(Sin)
cos = _unary(Cos)
tan = _unary(Tan)
atan = _unary(Atan)
sinh = _unary(Sinh)
cosh = _unary(Cosh)
abs = _unary(Abs)  # noqa: A001
tanh = _unary(Tanh)
sigmoid = _unary(Sigmoid)
relu = _unary(ReLU)
erf = _unary(Erf)


def log2(x):
    return log(x) * (1.0 / math.log(2.0))


def log10(x):
    return log(x) * (1.0 / math.log(10.0))


def exp2(x):
    return rpow_scalar(x, 2.0)


def rsqrt(x):
    return pow_scalar(x, -0.5)


def square(x):
    return PowScalar.apply(x, c=2)


def reciprocal(x):
    return RDivScalar.apply(x, c=1.0)


def leaky_relu(x, negative_slope=0.01):
    return LeakyReLU.apply(x, slope=negative_slope)


def softplus(x, beta=1.0, threshold=20.0):
    return Softplus.apply(x, beta=beta, threshold=threshold)


def elu(x, alpha=1.0):
    return ELU.apply(x, alpha=alpha)


def clamp(x, min=None, max=None):  # noqa: A002
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    if isinstance(min, Tensor) or isinstance(max, Tensor):
        r = x
        if min is not None:
            r = maximum(r, as_tensor_like(min, x))
        if max is not None:
            r = minimum(r, as_tensor_like(max, x))
        return r
    if x.data.dtype.kind != "f" and (isinstance(min, float) or isinstance(max, float)):
        x = cast(x, _dtypes.get_default_dtype())  # int tensor, float bound: the result is float, as torch
    return Clamp.apply(x, lo=min, hi=max)


clip = clamp


def maximum(a, b):
    return _binary(Maximum, "maximum", a, b)


def minimum(a, b):
    return _binary(Minimum, "minimum", a, b)


def where(cond, a=None, b=None):
    """``where(cond, a, b)``: elementwise choice; ``where(cond)`` gives the indices of true entries."""
    c = cond.data if isinstance(cond, Tensor) else np.asarray(cond)
    if a is None and b is None:
        return tuple(_make(i.astype(np.int64)) for i in np.nonzero(c))
    a, b = _tensors(a, b)
    try:
        shape = np.broadcast_shapes(c.shape, a.data.shape, b.data.shape)
    except ValueError:
        raise RuntimeError(f"where: condition {tuple(c.shape)}, input {tuple(a.shape)} and other "
                           f"{tuple(b.shape)} cannot be broadcast together") from None
    # The mask takes the output's shape; Where's backward reduces each gradient with sum_to.
    return Where.apply(a, b, cond=np.broadcast_to(c.astype(bool, copy=False), shape))


# ---------------------------------------------------------------------------------------------------
# no-grad elementwise ops
# ---------------------------------------------------------------------------------------------------
def _nograd(npfn, out_dtype=None):
    def f(x, *args):
        r = np.asarray(npfn(x.data, *[_raw(a) for a in args]))
        return _make(r if out_dtype is None else r.astype(out_dtype))
    f.__name__ = npfn.__name__
    return f


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


sign = _nograd(np.sign)
isnan = _nograd(np.isnan)
isinf = _nograd(np.isinf)
isfinite = _nograd(np.isfinite)
logical_not = _nograd(np.logical_not)
floor = _nograd(np.floor)
ceil = _nograd(np.ceil)
trunc = _nograd(np.trunc)
eq = _nograd(np.equal)
ne = _nograd(np.not_equal)
lt = _nograd(np.less)
le = _nograd(np.less_equal)
gt = _nograd(np.greater)
ge = _nograd(np.greater_equal)


class Remainder(Function):
    """y = a - b floor(a / b) (sign of b; ``trunc``: fmod's a - b trunc(a / b), sign of a).
    dL/da = g, dL/db = -g floor(a / b) (trunc(a / b) for fmod), as torch."""

    def forward(self, a, b):
        if a.shape != b.shape:
            _check_broadcast("fmod" if self.trunc else "remainder", a, b)
        return np.fmod(a, b) if self.trunc else np.mod(a, b)

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        gb = None
        if nb:
            q = np.true_divide(a.data, b.data)
            q = np.trunc(q) if self.trunc else np.floor(q)
            gb = sum_to(Mask.apply(g, m=(-q).astype(g.data.dtype)), b.data.shape)
        return (sum_to(g, a.data.shape) if na else None), gb


def remainder(a, b):
    """Python's ``a % b`` (the result has the sign of b); differentiable like torch.remainder."""
    a, b = _tensors(a, b)
    return Remainder.apply(a, b, trunc=False)


def fmod(a, b):
    """C's fmod (the result has the sign of a); differentiable like torch.fmod."""
    a, b = _tensors(a, b)
    return Remainder.apply(a, b, trunc=True)


def round(x, decimals=0):  # noqa: A001
    return _make(np.round(x.data, decimals))


def equal(a, b) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a.data, _raw(b)))


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    return bool(np.allclose(a.data, _raw(b), rtol=rtol, atol=atol, equal_nan=equal_nan))


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """|a - b| <= atol + rtol |b| elementwise (broadcasting), as a bool tensor (no gradient)."""
    return _make(np.asarray(np.isclose(a.data, _raw(b), rtol=rtol, atol=atol, equal_nan=equal_nan)))


class NanToNum(Function):
    """y = x with NaN, +inf and -inf replaced by numbers.  dL/dx = g where x is finite, else 0 (as torch)."""

    saves_inputs = False

    def forward(self, x):
        self.m = np.isfinite(x)
        return np.nan_to_num(x, nan=self.nan, posinf=self.posinf, neginf=self.neginf)

    def backward(self, g):
        return Mask.apply(g, m=self.m)

    def backward_np(self, g):
        return g * self.m


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    return NanToNum.apply(x, nan=nan, posinf=posinf, neginf=neginf)


def count_nonzero(x, dim=None):
    return _make(np.asarray(np.count_nonzero(x.data, axis=dim), dtype=np.int64))


# ---------------------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------------------
class Sum(Function):
    """y = sum of x over ``axes``.  dL/dx = g broadcast back to x's shape."""

    saves_inputs = False

    def forward(self, x):
        self.xshape = x.shape
        return x.sum(axis=self.axes, keepdims=self.keepdim, dtype=self.dtype)

    def backward(self, g):
        if not self.keepdim:
            g = reshape(g, _keep_shape(self.xshape, self.axes))
        return broadcast_to(g, self.xshape)

    def backward_np(self, g):
        if not self.keepdim:
            g = g.reshape(_keep_shape(self.xshape, self.axes))
        return np.broadcast_to(g, self.xshape)


def sum(x, dim=None, keepdim=False, dtype=None):  # noqa: A001
    axes = _dims(dim, x.data.ndim)
    dt = _dtypes.as_dtype(dtype)
    if dt is None and x.data.dtype.kind in "bi" and x.data.dtype != np.int64:
        dt = np.dtype(np.int64)  # torch sums bools and small ints as int64
    return Sum.apply(x, axes=axes, keepdim=keepdim, dtype=dt)


class Mean(Function):
    """y = mean of x over ``axes`` (n values).  dL/dx = g / n broadcast back."""

    saves_inputs = False

    def forward(self, x):
        if x.dtype.kind != "f":
            raise RuntimeError(f"mean(): could not infer output dtype: input dtype must be floating "
                               f"point, got {x.dtype}; use x.float().mean()")
        self.xshape = x.shape
        self.n = int(np.prod([x.shape[a] for a in self.axes])) if self.axes else 1
        return x.mean(axis=self.axes, keepdims=self.keepdim)

    def backward(self, g):
        if not self.keepdim:
            g = reshape(g, _keep_shape(self.xshape, self.axes))
        return broadcast_to(g * (1.0 / self.n) if self.n else g, self.xshape)

    def backward_np(self, g):
        if not self.keepdim:
            g = g.reshape(_keep_shape(self.xshape, self.axes))
        return np.broadcast_to(g * (1.0 / self.n) if self.n else g, self.xshape)


def mean(x, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        x = cast(x, _dtypes.as_dtype(dtype))
    return Mean.apply(x, axes=_dims(dim, x.data.ndim), keepdim=keepdim)


def var(x, dim=None, unbiased=None, keepdim=False, correction=None):
    """Variance sum((x - mean)^2) / (n - correction); correction 1 (Bessel) unless unbiased=False."""
    if correction is None:
        correction = 0 if unbiased is False else 1
    axes = _dims(dim, x.data.ndim)
    n = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    d = x - mean(x, dim=axes, keepdim=True)
    return sum(d * d, dim=axes, keepdim=keepdim) * (1.0 / builtins.max(n - correction, 0) if n - correction > 0
                                                    else math.nan)


class StdFromVar(Sqrt):
    """y = sqrt(v) for ``std``.  dL/dv = g / (2 y), and 0 where y = 0 (as torch: a constant sample has
    no direction of steepest change, and 0/0 would poison every gradient it touches)."""

    def backward(self, g):
        y = self.output()
        zero = y == 0
        return where(zero, zeros_like(g), g / (where(zero, ones_like(y), y) * 2.0))

    def backward_np(self, g):
        y = self.y
        zero = y == 0
        return np.where(zero, 0, g / (np.where(zero, 1, y) * 2.0))


def std(x, dim=None, unbiased=None, keepdim=False, correction=None):
    """sqrt(var(x)); its gradient is 0 (not NaN) where the variance is 0, as torch's."""
    return StdFromVar.apply(var(x, dim, unbiased=unbiased, keepdim=keepdim, correction=correction))


def var_mean(x, dim=None, unbiased=None, keepdim=False, correction=None):
    return var(x, dim, unbiased, keepdim, correction), mean(x, dim, keepdim)


def std_mean(x, dim=None, unbiased=None, keepdim=False, correction=None):
    return std(x, dim, unbiased, keepdim, correction), mean(x, dim, keepdim)


class AmaxAmin(Function):
    """y = max (or min) over ``axes``.  Ties share the gradient equally (as torch's amax/amin)."""

    def forward(self, x):
        if x.size == 0 and self.axes:
            raise RuntimeError("amax/amin: cannot reduce over an empty dimension")
        f = np.max if self.is_max else np.min
        self.yk = f(x, axis=self.axes, keepdims=True)
        return self.yk if self.keepdim else self.yk.reshape([s for i, s in enumerate(x.shape)
                                                               if i not in self.axes])

    def backward(self, g):
        x = self.inputs[0]
        m = (x.data == self.yk)
        w = (m / m.sum(axis=self.axes, keepdims=True)).astype(g.data.dtype)
        if not self.keepdim:
            g = reshape(g, self.yk.shape)
        return Mask.apply(broadcast_to(g, x.data.shape), m=w)


def amax(x, dim=None, keepdim=False):
    return AmaxAmin.apply(x, axes=_dims(dim, x.data.ndim), keepdim=keepdim, is_max=True)


def amin(x, dim=None, keepdim=False):
    return AmaxAmin.apply(x, axes=_dims(dim, x.data.ndim), keepdim=keepdim, is_max=False)


MinMaxResult = namedtuple("MinMaxResult", ["values", "indices"])
TopKResult = namedtuple("TopKResult", ["values", "indices"])
SortResult = namedtuple("SortResult", ["values", "indices"])


def _max_min(x, dim, keepdim, is_max, other):
    if isinstance(dim, Tensor):  # torch.max(a, b) is the elementwise maximum
        return (maximum if is_max else minimum)(x, dim)
    if other is not None:
        return (maximum if is_max else minimum)(x, other)
    if dim is None:
        return amax(x) if is_max else amin(x)  # full reduction: ties share the gradient, as torch
    d = _dims(dim, x.data.ndim)[0] if x.data.ndim else 0
    if x.data.ndim == 0:
        return MinMaxResult(x, _make(np.zeros((), np.int64)))
    arg = np.argmax if is_max else np.argmin
    idx = np.expand_dims(arg(x.data, axis=d), d)
    values = gather(x, d, _make(idx))
    if not keepdim:
        values = squeeze(values, d)
        idx = np.squeeze(idx, d)
    return MinMaxResult(values, _make(idx.astype(np.int64)))


def max(x, dim=None, keepdim=False, *, other=None):  # noqa: A001
    """``max(x)`` (ties share the gradient), ``max(x, dim)`` -> (values, indices) with the gradient
    routed to the index returned (the first maximum, as torch), or ``max(a, b)`` elementwise."""
    return _max_min(x, dim, keepdim, True, other)


def min(x, dim=None, keepdim=False, *, other=None):  # noqa: A001
    return _max_min(x, dim, keepdim, False, other)


def argmax(x, dim=None, keepdim=False):
    if dim is None:
        return _make(np.asarray(np.argmax(x.data), dtype=np.int64))
    return _make(np.argmax(x.data, axis=dim, keepdims=keepdim).astype(np.int64))


def argmin(x, dim=None, keepdim=False):
    if dim is None:
        return _make(np.asarray(np.argmin(x.data), dtype=np.int64))
    return _make(np.argmin(x.data, axis=dim, keepdims=keepdim).astype(np.int64))


class LogSumExp(Function):
    """y = log sum exp(x) over ``axes``, computed as m + log sum exp(x - m).  dL/dx = g softmax(x)."""

    saves_output = True

    def forward(self, x):
        x = _floatify(x)
        m = np.max(x, axis=self.axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        yk = np.log(np.sum(np.exp(x - m), axis=self.axes, keepdims=True)) + m
        self.y = yk.astype(x.dtype, copy=False)
        return self.y if self.keepdim else self.y.reshape([s for i, s in enumerate(x.shape) if i not in self.axes])

    def backward(self, g):
        x = self.inputs[0]
        if not self.keepdim:
            g = reshape(g, self.y.shape)
        return g * exp(x - self.output())


def logsumexp(x, dim=None, keepdim=False):
    return LogSumExp.apply(x, axes=_dims(dim, x.data.ndim), keepdim=keepdim)


def prod(x, dim=None, keepdim=False, dtype=None):
    """Product over ``dim``.  dL/dx_i = g * prod_{j != i} x_j (exact with zeros too)."""
    if dtype is not None:
        x = cast(x, _dtypes.as_dtype(dtype))
    if dim is None:
        return Prod.apply(reshape(x, (-1,)), axis=0, keepdim=False)
    return Prod.apply(x, axis=_dims(dim, x.data.ndim)[0], keepdim=keepdim)


class Prod(Function):
    """y = prod_i x_i along ``axis``.  dL/dx_i = g prod_{j != i} x_j."""

    def forward(self, x):
        return np.prod(x, axis=self.axis, keepdims=self.keepdim)

    def backward(self, g):
        x = self.inputs[0]
        if not self.keepdim:
            g = unsqueeze(g, self.axis)
        others = _ProdOthers.apply(x, axis=self.axis)
        return g * others


class _ProdOthers(Function):
    """z_i = prod_{j != i} x_j along ``axis``, by exclusive cumulative products from both sides."""

    def forward(self, x):
        ax = self.axis
        n = x.shape[ax]
        ones = np.ones_like(np.take(x, [0], axis=ax)) if n else x
        left = np.cumprod(np.concatenate([ones, np.take(x, range(n - 1), axis=ax)], axis=ax), axis=ax)
        rev = np.flip(x, axis=ax)
        right = np.flip(np.cumprod(np.concatenate([ones, np.take(rev, range(n - 1), axis=ax)], axis=ax),
                                   axis=ax), axis=ax)
        return left * right

    def backward(self, g):
        # d z_i / d x_k = prod_{j != i, k} x_j: computed by the same trick on each pair (small n only)
        x = self.inputs[0]
        ax = self.axis
        n = x.shape[ax]
        parts = []
        for k in range(n):
            xk = concatenate([narrow(x, ax, 0, k), ones_like(narrow(x, ax, k, 1)), narrow(x, ax, k + 1, n - k - 1)],
                             ax) if n > 1 else ones_like(x)
            contrib = _ProdOthers.apply(xk, axis=ax) * g
            mask = np.ones([n if i == ax else 1 for i in range(x.ndim)], dtype=x.dtype)
            mask.reshape(-1)[k] = 0
            parts.append(sum(Mask.apply(contrib, m=mask), dim=ax, keepdim=True))
        return concatenate(parts, ax)


class Norm2(Function):
    """y = sqrt(sum x^2) over ``axes``.  dL/dx = g x / y (0 where y = 0, as torch)."""

    saves_output = True

    def forward(self, x):
        x = _floatify(x)
        self.y = np.sqrt(np.sum(x * x, axis=self.axes, keepdims=True))
        return self.y if self.keepdim else self.y.reshape([s for i, s in enumerate(x.shape) if i not in self.axes])

    def backward(self, g):
        x = self.inputs[0]
        if not self.keepdim:
            g = reshape(g, self.y.shape)
        y = self.output()
        safe = where(self.y == 0, ones_like(y), y)
        return Mask.apply(g * x / safe, m=np.broadcast_to(self.y != 0, x.data.shape))


def norm(x, p="fro", dim=None, keepdim=False):
    """Vector p-norm over ``dim`` (all elements by default): (sum |x|^p)^(1/p); 'fro' = 2; inf = max|x|."""
    axes = _dims(dim, x.data.ndim)
    if p in ("fro", 2, 2.0):
        return Norm2.apply(x, axes=axes, keepdim=keepdim)
    if p in (math.inf, "inf"):
        return amax(abs(x), dim=axes, keepdim=keepdim)
    if p in (-math.inf, "-inf"):
        return amin(abs(x), dim=axes, keepdim=keepdim)
    if p == 1:
        return sum(abs(x), dim=axes, keepdim=keepdim)
    if p == 0:
        return sum(cast(x != 0, x.dtype), dim=axes, keepdim=keepdim)
    return sum(abs(x) ** float(p), dim=axes, keepdim=keepdim) ** (1.0 / float(p))


def all(x, dim=None, keepdim=False):  # noqa: A001
    return _make(np.asarray(np.all(x.data, axis=dim, keepdims=keepdim)))


def any(x, dim=None, keepdim=False):  # noqa: A001
    return _make(np.asarray(np.any(x.data, axis=dim, keepdims=keepdim)))


class Cumsum(Function):
    """y_i = sum_{j <= i} x_j along ``dim``.  dL/dx_i = sum_{j >= i} g_j (a reversed cumsum)."""

    saves_inputs = False

    def forward(self, x):
        return np.cumsum(x, axis=self.dim, dtype=x.dtype if x.dtype.kind == "f" else np.int64)

    def backward(self, g):
        return flip(cumsum(flip(g, self.dim), self.dim), self.dim)


def cumsum(x, dim, dtype=None):
    if dtype is not None:
        x = cast(x, _dtypes.as_dtype(dtype))
    return Cumsum.apply(x, dim=_dims(dim, x.data.ndim)[0])


class Cumprod(Function):
    """y_i = prod_{j <= i} x_j along ``dim``.  dL/dx_k = sum_{i >= k} g_i prod_{j <= i, j != k} x_j.

    Exact with zeros, to every order: along each line let z be the first zero of x.  For k < z,
    dL/dx_k = revcumsum(g y)_k / x_k (x_k != 0); for k = z it is y_{z-1} sum_{i >= z} g_i prod_{z < j <= i} x_j;
    for k > z it is y_{z-1} x_z (the same rule on x with x_{<= z} set to 1)_k, which is 0 but keeps the
    dependence on x_z that second derivatives need.  O(n) per line and per zero (no n x n matrix).
    """

    saves_output = True

    def forward(self, x):
        self.y = np.cumprod(x, axis=self.dim, dtype=x.dtype if x.dtype.kind == "f" else np.int64)
        return self.y

    def backward(self, g):
        return _cumprod_vjp(self.inputs[0], self.output(), g, self.dim)

    def backward_np(self, g):
        x, y, ax = self.inputs[0].data, self.y, self.dim
        zero = x == 0
        rc = np.flip(np.cumsum(np.flip(g * y, ax), ax), ax)
        if not zero.any():
            return rc / x
        nz = np.cumsum(zero, axis=ax)
        before = nz == 0
        first = zero & (nz == 1)
        out = np.where(before, rc / np.where(before, x, 1), 0)
        pre = np.prod(np.where(before, x, 1), axis=ax, keepdims=True)
        yr = np.cumprod(np.where(before | first, 1, x), axis=ax)
        s = np.sum(np.where(before, 0, g * yr), axis=ax, keepdims=True)
        return np.where(first, pre * s, out)  # k > z: exactly 0 (x_z = 0)


def _cumprod_vjp(x, y, g, ax):
    """sum_{i >= k} g_i prod_{j <= i, j != k} x_j, differentiably (Tensors in and out); see ``Cumprod``."""
    rc = flip(cumsum(flip(g * y, ax), ax), ax)
    zero = x.data == 0
    if not zero.any():
        return rc / x
    nz = np.cumsum(zero, axis=ax)
    before = nz == 0
    first = zero & (nz == 1)
    after = ~before & ~first
    dt = x.data.dtype
    out = Mask.apply(rc / where(before, x, 1.0), m=before.astype(dt))
    pre = prod(where(before, x, 1.0), ax, keepdim=True)  # y_{z-1} (1 on lines without a zero)
    xr = where(before | first, 1.0, x)  # x after the first zero, 1 up to it
    yr = cumprod(xr, ax)
    s = sum(Mask.apply(g * yr, m=(~before).astype(dt)), ax, keepdim=True)
    out = out + Mask.apply(broadcast_to(pre * s, x.shape), m=first.astype(dt))
    if after.any():
        xz = sum(Mask.apply(x, m=first.astype(dt)), ax, keepdim=True)
        out = out + Mask.apply(pre * xz * _cumprod_vjp(xr, yr, g, ax), m=after.astype(dt))
    return out


def cumprod(x, dim, dtype=None):
    """Cumulative product along ``dim``; the gradient is exact also where x has zeros (see ``Cumprod``)."""
    if dtype is not None:
        x = cast(x, _dtypes.as_dtype(dtype))
    return Cumprod.apply(x, dim=_dims(dim, x.data.ndim)[0])


# ---------------------------------------------------------------------------------------------------
# shape and indexing
# ---------------------------------------------------------------------------------------------------
class Reshape(Function):
    """y = x viewed with another shape.  dL/dx = g reshaped back."""

    saves_inputs = False

    def forward(self, x):
        self.xshape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise RuntimeError(f"reshape: shape {tuple(self.shape)} is invalid for input of shape "
                               f"{tuple(x.shape)} ({x.size} elements)") from None

    def backward(self, g):
        return reshape(g, self.xshape)

    def backward_np(self, g):
        return g.reshape(self.xshape)


def reshape(x, shape):
    shape = tuple(shape) if not isinstance(shape, (int, np.integer)) else (int(shape),)
    if x.data.shape == shape:
        return x
    return Reshape.apply(x, shape=shape)


view = reshape


def flatten(x, start_dim=0, end_dim=-1):
    nd = x.data.ndim
    if nd == 0:
        return reshape(x, (1,))
    s, e = start_dim % nd, end_dim % nd
    shape = x.shape[:s] + (int(np.prod(x.shape[s:e + 1])),) + x.shape[e + 1:]
    return reshape(x, shape)


def unflatten(x, dim, sizes):
    d = dim % x.ndim
    return reshape(x, x.shape[:d] + tuple(sizes) + x.shape[d + 1:])


def squeeze(x, dim=None):
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        axes = _dims(dim, x.data.ndim) if x.data.ndim else ()
        shape = tuple(s for i, s in enumerate(x.shape) if not (i in axes and s == 1))
    return reshape(x, shape)


def unsqueeze(x, dim):
    nd = x.data.ndim + 1
    if not -nd <= dim < nd:
        raise IndexError(f"unsqueeze: dimension out of range (expected to be in range of [{-nd}, {nd - 1}], "
                         f"but got {dim})")
    d = dim % nd
    return reshape(x, x.shape[:d] + (1,) + x.shape[d:])


class Permute(Function):
    """y = x with axes reordered.  dL/dx = g with the inverse order."""

    saves_inputs = False

    def forward(self, x):
        return np.transpose(x, self.dims)

    def backward(self, g):
        return permute(g, tuple(np.argsort(self.dims)))

    def backward_np(self, g):
        return np.transpose(g, np.argsort(self.dims))


def permute(x, dims):
    nd = x.data.ndim
    dims = tuple(int(d) % nd if nd else 0 for d in dims)
    if sorted(dims) != list(range(nd)):
        raise RuntimeError(f"permute: dims {dims} are not a permutation of the {nd} dimensions of a tensor "
                           f"of shape {tuple(x.shape)}")
    if dims == tuple(range(nd)):
        return x
    return Permute.apply(x, dims=dims)


def transpose(x, dim0=0, dim1=1):
    nd = x.data.ndim
    if nd < 2 and dim0 in (0, -1) and dim1 in (0, 1, -1):
        return x
    dims = list(range(nd))
    a, b = dim0 % nd, dim1 % nd
    dims[a], dims[b] = dims[b], dims[a]
    return permute(x, dims)


swapaxes = transpose


def moveaxis(x, source, destination):
    order = [d for d in range(x.ndim) if d != source % x.ndim]
    order.insert(destination % x.ndim, source % x.ndim)
    return permute(x, order)


def _check_index_dtype(i: np.ndarray) -> None:
    if i.dtype.kind == "f":
        raise IndexError("tensors used as indices must be long, int or bool tensors, got float")


def _index_array(index):
    """Normalise an index: Tensors and lists become arrays; says if it is 'advanced' (copying)."""
    if not isinstance(index, tuple):
        index = (index,)
    out = []
    advanced = False
    for i in index:
        if isinstance(i, Tensor):
            i = i.data
        if isinstance(i, list):
            i = np.asarray(i) if i else np.zeros(0, np.int64)  # x[[]] selects nothing (NumPy's [] is float)
        if isinstance(i, np.ndarray):
            _check_index_dtype(i)
            advanced = True
        out.append(i)
    return tuple(out), advanced


def _index_rows(x, index):
    """``x[index]``, with an error that names the index and the shape."""
    try:
        if index.__class__ is np.ndarray and index.ndim == 1 and index.dtype.kind in "iu" and x.ndim > 1:
            # Whole rows by an integer array (a batch from a dataset): x[index], but np.take copies the
            # rows up to 1.3x faster (the MNIST batch at 1024 rows: 53 -> 42 us).
            return np.take(x, index, axis=0)
        return x[index]
    except IndexError as e:
        raise IndexError(f"index {_fmt_index(index)} is invalid for a tensor of shape {tuple(x.shape)}: {e}") from None


class GetItem(Function):
    """y = x[index].  dL/dx = zeros with g added at ``index`` (repeated indices accumulate)."""

    saves_inputs = False

    def forward(self, x):
        self.xshape = x.shape
        return _index_rows(x, self.index)

    def backward(self, g):
        return IndexAdd.apply(g, index=self.index, shape=self.xshape, advanced=self.advanced)

    def backward_np(self, g):
        out = np.zeros(self.xshape, dtype=g.dtype)
        if self.advanced:
            np.add.at(out, self.index, g)
        else:
            out[self.index] = g
        return out


class IndexAdd(Function):
    """y = zeros(shape) with x added at ``index`` (the adjoint of x[index]).  dL/dx = g[index]."""

    saves_inputs = False

    def forward(self, x):
        out = np.zeros(self.shape, dtype=x.dtype)
        if self.advanced:
            np.add.at(out, self.index, x)
        else:
            out[self.index] = x
        return out

    def backward(self, g):
        return GetItem.apply(g, index=self.index, advanced=self.advanced)


def _fmt_index(index):
    if not isinstance(index, tuple):
        index = (index,)
    return "[" + ", ".join("array" if isinstance(i, np.ndarray) else repr(i) for i in index) + "]"


def getitem(x, index):
    if index.__class__ is np.ndarray and not x.requires_grad and not _fnmod._recording:
        # Rows by an index array with no graph to record (a batch from a dataset, ``X[idx]``): index the
        # array directly; GetItem's bookkeeping costs as much as the copy at batch 32.
        _check_index_dtype(index)
        out = _index_rows(x.data, index)
        return _make(out if out.__class__ is np.ndarray else np.asarray(out))   # x[np.array(2)] of a 1-D x
    idx, advanced = _index_array(index)
    return GetItem.apply(x, index=idx if len(idx) != 1 else idx[0], advanced=advanced)


def narrow(x, dim, start, length):
    d = dim % x.ndim
    return getitem(x, (slice(None),) * d + (slice(start, start + length),))


def select(x, dim, index):
    d = dim % x.ndim
    return getitem(x, (slice(None),) * d + (index,))


def index_select(x, dim, index):
    d = dim % x.ndim
    return getitem(x, (slice(None),) * d + (np.asarray(_raw(index)).astype(np.int64),))


def masked_select(x, mask):
    return getitem(x, _raw(mask).astype(bool))


class Gather(Function):
    """y = take_along_axis(x, idx, dim) (torch.gather).  dL/dx = scatter_add of g at idx."""

    saves_inputs = False

    def forward(self, x):
        self.xshape = x.shape
        return np.take_along_axis(x, self.idx, axis=self.dim)

    def backward(self, g):
        return ScatterAdd.apply(g, idx=self.idx, dim=self.dim, shape=self.xshape)


class ScatterAdd(Function):
    """y = zeros(shape); y[idx along dim] += x (the adjoint of gather).  dL/dx = gather(g, idx)."""

    saves_inputs = False

    def forward(self, x):
        out = np.zeros(self.shape, dtype=x.dtype)
        idx = [np.arange(s).reshape([-1 if i == j else 1 for j in range(x.ndim)]) for i, s in enumerate(x.shape)]
        idx[self.dim] = self.idx
        np.add.at(out, tuple(np.broadcast_arrays(*idx)), x)
        return out

    def backward(self, g):
        return Gather.apply(g, idx=self.idx, dim=self.dim)


def gather(x, dim, index):
    idx = np.asarray(_raw(index))
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"gather: index must be an integer tensor, got {idx.dtype}")
    return Gather.apply(x, idx=idx, dim=dim % x.ndim)


def setitem_(x, index, value):
    idx, _ = _index_array(index)
    idx = idx if len(idx) != 1 else idx[0]
    v = value.data if isinstance(value, Tensor) else value
    if _fnmod._grad_enabled and (x.requires_grad or (isinstance(value, Tensor) and value.requires_grad)):
        if x.grad_fn is None and x.requires_grad:
            raise RuntimeError("a leaf tensor that requires grad is being used in an in-place operation "
                               "(x[...] = v); wrap it in `with chainrule.no_grad():` to initialise it")
        # the value goes in as an argument: inplace records the step when it requires grad, not only x
        return inplace(x, lambda t, v: _setitem_graph(t, idx, v), as_tensor_like(value, x))
    x.data[idx] = v
    _written(x)
    return x


def _setitem_graph(t, idx, value):
    mask = np.zeros(t.shape, dtype=bool)
    mask[idx] = True
    placed = IndexAdd.apply(broadcast_to(value, np.zeros(t.shape)[idx].shape), index=idx, shape=t.shape,
                            advanced=False)
    return where(mask, placed, t)


class Concatenate(Function):
    """y = inputs joined along ``dim``.  dL/dx_k = the slice of g that x_k occupies."""

    saves_inputs = False

    def forward(self, *xs):
        self.sizes = [x.shape[self.dim] for x in xs]
        return np.concatenate(xs, axis=self.dim)

    def backward(self, g):
        out, start = [], 0
        for size, need in zip(self.sizes, self.needs_input_grad):
            out.append(narrow(g, self.dim, start, size) if need else None)
            start += size
        return tuple(out)

    def backward_np(self, g):
        out, start = [], 0
        idx = [slice(None)] * g.ndim
        for size, need in zip(self.sizes, self.needs_input_grad):
            idx[self.dim] = slice(start, start + size)
            out.append(g[tuple(idx)] if need else None)
            start += size
        return tuple(out)


def _dtype_of(tensors):
    dt = tensors[0].data.dtype
    for t in tensors[1:]:
        if t.data.dtype != dt:
            return None
    return dt


def concatenate(tensors, dim=0):
    tensors = [as_tensor_like(t) for t in tensors]
    if not tensors:
        raise RuntimeError("cat: expected a non-empty list of tensors")
    if _dtype_of(tensors) is None:
        dt = tensors[0].data.dtype
        for t in tensors[1:]:  # as torch: the highest category wins, then the widest type (0-d or not)
            o = t.data.dtype
            dt = (dt if _CATEGORY[dt.kind] > _CATEGORY[o.kind] else o if _CATEGORY[o.kind] > _CATEGORY[dt.kind]
                  else np.promote_types(dt, o))
        tensors = [cast(t, dt) for t in tensors]
    nd = tensors[0].ndim
    if nd == 0:
        raise RuntimeError("cat: zero-dimensional tensor (at position 0) cannot be concatenated; use stack")
    d = dim % nd
    ref = tensors[0].shape
    for t in tensors[1:]:
        if t.ndim != nd or builtins.any(a != b for i, (a, b) in enumerate(zip(t.shape, ref)) if i != d):
            kept = [t for t in tensors if t.shape != (0,)]
            if kept and len(kept) < len(tensors):  # torch skips legacy empty 1-D tensors in cat
                return concatenate(kept, dim)
            raise RuntimeError(f"cat: sizes of tensors must match except in dimension {dim}: got "
                               f"{tuple(ref)} and {tuple(t.shape)}")
    return Concatenate.apply(*tensors, dim=d)


cat = concatenate
concat = concatenate


def stack(tensors, dim=0):
    tensors = [as_tensor_like(t) for t in tensors]
    if not tensors:
        raise RuntimeError("stack: expected a non-empty list of tensors")
    ref = tensors[0].shape
    for t in tensors[1:]:
        if t.shape != ref:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got {tuple(ref)} and "
                               f"{tuple(t.shape)}")
    d = dim % (len(ref) + 1)
    return concatenate([unsqueeze(t, d) for t in tensors], d)


def hstack(tensors):
    return concatenate(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return concatenate([t if t.ndim > 1 else unsqueeze(t, 0) for t in tensors], 0)


def split(x, split_size_or_sections, dim=0):
    d = dim % x.ndim
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        s = int(split_size_or_sections)
        if s <= 0:
            raise ValueError(f"split: split_size must be positive, got {s}")
        sizes = [s] * (n // s) + ([n % s] if n % s else [])
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n:
            raise RuntimeError(f"split: sizes {sizes} must sum to the size of dimension {dim} ({n})")
    out, start = [], 0
    for s in sizes:
        out.append(narrow(x, d, start, s))
        start += s
    return tuple(out)


def chunk(x, chunks, dim=0):
    n = x.shape[dim % x.ndim]
    return split(x, builtins.max(1, -(-n // chunks)), dim)


def unbind(x, dim=0):
    return tuple(select(x, dim, i) for i in range(x.shape[dim]))


class Pad(Function):
    """y = x padded with a constant (torch's F.pad order: last dim first).  dL/dx = the inner slice of g."""

    saves_inputs = False

    def forward(self, x):
        return np.pad(x, self.widths, mode="constant", constant_values=self.value)

    def backward(self, g):
        idx = tuple(slice(a, g.shape[i] - b) for i, (a, b) in enumerate(self.widths))
        return getitem(g, idx)


_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}  # torch's name -> NumPy's


def pad(x, pad, mode="constant", value=0.0):  # noqa: A002
    """torch's F.pad: ``pad`` lists (before, after) widths from the last dim backwards.

    'constant' fills with ``value``; 'reflect' mirrors without repeating the edge, 'replicate' repeats it,
    'circular' wraps around.  Negative widths crop.  The non-constant modes are a gather (``index_select``
    with the padded positions' source indices), so their gradient adds up every copy of an element.
    """
    if mode != "constant" and mode not in _PAD_MODES:
        raise ValueError(f"pad: mode {mode!r} is not one of 'constant', 'reflect', 'replicate', 'circular'")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise RuntimeError(f"pad: padding length {len(pad)} must be even and at most 2 * ndim ({2 * x.ndim})")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    y = x
    if builtins.any(a < 0 or b < 0 for a, b in widths):  # negative widths crop, as torch
        crops = [(builtins.max(-a, 0), builtins.max(-b, 0)) for a, b in widths]
        for (a, b), n in zip(crops, x.shape):
            if a + b > n:
                raise RuntimeError(f"pad: cropping {a + b} elements from a dimension of size {n} "
                                   f"(input shape {tuple(x.shape)}, pad {tuple(pad)})")
        y = getitem(y, tuple(slice(a, n - b) for (a, b), n in zip(crops, x.shape)))
        widths = [(builtins.max(a, 0), builtins.max(b, 0)) for a, b in widths]
    if mode == "constant":
        return Pad.apply(y, widths=tuple(widths), value=value)
    for d, (a, b) in enumerate(widths):
        if not (a or b):
            continue
        n = y.shape[d]
        if (mode == "reflect" and builtins.max(a, b) >= n) or builtins.max(a, b) > n or n == 0:
            raise RuntimeError(f"pad: {mode} padding ({a}, {b}) of dim {d} must be smaller than its size {n}"
                               f"{'' if mode == 'reflect' else ' (or equal to it)'} (input shape {tuple(x.shape)})")
        y = index_select(y, d, np.pad(np.arange(n), (a, b), mode=_PAD_MODES[mode]))
    return clone(y) if y is x else y


def flip(x, dims):
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    idx = [slice(None)] * x.ndim
    for d in dims:
        idx[d % x.ndim] = slice(None, None, -1)
    return getitem(x, tuple(idx))


def roll(x, shifts, dims=None):
    if dims is None:
        return reshape(roll(flatten(x), shifts, 0), x.shape)
    idx = np.roll(np.arange(x.shape[dims]), shifts)
    return index_select(x, dims, idx)


def repeat(x, reps):
    reps = tuple(reps)
    if len(reps) < x.ndim:
        raise RuntimeError("repeat: number of repeat dims can not be smaller than number of tensor dims")
    x = reshape(x, (1,) * (len(reps) - x.ndim) + x.shape)
    # tile by broadcasting an inserted axis in front of each dimension, then merging
    shape = []
    for r, s in zip(reps, x.shape):
        shape += [r, s]
    y = broadcast_to(reshape(x, [v for s in x.shape for v in (1, s)]), shape)
    return reshape(y, tuple(r * s for r, s in zip(reps, x.shape)))


def diag(x, diagonal=0):
    if x.ndim == 1:
        n = x.shape[0] + builtins.abs(diagonal)
        idx = np.arange(x.shape[0])
        r, c = (idx, idx + diagonal) if diagonal >= 0 else (idx - diagonal, idx)
        return IndexAdd.apply(x, index=(r, c), shape=(n, n), advanced=True)
    return getitem(x, tuple(np.nonzero(np.eye(*x.shape, k=diagonal, dtype=bool))))


def trace(x):
    return sum(diag(x))


def triu(x, diagonal=0):
    return Mask.apply(x, m=np.triu(np.ones(x.shape[-2:], dtype=x.dtype), diagonal))


def tril(x, diagonal=0):
    return Mask.apply(x, m=np.tril(np.ones(x.shape[-2:], dtype=x.dtype), diagonal))


# ---------------------------------------------------------------------------------------------------
# linear algebra
# ---------------------------------------------------------------------------------------------------
class MatMul(Function):
    """y = a @ b (1-D, 2-D, batched).  For 2-D: dL/da = g b^T, dL/db = a^T g (batch axes summed)."""

    def forward(self, a, b):
        return np.matmul(a, b)

    def backward(self, g):
        a, b = self.inputs
        na, nb = self.needs_input_grad
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if na else None), (g * a if nb else None)
        a2 = unsqueeze(a, 0) if a.ndim == 1 else a
        b2 = unsqueeze(b, -1) if b.ndim == 1 else b
        g2 = g
        if a.ndim == 1:
            g2 = unsqueeze(g2, -2)
        if b.ndim == 1:
            g2 = unsqueeze(g2, -1)
        ga = gb = None
        if na:
            ga = reshape(sum_to(matmul(g2, transpose(b2, -1, -2)), a2.shape), a.shape)
        if nb:
            gb = reshape(sum_to(matmul(transpose(a2, -1, -2), g2), b2.shape), b.shape)
        return ga, gb

    def backward_np(self, g):
        a, b = self.inputs[0].data, self.inputs[1].data
        if a.ndim != 2 or b.ndim != 2:
            return self.backward_via_tensors(g)
        na, nb = self.needs_input_grad
        return (g @ b.T if na else None), (a.T @ g if nb else None)


def matmul(a, b):
    a, b = _tensors(a, b)
    sa, sb = a.data.shape, b.data.shape
    if not sa or not sb:
        raise RuntimeError(f"matmul: both arguments need at least 1 dimension, got {sa} @ {sb}")
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        raise RuntimeError(f"matmul: {sa} @ {sb}: inner dimensions {ka} and {kb} differ")
    if len(sa) > 2 or len(sb) > 2:
        try:
            np.broadcast_shapes(sa[:-2] if len(sa) > 1 else (), sb[:-2] if len(sb) > 1 else ())
        except ValueError:
            raise RuntimeError(f"matmul: {sa} @ {sb}: batch dimensions cannot be broadcast") from None
    return MatMul.apply(a, b)


def mm(a, b):
    if a.ndim != 2 or b.ndim != 2:
        raise RuntimeError(f"mm: both arguments must be 2-D, got {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def bmm(a, b):
    if a.ndim != 3 or b.ndim != 3:
        raise RuntimeError(f"bmm: both arguments must be 3-D, got {tuple(a.shape)} and {tuple(b.shape)}")
    return matmul(a, b)


def mv(a, v):
    return matmul(a, v)


def dot(a, b):
    if a.ndim != 1 or b.ndim != 1:
        raise RuntimeError(f"dot: 1D tensors expected, but got {a.ndim}D and {b.ndim}D tensors")
    return matmul(a, b)


def outer(a, b):
    return mul(unsqueeze(a, 1), unsqueeze(b, 0))


def addmm(c, a, b, beta=1, alpha=1):
    return c * beta + matmul(a, b) * alpha

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _einsum_parse(equation, shapes):
    """Explicit subscripts (one letter per dimension, ``...`` expanded) for ``equation`` and operand shapes."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    ins = lhs.split(",")
    if len(ins) != len(shapes):
        raise ValueError(f"einsum(): {equation!r} names {len(ins)} operands but {len(shapes)} were given")
    used = set(eq) - set(",.->")
    if not used <= set(_LETTERS):
        raise ValueError(f"einsum(): subscripts must be letters, got {equation!r}")
    free = [c for c in _LETTERS if c not in used]
    nell = 0
    for s, shape in zip(ins, shapes):
        if "..." in s:
            nell = builtins.max(nell, len(shape) - (len(s) - 3))
    ell = "".join(free[:nell])
    subs = []
    for s, shape in zip(ins, shapes):
        if "..." in s:
            k = len(shape) - (len(s) - 3)
            s = s.replace("...", ell[nell - k:] if k else "")
        if len(s) != len(shape):
            raise ValueError(f"einsum(): subscripts {s!r} do not match an operand of shape {tuple(shape)}")
        subs.append(s)
    if arrow:
        out = rhs.replace("...", ell)
    else:
        counts = {c: "".join(subs).count(c) for c in set("".join(subs))}
        out = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return subs, out, free[nell:]


class Einsum(Function):
    """y = einsum(equation, x_1, ..., x_n) (np.einsum on explicit subscripts).

    dL/dx_k = einsum(out, the other operands -> subs_k) of g: each operand's gradient is another einsum.
    Letters of x_k found in neither g nor another operand (summed over x_k alone) enter it as a ones
    operand; a letter repeated within x_k (a diagonal, 'ii') gets a fresh letter tied to the first by an
    identity matrix; a size-1 dimension broadcast against a longer one is summed back.
    """

    def forward(self, *xs):
        return np.asarray(np.einsum(self.spec, *xs))

    def backward(self, g):
        xs = self.inputs
        sizes = {}
        for s, x in zip(self.subs, xs):
            for c, n in zip(s, x.shape):
                sizes[c] = builtins.max(sizes.get(c, 1), n)
        grads = []
        for k, (s, x) in enumerate(zip(self.subs, xs)):
            if not self.needs_input_grad[k]:
                grads.append(None)
                continue
            free = iter(self.spare)
            target, extra_subs, extra = "", [], []
            for c in s:
                if c in target:  # repeated letter: a fresh one, tied to the first by an identity
                    c2 = next(free)
                    extra_subs.append(c + c2)
                    extra.append(_make(np.eye(sizes[c], dtype=g.data.dtype)))
                    c = c2
                target += c
            others = [(t, y) for i, (t, y) in enumerate(zip(self.subs, xs)) if i != k]
            have = set(self.out) | set("".join(t for t, _ in others)) | set("".join(extra_subs))
            lone = "".join(dict.fromkeys(c for c in target if c not in have))
            if lone:
                extra_subs.append(lone)
                extra.append(_make(np.ones([sizes[c] for c in lone], dtype=g.data.dtype)))
            spec = ",".join([self.out] + [t for t, _ in others] + extra_subs) + "->" + target
            gk = Einsum.apply(g, *[y for _, y in others], *extra, spec=spec,
                              subs=[self.out] + [t for t, _ in others] + extra_subs, out=target,
                              spare=self.spare[len(s):])
            if gk.shape != x.shape:  # size-1 broadcasting: a letter only x has at full size, or the reverse
                full = np.broadcast_shapes(gk.shape, x.shape)
                gk = sum_to(broadcast_to(gk, full) if full != gk.shape else gk, x.shape)
            grads.append(gk)
        return tuple(grads) if len(grads) > 1 else grads[0]


def einsum(equation, *operands):
    """torch.einsum: ``einsum('ij,jk->ik', a, b)`` (operands also as one list).  Supports ``...``,
    implicit output (letters used once, sorted), repeated letters (diagonals) and size-1 broadcasting."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    xs = [as_tensor_like(x) for x in operands]
    dt = np.result_type(*[x.data.dtype for x in xs])
    xs = [x if x.data.dtype == dt else cast(x, dt) for x in xs]
    subs, out, spare = _einsum_parse(equation, [x.shape for x in xs])
    return Einsum.apply(*xs, spec=",".join(subs) + "->" + out, subs=subs, out=out, spare="".join(spare))


class Linear(Function):
    """y = x W^T + b in one node (fused, for speed).  dL/dx = g W, dL/dW = g^T x, dL/db = sum_rows g."""

    def forward(self, x, w, b=None):
        if x.ndim == 2 and x.shape[0] <= 48 and w.shape[0] >= 256 and w.shape[1] >= 256:
            # Same product, operands swapped: OpenBLAS runs W x^T up to 1.9x faster than x W^T when x
            # has few rows (measured in benchmarks/README.md); the copy back to row order is cheap.
            y = np.ascontiguousarray((w @ x.T).T)
        else:
            y = x @ w.T
        if b is not None:
            y += b
        return y

    def backward(self, g):
        x, w = self.inputs[0], self.inputs[1]
        need = self.needs_input_grad
        gx = matmul(g, w) if need[0] else None
        g2 = reshape(g, (-1, g.shape[-1])) if g.ndim != 2 else g
        x2 = reshape(x, (-1, x.shape[-1])) if x.ndim != 2 else x
        gw = matmul(transpose(g2, 0, 1), x2) if need[1] else None
        if len(need) == 2:
            return gx, gw
        gb = sum(g2, 0) if need[2] else None
        return gx, gw, gb

    def backward_np(self, g):
        x, w = self.inputs[0].data, self.inputs[1].data
        need = self.needs_input_grad
        gx = g @ w if need[0] else None
        g2 = g.reshape(-1, g.shape[-1]) if g.ndim != 2 else g
        gw = (g2.T @ (x.reshape(-1, x.shape[-1]) if x.ndim != 2 else x)) if need[1] else None
        if len(need) == 2:
            return gx, gw
        return gx, gw, (g2.sum(axis=0) if need[2] else None)


def linear(x, weight, bias=None):
    """y = x W^T + b with torch's layout (W: (out_features, in_features))."""
    try:
        in_features = x.data.shape[-1]
    except (AttributeError, IndexError):  # the error path only: the common call pays nothing for it
        if not isinstance(x, Tensor):
            raise TypeError(f"linear: input must be a chainrule Tensor, got {type(x).__name__}") from None
        raise RuntimeError(f"linear: input must have at least 1 dimension (the {weight.shape[-1]} "
                           "in_features), got a 0-d tensor") from None
    if in_features != weight.data.shape[-1]:
        raise RuntimeError(f"linear: input {tuple(x.shape)} @ weight^T {tuple(weight.shape[::-1])}: "
                           f"in_features {x.shape[-1]} and {weight.shape[-1]} differ")
    if x.data.dtype != weight.data.dtype:
        raise TypeError(f"linear: input dtype {x.dtype} differs from weight dtype {weight.dtype}; "
                        f"convert the input (x.to({weight.dtype})) or the model (model.to(...))")
    if bias is None:
        return Linear.apply(x, weight)
    return Linear.apply(x, weight, bias)


# ---------------------------------------------------------------------------------------------------
# softmax family
# ---------------------------------------------------------------------------------------------------
class Softmax(Function):
    """y = exp(x - max) / sum exp(x - max) along ``dim``.  dL/dx = y (g - sum(g y))."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        x = _floatify(x)
        if x.size == 0:  # np.max has no identity for an empty axis; the softmax of nothing is empty
            self.y = x.copy()
            return self.y
        e = np.exp(x - np.max(x, axis=self.dim, keepdims=True))
        e /= np.sum(e, axis=self.dim, keepdims=True)
        self.y = e
        return e

    def backward(self, g):
        y = self.output()
        gy = g * y
        return gy - y * sum(gy, dim=self.dim, keepdim=True)

    def backward_np(self, g):
        y = self.y
        gy = g * y
        gy -= y * gy.sum(axis=self.dim, keepdims=True)
        return gy


class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``dim`` (stable for huge logits).  dL/dx = g - softmax(x) sum(g)."""

    saves_inputs = False
    saves_output = True

    def forward(self, x):
        x = _floatify(x)
        if x.size == 0:
            self.y = x.copy()
            return self.y
        s = x - np.max(x, axis=self.dim, keepdims=True)
        self.y = s - np.log(np.sum(np.exp(s), axis=self.dim, keepdims=True))
        return self.y

    def backward(self, g):
        return g - exp(self.output()) * sum(g, dim=self.dim, keepdim=True)

    def backward_np(self, g):
        return g - np.exp(self.y) * g.sum(axis=self.dim, keepdims=True)


def _softmax_dim(x, dim):
    if dim is None:
        dim = 0 if x.ndim in (0, 1, 3) else 1  # torch's legacy implicit choice
    return dim % x.ndim if x.ndim else 0


def softmax(x, dim=None, dtype=None):
    if dtype is not None:
        x = cast(x, _dtypes.as_dtype(dtype))
    return Softmax.apply(x, dim=_softmax_dim(x, dim))


def log_softmax(x, dim=None, dtype=None):
    if dtype is not None:
        x = cast(x, _dtypes.as_dtype(dtype))
    return LogSoftmax.apply(x, dim=_softmax_dim(x, dim))


# ---------------------------------------------------------------------------------------------------
# dtype, copies, in-place
# ---------------------------------------------------------------------------------------------------
class Cast(Function):
    """y = x converted to ``dtype``.  dL/dx = g converted back."""

    saves_inputs = False

    def forward(self, x):
        self.src = x.dtype
        return x.astype(self.dtype)

    def backward(self, g):
        return Cast.apply(g, dtype=self.src)

    def backward_np(self, g):
        return g.astype(self.src)


def cast(x, dtype, copy=False):
    dtype = _dtypes.as_dtype(dtype)
    if x.data.dtype == dtype:
        return clone(x) if copy else x
    if not (x.requires_grad or _fnmod._recording) or (x.requires_grad and dtype.kind != "f"):
        # No graph to record (``X[idx].float()``: Cast's bookkeeping skipped), or an integer or bool result,
        # which has no gradient (as torch).
        return _make(x.data.astype(dtype))
    return Cast.apply(x, dtype=dtype)


class Clone(Function):
    """y = a copy of x.  dL/dx = g."""

    saves_inputs = False

    def forward(self, x):
        return x.copy()

    def backward(self, g):
        return g

    def backward_np(self, g):
        return g


def clone(x):
    return Clone.apply(x)


def lerp(a, b, w):
    return a + (b - a) * w


def inplace(x, op, *args):
    """Run ``op(x, *args)`` and write the result into x's buffer (the in-place ops: add_, mul_, ...).

    Under grad mode a leaf that requires grad refuses (as torch), and a non-leaf is re-attached to
    the graph: x becomes the output of ``op`` so gradients flow through the in-place step.
    """
    if _fnmod._grad_enabled and x.requires_grad and x.grad_fn is None:
        raise RuntimeError(
            f"a leaf tensor of shape {tuple(x.shape)} that requires grad is being used in an in-place "
            "operation; wrap parameter updates in `with chainrule.no_grad():`")
    args = [_make(_dtypes.infer_array(a)) if isinstance(a, (list, np.ndarray)) else a for a in args]
    if not (_fnmod._grad_enabled and (x.requires_grad or builtins.any(
            isinstance(a, Tensor) and a.requires_grad for a in args))):
        with _fnmod.no_grad():
            r = op(x, *args)
        if r.data.dtype != x.data.dtype:
            _check_inplace_dtype(r, x)
        _write(x, r.data)
        return x
    old = _make(x.data, x.grad_fn, x.requires_grad)  # the pre-update value, as a separate graph tensor
    old._version = x._version
    if x.grad_fn is not None and x.grad_fn.saves_output:
        x.grad_fn._dirty = True
    r = op(old, *args)
    if r.data.dtype != x.data.dtype:
        _check_inplace_dtype(r, x)
    _write(x, r.data)
    old._version = x._version
    node = r.grad_fn
    if node is not None and node is not old.grad_fn:
        # Nodes recorded before this call still hold x; backward finds the value they used here
        # (engine._unrebind), so they keep their place in the graph, as in torch.
        node._rebased_from = old
        node._keep = node._keep + ("_rebased_from",)
        _fnmod._rebind_seq = node._seq
    x.grad_fn, x.requires_grad = node, r.requires_grad
    return x


def inplace_arith(x, op, ufunc, other):
    """``x.add_(other)``, ``sub_``, ``mul_``, ``div_``: ``inplace(x, op, other)``, in one pass when it can be.

    With no graph to record, a floating-point ``x`` and a Python number or a Tensor of x's dtype and shape,
    ``ufunc`` writes its result straight into x's array: the same numbers as computing ``op(x, other)``
    and copying it back, without the temporary and its extra pass over memory (``x.float().div_(255)``,
    ``p.sub_(lr * p.grad)`` under ``no_grad``).
    """
    a = x.data
    graph = _fnmod._grad_enabled and (x.requires_grad or (other.__class__ is Tensor and other.requires_grad))
    if a.dtype.kind == "f" and a.flags.writeable and not graph:
        if other.__class__ is float or other.__class__ is int:
            ufunc(a, other, out=a)
            _written(x)
            return x
        if other.__class__ is Tensor and other.data.dtype is a.dtype and other.data.shape == a.shape:
            ufunc(a, other.data, out=a)
            _written(x)
            return x
    return inplace(x, op, other)


def _check_inplace_dtype(result, x):
    """As torch: an in-place op may not store a float result in an int tensor (x.long().add_(1.5))."""
    dr, dx = result.data.dtype, x.data.dtype
    if _CATEGORY[dr.kind] > _CATEGORY[dx.kind]:
        raise RuntimeError(f"result type {dr} can't be cast to the desired output type {dx} (in-place operation)")


def _write(x, value):
    if x.data.shape != np.broadcast_shapes(x.data.shape, np.shape(value)):
        raise RuntimeError(f"in-place operation: the result of shape {np.shape(value)} does not fit the "
                           f"tensor of shape {tuple(x.data.shape)}")
    if value is not x.data:
        if not x.data.flags.writeable:
            raise RuntimeError("in-place operation on a read-only tensor (an expanded view?); clone() it first")
        np.copyto(x.data, value, casting="unsafe")
    _written(x)


def _written(x):
    """After a write into ``x``'s array: bump its version (backward checks it) and tell a recording replay."""
    x._version += 1
    if _fnmod._write_hook is not None:
        _fnmod._write_hook(x)


def fill_(x, value):
    if _fnmod._grad_enabled and x.requires_grad:
        return inplace(x, lambda t: t * 0.0 + value)
    x.data.fill(value.item() if isinstance(value, Tensor) else value)
    _written(x)
    return x


def copy_(x, src):
    s = src.data if isinstance(src, Tensor) else np.asarray(src)
    if _fnmod._grad_enabled and (x.requires_grad or (isinstance(src, Tensor) and src.requires_grad)):
        return inplace(x, lambda t, s2: cast(broadcast_to(s2, t.shape), t.dtype) + t * 0.0,
                       as_tensor_like(src, x))
    _write(x, s)
    return x


def random_(x, kind, a, b, generator):
    if _fnmod._grad_enabled and x.requires_grad and x.grad_fn is None:
        raise RuntimeError("a leaf tensor that requires grad is being used in an in-place operation; "
                           "initialise parameters under `with chainrule.no_grad():`")
    rng = _random._rng(generator)
    v = rng.uniform(a, b, x.shape) if kind == "uniform" else rng.normal(a, b, x.shape)
    _write(x, v.astype(x.dtype))
    return x


# ---------------------------------------------------------------------------------------------------
# small factories used by backward rules
# ---------------------------------------------------------------------------------------------------
def zeros_like(x, dtype=None):
    return _make(np.zeros(x.shape, dtype=_dtypes.as_dtype(dtype) or x.data.dtype))


def ones_like(x, dtype=None):
    return _make(np.ones(x.shape, dtype=_dtypes.as_dtype(dtype) or x.data.dtype))


# sorting helpers (no gradient through the permutation itself; values are a gather, so they have one)
def sort(x, dim=-1, descending=False, stable=False):
    idx = np.argsort(-x.data if descending else x.data, axis=dim, kind="stable")
    return SortResult(gather(x, dim, _make(idx)), _make(idx.astype(np.int64)))


def argsort(x, dim=-1, descending=False, stable=False):
    return sort(x, dim, descending, stable).indices


def topk(x, k, dim=-1, largest=True, sorted=True):  # noqa: A002
    idx = np.argsort(-x.data if largest else x.data, axis=dim, kind="stable")
    idx = np.take(idx, range(k), axis=dim)
    return TopKResult(gather(x, dim, _make(idx)), _make(idx.astype(np.int64)))


MedianResult = namedtuple("MedianResult", ["values", "indices"])
KthvalueResult = namedtuple("KthvalueResult", ["values", "indices"])


def _kth_smallest(x, pos, dim, keepdim, result, nan_wins=False):
    """The ``pos``-th smallest (0-based, a stable sort's order) along ``dim``: (values, indices); the
    values are a gather, so the gradient goes to the selected element."""
    if x.data.ndim == 0:
        if pos != 0:
            raise IndexError(f"kthvalue(): k = {pos + 1} is out of range for a 0-d tensor")
        return result(x, _make(np.zeros((), np.int64)))
    d = _dims(dim, x.data.ndim)[0]
    n = x.data.shape[d]
    if not 0 <= pos < n:
        raise IndexError(f"kthvalue(): k = {pos + 1} is out of range for a dimension of size {n}")
    idx = np.take(np.argsort(x.data, axis=d, kind="stable"), [pos], axis=d)
    if nan_wins and x.data.dtype.kind == "f":
        nan = np.isnan(x.data)
        if nan.any():  # torch: a line with a NaN has median NaN (its first NaN)
            idx = np.where(nan.any(axis=d, keepdims=True), np.argmax(nan, axis=d, keepdims=True), idx)
    values = gather(x, d, _make(idx))
    if not keepdim:
        values = squeeze(values, d)
        idx = np.squeeze(idx, d)
    return result(values, _make(idx.astype(np.int64)))


def median(x, dim=None, keepdim=False):
    """torch.median: the lower median ((n - 1) // 2-th smallest) of all elements (a 0-d tensor), or with
    ``dim`` a (values, indices) pair; NaN propagates; the gradient goes to the selected element.  With
    ties the index is the first in a stable sort's order (torch does not promise which one)."""
    if dim is None:
        flat = reshape(x, (-1,))
        return _kth_smallest(flat, (flat.data.size - 1) // 2, 0, False, MedianResult, nan_wins=True).values
    n = x.data.shape[_dims(dim, x.data.ndim)[0]] if x.data.ndim else 1
    return _kth_smallest(x, (n - 1) // 2, dim, keepdim, MedianResult, nan_wins=True)


def kthvalue(x, k, dim=-1, keepdim=False):
    """torch.kthvalue: the k-th smallest (k from 1) along ``dim`` as (values, indices); gradient to it.
    With ties the index is the first in a stable sort's order (torch may return another tied index)."""
    return _kth_smallest(x, int(k) - 1, dim, keepdim, KthvalueResult)
