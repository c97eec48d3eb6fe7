"""``Function``: one node of the computational graph, and the grad-mode switches.

Every differentiable operation is a subclass with two methods side by side::

    class Exp(Function):
        def forward(self, x):            # x: ndarray -> ndarray
            self.y = np.exp(x)           # save what backward needs on ``self``
            return self.y
        def backward(self, g):           # g: Tensor, dL/dy -> (dL/dx,)
            return g * self.output(),   # written in chainrule's own ops

``forward`` works on raw ndarrays (fast); ``backward`` works on Tensors with chainrule's differentiable
operations, so when the engine runs it with ``create_graph=True`` the backward pass is itself
recorded and can be differentiated again (Hessians come for free).  Between the two, the node is its
own context: attributes set in ``forward`` are the saved values, released after backward unless
``retain_graph=True``.

``Function.apply(*tensors, **params)`` runs the op: params (dims, constants) become attributes
before ``forward`` is called; a graph node is recorded only when grad mode is on and some input
requires grad.
"""

from __future__ import annotations

import functools
import itertools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import weakref

    from .tensor import Tensor

# Grad mode is a module global (not thread-local as in torch): one flag read per op keeps ops cheap.
_grad_enabled = True
_anomaly = False

_ndarray = np.ndarray
_asarray = np.asarray


def is_grad_enabled() -> bool:
    return _grad_enabled


def set_grad_enabled_(mode: bool) -> None:
    global _grad_enabled
    _grad_enabled = bool(mode)


class _GradMode:
    """Base of ``no_grad`` / ``enable_grad`` / ``set_grad_enabled``: context manager and decorator."""

    _mode = True

    def __enter__(self):
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = self._mode

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev
        return False

    def __call__(self, fn):
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            global _grad_enabled
            prev, _grad_enabled = _grad_enabled, mode
            try:
                return fn(*args, **kwargs)
            finally:
                _grad_enabled = prev

        return wrapper


class _BareDecorator(_GradMode):
    """``@no_grad()`` and, as in torch, the bare ``@no_grad`` decorate alike."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_BareDecorator):
    """Context manager / decorator: operations inside record no graph (evaluation, optimizer steps)."""

    _mode = False


class enable_grad(_BareDecorator):
    """Context manager / decorator that turns graph recording back on inside ``no_grad``."""

    _mode = True


class set_grad_enabled(_GradMode):
    """``with set_grad_enabled(False): ...`` — grad mode from a flag; also callable as a function."""

    def __init__(self, mode: bool):
        global _grad_enabled
        self._mode = bool(mode)
        self._prev = _grad_enabled
        _grad_enabled = self._mode  # torch applies it at once, so a bare call works too

    def __enter__(self):
        global _grad_enabled
        _grad_enabled = self._mode

    def __call__(self, fn):
        global _grad_enabled
        _grad_enabled = self._prev  # as a decorator it must not change the mode now, only inside fn
        return super().__call__(fn)


class inference_mode(no_grad):
    """Alias of ``no_grad`` (chainrule has no separate inference tensors); ``inference_mode(False)`` enables grad."""

    def __new__(cls, mode=True):
        if not isinstance(mode, bool):  # bare @inference_mode
            return cls()(mode)
        return object.__new__(cls)

    def __init__(self, mode: bool = True):
        self._mode = not mode


def set_detect_anomaly(mode: bool) -> None:
    """When on, backward checks every gradient it produces and names the op that made a NaN or Inf."""
    global _anomaly
    _anomaly = bool(mode)


def is_anomaly_enabled() -> bool:
    return _anomaly


class detect_anomaly:
    """``with detect_anomaly(): loss.backward()`` — anomaly detection inside the block only."""

    def __init__(self, check_nan: bool = True):
        self._mode = check_nan

    def __enter__(self):
        self._prev = _anomaly
        set_detect_anomaly(self._mode)

    def __exit__(self, *exc):
        set_detect_anomaly(self._prev)
        return False


class Function:
    """A node of the graph: an operation applied to tensors (see the module docstring).

    Slots shared by every node: ``inputs`` (the input Tensors, in order), ``needs_input_grad``
    (which inputs require grad), ``_vsum`` (the inputs' version counters at forward time, to
    detect in-place changes to values backward needs) and ``_seq`` (creation order: a node is
    always created after the nodes of its inputs, so decreasing ``_seq`` is a topological order
    for backward).  The rest lives in the instance dict.
    """

    __slots__ = ("inputs", "needs_input_grad", "_vsum", "_seq", "__dict__", "__weakref__")

    # False for ops whose backward never reads their inputs' values (add, reshape, ...): an in-place
    # change to such an input before backward is then harmless.
    saves_inputs = True
    # True for ops whose backward reads their own output (exp, tanh, sigmoid, ...).
    saves_output = False
    # Optional speed path: ``backward_np(g: ndarray) -> ndarrays``, used for first-order backward
    # (create_graph=False).  ``backward`` stays the reference: the tests check both agree.
    backward_np = None
    _freed = False  # set once backward released the saved values
    # weak reference to an output whose .grad the user wants kept (retain_grad)
    _retained: weakref.ref[Tensor] | None = None
    _dirty = False  # set when the output was modified in place after this node saved it
    _keep: tuple[str, ...] = ()  # small constants kept after release, so a drawn or explained graph still shows them

    @classmethod
    def apply(cls, *tensors, **params):
        fn = _new(cls)
        if params:
            fn.__dict__.update(params)
        n = len(tensors)
        if n == 1:
            out = fn.forward(tensors[0].data)
        elif n == 2:
            out = fn.forward(tensors[0].data, tensors[1].data)
        else:
            out = fn.forward(*[t.data for t in tensors])
        if out.__class__ is not _ndarray:
            out = _asarray(out)
        if _grad_enabled:
            for t in tensors:
                if t.requires_grad:
                    return _record(fn, tensors, out)
        # Tensor._make, inlined: this is the per-op hot path (a call costs as much as the five sets).
        t = _new(_Tensor)
        t.data = out
        t.grad_fn = None
        t.requires_grad = False
        t.grad = None
        t._version = 0
        return t

    @classmethod
    def apply_scalar(cls, x, c):
        """``apply(x, c=c)`` without keyword handling: the hot path of ``x * 2.0``, ``x + 1``."""
        fn = _new(cls)
        fn.c = c
        out = fn.forward(x.data)
        if out.__class__ is not _ndarray:
            out = _asarray(out)
        if _grad_enabled and x.requires_grad:
            return _record(fn, (x,), out)
        t = _new(_Tensor)
        t.data = out
        t.grad_fn = None
        t.requires_grad = False
        t.grad = None
        t._version = 0
        return t

    def forward(self, *arrays):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad):
        raise NotImplementedError(f"{type(self).__name__} is not differentiable")

    # -- helpers for backward ------------------------------------------------------------------
    def output(self):
        """The op's output as a Tensor for use in backward (``self.y`` saved in forward).

        Under ``create_graph`` the returned tensor is attached to this node, so differentiating the
        backward pass flows through the output back into the op (as torch's saved outputs do).
        """
        if _grad_enabled:
            return _Tensor._make(self.y, self, True)
        return _Tensor._make(self.y)

    def backward_via_tensors(self, g):
        """Run the Tensor ``backward`` on an ndarray gradient (a ``backward_np`` fallback)."""
        gins = self.backward(_Tensor._make(g))
        if gins.__class__ is not tuple:
            return gins.data
        return tuple([None if gi is None else gi.data for gi in gins])

    @property
    def name(self) -> str:
        return type(self).__name__

    def release(self) -> None:
        """Free the saved values (called by the engine after backward unless retain_graph)."""
        d = self.__dict__
        kept = {k: d[k] for k in self._keep if k in d}
        d.clear()
        d["_freed"] = True
        d.update(kept)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}Backward>"


_new = object.__new__
_counter = itertools.count()
# ``_seq`` of the newest node an in-place op re-attached a tensor to (``ops.inplace``): nodes older than it
# may still point at that tensor, and backward then looks up the value they really used (engine._unrebind).
_rebind_seq = -1
# Called as hook(x) by every write into a tensor's array through chainrule (in-place ops, x[i] = v,
# fill_) while ``autograd.replay`` records, None otherwise: a replay could not repeat such a write.
_write_hook = None
# True while ``autograd.replay`` records: every op must then go through ``Function.apply`` (which the log
# wraps), so shortcuts that skip it for tensors without a graph (``ops.getitem``, ``ops.cast``) are off.
_recording = False


def _version_sum(tensors) -> int:
    """The sum of the tensors' version counters (``_vsum``: saved at record time, checked in backward), written
    out for two and three (a list comprehension costs ~0.4 us a call here)."""
    n = len(tensors)
    if n == 2:
        return tensors[0]._version + tensors[1]._version
    if n == 3:
        return tensors[0]._version + tensors[1]._version + tensors[2]._version
    return sum([t._version for t in tensors])


def _record(fn, tensors, out):
    fn._seq = next(_counter)
    fn.inputs = tensors
    n = len(tensors)
    if n == 1:
        fn.needs_input_grad = _TRUE1
        fn._vsum = tensors[0]._version if fn.saves_inputs else -1
    else:
        if n == 2:   # written out for two and three inputs (a list comprehension costs ~0.4 us a call here)
            fn.needs_input_grad = (tensors[0].requires_grad, tensors[1].requires_grad)
        elif n == 3:
            fn.needs_input_grad = (tensors[0].requires_grad, tensors[1].requires_grad, tensors[2].requires_grad)
        else:
            fn.needs_input_grad = tuple([t.requires_grad for t in tensors])
        fn._vsum = _version_sum(tensors) if fn.saves_inputs else -1
    t = _new(_Tensor)
    t.data = out
    t.grad_fn = fn
    t.requires_grad = True
    t.grad = None
    t._version = 0
    return t


_TRUE1 = (True,)
_Tensor = None  # set by tensor.py (import cycle: tensors create nodes, nodes create tensors)


def _bind_tensor(cls) -> None:
    global _Tensor
    _Tensor = cls
