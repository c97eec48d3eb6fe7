"""``Tensor``: an ndarray that remembers how it was computed.

A tensor holds its value in ``data`` (a NumPy array), and — when it is the result of an operation
on tensors that require grad — the graph node that made it in ``grad_fn``.  ``backward()`` walks
those nodes backwards (see ``engine.py``) and leaves dL/dx in the ``.grad`` of every leaf.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _dtypes
from . import _format, engine
from . import function as _fn
from . import ops

_ndarray = np.ndarray
_AddScalar = ops.AddScalar
_MulScalar = ops.MulScalar
_new = object.__new__


class Tensor:
    """A multi-dimensional array with automatic differentiation (PyTorch's ``torch.Tensor``).

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()          # y = sum_i x_i^2
    >>> y.backward()               # dy/dx_i = 2 x_i
    >>> x.grad
    tensor([2., 4., 6.])
    """

    __slots__ = ("data", "requires_grad", "grad", "grad_fn", "_version", "__weakref__")
    __array_priority__ = 1000  # ndarray + Tensor gives a Tensor (NumPy defers to our __radd__)

    data: np.ndarray
    requires_grad: bool
    grad: Tensor | None
    grad_fn: _fn.Function | None
    _version: int

    if TYPE_CHECKING:
        # The op methods (``exp``, ``sum``, ``matmul``, ...) are bound from ``ops`` after the class body
        # (``_METHODS``); this tells type checkers they exist without a second list to keep in step.
        def __getattr__(self, name: str) -> Any: ...

    def __init__(self, *args, dtype=None, requires_grad: bool = False):
        """torch's legacy constructor: ``Tensor(data)`` or ``Tensor(*sizes)``.

        * ``Tensor(data)`` (a list, ndarray or Tensor): always a floating-point tensor: ints and bools
          become float32, torch's default dtype (``Tensor([1, 2])`` is ``tensor([1., 2.])``); float
          data keeps its dtype (a float64 array stays float64, the rule of every chainrule
          constructor; torch's legacy constructor would make it float32).  ``chainrule.tensor(data)``
          keeps ints as int64.
        * ``Tensor(2, 3)``: a 2x3 tensor of zeros (torch leaves the memory uninitialised; zeros make
          every run the same).  ``Tensor()`` is empty, shape (0,).
        * ``dtype=`` and ``requires_grad=`` are chainrule extensions.
        """
        if args and all(isinstance(a, (int, np.integer)) and not isinstance(a, (bool, np.bool_)) for a in args):
            data = np.zeros(tuple(int(a) for a in args), dtype=_dtypes.as_dtype(dtype) or _dtypes.get_default_dtype())
        elif len(args) == 1:
            data = args[0].data if isinstance(args[0], Tensor) else args[0]
            if isinstance(data, (int, float, bool, complex, np.generic)):
                raise TypeError(f"Tensor(): data must be a sequence (got {type(data).__name__}); for a 0-d "
                                f"tensor use chainrule.tensor({data!r}), for a shape pass ints: Tensor(2, 3)")
            data = _dtypes.infer_array(data, dtype)
            if dtype is None and data.dtype.kind not in "fc":
                data = data.astype(_dtypes.get_default_dtype())
        elif not args:
            data = np.empty((0,), dtype=_dtypes.as_dtype(dtype) or _dtypes.get_default_dtype())
        else:
            raise TypeError("Tensor() takes data (a list or array) or sizes as ints, e.g. Tensor(2, 3); got "
                            + ", ".join(type(a).__name__ for a in args))
        self._init_leaf(data, requires_grad)

    def _init_leaf(self, data: np.ndarray, requires_grad: bool) -> None:
        """A leaf holding ``data`` (``requires_grad_`` checks that its dtype can require grad)."""
        self.data = data
        self.grad = None
        self.grad_fn = None
        self._version = 0
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @staticmethod
    def _make(data, grad_fn=None, requires_grad=False):
        t = _new(Tensor)
        t.data = data
        t.grad_fn = grad_fn
        t.requires_grad = requires_grad
        t.grad = None
        t._version = 0
        return t

    # ---- autograd -------------------------------------------------------------------------------
    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind not in "fc":
            raise RuntimeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype}; "
                "convert first, e.g. x.float()")
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_(False) is only allowed on leaf tensors; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` (``gradient`` = dL/dself).

        ``self`` must be a scalar unless ``gradient`` (same shape as ``self``) is given.  The graph's
        saved values are freed afterwards unless ``retain_graph`` (default: ``create_graph``).
        """
        if not self.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn: "
                "nothing to differentiate (did you forget requires_grad=True, or run under no_grad?)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; this output has shape "
                    f"{tuple(self.shape)}: pass backward(gradient) with a tensor of that shape")
            gradient = Tensor._make(np.ones_like(self.data))
        else:
            gradient = _as_grad(gradient, self)
        if retain_graph is None:
            retain_graph = create_graph
        if inputs is not None:
            ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
            got = engine.run_backward([self], [gradient], retain_graph, create_graph,
                                      capture={id(t): t for t in ins}, accumulate=False)
            for t in ins:
                g = got.get(id(t))
                if g is not None:
                    t.grad = g if t.grad is None else t.grad + g
            return
        engine.run_backward([self], [gradient], retain_graph, create_graph)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep theirs)."""
        fn = self.grad_fn
        if fn is not None:
            fn._retained = weakref.ref(self)
            if "_retained" not in fn._keep:
                fn._keep = fn._keep + ("_retained",)  # retains_grad stays True after backward frees the node
        elif not self.requires_grad:
            raise RuntimeError("can't retain_grad on a tensor that has requires_grad=False")

    @property
    def retains_grad(self) -> bool:
        return self.grad_fn is not None and self.grad_fn._retained is not None

    def detach(self) -> Tensor:
        """The same data, cut from the graph (shares memory, like torch)."""
        return Tensor._make(self.data)

    def detach_(self) -> Tensor:
        self.grad_fn = None
        self.requires_grad = False
        return self

    # ---- array protocol and conversions -------------------------------------------------------------
    def numpy(self, force: bool = False) -> np.ndarray:
        if self.requires_grad and not force:
            raise RuntimeError("can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()")
        return self.data

    def __array__(self, dtype=None, copy=None):
        a = self.data
        if dtype is not None and a.dtype != dtype:
            return a.astype(dtype)
        return a.copy() if copy else a

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to Python scalars, "
                             f"this one has shape {tuple(self.shape)}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.data.size != 1:
            raise RuntimeError(f"Boolean value of a tensor with {self.data.size} values is ambiguous")
        return bool(self.data)

    def __index__(self):
        if self.data.dtype.kind not in "iub" or self.data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.data)

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    @property
    def ndim(self) -> int:
        return self.data.ndim

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    def nelement(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def device(self) -> str:
        return "cpu"

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def element_size(self) -> int:
        return self.data.itemsize

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(self.data.shape[0]):
            yield self[i]

    # Tensors hash by identity (``==`` is elementwise); object's own hash is a C slot, which matters in
    # the optimizers' per-parameter state lookups.
    __hash__ = object.__hash__

    def __contains__(self, element) -> bool:
        return bool((self.data == _raw(element)).any())

    def __format__(self, spec: str) -> str:
        if self.data.ndim == 0 and type(self) is Tensor:  # as torch: f"{loss:.4f}" formats the number
            return self.data.item().__format__(spec)
        return object.__format__(self, spec)

    def __repr__(self) -> str:
        return _format.tensor_repr(self)  # torch's layout, dtypes named chainrule.*

    # ---- dtype conversions -------------------------------------------------------------------------
    def to(self, *args, dtype=None, copy: bool = False, **kwargs) -> Tensor:
        """``to(dtype)``; device arguments ('cpu') are accepted and ignored."""
        for a in args:
            if isinstance(a, str) and a.startswith(("cpu", "torch.device")):
                continue
            dtype = a
        if dtype is None:
            return self.clone() if copy else self
        return ops.cast(self, _dtypes.as_dtype(dtype), copy)

    def type(self, dtype=None):
        if dtype is None:
            return f"chainrule.{self.data.dtype}"
        return self.to(dtype)

    def float(self) -> Tensor:
        return ops.cast(self, _dtypes.float32)

    def double(self) -> Tensor:
        return ops.cast(self, _dtypes.float64)

    def half(self) -> Tensor:
        return ops.cast(self, _dtypes.float16)

    def long(self) -> Tensor:
        return ops.cast(self, _dtypes.int64)

    def int(self) -> Tensor:
        return ops.cast(self, _dtypes.int32)

    def bool(self) -> Tensor:
        return ops.cast(self, _dtypes.bool_)

    def cpu(self) -> Tensor:
        return self

    def clone(self) -> Tensor:
        return ops.clone(self)

    def contiguous(self) -> Tensor:
        """self if its memory is already in row-major order, else a copy (writable, unlike an expanded view)."""
        return self if self.data.flags.c_contiguous else ops.clone(self)

    # ---- arithmetic (the hot path: dispatch by exact class first) ----------------------------------
    def __add__(self, other):
        if other.__class__ is Tensor:
            if self.data.dtype is other.data.dtype:
                return ops.Add.apply(self, other)
            return ops.Add.apply(*ops.promote(self, other))
        if (other.__class__ is float or other.__class__ is int) and self.data.dtype.kind == "f":
            return _AddScalar.apply_scalar(self, other)
        return ops.add_scalar(self, other)

    __radd__ = __add__

    def __sub__(self, other):
        if other.__class__ is Tensor:
            if self.data.dtype is other.data.dtype:
                return ops.Sub.apply(self, other)
            return ops.Sub.apply(*ops.promote(self, other))
        return ops.add_scalar(self, -other) if other.__class__ in (float, int) else ops.sub(self, other)

    def __rsub__(self, other):
        return ops.rsub_scalar(self, other)

    def __mul__(self, other):
        if other.__class__ is Tensor:
            if self.data.dtype is other.data.dtype:
                return ops.Mul.apply(self, other)
            return ops.Mul.apply(*ops.promote(self, other))
        if (other.__class__ is float or other.__class__ is int) and self.data.dtype.kind == "f":
            return _MulScalar.apply_scalar(self, other)
        return ops.mul_scalar(self, other)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if other.__class__ is Tensor:
            return ops.div(self, other)
        return ops.div_scalar(self, other)

    def __rtruediv__(self, other):
        return ops.rdiv_scalar(self, other)

    def __floordiv__(self, other):
        return Tensor._make(np.floor_divide(self.data, _raw(other)))

    def __rfloordiv__(self, other):
        return Tensor._make(np.floor_divide(_raw(other), self.data))

    def __mod__(self, other):
        return ops.remainder(self, other)

    def __rmod__(self, other):
        return ops.remainder(other, self)

    def __pow__(self, other):
        if other.__class__ is Tensor:
            return ops.pow(self, other)
        return ops.pow_scalar(self, other)

    def __rpow__(self, other):
        return ops.rpow_scalar(self, other)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ops.abs(self)

    def __matmul__(self, other):
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        return ops.matmul(ops.as_tensor_like(other, self), self)

    # comparisons and logic: no gradient, bool results
    def __lt__(self, other):
        return Tensor._make(self.data < _raw(other))

    def __le__(self, other):
        return Tensor._make(self.data <= _raw(other))

    def __gt__(self, other):
        return Tensor._make(self.data > _raw(other))

    def __ge__(self, other):
        return Tensor._make(self.data >= _raw(other))

    def __eq__(self, other):
        return Tensor._make(np.asarray(self.data == _raw(other)))

    def __ne__(self, other):
        return Tensor._make(np.asarray(self.data != _raw(other)))

    def __and__(self, other):
        return Tensor._make(self.data & _raw(other))

    def __or__(self, other):
        return Tensor._make(self.data | _raw(other))

    def __xor__(self, other):
        return Tensor._make(self.data ^ _raw(other))

    def __invert__(self):
        return Tensor._make(~self.data)

    def __getitem__(self, index):
        return ops.getitem(self, index)

    def __setitem__(self, index, value):
        ops.setitem_(self, index, value)

    # ---- in-place operations ------------------------------------------------------------------------
    def add_(self, other, alpha=1):
        return ops.inplace_arith(self, Tensor.__add__, np.add, other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1):
        return ops.inplace_arith(self, Tensor.__sub__, np.subtract, other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return ops.inplace_arith(self, Tensor.__mul__, np.multiply, other)

    def div_(self, other):
        return ops.inplace_arith(self, Tensor.__truediv__, np.divide, other)

    def pow_(self, other):
        return ops.inplace(self, Tensor.__pow__, other)

    def clamp_(self, min=None, max=None):
        return ops.inplace(self, lambda x: ops.clamp(x, min, max))

    def neg_(self):
        return ops.inplace(self, ops.neg)

    def exp_(self):
        return ops.inplace(self, ops.exp)

    def sqrt_(self):
        return ops.inplace(self, ops.sqrt)

    def relu_(self):
        return ops.inplace(self, ops.relu)

    def zero_(self):
        return ops.fill_(self, 0)

    def fill_(self, value):
        return ops.fill_(self, value)

    def copy_(self, src):
        return ops.copy_(self, src)

    def uniform_(self, a=0.0, b=1.0, generator=None):
        return ops.random_(self, "uniform", a, b, generator)

    def normal_(self, mean=0.0, std=1.0, generator=None):
        return ops.random_(self, "normal", mean, std, generator)

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    # ---- shape --------------------------------------------------------------------------------------
    @property
    def T(self) -> Tensor:
        return ops.permute(self, tuple(range(self.data.ndim - 1, -1, -1)))

    @property
    def mT(self) -> Tensor:
        return ops.transpose(self, -2, -1)

    def reshape(self, *shape):
        return ops.reshape(self, _shape_args(shape))

    def view(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (int, tuple, list, np.integer)):
            return self.to(shape[0])
        return ops.reshape(self, _shape_args(shape))

    def view_as(self, other):
        return ops.reshape(self, other.shape)

    def reshape_as(self, other):
        return ops.reshape(self, other.shape)

    def expand(self, *shape):
        return ops.expand(self, _shape_args(shape))

    def expand_as(self, other):
        return ops.expand(self, other.shape)

    def repeat(self, *reps):
        return ops.repeat(self, _shape_args(reps))

    def permute(self, *dims):
        return ops.permute(self, _shape_args(dims))

    def t(self):
        if self.data.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, got {self.data.ndim}; use transpose")
        return ops.permute(self, tuple(range(self.data.ndim - 1, -1, -1)))

    def split(self, split_size_or_sections, dim=0):
        return ops.split(self, split_size_or_sections, dim)

    def type_as(self, other):
        return self.to(other.dtype)

    # ---- torch's new_* constructors: same dtype as self unless dtype= says otherwise ----------------
    def new_zeros(self, *size, dtype=None, requires_grad=False, device=None) -> Tensor:
        return _new_filled(self, size, 0, dtype, requires_grad)

    def new_ones(self, *size, dtype=None, requires_grad=False, device=None) -> Tensor:
        return _new_filled(self, size, 1, dtype, requires_grad)

    def new_empty(self, *size, dtype=None, requires_grad=False, device=None) -> Tensor:
        return _new_filled(self, size, 0, dtype, requires_grad)

    def new_full(self, size, fill_value, dtype=None, requires_grad=False, device=None) -> Tensor:
        return _new_filled(self, (size,), fill_value, dtype, requires_grad)

    def new_tensor(self, data, dtype=None, requires_grad=False, device=None) -> Tensor:
        from .factories import tensor
        return tensor(data, dtype=dtype or self.data.dtype, requires_grad=requires_grad)

    def ndimension(self):
        return self.data.ndim

    def is_contiguous(self):
        return bool(self.data.flags.c_contiguous)

    def nonzero(self, as_tuple=False):
        """Indices of the non-zero elements: an int64 (n, ndim) tensor, or one 1-D tensor per dim."""
        d = self.data
        idx = np.nonzero(d if d.ndim else d.reshape(1))  # a 0-d tensor has one (empty) index, or none
        if as_tuple:
            return tuple(Tensor._make(i.astype(np.int64)) for i in idx)
        return Tensor._make(np.stack(idx, axis=1)[:, :d.ndim].astype(np.int64))

    def unflatten(self, dim, sizes):
        return ops.unflatten(self, dim, sizes)

    def where(self, condition, other):
        """``x.where(cond, y)`` is ``where(cond, x, y)``: x where cond holds, else y (torch's method order)."""
        return ops.where(condition, self, other)

    def masked_fill(self, mask, value):
        """``value`` where ``mask`` holds; the result keeps self's dtype (as torch: int.masked_fill(m, 1.5))."""
        return ops.where(mask, ops.cast(ops.as_tensor_like(value, self), self.data.dtype), self)

    def masked_fill_(self, mask, value):
        return ops.inplace(self, lambda x: ops.where(mask, ops.cast(ops.as_tensor_like(value, x), x.data.dtype), x))


def _shape_args(shape):
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    if len(shape) == 1 and isinstance(shape[0], Tensor):
        return tuple(shape[0].tolist())
    return tuple(int(s) for s in shape)


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


def _new_filled(like, size, value, dtype, requires_grad) -> Tensor:
    dt = _dtypes.as_dtype(dtype) or like.data.dtype
    t = Tensor._make(np.full(_shape_args(size), value, dtype=dt))
    return t.requires_grad_(True) if requires_grad else t


def _as_grad(gradient, like) -> Tensor:
    g = gradient if isinstance(gradient, Tensor) else Tensor(np.asarray(gradient, dtype=like.data.dtype))
    if g.shape != like.shape:
        raise RuntimeError(f"backward: gradient has shape {tuple(g.shape)} but the output has shape "
                           f"{tuple(like.shape)}; they must match")
    return g


_fn._bind_tensor(Tensor)
ops._bind_tensor(Tensor)

# Method forms of the functional ops: x.exp(), x.sum(dim=1), ... (one list, no hand-written copies).
_METHODS = [
    "exp", "log", "log1p", "log2", "log10", "expm1", "sqrt", "rsqrt", "sin", "cos", "tan", "abs", "neg",
    "sigmoid", "tanh", "relu", "square", "reciprocal", "sign", "clamp", "clip", "maximum", "minimum",
    "sum", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin", "logsumexp", "prod",
    "norm", "flatten", "transpose", "squeeze", "unsqueeze", "broadcast_to", "chunk", "softmax",
    "log_softmax", "matmul", "mm", "bmm", "dot", "isnan", "isfinite", "isinf", "floor", "ceil", "round",
    "add", "sub", "mul", "div", "pow", "where", "cumsum", "all", "any", "outer", "swapaxes", "moveaxis",
    "gather", "masked_select", "sort", "argsort", "topk", "trunc", "erf", "atan", "sinh", "cosh",
    "logical_not", "eq", "ne", "lt", "le", "gt", "ge", "equal", "allclose", "narrow", "select",
    "index_select", "exp2", "true_divide", "count_nonzero", "nan_to_num", "diag", "trace", "triu", "tril",
    "flip", "roll", "lerp", "addmm", "unbind", "mv", "fmod", "remainder",
    "cumprod", "median", "kthvalue", "isclose",
]
for _name in _METHODS:
    if hasattr(ops, _name) and not hasattr(Tensor, _name):
        setattr(Tensor, _name, getattr(ops, _name))
# NumPy-style aliases that torch also has.
for _name, _op in (("absolute", "abs"), ("negative", "neg"), ("multiply", "mul"), ("subtract", "sub"),
                   ("divide", "div"), ("arctan", "atan")):
    setattr(Tensor, _name, getattr(ops, _op))
del _name, _op
