"""Loss functions: the functional forms (``mse_loss``, ``cross_entropy``, ...) and their modules.

Every loss computes an elementwise (or per-sample) loss l_i and then reduces it:
``reduction='mean'`` (the average; a *weighted* average where class weights are involved),
``'sum'``, or ``'none'`` (return l itself).  The maths is exactly torch's, including its corner cases
(weighted means, label smoothing, log clamping), so values and gradients agree to float precision.

Speed: the losses used in training loops are single fused graph nodes whose first-order backward is
one NumPy expression (``backward_np``):

* cross-entropy with class indices: log-softmax + NLL fused; dL/dx = (softmax(x) - onehot(y)) g / N,
  computed without materialising a one-hot matrix;
* binary cross-entropy (with logits or on probabilities) and MSE.

Their ``backward`` (used for second derivatives) is written with differentiable chainrule ops.
The remaining losses are compositions of ops, differentiable to any order by construction.
Class weights and ``pos_weight`` are constants: no gradient flows into them.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ..autograd import ops as _ops
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .module import Module

_REDUCTIONS = ("none", "mean", "sum")


# ---------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------
def _reduction(reduction: str, size_average=None, reduce=None, name: str = "loss",
               allowed=_REDUCTIONS) -> str:
    """The reduction string; the legacy ``size_average`` / ``reduce`` flags override it (as torch)."""
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = "none" if not reduce else ("mean" if size_average else "sum")
        warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{reduction}' "
                      "instead.", UserWarning, stacklevel=3)
    if reduction not in allowed:
        raise ValueError(f"{name}: {reduction!r} is not a valid value for reduction "
                         f"(expected one of {', '.join(map(repr, allowed))})")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        if loss.data.size == 0:  # NaN, as torch, without NumPy's "mean of empty slice" warnings
            return loss.sum() * float("nan")
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _reduce_np(loss: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        if loss.size == 0:  # NaN, as torch, without NumPy's "mean of empty slice" warnings
            return np.asarray(np.nan, dtype=loss.dtype)
        return np.asarray(loss.mean(), dtype=loss.dtype)
    if reduction == "sum":
        return np.asarray(loss.sum(), dtype=loss.dtype)
    return loss


def _upstream(g, reduction: str, n: int):
    """dL/dl_i for L = reduce(l): g / n (mean), g (sum), g_i (none).  Works on arrays and Tensors."""
    return g * (1.0 / n) if reduction == "mean" and n else g


def _as_input(x, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a chainrule Tensor, got {type(x).__name__}")
    if x.data.dtype.kind != "f":
        raise TypeError(f"{name}: input must be floating point, got {x.dtype}; convert it with x.float()")
    return x


def _as_target(t, x: Tensor, name: str) -> Tensor:
    """The target as a Tensor of the input's float dtype (regression and binary losses)."""
    if not isinstance(t, Tensor):
        t = Tensor._make(np.asarray(t))
    if t.data.dtype != x.data.dtype:
        t = _ops.cast(t, x.data.dtype)
    return t


def _broadcast_pair(x: Tensor, t: Tensor, name: str):
    """Broadcast input and target to one shape, warning (as torch does) when they differ."""
    if x.shape == t.shape:
        return x, t
    warnings.warn(f"{name}: using a target size {tuple(t.shape)} that is different to the input size "
                  f"{tuple(x.shape)}. This will likely lead to incorrect results due to broadcasting. "
                  "Please ensure they have the same size.", stacklevel=3)
    try:
        shape = np.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise ValueError(f"{name}: input of shape {tuple(x.shape)} and target of shape {tuple(t.shape)} "
                         "cannot be broadcast together") from None
    return _ops.broadcast_to(x, shape), _ops.broadcast_to(t, shape)


def _const(w, name: str, what: str = "weight"):
    """A constant weight (Tensor, array or list) as an ndarray, or None."""
    if w is None:
        return None
    a = w.data if isinstance(w, Tensor) else np.asarray(w)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name}: {what} must be numeric, got {a.dtype}")
    return a


def _const_tensor(w, name: str, what: str = "weight") -> Tensor | None:
    """A constant weight as a Tensor, or None.  Functions keep the Tensor and read its ``.data`` in
    ``forward``, so a replayed step (``autograd.replay``) sees a new array assigned to it."""
    if w is None:
        return None
    a = _const(w, name, what)
    return w if isinstance(w, Tensor) else Tensor._make(a)


def _broadcast_const(w: Tensor | None, x: np.ndarray) -> np.ndarray | None:
    """``w`` broadcast to the input's shape, in its dtype (per-element loss weights)."""
    if w is None:
        return None
    return np.broadcast_to(w.data, np.broadcast_shapes(w.data.shape, x.shape)).astype(x.dtype)


def _same_shape(x: Tensor, t: Tensor, name: str) -> None:
    if x.shape != t.shape:
        raise ValueError(f"{name}: target size {tuple(t.shape)} must be the same as input size "
                         f"{tuple(x.shape)}")


def _sigmoid_np(x: np.ndarray) -> np.ndarray:
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z)).astype(x.dtype, copy=False)


def _softplus_np(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|), without overflow."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


# ---------------------------------------------------------------------------------------------------
# regression losses
# ---------------------------------------------------------------------------------------------------
class MSELossFunction(Function):
    """L = reduce((x - y)^2).  dl/dx = 2 (x - y), dl/dy = -2 (x - y)."""

    def forward(self, x, y):
        d = x - y
        d *= d
        return _reduce_np(d, self.reduction)

    def backward_np(self, g):
        x, y = self.inputs[0].data, self.inputs[1].data
        gx = (x - y) * (2 * _upstream(g, self.reduction, x.size))
        return gx, (-gx if self.needs_input_grad[1] else None)

    def backward(self, g):
        x, y = self.inputs
        gx = (x - y) * (_upstream(g, self.reduction, x.numel()) * 2.0)
        return gx, (-gx if self.needs_input_grad[1] else None)


def _weighted(loss: Tensor, weight, reduction: str, name: str, mean_by_weight: bool) -> Tensor:
    """torch's elementwise ``weight`` of mse/l1/huber: mean = sum(w l) / sum(w) (mse, l1) or mean(w l)."""
    w = _const_tensor(weight, name)
    assert w is not None  # callers pass a weight
    if w.shape != loss.shape:
        raise ValueError(f"{name}: weight of shape {tuple(w.shape)} and input of shape {tuple(loss.shape)}: "
                         "weights and input must have the same size")
    w = _ops.cast(w, loss.data.dtype)   # ops on the weight Tensor itself: a replayed step reads it anew
    wl = loss * w
    if reduction == "mean" and mean_by_weight:
        return wl.sum() / w.sum()
    return _reduce(wl, reduction)


def mse_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
             weight=None) -> Tensor:
    """Mean squared error: l_i = (x_i - y_i)^2 (times ``weight_i``; weighted mean = sum(w l) / sum(w))."""
    reduction = _reduction(reduction, size_average, reduce, "mse_loss")
    x = _as_input(input, "mse_loss")
    x, t = _broadcast_pair(x, _as_target(target, x, "mse_loss"), "mse_loss")
    if weight is not None:
        d = x - t
        return _weighted(d * d, weight, reduction, "mse_loss", mean_by_weight=True)
    return MSELossFunction.apply(x, t, reduction=reduction)


def l1_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
            weight=None) -> Tensor:
    """Mean absolute error: l_i = |x_i - y_i|; dl/dx = sign(x - y) (0 at 0, as torch)."""
    reduction = _reduction(reduction, size_average, reduce, "l1_loss")
    x = _as_input(input, "l1_loss")
    x, t = _broadcast_pair(x, _as_target(target, x, "l1_loss"), "l1_loss")
    loss = _ops.abs(x - t)
    if weight is not None:
        return _weighted(loss, weight, reduction, "l1_loss", mean_by_weight=True)
    return _reduce(loss, reduction)


class HuberFunction(Function):
    """Huber (``smooth=False``) or smooth L1 (``smooth=True``) on d = x - t, elementwise, with c = delta / beta:

        huber:      l = d^2 / 2          if |d| < c,  else c (|d| - c / 2);   dl/dd = clamp(d, -c, c)
        smooth L1:  l = d^2 / (2 c)      if |d| < c,  else |d| - c / 2;       dl/dd = clamp(d, -c, c) / c

    and dl/dx = dl/dd = -dl/dt.  One node, so the branch taken per element is decided in ``forward``
    (a replayed step decides it again for each batch).
    """

    saves_inputs = True

    def forward(self, x, t):
        c = self.c
        d = x - t
        ad = np.abs(d)
        if self.smooth:
            return np.where(ad < c, d * d * (0.5 / c), ad - 0.5 * c)
        return np.where(ad < c, d * d * 0.5, (ad - 0.5 * c) * c)

    def _slope(self, d):
        c = self.c
        s = np.clip(d, -c, c) if isinstance(d, np.ndarray) else _ops.clamp(d, -c, c)
        return s * (1.0 / c) if self.smooth else s

    def backward_np(self, g):
        x, t = self.inputs[0].data, self.inputs[1].data
        gd = g * self._slope(x - t)
        nx, nt = self.needs_input_grad
        return (gd if nx else None), (-gd if nt else None)    # x and t come broadcast to one shape

    def backward(self, g):
        x, t = self.inputs
        gd = g * self._slope(x - t)
        nx, nt = self.needs_input_grad
        return (gd if nx else None), (-gd if nt else None)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """Huber: l = d^2 / 2 if |d| < delta else delta (|d| - delta / 2), d = x - y.

    Quadratic near 0 (smooth), linear far away (robust to outliers); dl/dd = clamp(d, -delta, delta).
    """
    reduction = _reduction(reduction, name="huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    x = _as_input(input, "huber_loss")
    x, t = _broadcast_pair(x, _as_target(target, x, "huber_loss"), "huber_loss")
    loss = HuberFunction.apply(x, t, c=float(delta), smooth=False)
    if weight is not None:
        return _weighted(loss, weight, reduction, "huber_loss", mean_by_weight=False)
    return _reduce(loss, reduction)


def smooth_l1_loss(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
                   beta: float = 1.0) -> Tensor:
    """Smooth L1: l = d^2 / (2 beta) if |d| < beta else |d| - beta / 2 (= huber / beta; L1 at beta=0)."""
    reduction = _reduction(reduction, size_average, reduce, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    x = _as_input(input, "smooth_l1_loss")
    x, t = _broadcast_pair(x, _as_target(target, x, "smooth_l1_loss"), "smooth_l1_loss")
    loss = _ops.abs(x - t) if beta == 0 else HuberFunction.apply(x, t, c=float(beta), smooth=True)
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------------
# binary cross-entropy
# ---------------------------------------------------------------------------------------------------
class _WeightedElementwise(Function):
    """The elementwise losses with an optional per-element weight w (BCE, BCE with logits): the loss is
    reduce(w l), so each element's gradient is w times the reduction's share of the upstream g."""

    w: np.ndarray | None          # set in forward: the weight broadcast to the input's shape
    reduction: str

    def _reduce(self, loss: np.ndarray, x: np.ndarray) -> np.ndarray:
        if self.w is not None:
            loss = loss * self.w
        return _reduce_np(loss.astype(x.dtype, copy=False), self.reduction)

    def _share(self, g, x):
        """dL/dl for every element: an ndarray, or a Tensor under create_graph."""
        if isinstance(x, np.ndarray):
            s = _upstream(g, self.reduction, x.size)
            return s if self.w is None else s * self.w
        s = _upstream(g, self.reduction, x.numel())
        return s if self.w is None else s * Tensor._make(self.w)


class BCELossFunction(_WeightedElementwise):
    """l = -w [y log x + (1 - y) log(1 - x)], each log clamped at -100 (as torch) so l stays finite.

    dl/dx = w (x - y) / max(x (1 - x), 1e-12),  dl/dy = w (log(1 - x) - log x) (clamped logs).
    """

    def forward(self, x, y):
        if x.size and (x.min() < 0 or x.max() > 1):
            raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 and 1 "
                               "(apply sigmoid first, or use binary_cross_entropy_with_logits on raw scores)")
        self.w = _broadcast_const(self.weight, x)
        with np.errstate(divide="ignore"):
            self.logx = np.maximum(np.log(x), -100)
            self.log1mx = np.maximum(np.log1p(-x), -100)
        return self._reduce(-(y * self.logx + (1 - y) * self.log1mx), x)

    def backward_np(self, g):
        x, y = self.inputs[0].data, self.inputs[1].data
        s = self._share(g, x)
        nx, ny = self.needs_input_grad
        gx = s * (x - y) / np.maximum(x * (1 - x), 1e-12) if nx else None
        gy = s * (self.log1mx - self.logx) if ny else None
        return gx, gy

    def backward(self, g):
        x, y = self.inputs
        s = self._share(g, x)
        nx, ny = self.needs_input_grad
        gx = s * (x - y) / _ops.clamp(x * (1.0 - x), min=1e-12) if nx else None
        gy = None
        if ny:
            gy = s * (_ops.clamp(_ops.log(1.0 - x), min=-100) - _ops.clamp(_ops.log(x), min=-100))
        return gx, gy


def binary_cross_entropy(input: Tensor, target, weight=None, size_average=None, reduce=None,
                         reduction: str = "mean") -> Tensor:
    """BCE on probabilities x in [0, 1]: l = -w [y log x + (1 - y) log(1 - x)].

    Prefer ``binary_cross_entropy_with_logits`` on raw scores: it is exact where sigmoid saturates.
    """
    reduction = _reduction(reduction, size_average, reduce, "binary_cross_entropy")
    x = _as_input(input, "binary_cross_entropy")
    t = _as_target(target, x, "binary_cross_entropy")
    _same_shape(x, t, "binary_cross_entropy")
    return BCELossFunction.apply(x, t, weight=_const_tensor(weight, "binary_cross_entropy"), reduction=reduction)


class BCEWithLogitsFunction(_WeightedElementwise):
    """BCE on logits x (probability sigmoid(x)), computed stably.

    With lw = 1 + (pos_weight - 1) y (lw = 1 without ``pos_weight``) and softplus(z) = log(1 + e^z):

        l = w [ (1 - y) x + lw softplus(-x) ]        (= max(x, 0) - x y + log(1 + e^-|x|) for lw = 1)
        dl/dx = w [ (1 - y) - lw sigmoid(-x) ]      (= sigmoid(x) - y for lw = 1)
        dl/dy = w [ -x + (pos_weight - 1) softplus(-x) ]
    """

    def forward(self, x, y):
        self.w, self.pw = _broadcast_const(self.weight, x), _broadcast_const(self.pos_weight, x)
        sp = _softplus_np(-x)
        pw = self.pw
        return self._reduce((1 - y) * x + (sp if pw is None else (1 + (pw - 1) * y) * sp), x)

    def backward_np(self, g):
        x, y = self.inputs[0].data, self.inputs[1].data
        s = self._share(g, x)
        pw = self.pw
        nx, ny = self.needs_input_grad
        gx = gy = None
        if nx:
            if pw is None:
                gx = s * (_sigmoid_np(x) - y)
            else:
                gx = s * ((1 - y) - (1 + (pw - 1) * y) * _sigmoid_np(-x))
        if ny:
            gy = s * (-x if pw is None else (-x + (pw - 1) * _softplus_np(-x)))
        return gx, gy

    def backward(self, g):
        x, y = self.inputs
        s = self._share(g, x)
        pw = None if self.pw is None else Tensor._make(self.pw)
        nx, ny = self.needs_input_grad
        gx = gy = None
        if nx:
            if pw is None:
                gx = s * (_ops.sigmoid(x) - y)
            else:
                gx = s * ((1.0 - y) - (y * (pw - 1.0) + 1.0) * _ops.sigmoid(-x))
        if ny:
            gy = s * (-x if pw is None else (_ops.softplus(-x) * (pw - 1.0) - x))
        return gx, gy


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None, size_average=None, reduce=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """BCE on raw scores: sigmoid + BCE in one stable step (see ``BCEWithLogitsFunction``).

    ``pos_weight`` (broadcast along the last dim, one per class) multiplies the positive term:
    pos_weight > 1 raises recall, < 1 raises precision.
    """
    name = "binary_cross_entropy_with_logits"
    reduction = _reduction(reduction, size_average, reduce, name)
    x = _as_input(input, name)
    t = _as_target(target, x, name)
    _same_shape(x, t, name)
    return BCEWithLogitsFunction.apply(x, t, weight=_const_tensor(weight, name),
                                       pos_weight=_const_tensor(pos_weight, name, "pos_weight"), reduction=reduction)


# ---------------------------------------------------------------------------------------------------
# cross-entropy and negative log-likelihood (class indices)
# ---------------------------------------------------------------------------------------------------
# The ufuncs' own reductions: the same arithmetic as ``a.max()``/``a.sum()`` without the method wrappers
# (a few microseconds per call, which add up on small batches).
_max, _sum = np.maximum.reduce, np.add.reduce


@functools.lru_cache(maxsize=16)
def _arange(n: int) -> np.ndarray:
    """``np.arange(n)``, made once per batch size (read-only: the losses share it)."""
    rows = np.arange(n)
    rows.flags.writeable = False
    return rows


def _to_rows(a: np.ndarray) -> np.ndarray:
    """(C,) -> (1, C); (N, C) as is; (N, C, d1, ...) -> (N d1 ..., C): one row of class scores per sample."""
    if a.ndim == 1:
        return a[None, :]
    if a.ndim == 2:
        return a
    return np.moveaxis(a, 1, -1).reshape(-1, a.shape[1])


def _from_rows(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Inverse of ``_to_rows``: rows of class scores back to the input's layout."""
    if len(shape) == 1:
        return g.reshape(shape)
    if len(shape) == 2:
        return g
    return np.moveaxis(g.reshape((shape[0],) + shape[2:] + (shape[1],)), -1, 1)


def _to_rows_t(x: Tensor) -> Tensor:
    if x.ndim == 1:
        return _ops.reshape(x, (1, x.shape[0]))
    if x.ndim == 2:
        return x
    return _ops.reshape(_ops.moveaxis(x, 1, -1), (-1, x.shape[1]))


def _from_rows_t(g: Tensor, shape: tuple) -> Tensor:
    if len(shape) == 1:
        return _ops.reshape(g, shape)
    if len(shape) == 2:
        return g
    return _ops.moveaxis(_ops.reshape(g, (shape[0],) + shape[2:] + (shape[1],)), -1, 1)


class _ClassTargets:
    """Validated class-index targets, flattened to one per row of ``_to_rows(input)``.

    ``y``: the class of each row (ignored rows point at class 0), ``valid``: not ignore_index,
    ``w``: the class weights (ones if none), ``wy``: the weight of each row's class (0 if ignored).
    """

    def __init__(self, x: np.ndarray, t: np.ndarray, w: np.ndarray | None, ignore_index: int, name: str):
        C = x.shape[1] if x.ndim > 1 else x.shape[0]
        if t.dtype.kind not in "iu":
            raise TypeError(f"{name}: class-index targets must be integers (int64), got {t.dtype}"
                            + ("; for class probabilities the target must have the input's shape "
                               f"{tuple(x.shape)}" if t.dtype.kind == "f" else ""))
        expected = () if x.ndim == 1 else (x.shape[0],) + tuple(x.shape[2:])
        if t.shape != expected:
            if x.ndim >= 2 and t.ndim == len(expected) and t.shape[0] != x.shape[0]:
                raise ValueError(f"{name}: target has {t.shape[0]} entries but input has batch size "
                                 f"{x.shape[0]}")
            raise ValueError(f"{name}: expected target of shape {expected} for input of shape "
                             f"{tuple(x.shape)} (classes on dim {0 if x.ndim == 1 else 1}), "
                             f"got {tuple(t.shape)}")
        y = t if t.ndim == 1 and t.dtype == np.int64 else t.reshape(-1).astype(np.int64, copy=False)
        valid = None  # None: every row counts (no ignored targets), the common case
        # One reduction checks 0 <= y < C: seen as unsigned, a negative index is above 2**63.
        if not (y.size and _max(y.view(np.uint64)) < C and not 0 <= ignore_index < C):
            valid = y != ignore_index
            bad = valid & ((y < 0) | (y >= C))
            if bad.any():
                v = int(y[np.argmax(bad)])
                raise IndexError(f"{name}: target value {v} is out of range for {C} classes "
                                 f"(valid: 0..{C - 1}, or ignore_index={ignore_index})")
            if valid.all():
                valid = None
        if w is not None and w.shape != (C,):
            raise ValueError(f"{name}: weight should be a 1-D tensor of {C} class weights, got shape "
                             f"{w.shape}")
        self.C, self.shape, self.dtype = C, t.shape, x.dtype
        self.all_valid = valid is None
        self.weighted = w is not None
        self.y = y if valid is None else np.where(valid, y, 0)
        self._valid = valid
        self._w = None if w is None else w.astype(self.dtype)
        self._wy: np.ndarray | None = None

    def zero_ignored(self, grad):
        """``grad`` (rows x classes, an ndarray or a Tensor) with the ignored rows exactly 0, as torch: also
        when every row is ignored and the 'mean' coefficient is NaN."""
        if self.all_valid:
            return grad
        if isinstance(grad, np.ndarray):
            grad[~self.valid] = 0
            return grad
        return _ops.where(Tensor._make(self.valid[:, None]), grad, 0.0)

    # Class weights, per-row weights and the valid mask are built only when a formula needs them:
    # plain cross-entropy (no weights, nothing ignored, no smoothing) never does.
    @property
    def valid(self) -> np.ndarray:
        if self._valid is None:
            self._valid = np.ones(len(self.y), dtype=bool)
        return self._valid

    @property
    def w(self) -> np.ndarray:
        if self._w is None:
            self._w = np.ones(self.C, dtype=self.dtype)
        return self._w

    @property
    def wy(self) -> np.ndarray:
        if self._wy is None:
            self._wy = self.w[self.y] * self.valid if (self.weighted or not self.all_valid) \
                else np.ones(len(self.y), dtype=self.dtype)
        return self._wy

    @property
    def weight_sum(self):
        """sum_i w_{y_i}: the 'mean' reduction's denominator (the row count when unweighted)."""
        return len(self.y) if not self.weighted and self.all_valid else self.wy.sum()


class CrossEntropyFunction(Function):
    """Cross-entropy from logits and class indices, fused: log-softmax and NLL in one node.

    Rows i (samples) with logits x_i over C classes, target y_i, class weights w (1 if none),
    smoothing eps, log p_i = log_softmax(x_i):

        l_i = (1 - eps) w_{y_i} (-log p_{i,y_i})  +  (eps / C) sum_c w_c (-log p_{i,c})
        mean: sum_i l_i / sum_i w_{y_i}       (ignored rows: l_i = 0 and weight 0)

    Gradient, with p_i = softmax(x_i) and e_y the one-hot vector of y:

        dl_i/dx_i = (1 - eps) w_{y_i} (p_i - e_{y_i}) + (eps / C) (p_i sum_c w_c - w)

    which for eps = 0 and no weights is the famous p - onehot(y).

    The targets are the node's second input (integers: no gradient) and are checked in ``forward``, so a
    replayed step (``autograd.replay``) checks and uses each batch's own targets.
    """

    def forward(self, x, t):
        w = None if self.weight is None else self.weight.data
        self.ct = ct = _ClassTargets(x, t, w, self.ignore_index, "cross_entropy")
        xr = _to_rows(x)
        m = _max(xr, axis=1, keepdims=True)
        e = xr - m
        np.exp(e, out=e)
        s = _sum(e, axis=1, keepdims=True)
        e /= s
        self.p = e  # softmax, saved for backward
        lse = (m + np.log(s))[:, 0]  # log sum_c e^(x_ic)
        self.rows = rows = _arange(len(ct.y))
        nll = lse - xr[rows, ct.y]  # -log p_y
        if ct.weighted or not ct.all_valid:
            nll *= ct.wy  # -w_y log p_y
        eps = self.eps
        if eps:
            # sum_c w_c (-log p_c) = (sum_c w_c) lse - sum_c w_c x_c, without building log p
            smooth = (ct.w.sum() * lse - xr @ ct.w) * ct.valid
            loss = (1 - eps) * nll + (eps / ct.C) * smooth
        else:
            loss = nll
        if loss.dtype != x.dtype:
            loss = loss.astype(x.dtype)
        return self._reduce(loss, ct, x.dtype)

    def _reduce(self, loss, ct, dtype):
        """The per-row losses ``loss`` reduced as ``self.reduction`` says ('mean': over sum_i w_{y_i}, kept as
        ``self.denom`` for backward), as an array of ``dtype``."""
        if self.reduction == "mean":
            self.denom = ct.weight_sum
            if self.denom:
                return np.asarray(loss.sum() / self.denom, dtype=dtype)
            with np.errstate(invalid="ignore", divide="ignore"):  # every target ignored: NaN, as torch
                return np.asarray(loss.sum() / self.denom, dtype=dtype)
        if self.reduction == "sum":
            return np.asarray(loss.sum(), dtype=dtype)
        return loss.reshape(ct.shape)

    def _coef(self, g):
        """dL/dl_i for every row (an ndarray, or a Tensor under create_graph)."""
        if self.reduction == "mean":
            return g * (1.0 / self.denom) if self.denom else g * np.nan
        if self.reduction == "sum":
            return g
        return g.reshape(-1) if isinstance(g, np.ndarray) else _ops.reshape(g, (-1,))

    def backward_np(self, g):
        ct, eps = self.ct, self.eps
        coef = self._coef(g)
        rows = self.rows
        if not eps and not ct.weighted and ct.all_valid and coef.ndim == 0:
            grad = self.p * coef  # fast path: (p - onehot) * g / N
            grad[rows, ct.y] -= coef
        else:
            a = ct.wy * (1 - eps)  # weight of the one-hot term
            scale = a + (eps / ct.C) * ct.w.sum() * ct.valid  # weight of p
            grad = self.p * (coef * scale)[:, None]
            grad[rows, ct.y] -= coef * a
            if eps:
                grad -= np.outer(coef * ct.valid * (eps / ct.C), ct.w)
            grad = ct.zero_ignored(grad)
        if grad.dtype != self.p.dtype:
            grad = grad.astype(self.p.dtype)
        return _from_rows(grad, self.inputs[0].data.shape), None

    def backward(self, g):
        # Differentiable form: recompute p = softmax(x) with ops, the rest are constants.
        ct, eps = self.ct, self.eps
        x = self.inputs[0]
        p = _ops.softmax(_to_rows_t(x), dim=1)
        a = ct.wy * (1 - eps)
        scale = (a + (eps / ct.C) * ct.w.sum() * ct.valid)[:, None]
        const = np.zeros(p.shape, dtype=p.dtype)
        const[np.arange(len(ct.y)), ct.y] = a
        if eps:
            const += np.outer(ct.valid * (eps / ct.C), ct.w)
        coef = self._coef(g)
        if coef.ndim == 1:
            coef = _ops.reshape(coef, (-1, 1))
        grad = ct.zero_ignored((p * Tensor._make(scale.astype(p.dtype)) - Tensor._make(const)) * coef)
        return _from_rows_t(grad, x.shape), None


class NLLLossFunction(Function):
    """Negative log-likelihood of log-probabilities x: l_i = -w_{y_i} x_{i, y_i}.

    mean: sum_i l_i / sum_i w_{y_i} (ignored rows excluded).  dl_i/dx_{i,c} = -w_{y_i} [c = y_i].
    """

    def forward(self, x, t):
        w = None if self.weight is None else self.weight.data
        self.ct = ct = _ClassTargets(x, t, w, self.ignore_index, "nll_loss")
        xr = _to_rows(x)
        loss = -xr[np.arange(len(ct.y)), ct.y] * ct.wy
        return self._reduce(loss, ct, x.dtype)

    _reduce = CrossEntropyFunction._reduce
    _coef = CrossEntropyFunction._coef

    def _pick(self, dtype):
        ct = self.ct
        out = np.zeros((len(ct.y), ct.C), dtype=dtype)
        out[np.arange(len(ct.y)), ct.y] = -ct.wy
        return out

    def backward_np(self, g):
        coef = self._coef(g)
        grad = self.ct.zero_ignored(self._pick(g.dtype) * (coef[:, None] if np.ndim(coef) else coef))
        return _from_rows(grad, self.inputs[0].data.shape), None

    def backward(self, g):
        coef = self._coef(g)
        if coef.ndim == 1:
            coef = _ops.reshape(coef, (-1, 1))
        grad = self.ct.zero_ignored(Tensor._make(self._pick(g.dtype)) * coef)
        return _from_rows_t(grad, self.inputs[0].shape), None


def _check_class_input(x: Tensor, name: str) -> None:
    if x.ndim == 0:
        raise ValueError(f"{name}: input must have a class dimension, got a 0-d tensor")


def nll_loss(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
             reduction: str = "mean") -> Tensor:
    """NLL of log-probabilities (N, C) or (N, C, d1, ...) with class indices (N,) / (N, d1, ...).

    l_i = -w_{y_i} x_{i, y_i}; 'mean' divides by sum_i w_{y_i} over non-ignored targets.
    ``nll_loss(log_softmax(x, 1), y)`` equals ``cross_entropy(x, y)``.
    """
    reduction = _reduction(reduction, size_average, reduce, "nll_loss")
    x = _as_input(input, "nll_loss")
    _check_class_input(x, "nll_loss")
    t = target if isinstance(target, Tensor) else Tensor._make(np.asarray(target))
    return NLLLossFunction.apply(x, t, weight=_const_tensor(weight, "nll_loss"), ignore_index=ignore_index,
                                 reduction=reduction)


def cross_entropy(input: Tensor, target, weight=None, size_average=None, ignore_index: int = -100,
                  reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy between logits ``input`` and ``target``, torch's ``F.cross_entropy``.

    ``input``: raw scores (N, C), (N, C, d1, ...) or (C,).  ``target`` is either

    * class indices, integers of shape (N,) / (N, d1, ...) / (): see ``CrossEntropyFunction`` for
      the formula with ``weight``, ``ignore_index`` and ``label_smoothing`` eps; or
    * class probabilities, floats of the input's shape: with q = (1 - eps) t + eps / C,
      l_i = -sum_c w_c q_{i,c} log p_{i,c}, and 'mean' divides by the number of samples
      (not by the weights; ``ignore_index`` does not apply).
    """
    reduction = _reduction(reduction, size_average, reduce, "cross_entropy")
    x = _as_input(input, "cross_entropy")
    _check_class_input(x, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be between 0.0 and 1.0, got {label_smoothing}")
    t = target if isinstance(target, Tensor) else Tensor._make(np.asarray(target))
    if t.data.dtype.kind == "f" and t.shape == x.shape:
        return _cross_entropy_probs(x, _as_target(t, x, "cross_entropy"), weight, reduction, label_smoothing)
    return CrossEntropyFunction.apply(x, t, weight=_const_tensor(weight, "cross_entropy"), ignore_index=ignore_index,
                                      reduction=reduction, eps=float(label_smoothing))


def _cross_entropy_probs(x: Tensor, t: Tensor, weight, reduction: str, eps: float) -> Tensor:
    """Cross-entropy with soft targets, written with differentiable ops (target gradients too)."""
    dim = 0 if x.ndim == 1 else 1
    C = x.shape[dim]
    logp = _ops.log_softmax(x, dim)
    q = t * (1 - eps) + eps / C if eps else t
    prod = logp * q
    w = _const_tensor(weight, "cross_entropy")
    if w is not None:
        if w.shape != (C,):
            raise ValueError(f"cross_entropy: weight should be a 1-D tensor of {C} class weights, "
                             f"got shape {tuple(w.shape)}")
        shape = [1] * x.ndim
        shape[dim] = C
        prod = prod * _ops.reshape(_ops.cast(w, x.data.dtype), tuple(shape))   # ops on the weight Tensor
    if reduction == "none":
        return -prod.sum(dim)
    total = -prod.sum()
    return total * (1.0 / (x.numel() // C)) if reduction == "mean" else total


# ---------------------------------------------------------------------------------------------------
# KL divergence
# ---------------------------------------------------------------------------------------------------
class KLDivFunction(Function):
    """Pointwise KL term with input x = log q, as one node (the t > 0 test is made in ``forward``):

        l = t (log t - x)   (0 where t = 0):   dl/dx = -t,     dl/dt = log t + 1 - x  (-x where t = 0)
        log_target:  l = e^t (t - x):          dl/dx = -e^t,   dl/dt = e^t (t - x + 1)
    """

    def forward(self, x, t):
        if self.log_target:
            return np.exp(t) * (t - x)
        pos = t > 0
        self.pos = pos
        return np.where(pos, t * np.log(np.where(pos, t, 1)), 0) - t * x      # xlogy(t, t) - t x

    def backward_np(self, g):
        x, t = self.inputs[0].data, self.inputs[1].data
        nx, nt = self.needs_input_grad
        if self.log_target:
            e = np.exp(t)
            gx = -(g * e) if nx else None
            gt = g * (e * (t - x + 1)) if nt else None
        else:
            gx = -(g * t) if nx else None
            gt = g * (np.where(self.pos, np.log(np.where(self.pos, t, 1)) + 1, 0) - x) if nt else None
        return gx, gt                                        # x and t come broadcast to one shape

    def backward(self, g):
        x, t = self.inputs
        nx, nt = self.needs_input_grad
        if self.log_target:
            e = _ops.exp(t)
            gx = -(g * e) if nx else None
            gt = g * (e * (t - x + 1.0)) if nt else None
        else:
            pos = Tensor._make(self.pos)
            gx = -(g * t) if nx else None
            gt = g * (_ops.where(pos, _ops.log(_ops.where(pos, t, 1.0)) + 1.0, 0.0) - x) if nt else None
        return gx, gt


def kl_div(input: Tensor, target, size_average=None, reduce=None, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target || model) pointwise, with ``input`` = log q (log-probabilities):

        l = t (log t - x)   (0 where t = 0)      or, with log_target,   l = e^t (t - x)

    'batchmean' (the true KL divergence per sample) divides the sum by the batch size;
    'mean' divides by the number of elements (torch's default, kept for compatibility).
    """
    reduction = _reduction(reduction, size_average, reduce, "kl_div", _REDUCTIONS + ("batchmean",))
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the support size."
                      "'batchmean' divides only by the batch size, and aligns with the KL div math definition."
                      "'mean' will be changed to behave the same as 'batchmean' in the next major release.",
                      UserWarning, stacklevel=2)
    x = _as_input(input, "kl_div")
    x, t = _broadcast_pair(x, _as_target(target, x, "kl_div"), "kl_div")
    loss = KLDivFunction.apply(x, t, log_target=bool(log_target))
    if reduction == "batchmean":
        total = loss.sum()
        return total * (1.0 / x.shape[0]) if x.ndim else total
    return _reduce(loss, reduction)


# ---------------------------------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------------------------------
class _Loss(Module):
    """Base of the loss modules: stores ``reduction`` (legacy size_average/reduce resolved)."""

    _allowed: tuple[str, ...] = _REDUCTIONS

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        self.reduction = _reduction(reduction, size_average, reduce, type(self).__name__, self._allowed)


class _WeightedLoss(_Loss):
    """A loss with a ``weight`` buffer (saved in state_dict, as torch)."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        if weight is not None and not isinstance(weight, Tensor):
            weight = Tensor._make(np.asarray(weight))
        self.register_buffer("weight", weight)


class MSELoss(_Loss):
    """Mean squared error (``mse_loss``)."""

    def forward(self, input, target):
        return mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error (``l1_loss``)."""

    def forward(self, input, target):
        return l1_loss(input, target, reduction=self.reduction)


class HuberLoss(_Loss):
    """Huber loss (``huber_loss``): quadratic for |x - y| < delta, linear beyond."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """Smooth L1 loss (``smooth_l1_loss``)."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy on probabilities (``binary_cross_entropy``)."""

    def forward(self, input, target):
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (``binary_cross_entropy_with_logits``), stable."""

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight if weight is None or isinstance(weight, Tensor)
                             else Tensor._make(np.asarray(weight)))
        self.register_buffer("pos_weight", pos_weight if pos_weight is None or isinstance(pos_weight, Tensor)
                             else Tensor._make(np.asarray(pos_weight)))

    def forward(self, input, target):
        return binary_cross_entropy_with_logits(input, target, self.weight, reduction=self.reduction,
                                                pos_weight=self.pos_weight)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy from logits (``cross_entropy``): class indices or class probabilities."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0, "
                             f"got {label_smoothing}")
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (``nll_loss``)."""

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence (``kl_div``); use ``reduction='batchmean'`` for the true KL."""

    _allowed = _REDUCTIONS + ("batchmean",)

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
