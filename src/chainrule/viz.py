"""Draw computational graphs with Graphviz: one node per value, one per operation.

    >>> from chainrule.scalar import Value
    >>> from chainrule.viz import to_dot
    >>> a, b = Value(2.0, label='a'), Value(-3.0, label='b')
    >>> c = a * b
    >>> c.backward()
    >>> print(to_dot(c))                               # doctest: +NORMALIZE_WHITESPACE
    digraph {
        graph [rankdir=LR]
        node [fontname=Helvetica fontsize=11]
        v0 [label="a\\ndata 2.0000\\ngrad -3.0000" shape=box style=filled fillcolor=lightblue]
        v1 [label="b\\ndata -3.0000\\ngrad 2.0000" shape=box style=filled fillcolor=lightblue]
        v2 [label="data -6.0000\\ngrad 1.0000" shape=box style=filled fillcolor=darkolivegreen1]
        op0 [label="*" shape=ellipse]
        v0 -> op0
        v1 -> op0
        op0 -> v2
    }

Edges run input -> op -> output, the direction of the forward pass; backprop walks them backwards.

* A scalar ``Value`` node shows its label, its value (``data``) and, with ``show_grad``, its
  gradient; op nodes show the gate ('*', '+', 'exp', '*-1', ...).
* A Tensor node shows its name (if given in ``names``), shape, dtype and norm (the number itself
  for one-element tensors) and, with ``show_grad``, the norm of its ``.grad`` when it has one;
  op nodes show the operation (the Function class in the tooltip).
Leaves are light blue, the output green.

``to_dot`` always works (it writes DOT text).  ``draw_graph`` returns a ``graphviz.Digraph`` when the
``graphviz`` Python package is installed (``pip install chainrule[viz]``; rendering also needs the
Graphviz ``dot`` program), and otherwise a small :class:`DotGraph` holding the same DOT ``source``.
"""

from __future__ import annotations

from typing import SupportsFloat

import numpy as np

from .autograd.tensor import Tensor
from .explain import _is_value, _names_by_id, _post_order, gate_name

__all__ = ["draw_graph", "to_dot", "DotGraph", "GraphvizUnavailableError"]

_NEEDS_GRAPHVIZ = ("rendering needs the graphviz extra: pip install chainrule[viz] "
                   "(and the Graphviz 'dot' program)")
_GRAPH_ATTR = {"rankdir": "LR"}
_NODE_ATTR = {"fontname": "Helvetica", "fontsize": "11"}
_LEAF_COLOR = "lightblue"
_OUTPUT_COLOR = "darkolivegreen1"


class GraphvizUnavailableError(ImportError):
    """Raised when rendering a graph without the ``graphviz`` Python package."""


class DotGraph:
    """A graph as DOT text, returned by ``draw_graph`` when the graphviz package is missing.

    ``source`` is the DOT text (paste it into any Graphviz viewer, or ``save`` it to a file).
    ``render``/``pipe`` need the graphviz package and raise :class:`GraphvizUnavailableError`.
    """

    def __init__(self, source: str, format: str = "svg"):  # noqa: A002
        self.source = source
        self.format = format

    def save(self, filename: str) -> str:
        """Write the DOT text to ``filename``; returns the filename."""
        with open(filename, "w", encoding="utf-8") as fh:
            fh.write(self.source)
        return filename

    def render(self, filename=None, format=None, **kwargs):  # noqa: A002
        raise GraphvizUnavailableError(_NEEDS_GRAPHVIZ)

    def pipe(self, format=None, **kwargs):  # noqa: A002
        raise GraphvizUnavailableError(_NEEDS_GRAPHVIZ)

    def _repr_svg_(self):
        return None  # nothing to show without graphviz: notebooks fall back to repr()

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        n = self.source.count(" [label=")
        return f"<DotGraph with {n} nodes: .source has the DOT text; rendering needs graphviz>"


# ---------------------------------------------------------------------------------------------------
# building the graph description
# ---------------------------------------------------------------------------------------------------
def _quote(text: str) -> str:
    """A DOT double-quoted string; lines joined by the DOT line break '\\n'."""
    lines = str(text).split("\n")
    return '"' + "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines) + '"'


def _attrs(label: str, **attrs) -> str:
    parts = [f"label={_quote(label)}"] + [f"{k}={_attr_value(v)}" for k, v in attrs.items() if v is not None]
    return "[" + " ".join(parts) + "]"


def _attr_value(v) -> str:
    s = str(v)
    return s if s.replace("_", "").replace(".", "").isalnum() else _quote(s)


def _num(x: SupportsFloat, p: int) -> str:
    return f"{float(x):.{p}f}"


def _shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _tensor_summary(a: np.ndarray, p: int) -> str:
    a = np.asarray(a)
    if a.size == 1:
        return _num(a.item(), p)
    return "norm " + _num(np.linalg.norm(a.astype(np.float64)), p)


class _Builder:
    """Collects node and edge statements with stable ids (v0, v1, ... and op0, op1, ...)."""

    def __init__(self):
        self.values, self.ops, self.lines, self.edges = {}, {}, [], []

    def value(self, key, label, color=None) -> str:
        if key not in self.values:
            vid = f"v{len(self.values)}"
            self.values[key] = vid
            style = "filled" if color else None
            self.lines.append(f"{vid} {_attrs(label, shape='box', style=style, fillcolor=color)}")
        return self.values[key]

    def op(self, key, label, tooltip=None) -> str:
        oid = f"op{len(self.ops)}"
        self.ops[key] = oid
        self.lines.append(f"{oid} {_attrs(label, shape='ellipse', tooltip=tooltip)}")
        return oid

    def edge(self, a: str, b: str) -> None:
        self.edges.append(f"{a} -> {b}")

    def body(self) -> list:
        return self.lines + self.edges


def _value_graph(root, show_grad: bool, ids: dict, p: int) -> list:
    order = _post_order(root, lambda v: v._prev)  # forward order: inputs before their gates
    b = _Builder()

    def vnode(v):
        lines = [ids.get(id(v)) or v.label] if (ids.get(id(v)) or v.label) else []
        lines.append(f"data {_num(v.data, p)}")
        if show_grad:
            lines.append(f"grad {_num(v.grad, p)}")
        color = _OUTPUT_COLOR if v is root else (_LEAF_COLOR if not v._prev else None)
        return b.value(id(v), "\n".join(lines), color)

    for v in order:
        if not v._prev:
            vnode(v)
    for v in order:
        if v._prev:
            ins = [vnode(c) for c in v._prev]
            out = vnode(v)
            o = b.op(id(v), gate_name(v))
            for i in ins:
                b.edge(i, o)
            b.edge(o, out)
    return b.body()


def _tensor_graph(root: Tensor, show_grad: bool, ids: dict, p: int) -> list:
    b = _Builder()

    def tnode(t):
        name = ids.get(id(t))
        lines = [name] if name else []
        lines.append(f"{_shape(t.shape)} {t.dtype}")
        summary = _tensor_summary(t.data, p)
        lines.append(summary if summary.startswith("norm") else "value " + summary)
        if show_grad and t.grad is not None:
            lines.append("grad " + _tensor_summary(t.grad.data, p))
        is_leaf = t.grad_fn is None and t.requires_grad
        color = _OUTPUT_COLOR if t is root else (_LEAF_COLOR if is_leaf else None)
        return b.value(id(t), "\n".join(lines), color)

    if root.grad_fn is None:
        tnode(root)
        return b.body()

    def inputs_of(node):
        return [t.grad_fn for t in node.inputs if t.grad_fn is not None]

    order = _post_order(root.grad_fn, inputs_of)  # forward order
    out_of = {root.grad_fn: root}
    for node in order:
        for t in node.inputs:
            if t.grad_fn is not None:
                out_of[t.grad_fn] = t
    for node in order:
        for t in node.inputs:
            if t.grad_fn is None:
                tnode(t)
    for node in order:
        ins = [tnode(t) for t in node.inputs]
        out = tnode(out_of[node])
        o = b.op(id(node), gate_name(node), tooltip=node.name)
        for i in ins:
            b.edge(i, o)
        b.edge(o, out)
    return b.body()


def _body(output, show_grad: bool, names, precision: int) -> list:
    ids = _names_by_id(names)
    if _is_value(output):
        return _value_graph(output, show_grad, ids, precision)
    if isinstance(output, Tensor):
        return _tensor_graph(output, show_grad, ids, precision)
    raise TypeError(f"expected a chainrule Tensor or scalar Value, got {type(output).__name__}")


def _attr_stmt(kind: str, attrs: dict) -> str:
    return f"{kind} [" + " ".join(f"{k}={_attr_value(v)}" for k, v in attrs.items()) + "]"


# ---------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------
def to_dot(output, show_grad: bool = True, *, names=None, precision: int = 4, rankdir: str = "LR") -> str:
    """The graph that computed ``output`` (a Value or Tensor) as Graphviz DOT text.

    ``names``: labels for tensors/values, a dict name -> object or (name, object) pairs such as
    ``model.named_parameters()``.  ``precision``: decimals of the numbers shown.
    """
    return _source(_body(output, show_grad, names, precision), rankdir)


def _source(body: list, rankdir: str) -> str:
    lines = [_attr_stmt("graph", {**_GRAPH_ATTR, "rankdir": rankdir}), _attr_stmt("node", _NODE_ATTR)] + body
    return "digraph {\n" + "".join(f"\t{line}\n" for line in lines) + "}\n"


def draw_graph(output, show_grad: bool = True, format: str = "svg", *, names=None,  # noqa: A002
               precision: int = 4, rankdir: str = "LR"):
    """Draw the graph that computed ``output``: a ``graphviz.Digraph`` if graphviz is installed.

    Value nodes (boxes) show label, value and gradient (Value graphs) or name, shape, dtype and
    norm (Tensor graphs); op nodes (ellipses) show the operation; edges go input -> op -> output.
    In a notebook the returned Digraph displays itself; ``.render('graph')`` writes ``graph.svg``
    (``format``), ``.source`` is the DOT text.  Without the graphviz package a :class:`DotGraph`
    with the same ``.source`` is returned, whose ``render`` raises a clear error.
    """
    body = _body(output, show_grad, names, precision)
    try:
        import graphviz
    except ImportError:
        return DotGraph(_source(body, rankdir), format)
    return graphviz.Digraph(format=format, graph_attr={**_GRAPH_ATTR, "rankdir": rankdir},
                            node_attr=dict(_NODE_ATTR), body=[f"\t{line}\n" for line in body])
