"""Capture and replay: record the operations of one call, then re-run them without the Python around them.

An eager step pays Python work around every operation: the module call, the argument checks of
``F.linear``, ``Function.apply`` and the Tensor it makes, and in backward the engine's topological sort and
bookkeeping.  For the MNIST MLP at batch 32, replaying instead takes 50–115 of the ~900 µs of a training
step (``benchmarks/README.md``).  When a computation is *static* (the same operations, on arrays of the same
shapes, every call), that work can be done once::

    outputs, tape = record(fn, inputs)   # runs fn eagerly and logs every Function it applies
    outputs = tape.forward(new_inputs)   # the logged ops' forward methods, on the new arrays
    tape.backward()                      # their backward_np methods, in the engine's order, into .grad

Replay calls the very ``forward`` and ``backward_np`` methods the eager run called, on the same arrays,
in the same order, and accumulates gradients exactly as ``engine.run_backward`` does, so its results are
bit for bit those of the eager run.  What it skips is only the Python around them: the log is written out
once as straight-line Python that makes those calls one after the other (``print(tape.code)`` shows it).

What a log cannot stand for is found at record time and reported in ``Tape.problem`` (the tape is then
never replayed): an in-place write into any tensor (``add_``, ``x[i] = v``, ``nn.ReLU(inplace=True)``: the
array may be shared with views, ``detach()`` or the caller's batch, which a log cannot follow), a tensor made by
something other than a ``Function`` that depends on the graph, an input that has a graph of its own or is
passed twice, a logged value handed to an op as a parameter rather than as an input, or logged values that
reach no output (a side effect).  Constants (parameters, loss weights) are Tensors the log points to: every
replay reads their current ``.data``.  Two logs of the same computation on different inputs can be compared
(``same_as``): they must apply the same ops to the same constant *objects*, with equal Python parameters.
A Tensor or array made afresh in each call (a mask computed in Python from the data, a copy of a weight)
differs between the logs even when its values happen to agree, so it refuses replay.  Like
``torch.jit.trace`` and CUDA graphs, a branch taken in Python on the data's values cannot be seen: a
computation that may take another branch on other data must not be replayed.  ``train.TrainStep`` builds
a safe training step on this module.
"""

from __future__ import annotations

import itertools
import linecache

import numpy as np

from .._malloc import root
from . import engine as _engine
from . import function as _fn
from .function import Function
from .tensor import Tensor

__all__ = ["Tape", "record"]

_new = object.__new__
_programs = itertools.count(1)   # numbers the generated programs' file names (shown in tracebacks)
_ndarray = np.ndarray
_asarray = np.asarray
_add = np.add


class Tape:
    """The logged operations of one call, ready to be replayed on new inputs of the same shapes.

    Each entry is ``(cls, params, sources, requires_grad, needs_input_grad)``: the Function class, the
    keyword parameters it was applied with, and where each input comes from (an ``int``: the index of
    an input of the call or of an earlier entry's result; a ``Tensor``: a constant, e.g. a parameter,
    whose ``.data`` is read at every replay, so optimizer updates are seen).
    """

    def __init__(self, entries, n_inputs: int, outputs, problem: str | None = None):
        self.entries = entries
        self.n_inputs = n_inputs
        self.outputs = outputs        # the index (as in sources) of each output
        self.problem = problem        # why this tape must not be replayed (None: it can be)
        self._program: _Program | None = None   # the replay as straight-line code, made at the first forward
        self._state = None            # what the last forward left for backward
        consts = {}
        for entry in entries:
            for s in entry[2]:
                if s.__class__ is not int:
                    consts[id(s)] = s
        # What a replay assumes of its constants; checked by ``valid()`` before each replay.
        self._guards = [(t, t.data.shape, t.data.dtype, t.requires_grad) for t in consts.values()]
        self._plan = self._backward_plan() if problem is None and outputs else None

    # ---- building ------------------------------------------------------------------------------
    def _backward_plan(self):
        """For the nodes the first output's backward visits, newest first (the engine's order): the
        entry index and, for each input that needs a gradient, where it goes (``int``: an earlier
        value's slot; ``Tensor``: a leaf)."""
        base = self.n_inputs
        root = self.outputs[0] - base
        if root < 0 or not self.entries[root][3]:
            return None
        reach = {root}
        plan = []
        for j in range(root, -1, -1):
            if j not in reach:
                continue
            _cls, _params, sources, _rg, needs = self.entries[j]
            targets = []
            for i, s in enumerate(sources):
                if not needs[i]:
                    continue
                if s.__class__ is int:
                    if s >= base:
                        reach.add(s - base)
                        targets.append((i, s))
                    else:
                        targets.append((i, -1 - s))    # an input of the call that requires grad (a leaf)
                elif s.requires_grad:
                    targets.append((i, s))
            plan.append((j, tuple(targets)))
        return plan

    # ---- checks --------------------------------------------------------------------------------
    def valid(self) -> bool:
        """Whether the constants still have the shapes, dtypes and requires_grad the log was made with."""
        for t, shape, dtype, rg in self._guards:
            d = t.data
            if d.shape != shape or d.dtype != dtype or t.requires_grad is not rg:
                return False
        return True

    def same_as(self, other: Tape) -> bool:
        """Whether ``other`` logged the same operations with equal constants and parameters."""
        if len(self.entries) != len(other.entries) or self.outputs != other.outputs:
            return False
        for a, b in zip(self.entries, other.entries):
            if a[0] is not b[0] or a[3] != b[3] or a[4] != b[4] or len(a[2]) != len(b[2]):
                return False
            for s, u in zip(a[2], b[2]):
                if (s.__class__ is int) != (u.__class__ is int) or not _same(s, u):
                    return False
            if not _same(a[1], b[1]):
                return False
        return True

    # ---- replay --------------------------------------------------------------------------------
    def forward(self, inputs):
        """Run the logged forwards on ``inputs`` (Tensors shaped as the recorded ones); return the
        outputs as Tensors without a graph (``tape.backward()`` differentiates them)."""
        if self._program is None:
            self._program = _Program(self)
        outputs, self._state = self._program.forward(*inputs)
        return outputs

    def backward(self) -> None:
        """Backpropagate from the first output of the last ``forward`` (a scalar) into the leaves'
        ``.grad``, exactly as ``loss.backward()`` would have; frees the saved values."""
        state, self._state = self._state, None
        if self._plan is None or state is None:
            raise RuntimeError("Tape.backward: no forward to differentiate (or the first output needs no grad)")
        prev = _fn._grad_enabled
        _fn._grad_enabled = False
        try:
            self._program.backward(*state)
        finally:
            _fn._grad_enabled = prev

    @property
    def code(self) -> str:
        """The straight-line Python that ``forward`` and ``backward`` run (see ``_Program``)."""
        if self._program is None:
            self._program = _Program(self)
        return self._program.source


class _Program:
    """A tape written out as two straight-line Python functions, compiled once and run at every replay.

    Interpreting the log costs a loop iteration, list building and tuple lookups per operation; the
    generated code does only what the eager run did around each ``forward``/``backward_np`` call. For a
    tape of the MNIST MLP, ``print(tape.code)`` shows::

        def forward(v0, v1):
            f0 = new(C0)   # Linear
            a = f0.forward(v0.data, K0.data, K1.data)
            ...

    Names: ``v<k>`` the value in slot k (inputs first, then each entry's result), ``f<j>`` entry j's
    Function, ``C<j>``/``P<j>``/``N<j>`` its class, keyword parameters and needs_input_grad, ``K<m>`` the
    constants (parameters, loss weights), ``g<k>`` the gradient of value k during backward.
    """

    def __init__(self, tape: Tape):
        n = tape.n_inputs
        env: dict = {"new": _new, "Tensor": Tensor, "ndarray": _ndarray, "asarray": _asarray, "add": _add,
                     "ones": np.ones, "make": Tensor._make, "deliver": _engine._deliver_leaf}
        consts: dict[int, str] = {}

        def name(s) -> str:
            if s.__class__ is int:
                return f"v{s}"
            k = consts.get(id(s))
            if k is None:
                k = consts[id(s)] = f"K{len(consts)}"
                env[k] = s
            return k

        fwd = [f"def forward({', '.join(f'v{i}' for i in range(n))}):"]
        for j, (cls, params, sources, rg, needs) in enumerate(tape.entries):
            env[f"C{j}"] = cls
            fwd.append(f"    f{j} = new(C{j})   # {cls.__name__}")
            if params:
                env[f"P{j}"] = params
                fwd.append(f"    f{j}.__dict__.update(P{j})")
            args = [name(s) for s in sources]
            fwd.append(f"    a = f{j}.forward({', '.join(a + '.data' for a in args)})")
            fwd.append("    if a.__class__ is not ndarray:")
            fwd.append("        a = asarray(a)")
            if rg:
                env[f"N{j}"] = needs
                fwd.append(f"    f{j}.inputs = ({''.join(a + ', ' for a in args)})")
                fwd.append(f"    f{j}.needs_input_grad = N{j}")
            fwd.append(f"    v{n + j} = t = new(Tensor)")    # Tensor._make, inlined as in Function.apply
            fwd.append(f"    t.data = a; t.grad_fn = None; t.requires_grad = {bool(rg)}; t.grad = None; t._version = 0")
        outs = "".join(f"make(v{k}.data), " for k in tape.outputs)
        nodes = "".join(f"f{j}, " for j, _ in tape._plan or ())
        inputs = "".join(f"v{i}, " for i in range(n))
        seed = f"v{n + tape._plan[0][0]}.data" if tape._plan else "None"
        fwd.append(f"    return ({outs}), ([{nodes}], ({inputs}), {seed})")

        bwd = self._backward_source(tape, name, env)
        self.source = "\n".join(fwd) + "\n\n\n" + "\n".join(bwd) + "\n"
        filename = f"<replay {next(_programs)}: {len(tape.entries)} ops>"
        linecache.cache[filename] = (len(self.source), None, self.source.splitlines(True), filename)  # tracebacks
        exec(compile(self.source, filename, "exec"), env)
        self.forward, self.backward = env["forward"], env["backward"]

    @staticmethod
    def _backward_source(tape: Tape, name, env) -> list[str]:
        """``backward(nodes, inputs, seed)``: the plan's nodes newest first, with the engine's rules: a
        value's first gradient is kept as is, a second one makes a fresh sum, later ones add into it."""
        n, plan = tape.n_inputs, tape._plan or ()
        order = [j for j, _ in plan]
        lines = ["def backward(nodes, inputs, seed):"]
        if not plan:
            return lines + ["    pass"]
        lines.append(f"    {''.join(f'f{j}, ' for j in order)}= nodes")
        lines.append("    nodes.clear()      # each node (and what it saved) is freed once its backward ran")
        contributions: dict[int, int] = {}
        for _, targets in plan:
            for _, dest in targets:
                if dest.__class__ is int and dest >= n:
                    contributions[dest] = contributions.get(dest, 0) + 1
        for k, c in contributions.items():
            lines.append(f"    g{k} = None" + (f"; o{k} = False" if c > 1 else ""))
        root = n + order[0]
        lines.append(f"    g{root} = ones(seed.shape, seed.dtype)   # dL/dL")
        lines.append("    del seed")
        for j, targets in plan:
            cls = tape.entries[j][0]
            k = n + j
            call = "backward_np" if cls.backward_np is not None else "backward_via_tensors"
            lines.append(f"    if g{k} is not None:   # {cls.__name__}")
            lines.append(f"        gins = f{j}.{call}(g{k})")
            lines.append("        if gins.__class__ is not tuple:")
            lines.append("            gins = (gins,)")
            for i, dest in targets:
                lines.append(f"        gi = gins[{i}] if len(gins) > {i} else None")
                lines.append("        if gi is not None:")
                lines.append("            if gi.__class__ is not ndarray:")
                lines.append("                gi = asarray(gi)")
                if dest.__class__ is not int:                 # a constant leaf: _deliver_leaf's common case inlined
                    leaf = name(dest)
                    lines.append(f"            if ({leaf}.grad is None and gi is not g{k} and gi.base is None "
                                 f"and gi.flags.writeable and gi.dtype == {leaf}.data.dtype):")
                    lines.append(f"                {leaf}.grad = make(gi)")
                    lines.append("            else:")
                    lines.append(f"                deliver({leaf}, gi, g{k}, False, None, None, True)")
                elif dest < 0:                                # an input of the call that requires grad
                    lines.append(f"            deliver(inputs[{-1 - dest}], gi, g{k}, False, None, None, True)")
                elif contributions[dest] == 1:
                    lines.append(f"            g{dest} = gi")
                else:
                    lines.append(f"            if g{dest} is None:")
                    lines.append(f"                g{dest} = gi")
                    lines.append(f"            elif not o{dest}:   # as the engine: a fresh buffer, then add in place")
                    lines.append(f"                g{dest} = g{dest} + gi")
                    lines.append(f"                if g{dest}.__class__ is not ndarray:")
                    lines.append(f"                    g{dest} = asarray(g{dest})")
                    lines.append(f"                o{dest} = True")
                    lines.append("            else:")
                    lines.append(f"                add(g{dest}, gi, out=g{dest})")
            lines.append(f"    f{j} = g{k} = gins = gi = None")
        return lines


def _same(a, b) -> bool:
    """The same constant in two logs.  Tensors and arrays must be the *same memory* (a parameter, a buffer,
    an index array the code keeps, or views of one): one made afresh in each call may hold values computed
    from the data in Python, which two batches can share by chance (a mask with no element set, labels
    sorted by class).  Python values (numbers, strings, tuples, dtypes) compare by value."""
    if a is b:
        return True
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a.requires_grad == b.requires_grad and _same_memory(a.data, b.data)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return _same_memory(a, b)
    if isinstance(a, (Tensor, np.ndarray)) or isinstance(b, (Tensor, np.ndarray)):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and a != a:
        return b != b
    try:
        return bool(a == b)
    except Exception:          # objects without a meaningful ==: only the same object is the same
        return False


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """The same array, or two views of the same memory of one array with the same layout (``where`` and
    ``broadcast_to`` make a new view of a constant mask in each call)."""
    if a is b:
        return True
    if a.dtype != b.dtype or a.shape != b.shape or a.strides != b.strides or a.ctypes.data != b.ctypes.data:
        return False
    return root(a) is root(b)


class _Recording:
    """Within ``with _Recording(log):`` every ``Function.apply`` / ``apply_scalar`` is logged."""

    _active = False

    def __init__(self, log: list):
        self.log = log

    def __enter__(self):
        if _Recording._active:
            raise RuntimeError("replay.record: already recording (records cannot nest)")
        log = self.log
        apply = Function.__dict__["apply"].__func__
        apply_scalar = Function.__dict__["apply_scalar"].__func__

        def logged_apply(cls, *tensors, **params):
            versions = [t._version for t in tensors]
            out = apply(cls, *tensors, **params)
            log.append((cls, tensors, params, versions, out))
            return out

        def logged_apply_scalar(cls, x, c):
            versions = [x._version]
            out = apply_scalar(cls, x, c)
            log.append((cls, (x,), {"c": c}, versions, out))
            return out

        def logged_write(x):
            log.append((_WRITE, x))

        self._saved = (Function.__dict__["apply"], Function.__dict__["apply_scalar"])
        Function.apply = classmethod(logged_apply)  # type: ignore[method-assign, assignment]
        Function.apply_scalar = classmethod(logged_apply_scalar)  # type: ignore[method-assign, assignment]
        _fn._write_hook = logged_write
        _fn._recording = _Recording._active = True
        return log

    def __exit__(self, *exc):
        Function.apply, Function.apply_scalar = self._saved  # type: ignore[method-assign]
        _fn._write_hook = None
        _fn._recording = _Recording._active = False
        return False


_WRITE = object()   # marks a write into a tensor in the log: (_WRITE, tensor)


def record(fn, inputs):
    """Call ``fn(*inputs)`` (eagerly: the graph is built as usual) while logging its operations.

    Returns ``(outputs, tape)``: ``fn``'s result (a Tensor or a tuple of Tensors) and a :class:`Tape` of
    it, whose ``problem`` says why it must not be replayed, if it must not.
    """
    inputs = tuple(inputs)
    log: list = []
    with _Recording(log):
        result = fn(*inputs)
    outs = result if isinstance(result, tuple) else (result,)
    return result, _build(log, inputs, outs)


def _build(log, inputs, outs) -> Tape:
    slot = {id(t): i for i, t in enumerate(inputs)}
    n = len(inputs)
    entries: list = []
    problem = None
    results = []
    if len(slot) != n:
        problem = "the same tensor is passed as two inputs (a replay could not tell them apart)"
    elif any(t.grad_fn is not None for t in inputs):
        problem = "an input is the result of operations outside the call (backward must go through them)"
    if problem is None and any(item[0] is _WRITE for item in log):
        # x.add_(1), nn.ReLU(inplace=True), x[i] = v, ...: the write goes into an array that other values may
        # share (views, detach(), the caller's batch), which a replay could not follow.
        problem = ("an in-place operation wrote into a tensor during the call (add_, x[i] = v, "
                   "ReLU(inplace=True), ...): use the out-of-place form to replay")
    for item in log:
        if item[0] is _WRITE:
            continue
        j = len(entries)
        cls, tensors, params, versions, out = item
        sources: list = []
        for t in tensors:
            k = slot.get(id(t))
            if k is not None:
                sources.append(k)
                continue
            if t.grad_fn is not None and problem is None:
                problem = f"{cls.__name__} uses a tensor made by an operation that was not recorded"
            sources.append(t)
        if problem is None and [t._version for t in tensors] != versions:
            problem = f"an in-place operation changed an input of {cls.__name__}"
        if problem is None and params and any(id(t) in slot for t in _tensors_in(params.values())):
            problem = f"{cls.__name__} gets a recorded value as a parameter (a replay could not renew it)"
        needs = tuple([t.requires_grad for t in tensors])
        entries.append((cls, params or None, tuple(sources), out.requires_grad, needs))
        slot[id(out)] = n + j
        results.append(out)
    if problem is None and any(t._version for t in results):
        problem = "a result was written to in place during the call"
    outputs = []
    for t in outs:
        k = slot.get(id(t)) if isinstance(t, Tensor) else None
        if k is None:
            problem = problem or "an output is not the result of a recorded operation"
            break
        outputs.append(k)
    if problem is None:
        problem = _dead(entries, n, outputs)
    return Tape(entries, n, tuple(outputs), problem)


def _tensors_in(values):
    """The Tensors among ``values`` and in the tuples and lists among them."""
    for v in values:
        if isinstance(v, Tensor):
            yield v
        elif isinstance(v, (tuple, list)):
            yield from _tensors_in(v)


def _dead(entries, n: int, outputs) -> str | None:
    """A problem if some logged value reaches no output (it was kept for a side effect, e.g. stored)."""
    used = set(outputs)
    for j in range(len(entries) - 1, -1, -1):
        if n + j in used:
            used.update(s for s in entries[j][2] if s.__class__ is int)
    for j, entry in enumerate(entries):
        if n + j not in used:
            return f"the result of {entry[0].__name__} reaches no output (kept for a side effect?)"
    return None
