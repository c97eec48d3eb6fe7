"""``explain``: backpropagation narrated, gate by gate.

Backprop is the chain rule applied locally.  Every gate (operation) in the graph only needs to know
its *local* gradient, d(output)/d(input); during the backward pass it receives the *upstream*
gradient dL/d(output) and sends each input the *downstream* gradient

    dL/d(input) = dL/d(output) * d(output)/d(input)        (downstream = upstream x local)

A value used by several gates (fan-out) receives the *sum* of their downstream gradients, so a gate
is processed only after every gate that consumes its output: reverse topological order.

``explain(output)`` runs that backward pass itself and returns one :class:`GateRecord` per gate, in
the order backward visits them, with the forward value, the upstream, local and downstream
gradients; it prints them as a table.  The lectures' sigmoid neuron::

    >>> from chainrule.scalar import Value
    >>> from chainrule.explain import explain
    >>> w0, x0, w1, x1, w2 = (Value(v, label=n) for v, n in
    ...                       [(2.0, 'w0'), (-1.0, 'x0'), (-3.0, 'w1'), (-2.0, 'x1'), (-3.0, 'w2')])
    >>> f = (w0 * x0 + w1 * x1 + w2).scale(-1).exp().add_const(1).reciprocal()
    >>> result = explain(f, print_table=False)
    >>> [(r.op, round(r.upstream, 2), round(r.local[0], 2), round(r.downstream[0], 2)) for r in result[:3]]
    [('1/x', 1.0, -0.53, -0.53), ('+1', -0.53, 1.0, -0.53), ('exp', -0.53, 0.37, -0.2)]
    >>> {k: round(v, 2) for k, v in result.grads.items()}
    {'w0': -0.2, 'x0': 0.39, 'w1': -0.39, 'x1': -0.59, 'w2': 0.2}

Two kinds of graphs are understood:

* scalar :class:`chainrule.scalar.Value` graphs: each Value stores its gate (``op``), inputs
  (``_prev``) and local gradients (``_local``), which are used directly;
* Tensor graphs (``Function`` nodes): the forward value of a gate is shown by its shape and norm
  (the number itself for a one-element tensor).  Upstream and downstream gradients come from the
  nodes' own ``backward`` rules, run under ``no_grad`` without freeing anything (as
  ``retain_graph=True``).  The local gradient is shown when it is a number or an elementwise array:
  for one-element outputs, and for elementwise ops whose input has the output's shape, where it is
  the node's backward applied to an upstream of ones.  Otherwise (matmul, softmax, broadcasting,
  reshapes, ...) the local gradient is a full Jacobian, shown as ``J[out x in]`` with its shapes.

**Side effect** -- ``explain`` *is* a backward pass: like ``backward()`` it accumulates (adds) the
gradients into ``.grad`` (for a Value graph: every Value's ``.grad``, the output's set to 1, as
``Value.backward``; for a Tensor graph: the leaves that require grad, and tensors that called
``retain_grad``).  Called after your own ``backward()``, the gradients are therefore added a second
time, exactly as a second ``backward()`` would; zero them first, or pass ``accumulate=False`` to
leave every ``.grad`` untouched.  The graph is not freed, so ``backward()`` still works afterwards;
``explain`` on a graph that an earlier ``backward()`` already freed raises an error (build it again,
or use ``backward(retain_graph=True)``).
"""

from __future__ import annotations

import sys as _sys
import types as _types
from dataclasses import dataclass, field
from typing import SupportsFloat

import numpy as np

from .autograd import engine as _engine
from .autograd.function import no_grad
from .autograd.tensor import Tensor

__all__ = ["explain", "GateRecord", "Explanation", "gate_name"]


@dataclass
class GateRecord:
    """One gate of the backward pass.

    ``op`` is a readable gate name ('*', '+', '*-1', 'exp', '+1', '1/x', ...), ``kind`` the raw one
    (a Value's ``op`` string or a Function class name such as 'MulScalar').  ``inputs`` and
    ``output`` are labels: a leaf's label (or name), ``[k]`` for the output of step ``k``.

    Numbers are floats for scalars and ndarrays otherwise.  ``local`` and ``downstream`` have one
    entry per input: ``None`` when that input receives no gradient (a constant), and in ``local`` a
    string ``'J[...]'`` when the local gradient is a full Jacobian that is not shown.
    """

    step: int
    op: str
    kind: str
    inputs: tuple
    output: str
    value: object
    upstream: object
    local: tuple
    downstream: tuple
    node: object = field(default=None, repr=False, compare=False)


class Explanation(list):
    """The list of :class:`GateRecord` (backward order) returned by :func:`explain`.

    ``.records`` is the list itself, ``.grads`` maps each leaf's label to its gradient,
    ``.table()`` formats everything as an aligned text table, which is also what ``str()`` gives.
    """

    def __init__(self, records, grads, precision: int = 2):
        super().__init__(records)
        self.grads = grads
        self.precision = precision

    @property
    def records(self) -> list:
        return list(self)

    def table(self, precision: int | None = None) -> str:
        """The records as an aligned table: step, gate, inputs, value, upstream, local, downstream.

        A gate with several inputs takes one line per input.  Numbers have ``precision`` decimals
        (default: the one given to ``explain``); arrays are shown as their shape and norm.
        """
        p = self.precision if precision is None else precision
        header = ("step", "gate", "inputs", "value", "upstream", "local", "downstream")
        rows = []
        for r in self:
            for i, name in enumerate(r.inputs or ("",)):
                local = r.local[i] if i < len(r.local) else None
                down = r.downstream[i] if i < len(r.downstream) else None
                first = i == 0
                rows.append((str(r.step) if first else "", r.op if first else "", name,
                             _fmt(r.value, p) if first else "", _fmt(r.upstream, p) if first else "",
                             _fmt(local, p), _fmt(down, p)))
        if not rows:
            return "(no gates: the output is a leaf, there is nothing to backpropagate)"
        widths = [max(len(h), *(len(row[c]) for row in rows)) for c, h in enumerate(header)]
        left = {1, 2}  # gate and inputs are text: left-aligned; numbers right-aligned

        def line(cells):
            return "  ".join(c.ljust(w) if k in left else c.rjust(w)
                             for k, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

        out = [line(header), line(["-" * w for w in widths])]
        out += [line(row) for row in rows]
        if any("[" in n for r in self for n in r.inputs):
            out.append("[k] = the output of step k")
        if self.grads:
            out.append("gradients: " + ", ".join(f"{k} = {_fmt(v, p)}" for k, v in self.grads.items()))
        return "\n".join(out)

    def __str__(self) -> str:
        return self.table()

    __repr__ = __str__


# ---------------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------------
def _num(x: SupportsFloat, p: int) -> str:
    x = float(x)
    if x != x or x in (float("inf"), float("-inf")):
        return str(x)
    if abs(x) >= 1e6:
        return f"{x:.{p}e}"
    s = f"{x:.{p}f}"
    return s[1:] if s.startswith("-") and float(s) == 0 else s  # no '-0.00'


def _shape(shape) -> str:
    return "(" + ",".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _fmt(x, p: int) -> str:
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    a = np.asarray(x)
    if a.size == 1:
        return _num(a.item(), p)
    return f"{_shape(a.shape)} norm {_num(np.linalg.norm(a.astype(np.float64)), p)}"


def _const(c) -> str:
    """A constant for a gate name: 1 -> '1', -1.0 -> '-1', 0.5 -> '0.5'."""
    return f"{round(float(c), 10):g}"


# ---------------------------------------------------------------------------------------------------
# gate names
# ---------------------------------------------------------------------------------------------------
_TENSOR_GATES = {
    "Add": "+", "Sub": "-", "Mul": "*", "Div": "/", "Pow": "**", "Neg": "neg", "MatMul": "@",
    "ReLU": "relu", "LeakyReLU": "leaky_relu", "LogSoftmax": "log_softmax", "LogSumExp": "logsumexp",
    "GetItem": "[]", "SumTo": "sum_to", "BroadcastTo": "broadcast_to", "AmaxAmin": "max", "Norm2": "norm",
    "GELU": "gelu", "ELU": "elu", "IndexAdd": "index_add", "ScatterAdd": "scatter_add",
}


def gate_name(node) -> str:
    """A readable name for a gate: a Value (its ``op``) or a Tensor graph ``Function`` node.

    Constants are folded into the name: ``x * -1`` is '*-1', ``x + 1`` is '+1', ``1 / x`` is '1/x'
    (once a backward() freed the node, the constant is gone and the name is generic: '*c', '+c').
    """
    if _is_value(node):
        op = node.op
        if op == "*c":
            return "*" + _const(node._local[0])
        if op == "+c" and node._prev:
            return f"{round(node.data - node._prev[0].data, 10):+g}"
        return op or "leaf"
    name = node.name
    c = node.__dict__.get("c")
    if c is not None:
        if name == "AddScalar":
            return f"{round(float(c), 10):+g}"
        if name == "MulScalar":
            return "*" + _const(c)
        if name == "RSubScalar":
            return _const(c) + "-x"
        if name == "RDivScalar":
            return "1/x" if c == 1 else _const(c) + "/x"
        if name == "PowScalar":
            return "**" + _const(c)
        if name == "RPowScalar":
            return _const(c) + "**x"
    return _FREED_SCALAR_GATES.get(name) or _TENSOR_GATES.get(name, name.lower())


# After a backward() without retain_graph a node's constant is freed with its saved values.
_FREED_SCALAR_GATES = {"AddScalar": "+c", "MulScalar": "*c", "RSubScalar": "c-x", "RDivScalar": "c/x",
                       "PowScalar": "**c", "RPowScalar": "c**x"}


# ---------------------------------------------------------------------------------------------------
# graph traversal
# ---------------------------------------------------------------------------------------------------
def _is_value(x) -> bool:
    """Duck-typed test for a scalar-engine Value (``op``, ``_prev``, ``_local``)."""
    return not isinstance(x, Tensor) and hasattr(x, "_prev") and hasattr(x, "_local") and hasattr(x, "op")


def _post_order(root, inputs_of) -> list:
    """Every node reachable from ``root``, each after all of its inputs (forward order).

    Iterative depth-first search (no recursion limit).  Reversed, it is the backward order: every
    node comes before its inputs, so all of a node's consumers are processed before the node
    itself and fan-out gradients are fully summed by then.
    """
    order = []
    seen = {id(root)}
    stack = [(root, iter(inputs_of(root)))]
    while stack:
        node, it = stack[-1]
        for p in it:
            if id(p) not in seen:
                seen.add(id(p))
                stack.append((p, iter(inputs_of(p))))
                break
        else:
            stack.pop()
            order.append(node)
    return order


def _names_by_id(names) -> dict:
    """{id(obj): name} from a mapping name -> Tensor/Value or an iterable of (name, obj) pairs."""
    if names is None:
        return {}
    items = names.items() if hasattr(names, "items") else names
    return {id(obj): str(n) for n, obj in items}


# ---------------------------------------------------------------------------------------------------
# explain
# ---------------------------------------------------------------------------------------------------
def explain(output, print_table: bool = True, *, precision: int = 2, names=None, grad_output=None,
            accumulate: bool = True) -> Explanation:
    """Run backpropagation from ``output`` and narrate it: one :class:`GateRecord` per gate.

    ``output``: a scalar ``Value`` or a Tensor (one-element unless ``grad_output``, the upstream
    gradient of the output, is given).  Returns an :class:`Explanation` (a list of records in
    backward order, with ``.table()`` and ``.grads``), printed as a table when ``print_table``.

    ``names``: labels for tensors (Tensors have no label of their own), as a dict name -> tensor or
    pairs such as ``model.named_parameters()``; also used for Values (else their ``label``).
    Unnamed leaves are called leaf1, leaf2, ... in forward order; an unnamed intermediate value
    is ``[k]``, the output of step ``k``.

    Like ``backward()``, this accumulates the gradients into ``.grad`` (see the module docstring);
    ``accumulate=False`` leaves them untouched.
    """
    if _is_value(output):
        result = _explain_values(output, _names_by_id(names), accumulate, precision)
    elif isinstance(output, Tensor):
        result = _explain_tensors(output, _names_by_id(names), grad_output, accumulate, precision)
    else:
        raise TypeError(f"explain: expected a chainrule Tensor or scalar Value, got {type(output).__name__}")
    if print_table:
        print(result.table())
    return result


def _label_leaves(forward_gates, inputs_of, is_leaf, ids, own_label) -> dict:
    """Labels of the leaves, in forward order: a given name, the leaf's own label, else leafN."""
    labels, k = {}, 0
    for node in forward_gates:
        for x in inputs_of(node):
            if is_leaf(x) and id(x) not in labels:
                name = ids.get(id(x)) or own_label(x)
                if not name:
                    k += 1
                    name = f"leaf{k}"
                labels[id(x)] = name
    return labels


def _explain_values(root, ids, accumulate, precision) -> Explanation:
    order = _post_order(root, lambda v: v._prev)
    gates = [v for v in reversed(order) if v._prev]  # backward order
    step = {id(v): k for k, v in enumerate(gates, 1)}
    leaf = _label_leaves(reversed(gates), lambda v: v._prev, lambda v: not v._prev, ids,
                         lambda v: v.label)

    def label(v):
        if id(v) in leaf:
            return leaf[id(v)]
        return ids.get(id(v)) or v.label or f"[{step[id(v)]}]"

    grads = {id(root): 1.0}  # dL/dv for every value, summed over its consumers
    records = []
    for v in gates:
        up = grads.get(id(v), 0.0)
        downs = tuple(up * d for d in v._local)
        for child, d in zip(v._prev, downs, strict=True):
            grads[id(child)] = grads.get(id(child), 0.0) + d
        records.append(GateRecord(step[id(v)], gate_name(v), v.op, tuple(label(c) for c in v._prev),
                                  label(v), v.data, up, tuple(v._local), downs, v))
    if accumulate:  # as Value.backward: the output's grad is set to 1, the others accumulate
        root.grad = 1.0
        for v in order:
            if v is not root:
                v.grad += grads.get(id(v), 0.0)
    leaf_grads = {}
    for v in order:
        if id(v) in leaf and leaf[id(v)] not in leaf_grads:
            leaf_grads[leaf[id(v)]] = grads.get(id(v), 0.0)
    return Explanation(records, leaf_grads, precision)


# Ops that act elementwise: with input shape == output shape, the local gradient is an array of
# per-element derivatives, obtained by backward on an upstream of ones.
_ELEMENTWISE = frozenset({
    "Add", "Sub", "Mul", "Div", "Pow", "Neg", "AddScalar", "MulScalar", "RSubScalar", "RDivScalar",
    "PowScalar", "RPowScalar", "Exp", "Expm1", "Log", "Log1p", "Sqrt", "Sin", "Cos", "Tan", "Atan", "Sinh",
    "Cosh", "Abs", "Tanh", "Sigmoid", "Mask", "ReLU", "LeakyReLU", "Clamp", "Softplus", "ELU", "Erf",
    "GELU", "Maximum", "Minimum", "Where", "Cast", "Clone",
})


def _item(a):
    """A float for one-element arrays, else a copy of the array."""
    a = np.asarray(a)
    return a.item() if a.size == 1 else a.copy()


def _explain_tensors(root, ids, grad_output, accumulate, precision) -> Explanation:
    if not root.requires_grad:
        raise RuntimeError("explain: the output does not require grad, there is no graph to explain "
                           "(did you forget requires_grad=True, or build it under no_grad?)")
    if grad_output is None:
        if root.data.size != 1:
            raise RuntimeError(f"explain: the output has shape {tuple(root.shape)}; pass grad_output "
                               "(dL/doutput) for a non-scalar output")
        g0 = Tensor._make(np.ones_like(root.data))
    else:
        g0 = grad_output if isinstance(grad_output, Tensor) else Tensor(np.asarray(grad_output,
                                                                                  root.data.dtype))
        if tuple(g0.shape) != tuple(root.shape):
            raise RuntimeError(f"explain: grad_output has shape {tuple(g0.shape)}, the output "
                               f"{tuple(root.shape)}")
    if root.grad_fn is None:  # a leaf: nothing to narrate, its gradient is grad_output
        name = ids.get(id(root), "leaf1")
        if accumulate:
            root.grad = g0 if root.grad is None else root.grad + g0
        return Explanation([], {name: _item(g0.data)}, precision)

    def inputs_of(node):
        return [t.grad_fn for t in node.inputs if t.grad_fn is not None]

    order = _post_order(root.grad_fn, inputs_of)
    gates = order[::-1]  # backward order
    step = {node: k for k, node in enumerate(gates, 1)}
    out_of = {root.grad_fn: root}  # each node's output tensor: the consumers hold it as an input
    for node in gates:
        for t in node.inputs:
            if t.grad_fn is not None:
                out_of[t.grad_fn] = t
    leaf = _label_leaves(order, lambda n: n.inputs, lambda t: t.grad_fn is None, ids, lambda t: "")

    def label(t):
        if t.grad_fn is None:
            return leaf[id(t)]
        return ids.get(id(t)) or f"[{step[t.grad_fn]}]"

    grads = {root.grad_fn: g0}  # node -> dL/d(its output), summed over consumers
    leaf_grads: dict[int, tuple[Tensor, Tensor]] = {}  # id(leaf) -> (leaf, dL/dleaf)
    records = []
    with no_grad():
        for node in gates:
            _check_usable(node)
            g = grads.pop(node)
            out = out_of[node]
            gins = node.backward(g)
            gins = gins if isinstance(gins, tuple) else (gins,)
            gins = tuple(None if gi is None or not t.requires_grad else gi
                         for t, gi in zip(node.inputs, gins, strict=False))
            for t, gi in zip(node.inputs, gins, strict=True):
                if gi is None:
                    continue
                if t.grad_fn is None:
                    prev = leaf_grads.get(id(t))
                    leaf_grads[id(t)] = (t, gi if prev is None else prev[1] + gi)
                elif t.grad_fn in grads:
                    grads[t.grad_fn] = grads[t.grad_fn] + gi
                else:
                    grads[t.grad_fn] = gi
            records.append(GateRecord(
                step[node], gate_name(node), node.name, tuple(label(t) for t in node.inputs),
                ids.get(id(out)) or f"[{step[node]}]", _item(out.data), _item(g.data),
                _locals(node, out, gins), tuple(None if gi is None else _item(gi.data) for gi in gins), node))
            if accumulate and node._retained is not None:
                kept = node._retained()
                if kept is not None:
                    kept.grad = Tensor._make(g.data.copy())
    if accumulate:
        for t, gi in leaf_grads.values():
            _accumulate_leaf(t, gi)
    grads_by_label = {}
    for node in order:  # forward order, like the labels
        for t in node.inputs:
            if t.grad_fn is None and id(t) in leaf_grads and leaf[id(t)] not in grads_by_label:
                grads_by_label[leaf[id(t)]] = _item(leaf_grads[id(t)][1].data)
    return Explanation(records, grads_by_label, precision)


def _check_usable(node) -> None:
    if node._freed:
        raise RuntimeError(
            f"explain: the saved values of {node.name} were freed by an earlier backward(); build the "
            "graph again, or call backward(retain_graph=True) before explain")
    if node._dirty or (node._vsum >= 0 and node._vsum != sum(t._version for t in node.inputs)):
        _engine._check_versions(node)  # raises the engine's in-place-modification error


def _locals(node, out: Tensor, gins) -> tuple:
    """The local gradient d(out)/d(input) per input: a number, an elementwise array, or 'J[...]'."""
    ones = None
    result: list[object] = []  # per input: None, a float or array, or a 'J[...]' string
    for i, (t, gi) in enumerate(zip(node.inputs, gins, strict=True)):
        if gi is None:
            result.append(None)
            continue
        if out.data.size == 1 or (node.name in _ELEMENTWISE and t.shape == out.shape):
            if ones is None:  # backward with upstream 1: the local derivatives themselves
                ones = node.backward(Tensor._make(np.ones_like(out.data)))
                ones = ones if isinstance(ones, tuple) else (ones,)
            li = ones[i]
            result.append(None if li is None else _item(li.data))
        else:
            result.append(f"J[{_shape(out.shape)}x{_shape(t.shape)}]")
    return tuple(result)


def _accumulate_leaf(t: Tensor, gi: Tensor) -> None:
    """Add gradient ``gi`` into leaf ``t``'s ``.grad``, as the engine does."""
    g = np.asarray(gi.data, dtype=t.data.dtype)
    if t.grad is None:
        t.grad = Tensor._make(g.copy())
    elif t.grad.grad_fn is not None:
        t.grad = t.grad + Tensor._make(g)
    else:
        np.add(t.grad.data, g, out=t.grad.data)


class _ExplainModule(_types.ModuleType):
    """This module, callable as the function it is named after.

    ``chainrule.explain`` is meant to be the function, but importing this submodule (``from
    chainrule.explain import explain``, or ``import chainrule.viz``, which uses its helpers) makes
    Python bind ``chainrule.explain`` to the module.  Calling the module calls the function, so
    ``chainrule.explain(output)`` works whatever was imported first.
    """

    def __call__(self, *args, **kwargs) -> Explanation:
        return explain(*args, **kwargs)

    @property
    def __signature__(self):  # inspect.signature(chainrule.explain) shows the function's parameters
        import inspect

        return inspect.signature(explain)


_sys.modules[__name__].__class__ = _ExplainModule
