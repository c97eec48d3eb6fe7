"""``Optimizer``: the base class every optimizer (SGD, Adam, ...) builds on.

An optimizer owns a list of *parameter groups*.  Each group is a dict holding the parameters
(``group["params"]``, a list of leaf Tensors) and every option of the algorithm (``lr``,
``momentum``, ...), so different groups can use different options::

    opt = SGD([{"params": body, "lr": 1e-2},       # this group overrides lr
               {"params": head}], lr=1e-1, momentum=0.9)

``opt.state[p]`` is a dict of per-parameter state (momentum buffers, Adam's moments, step
counts), created lazily on the first ``step()`` that sees a gradient for ``p``.

A training step is ``opt.zero_grad(); loss.backward(); opt.step()``.  ``step()`` reads each
parameter's ``p.grad.data`` and updates ``p.data`` **in place** with plain NumPy: no Tensor graph
is built, and the arrays you hold (``p.data``) stay the same objects.  Temporaries are kept in a
small per-optimizer cache so a step allocates (almost) nothing.

Subnormal numbers
-----------------
Momentum buffers and moving averages of a unit whose gradient is (and stays) zero decay
geometrically, ``v *= 0.9`` each step.  After ~800 steps the values drop below the
smallest *normal* float (``np.finfo(np.float32).tiny`` ~ 1.2e-38) into the *subnormal* range,
where x86 CPUs take a microcode assist on every operation: ``v *= 0.9`` on a 256x784 float32
array takes ~20 us with normal values and ~1,100 us (55x) when they are subnormal.  And they stay
there: with round-to-nearest, ``0.9 * k * 2**-149`` rounds back to ``k * 2**-149`` for k <= 4, so
the buffer never reaches zero.  (PyTorch keeps them too, unless you call
``torch.set_flush_denormal(True)`` to set the CPU's flush-to-zero mode; NumPy has no such switch.)

So decaying buffers are flushed: every value with ``|v| < FLUSH_MARGIN * tiny`` is set to 0.  A
flush costs about three cheap passes over the buffer (~3 multiplies' worth), so it runs only every
``n`` steps, where ``n`` is the number of steps a value needs to shrink by ``FLUSH_MARGIN / 2``
at the buffer's decay rate (32 steps for 0.9, 1024 at most).  A value that survives a flush is
``>= FLUSH_MARGIN * tiny``, so it cannot fall below ``tiny`` before the next one: the buffers
never hold a subnormal, and the amortised cost is ~1-2% of a step.  The values flushed are below
1e-36 (float32), so the parameters differ from PyTorch's by far less than one rounding error.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from typing import Any, Callable

import numpy as np

from .. import _malloc
from ..autograd import Tensor, enable_grad

__all__ = ["Optimizer", "flatten_state_dict", "unflatten_state_dict"]

#: Decaying buffers are flushed to 0 below ``FLUSH_MARGIN * np.finfo(dtype).tiny``.
FLUSH_MARGIN = 64.0
#: Flush at least this often, whatever the decay rate.
MAX_FLUSH_INTERVAL = 1024
#: Elements per piece of a flush (256 KiB of float32: the piece and its scratch stay in L2).
FLUSH_CHUNK = 65536
#: Where each optimizer buffer starts relative to its parameter, in quarter-pages (``Optimizer._new_state``):
#: the buffers one update reads together sit at different offsets.
_STATE_SLOTS = {"exp_avg": 1, "square_avg": 1, "momentum_buffer": 2, "exp_avg_sq": 2, "sum": 2,
                "max_exp_avg_sq": 3, "grad_avg": 3}
_TINY = {np.dtype(np.float32): float(np.finfo(np.float32).tiny),
         np.dtype(np.float64): float(np.finfo(np.float64).tiny)}


@functools.lru_cache(maxsize=256)
def flush_interval(decay: float) -> int:
    """Steps between flushes for a buffer multiplied by ``decay`` each step.

    It is the number of steps a value needs to shrink by ``FLUSH_MARGIN / 2`` (a 2x safety margin
    over ``FLUSH_MARGIN``): 32 for 0.9, 5 for 0.5, ``MAX_FLUSH_INTERVAL`` for 0.999 or for a
    buffer that does not decay (``decay`` of 0 or >= 1).
    """
    if not 0.0 < decay < 1.0:
        return MAX_FLUSH_INTERVAL
    n = int(math.log(FLUSH_MARGIN / 2) / -math.log(decay))
    return max(1, min(MAX_FLUSH_INTERVAL, n))


class Optimizer:
    """Base class of all optimizers (``torch.optim.Optimizer``).

    Args:
        params: an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts (parameter
            groups): each dict has a ``"params"`` entry plus any options that override
            ``defaults`` for that group.
        defaults: the options of the algorithm and their default values.

    Subclasses implement ``_check_options(options)`` (raise ``ValueError`` for bad values) and
    ``_step_group(group)`` (update every parameter of one group that has a gradient).
    """

    def __init__(self, params, defaults: dict[str, Any]):
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors or "
                            "dicts, but got a Tensor; wrap it in a list: [param]")
        self.defaults = dict(defaults)
        self._check_options(self.defaults)
        self.state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        self._scratch: dict[tuple, np.ndarray] = {}   # temporaries, keyed by (name, shape, dtype)
        self._step_calls = 0                          # clock for the subnormal flushes
        self._opt_called = False                      # has step() run? (for the LR schedulers)

        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k not in ("params", "param_names")]
        return "\n".join(lines) + "\n)"

    # ---- parameter groups -------------------------------------------------------------------------
    def _check_options(self, options: dict[str, Any]) -> None:
        """Raise ``ValueError`` if an option value is invalid (subclasses override)."""

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters, with its own options, to ``param_groups``.

        Useful to start training layers that were frozen.  Options the group does not set are
        taken from ``defaults``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("a parameter group must have a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets changes between runs; use a list instead")
        params = list(params)
        if not params:
            raise ValueError("optimizer got an empty parameter list")

        # named_parameters() gives (name, tensor) pairs: keep the names, as torch does
        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names; some names are missing")
            group["param_names"] = names
            params = [p[1] for p in params]

        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but parameter {i} is a "
                                f"{type(p).__name__}")
            if p.data.dtype.kind != "f":
                raise TypeError(f"optimizer can only optimize floating-point Tensors, but parameter {i} "
                                f"has dtype {p.data.dtype}; convert it first, e.g. p.float()")
            if p.grad_fn is not None:  # not p.is_leaf
                raise ValueError(f"can't optimize a non-leaf Tensor (parameter {i} was computed by "
                                 f"{p.grad_fn.name}); optimize the leaf it was computed from, or detach() it")
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer contains a parameter group with duplicate parameters")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        if self.param_groups and (("param_names" in group) != ("param_names" in self.param_groups[0])):
            raise ValueError("all optimizer param groups should be with/without names")

        group["params"] = params
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_options(group)
        self.param_groups.append(group)

    # ---- gradients --------------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters.

        ``set_to_none=True`` (default) sets ``p.grad = None``: the next backward allocates a fresh
        gradient, and ``step()`` skips parameters that receive none.  ``set_to_none=False`` fills
        the existing ``.grad`` arrays with zeros in place.
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                g = p.grad
                if g.grad_fn is not None or g.requires_grad:      # a create_graph gradient
                    g = p.grad = Tensor._make(g.data.copy())
                if g.data.flags.writeable:
                    g.data.fill(0)
                else:
                    g.data = np.zeros_like(g.data)

    # ---- the step ---------------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient; return ``closure()``'s loss (or None).

        ``closure``, if given, re-evaluates the model: it should zero the gradients, compute the
        loss, call ``loss.backward()`` and return the loss.  It runs with gradients enabled even
        inside ``no_grad()``.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._step_group(group)
        self._step_calls += 1
        self._opt_called = True
        return loss

    def _step_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _step_group")

    # ---- helpers for subclasses ---------------------------------------------------------------------
    @staticmethod
    def _params_with_grad(group: dict[str, Any]):
        """Yield ``(param, param.data, grad array)`` for each parameter of ``group`` with a gradient."""
        for p in group["params"]:
            if p.grad is None:
                continue
            g = p.grad.data
            if g.shape != p.data.shape:
                raise RuntimeError(f"a parameter of shape {p.data.shape} has a gradient of shape {g.shape}")
            yield p, p.data, g

    @staticmethod
    def _new_state(param: np.ndarray, name: str, fill=0.0, dtype=None) -> Tensor:
        """The state buffer ``name`` of ``param`` (``"momentum_buffer"``, ``"exp_avg"``, ...), filled with
        ``fill`` (an array is copied).

        It starts ``_STATE_SLOTS[name]`` quarter-pages after ``param`` within a 4 KiB page: an update streams
        through the parameter, its gradient and its buffers together, and arrays at equal page offsets slow
        that down (see ``chainrule._malloc.empty``).
        """
        shift = 1024 * _STATE_SLOTS.get(name, 2)
        buf = _malloc.empty(param.shape, param.dtype if dtype is None else dtype, like=param, shift=shift)
        np.copyto(buf, fill)
        return Tensor._make(buf)

    @staticmethod
    def _mark_updated(p: Tensor) -> None:
        """Bump ``p``'s version counter: its value changed in place, so a graph that saved the old
        value refuses to backpropagate through it (as with any in-place operation)."""
        p._version += 1

    def _buffer(self, like: np.ndarray, name: str, dtype=None, shape=None) -> np.ndarray:
        """A reusable temporary array shaped like ``like`` (or ``shape``; contents undefined).

        Parameters of the same shape and dtype share it, so it must not be kept across params.
        """
        dt = like.dtype if dtype is None else np.dtype(dtype)
        shape = like.shape if shape is None else shape
        key = (name, shape, dt)
        buf = self._scratch.get(key)
        if buf is None:
            buf = self._scratch[key] = np.empty(shape, dt)
        return buf

    def _effective_grad(self, param: np.ndarray, grad: np.ndarray, weight_decay: float,
                        maximize: bool) -> np.ndarray:
        """``g = -grad if maximize else grad``, then ``g = g + weight_decay * param`` (L2 penalty).

        Returns ``grad`` itself when there is nothing to do (callers must not write into it),
        otherwise a temporary buffer.
        """
        if not maximize and weight_decay == 0:
            return grad
        g = self._buffer(param, "grad")
        if weight_decay == 0:
            np.negative(grad, out=g)
        else:
            np.multiply(param, weight_decay, out=g)
            if maximize:
                g -= grad            # (-grad) + wd * param
            else:
                g += grad
        return g

    def _flush_due(self, decay: float) -> bool:
        """Whether this step flushes buffers that decay by ``decay`` (see ``_flush_subnormals``)."""
        return self._step_calls % flush_interval(decay) == 0

    def _flush_subnormals(self, buf: np.ndarray, decay: float) -> None:
        """Zero the values of ``buf`` below ``FLUSH_MARGIN * tiny`` every ``flush_interval(decay)``
        steps, so a buffer that decays by ``decay`` per step never holds a subnormal (see the
        module docstring)."""
        if self._step_calls % flush_interval(decay):
            return
        if buf.dtype != np.float32 and buf.dtype != np.float64:   # float16 math runs in float32
            return
        threshold = buf.dtype.type(FLUSH_MARGIN * _TINY[buf.dtype])
        # v * [|v| >= threshold] rather than a masked copy of zeros (NaN and Inf stay as they are, NaN * 0 being
        # NaN; a flushed value becomes a zero of its own sign), in L2-sized pieces: on the MNIST MLP's momentum
        # (269k values, 15 % of them zero) 235 -> 124 us a flush.
        if not buf.flags.c_contiguous:        # the optimizers' buffers are; anything else is flushed whole
            np.multiply(buf, np.abs(buf) >= threshold, out=buf)
            return
        flat = buf.reshape(-1)                # a view
        n = min(flat.size, FLUSH_CHUNK)
        magnitude = self._buffer(flat, "flush.abs", shape=(n,))
        keep = self._buffer(flat, "flush.keep", np.bool_, shape=(n,))
        for i in range(0, flat.size, n or 1):
            v = flat[i:i + n]
            m, k = (magnitude, keep) if v.size == n else (magnitude[:v.size], keep[:v.size])
            np.abs(v, out=m)
            np.greater_equal(m, threshold, out=k)
            np.multiply(v, k, out=v)

    # ---- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, in torch's layout::

            {"state": {0: {"step": 10, "exp_avg": Tensor, ...}, 1: {...}},
             "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, ...]}

        Parameters are numbered in the order they appear in ``param_groups``; the parameters
        themselves are not saved.  Array state is copied (later steps do not change the returned
        dict).  ``flatten_state_dict`` turns it into arrays + JSON for a safetensors file.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: (list(v) if k == "param_names" else v) for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for p, s in self.state.items():
            if s and id(p) in index:
                state[index[id(p)]] = {k: _copy_value(v) for k, v in s.items()}
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a ``state_dict()`` (of an optimizer of the same kind over the same parameter
        layout): the options of every group, and the per-parameter state, copied and cast to each
        parameter's dtype."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("optimizer state_dict must be a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, but the optimizer "
                             f"has {len(self.param_groups)}")
        for i, (g, sg) in enumerate(zip(self.param_groups, saved_groups, strict=True)):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(f"loaded state dict's parameter group {i} has {len(sg['params'])} "
                                 f"parameters, but the optimizer's has {len(g['params'])}")
        id_map = {saved: p for g, sg in zip(self.param_groups, saved_groups, strict=True)
                  for saved, p in zip(sg["params"], g["params"], strict=True)}

        state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        for key, pstate in state_dict["state"].items():
            key = int(key)
            if key not in id_map:
                raise ValueError(f"loaded state dict has state for parameter {key}, which is in no group")
            p = id_map[key]
            state[p] = {name: _load_value(v, p, key, name) for name, v in pstate.items()}

        groups = []
        for g, sg in zip(self.param_groups, saved_groups, strict=True):
            new = {k: (list(v) if isinstance(v, list) else v) for k, v in sg.items()}
            new["params"] = g["params"]
            if "param_names" in g and "param_names" not in new:
                new["param_names"] = g["param_names"]
            for name, default in self.defaults.items():
                new.setdefault(name, default)
            self._check_options(new)
            groups.append(new)
        self.state = state
        self.param_groups = groups
        self._step_calls = 0      # so the next step flushes any near-subnormal loaded values


# ---- state dict values ----------------------------------------------------------------------------
def _copy_value(v):
    if isinstance(v, Tensor):
        return Tensor._make(v.data.copy())
    if isinstance(v, np.ndarray):
        return Tensor._make(v.copy())
    return v


def _load_value(v, p: Tensor, key: int, name: str):
    if isinstance(v, (Tensor, np.ndarray)):
        a = v.data if isinstance(v, Tensor) else v
        if name == "step":                    # torch keeps step as a 0-d tensor
            return int(a) if float(a).is_integer() else float(a)
        if a.ndim and a.shape != p.data.shape:
            raise ValueError(f"loaded state dict's {name!r} for parameter {key} has shape {a.shape}, but "
                             f"the parameter has shape {p.data.shape}")
        dtype = p.data.dtype if a.dtype.kind == "f" else a.dtype
        if a.shape != p.data.shape:
            return Tensor._make(np.array(a, dtype=dtype, copy=True))
        return Optimizer._new_state(p.data, name, a, dtype)
    return v


# ---- flat form for safetensors --------------------------------------------------------------------
_FORMAT = "chainrule.optim.state_dict/1"


def flatten_state_dict(state_dict: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Split an optimizer ``state_dict()`` into ``(arrays, meta)`` for a safetensors checkpoint.

    ``arrays`` maps ``"state.<param index>.<name>"`` to each array (``exp_avg``,
    ``momentum_buffer``, ...); ``meta`` is a JSON-serialisable dict with everything else: the
    param groups and the scalar state (``step`` counts).  Tuples (Adam's ``betas``) are stored
    as ``{"__tuple__": [...]}`` so ``unflatten_state_dict`` gives them back as tuples.

    >>> import json
    >>> arrays, meta = flatten_state_dict(opt.state_dict())            # doctest: +SKIP
    >>> save_arrays(arrays, path, metadata={"optimizer": json.dumps(meta)})  # doctest: +SKIP
    """
    arrays: dict[str, np.ndarray] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for key, pstate in state_dict["state"].items():
        entry = scalars.setdefault(str(int(key)), {})
        for name, v in pstate.items():
            if isinstance(v, (Tensor, np.ndarray)):
                a = v.data if isinstance(v, Tensor) else v
                arrays[f"state.{int(key)}.{name}"] = a if a.flags.c_contiguous else a.copy(order="C")
            else:
                entry[name] = _to_json(v, f"state[{key}][{name!r}]")
    groups = [_to_json(g, f"param_groups[{i}]") for i, g in enumerate(state_dict["param_groups"])]
    return arrays, {"format": _FORMAT, "state": scalars, "param_groups": groups}


def unflatten_state_dict(arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the ``state_dict`` that ``flatten_state_dict`` split (arrays become Tensors)."""
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise ValueError(f"not an optimizer state_dict's metadata (expected format {_FORMAT!r}, got "
                         f"{meta.get('format') if isinstance(meta, dict) else type(meta).__name__!r})")
    state: dict[int, dict[str, Any]] = {}
    for key, entry in meta["state"].items():
        state[int(key)] = {name: _from_json(v) for name, v in entry.items()}
    for flat_name, a in arrays.items():
        parts = flat_name.split(".", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise ValueError(f"unexpected array name {flat_name!r} in an optimizer state "
                             "(expected 'state.<index>.<name>')")
        state.setdefault(int(parts[1]), {})[parts[2]] = Tensor._make(np.asarray(a))
    groups = [_from_json(g) for g in meta["param_groups"]]
    return {"state": dict(sorted(state.items())), "param_groups": groups}


def _to_json(v, where: str):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    if isinstance(v, Tensor) and v.data.size == 1:
        return v.data.item()
    if isinstance(v, tuple):
        return {"__tuple__": [_to_json(x, where) for x in v]}
    if isinstance(v, list):
        return [_to_json(x, where) for x in v]
    if isinstance(v, dict):
        return {str(k): _to_json(x, f"{where}[{k!r}]") for k, x in v.items()}
    raise TypeError(f"{where}: can't store a {type(v).__name__} in JSON metadata")


def _from_json(v):
    if isinstance(v, dict):
        if set(v) == {"__tuple__"}:
            return tuple(_from_json(x) for x in v["__tuple__"])
        return {k: _from_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_from_json(x) for x in v]
    return v


def _as_float(name: str, value) -> float:
    """An option as a Python float (NumPy float64 scalars would upcast float32 arrays)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None


def _check_nonnegative(options: dict[str, Any], *names: str) -> None:
    messages = {"lr": "learning rate", "eps": "epsilon value"}
    for name in names:
        if name in options and not _as_float(name, options[name]) >= 0.0:
            raise ValueError(f"Invalid {messages.get(name, name + ' value')}: {options[name]} (must be >= 0)")


def _torch_switches(**switches) -> dict[str, Any]:
    """torch's implementation switches (``foreach``, ``fused``, ``capturable``, ``differentiable``).

    Accepted so torch code runs unchanged, and kept in the param groups as torch keeps them; chainrule
    has one NumPy implementation, so they change nothing -- except ``differentiable=True``, which
    it cannot honour (steps run outside autograd) and refuses.
    """
    if switches.get("differentiable"):
        raise ValueError("differentiable=True is not supported: chainrule's optimizers update the parameters "
                         "in place with NumPy, outside autograd")
    if switches.get("fused") and switches.get("foreach"):
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    return switches


def _check_betas(betas) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for i, b in enumerate(betas):
        if not 0.0 <= _as_float(f"betas[{i}]", b) < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: {b} (must be in [0, 1))")

