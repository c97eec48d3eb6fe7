"""A scalar autograd engine for teaching: micrograd's interface, built to be fast.

Every :class:`Value` holds one number.  Arithmetic on Values builds a graph: each
result remembers *which gate made it* (``op``), *its inputs* (``_prev``) and the
*local gradient with respect to each input* (``_local``), computed right away in
the forward pass::

    >>> a, b = Value(2.0, label='a'), Value(-3.0, label='b')
    >>> c = a * b                       # the '*' gate
    >>> c.op, c._prev == (a, b), c._local     # d(ab)/da = b, d(ab)/db = a
    ('*', True, (-3.0, 2.0))
    >>> c.backward()
    >>> a.grad, b.grad
    (-3.0, 2.0)

The chain rule then is one line.  ``backward()`` visits the nodes from the output
back to the inputs and, for every node and every input of it, does::

    child.grad += node.grad * local        # upstream gradient x local gradient

micrograd instead stores a closure per node that does the same.  Storing the local
derivatives as plain floats (and using ``__slots__``) makes this engine several
times faster, creates no reference cycles, and leaves the graph open to inspection:
``chainrule.explain`` reads ``op``, ``_prev`` and ``_local`` to narrate backprop.

Gradients *accumulate* (``+=``), exactly as in micrograd and PyTorch: a Value used
twice (fan-out) receives the sum of both contributions.  Nothing is zeroed for you;
call ``zero_grad()`` on a model (or set ``p.grad = 0.0``) before each backward pass.

A plain number mixed into arithmetic is a constant, not a node: ``x + 2`` is the
'+c' gate and ``3 * x`` the '*c' gate (one input each).  ``2 - x`` is 'neg' then
'+c', and ``2 / x`` is '1/x' then '*c'.  Values compare and hash by identity.

The module also has a micrograd-style neural network: :class:`Neuron`,
:class:`Layer` and :class:`MLP`.
"""

from __future__ import annotations

import math
import numbers
import random

__all__ = [
    "Value",
    "maximum",
    "topological_order",
    "Module",
    "Neuron",
    "Layer",
    "MLP",
]

_exp = math.exp
_log = math.log
_tanh = math.tanh
_new = object.__new__


def _as_float(x, what: str = "Value data") -> float:
    """Return ``x`` as a Python float, or raise a TypeError naming its type."""
    if type(x) is float:
        return x
    if isinstance(x, numbers.Real) and not isinstance(x, Value):
        return float(x)
    raise TypeError(f"{what} must be a real number (int or float), got {type(x).__name__}: {x!r}")


def _is_number(x) -> bool:
    return type(x) is float or type(x) is int or isinstance(x, numbers.Real)


def _fmt(x: float) -> str:
    """Short, readable number for repr: 4 decimals, but never hide a tiny value as 0.0."""
    r = round(x, 4)
    return repr(r) if (r != 0.0 or x == 0.0) else f"{x:.4g}"


class Value:
    """One scalar in a computation graph, with its gradient.

    Attributes
    ----------
    data : float
        The number computed in the forward pass.
    grad : float
        d(output)/d(this value), filled in by ``output.backward()``; starts at 0.0.
    label : str
        An optional name, for printing and drawing graphs.
    op : str
        The gate that produced this value ('' for a leaf such as an input or weight).
    _prev : tuple[Value, ...]
        The gate's inputs, in order (also available as ``children``).
    _local : tuple[float, ...]
        d(this value)/d(input) for each input in ``_prev``, evaluated in the forward pass.
    """

    __slots__ = ("data", "grad", "_prev", "_local", "op", "label")

    # Tell NumPy to leave Values alone: ``np.float64(2.0) * v`` then calls ``v.__rmul__``.
    __array_ufunc__ = None

    def __init__(self, data, label: str = "", *, _children=(), _op: str = "", _local=None):
        """Make a leaf Value: ``Value(3.0)`` or ``Value(3.0, label='x')``.

        ``_children``, ``_op`` and ``_local`` let advanced users build a custom gate by
        hand; ``_local`` (one local derivative per child) is then required.
        """
        if not isinstance(label, str):
            raise TypeError(
                f"label must be a str, got {type(label).__name__}: {label!r} "
                "(chainrule's signature is Value(data, label=''); gates are built by operators)"
            )
        _children = tuple(_children)
        if _local is None:
            if _children:
                raise ValueError("a Value with _children also needs _local: one local gradient per child")
            _local = ()
        _local = tuple(_as_float(g, "a local gradient") for g in _local)
        if len(_local) != len(_children):
            raise ValueError(f"got {len(_children)} children but {len(_local)} local gradients")
        for c in _children:
            if not isinstance(c, Value):
                raise TypeError(f"children must be Values, got {type(c).__name__}")
        self.data = _as_float(data)
        self.grad = 0.0
        self._prev = _children
        self._local = _local
        self.op = _op
        self.label = label

    # -- graph inspection ---------------------------------------------------------
    @property
    def children(self) -> tuple:
        """The inputs of the gate that produced this Value (same as ``_prev``)."""
        return self._prev

    @property
    def _op(self) -> str:
        """micrograd's name for :attr:`op`."""
        return self.op

    def __repr__(self) -> str:
        lab = f", label={self.label!r}" if self.label else ""
        return f"Value(data={_fmt(self.data)}, grad={_fmt(self.grad)}{lab})"

    # -- binary gates -------------------------------------------------------------
    # Each returns NotImplemented for unsupported operand types, so Python raises
    # its usual "unsupported operand type(s)" TypeError.  A plain number operand
    # does not become a node of its own: x + 2 is the '+c' gate, x * 2 the '*c' gate.

    def __add__(self, other):
        """'+' gate: d(a+b)/da = 1, d(a+b)/db = 1, so it *distributes* the gradient."""
        if type(other) is Value:
            return _node(self.data + other.data, (self, other), (1.0, 1.0), "+")
        if _is_number(other):
            return self.add_const(other)
        return NotImplemented

    def __radd__(self, other):  # number + Value
        if _is_number(other):
            return self.add_const(other)
        return NotImplemented

    def __sub__(self, other):
        """'-' gate: d(a-b)/da = 1, d(a-b)/db = -1."""
        if type(other) is Value:
            return _node(self.data - other.data, (self, other), (1.0, -1.0), "-")
        if _is_number(other):
            return self.add_const(-other)
        return NotImplemented

    def __rsub__(self, other):  # c - x  =  (-x) + c
        if _is_number(other):
            return (-self).add_const(other)
        return NotImplemented

    def __mul__(self, other):
        """'*' gate: d(ab)/da = b, d(ab)/db = a, so it *swaps* the inputs' values."""
        if type(other) is Value:
            a, b = self.data, other.data
            return _node(a * b, (self, other), (b, a), "*")
        if _is_number(other):
            return self.scale(other)
        return NotImplemented

    def __rmul__(self, other):  # number * Value
        if _is_number(other):
            return self.scale(other)
        return NotImplemented

    def __truediv__(self, other):
        """'/' gate: d(a/b)/da = 1/b, d(a/b)/db = -a/b^2."""
        if type(other) is Value:
            a, b = self.data, other.data
            if b == 0.0:
                raise ZeroDivisionError(f"division by a Value equal to zero: {self!r} / {other!r}")
            inv = 1.0 / b
            return _node(a * inv, (self, other), (inv, -a * inv * inv), "/")
        if _is_number(other):
            if other == 0:
                raise ZeroDivisionError(f"division of {self!r} by the number 0")
            return self.scale(1.0 / other)
        return NotImplemented

    def __rtruediv__(self, other):  # c / x  =  c * (1/x)
        if _is_number(other):
            return self.reciprocal().scale(other)
        return NotImplemented

    def __pow__(self, n):
        """'**' gate with a constant exponent n: d(x^n)/dx = n * x^(n-1)."""
        if isinstance(n, Value) or not _is_number(n):
            raise TypeError(
                f"only a number exponent is supported (x ** 2, x ** -0.5), got {type(n).__name__}"
            )
        x = self.data
        if x == 0.0 and n < 0:
            raise ZeroDivisionError(f"0.0 ** {n} is undefined (the Value is zero)")
        out = x**n
        if type(out) is complex:
            raise ValueError(f"({x!r}) ** {n!r} is not a real number: negative base, fractional exponent")
        if n == 0:
            local = 0.0
        elif x == 0.0 and n < 1:
            local = math.inf  # e.g. sqrt(x) has an infinitely steep slope at 0
        else:
            local = n * x ** (n - 1)
        return _node(out, (self,), (float(local),), "**")

    # -- unary gates --------------------------------------------------------------
    def __neg__(self):
        """'neg' gate: d(-x)/dx = -1."""
        return _node(-self.data, (self,), (-1.0,), "neg")

    def neg(self) -> Value:
        """Unary minus, -x (the 'neg' gate)."""
        return self.__neg__()

    def __pos__(self):
        return self

    def add_const(self, c) -> Value:
        """'+c' gate, x + c for a constant c: d(x+c)/dx = 1 (the gradient passes through)."""
        c = _as_float(c, "the constant of add_const")
        return _node(self.data + c, (self,), (1.0,), "+c")

    def scale(self, c) -> Value:
        """'*c' gate, c * x for a constant c: d(cx)/dx = c."""
        c = _as_float(c, "the constant of scale")
        return _node(self.data * c, (self,), (c,), "*c")

    def reciprocal(self) -> Value:
        """'1/x' gate: d(1/x)/dx = -1/x^2."""
        x = self.data
        if x == 0.0:
            raise ZeroDivisionError(f"reciprocal of zero: 1/x is undefined at x = {x!r}")
        inv = 1.0 / x
        return _node(inv, (self,), (-inv * inv,), "1/x")

    def exp(self) -> Value:
        """'exp' gate: d(e^x)/dx = e^x, the output itself."""
        try:
            e = _exp(self.data)
        except OverflowError:
            raise OverflowError(f"exp({self.data!r}) overflows a float") from None
        return _node(e, (self,), (e,), "exp")

    def log(self) -> Value:
        """'log' gate, the natural logarithm: d(ln x)/dx = 1/x, for x > 0."""
        x = self.data
        if not x > 0.0:
            raise ValueError(f"log is only defined for positive numbers, got {x!r}")
        return _node(_log(x), (self,), (1.0 / x,), "log")

    def tanh(self) -> Value:
        """'tanh' gate: tanh'(x) = 1 - tanh(x)^2."""
        t = _tanh(self.data)
        return _node(t, (self,), (1.0 - t * t,), "tanh")

    def sigmoid(self) -> Value:
        """'sigmoid' gate, s(x) = 1/(1+e^-x): s'(x) = s(x)(1 - s(x)).

        Computed without overflow: for x < 0 it uses the equal form e^x / (1 + e^x).
        """
        x = self.data
        if x >= 0.0:
            s = 1.0 / (1.0 + _exp(-x))
        else:
            e = _exp(x)
            s = e / (1.0 + e)
        return _node(s, (self,), (s * (1.0 - s),), "sigmoid")

    def relu(self) -> Value:
        """'relu' gate, max(0, x): the local gradient is 1 for x > 0, else 0."""
        x = self.data
        if x > 0.0:
            return _node(x, (self,), (1.0,), "relu")
        return _node(0.0, (self,), (0.0,), "relu")

    def max(self, other) -> Value:
        """'max' gate, max(a, b): a gradient *router*.

        The local gradient is 1 for the larger input and 0 for the other, so the whole
        upstream gradient flows to the winner.  On a tie the first input (self) wins.
        A plain number ``other`` becomes a leaf Value.
        """
        if not isinstance(other, Value):
            other = Value(other)
        if self.data >= other.data:
            return _node(self.data, (self, other), (1.0, 0.0), "max")
        return _node(other.data, (self, other), (0.0, 1.0), "max")

    # -- backpropagation -----------------------------------------------------------
    def backward(self) -> None:
        """Backpropagate from this Value: fill ``.grad`` of every Value it depends on.

        Sets ``self.grad = 1.0`` (d self / d self) and then, in reverse topological order
        (every node before its inputs), applies the chain rule
        ``child.grad += node.grad * local`` along each edge.  The loop is iterative, so
        arbitrarily deep graphs (a chain of 100,000 Values) work.

        Gradients are *accumulated*, never reset: calling backward twice, or on two
        outputs sharing inputs, adds up.  Zero them yourself between steps
        (``model.zero_grad()``), as in micrograd and PyTorch.
        """
        self.grad = 1.0
        for node in reversed(topological_order(self, include_leaves=False)):
            g = node.grad
            prev = node._prev
            # Gates have one or two inputs; spelling those cases out is ~3x faster
            # than a zip() loop.  A hand-made node with more inputs takes the last branch.
            if len(prev) == 2:
                a, b = prev
                da, db = node._local
                a.grad += g * da
                b.grad += g * db
            elif len(prev) == 1:
                prev[0].grad += g * node._local[0]
            else:
                for child, d in zip(prev, node._local):
                    child.grad += g * d


def _node(data: float, prev: tuple, local: tuple, op: str) -> Value:
    """Create the output of a gate, skipping __init__'s checks (the gates did them)."""
    out = _new(Value)
    out.data = data
    out.grad = 0.0
    out._prev = prev
    out._local = local
    out.op = op
    out.label = ""
    return out


def topological_order(root: Value, include_leaves: bool = True) -> list:
    """Every Value that ``root`` depends on, each listed after all of its inputs.

    The last element is ``root``: this is the order of the forward pass, and
    ``backward()`` walks it in reverse.  With ``include_leaves=False`` only the
    gate outputs are listed (leaves have no inputs to pass a gradient on to).

    The search is an iterative depth-first search, so there is no depth limit.  A
    node is recorded once all of its inputs are recorded (post-order).  To know when
    that happens without recursion, an expanded node is pushed back under a
    ``None`` marker with its inputs on top: they are finished first, and popping the
    marker means the node just below it is complete.
    """
    order: list[Value] = []
    expanded: set[Value] = set()
    stack: list[Value | None] = [root]
    push, pop, record, mark = stack.append, stack.pop, order.append, expanded.add
    while stack:
        node = pop()
        if node is None:  # marker: every input of the node below it is recorded
            record(pop())  # type: ignore[arg-type]  # a marker is always pushed right above a Value
        elif node not in expanded:
            mark(node)
            push(node)
            push(None)
            for child in node._prev:
                if include_leaves or child._prev:
                    push(child)
    return order


def maximum(a, b) -> Value:
    """The 'max' gate as a function: ``maximum(a, b)`` routes the gradient to the larger
    input (to ``a`` on a tie).  Either argument may be a plain number."""
    if not isinstance(a, Value):
        a = Value(a)
    return a.max(b)


# ----------------------------------------------------------------------------------
# A micrograd-style neural network on Values
# ----------------------------------------------------------------------------------

_NONLINS = ("tanh", "relu", "sigmoid", "linear")


def _uniform_sampler(rng):
    """Return ``draw(n) -> list of n floats from uniform(-1, 1)``.

    ``rng`` may be a ``random.Random``, a ``numpy.random.Generator``, an int seed
    (used for a fresh ``random.Random(seed)``) or None (unseeded: not reproducible).
    """
    if rng is None or isinstance(rng, numbers.Integral):
        rng = random.Random(rng)
    if isinstance(rng, random.Random):
        return lambda n: [rng.uniform(-1.0, 1.0) for _ in range(n)]
    if hasattr(rng, "uniform") and hasattr(rng, "bit_generator"):  # numpy Generator
        return lambda n: [float(v) for v in rng.uniform(-1.0, 1.0, size=n)]
    raise TypeError(
        f"rng must be a random.Random, a numpy.random.Generator, an int seed or None, "
        f"got {type(rng).__name__}"
    )


class Module:
    """Base class: something with parameters (a list of Values)."""

    def parameters(self) -> list:
        return []

    def zero_grad(self) -> None:
        """Set every parameter's gradient to 0.0 (do this before each ``backward()``)."""
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """One neuron: ``act(w . x + b)`` built from '*' and '+' gates.

    Weights start uniform in (-1, 1) and the bias at 0, as in micrograd.
    ``nonlin`` is 'tanh' (default), 'relu', 'sigmoid' or 'linear' (no activation).
    """

    w: list[Value]
    b: Value
    nonlin: str

    def __init__(self, nin: int, nonlin: str = "tanh", rng=None, *, _draw=None):
        if nonlin not in _NONLINS:
            raise ValueError(f"nonlin must be one of {_NONLINS}, got {nonlin!r}")
        if not isinstance(nin, numbers.Integral) or nin < 1:
            raise ValueError(f"nin must be a positive int, got {nin!r}")
        draw = _draw or _uniform_sampler(rng)
        self.w = [Value(v) for v in draw(nin)]
        self.b = Value(0.0)
        self.nonlin = nonlin

    def __call__(self, x):
        if len(x) != len(self.w):
            raise ValueError(f"this Neuron takes {len(self.w)} inputs, got {len(x)}")
        act = self.b
        for wi, xi in zip(self.w, x):
            act = act + wi * xi
        if self.nonlin == "tanh":
            return act.tanh()
        if self.nonlin == "relu":
            return act.relu()
        if self.nonlin == "sigmoid":
            return act.sigmoid()
        return act

    def parameters(self) -> list:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"Neuron({len(self.w)}, nonlin={self.nonlin!r})"


class Layer(Module):
    """``nout`` neurons reading the same ``nin`` inputs.

    Neuron ``i`` holds row ``i`` of the weight matrix, ``W[i][j]`` = weight from input
    ``j``: the (out_features, in_features) layout of ``torch.nn.Linear``.
    """

    neurons: list[Neuron]

    def __init__(self, nin: int, nout: int, nonlin: str = "tanh", rng=None, *, _draw=None):
        if not isinstance(nout, numbers.Integral) or nout < 1:
            raise ValueError(f"nout must be a positive int, got {nout!r}")
        draw = _draw or _uniform_sampler(rng)
        self.neurons = [Neuron(nin, nonlin, _draw=draw) for _ in range(nout)]

    @property
    def nin(self) -> int:
        return len(self.neurons[0].w)

    @property
    def nout(self) -> int:
        return len(self.neurons)

    def __call__(self, x):
        """Outputs as a list, or a single Value when the layer has one neuron (micrograd)."""
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list:
        return [p for n in self.neurons for p in n.parameters()]

    def weight_matrix(self) -> list:
        """The weights as a nested list of floats, shape (nout, nin)."""
        return [[w.data for w in n.w] for n in self.neurons]

    def bias_vector(self) -> list:
        """The biases as a list of floats, length nout."""
        return [n.b.data for n in self.neurons]

    def set_weights(self, W, b) -> None:
        """Overwrite the weights (shape (nout, nin)) and biases (length nout) in place.

        Accepts nested lists or NumPy arrays.  The parameter Values are kept (only
        their ``data`` changes), so references from ``parameters()`` stay valid.
        """
        rows = [list(r) for r in W]
        b = list(b)
        if len(rows) != self.nout or any(len(r) != self.nin for r in rows):
            got = (len(rows), len(rows[0]) if rows else 0)
            raise ValueError(f"W must have shape (nout, nin) = ({self.nout}, {self.nin}), got {got}")
        if len(b) != self.nout:
            raise ValueError(f"b must have length nout = {self.nout}, got {len(b)}")
        for n, row, bi in zip(self.neurons, rows, b):
            for w, v in zip(n.w, row):
                w.data = _as_float(v, "a weight")
            n.b.data = _as_float(bi, "a bias")

    def __repr__(self) -> str:
        return f"Layer({self.nin}, {self.nout}, nonlin={self.neurons[0].nonlin!r})"


class MLP(Module):
    """A multi-layer perceptron: ``MLP(2, [16, 16, 1])`` is 2 -> 16 -> 16 -> 1.

    Hidden layers use ``nonlin`` (default 'tanh'); the last layer uses ``out_nonlin``
    (default 'linear'), as in micrograd.  Weights are drawn uniform(-1, 1) from ``rng``
    (a ``random.Random``, a ``numpy.random.Generator`` or an int seed), layer by layer,
    neuron by neuron: the same seed gives the same network.
    """

    def __init__(self, nin: int, nouts, nonlin: str = "tanh", rng=None, *, out_nonlin: str = "linear"):
        sizes = [nin] + list(nouts)
        if len(sizes) < 2:
            raise ValueError("nouts must list at least one layer size")
        draw = _uniform_sampler(rng)
        self.layers = [
            Layer(sizes[i], sizes[i + 1], nonlin if i < len(nouts) - 1 else out_nonlin, _draw=draw)
            for i in range(len(nouts))
        ]

    def __call__(self, x):
        """Forward pass; returns a single Value if the last layer has one neuron, else a list."""
        for layer in self.layers:
            x = [n(x) for n in layer.neurons]
        return x[0] if len(x) == 1 else x

    def parameters(self) -> list:
        return [p for layer in self.layers for p in layer.parameters()]

    def load_weights(self, weights) -> None:
        """Set all layers from a list of ``(W, b)`` pairs, W of shape (out, in) (torch layout)."""
        weights = list(weights)
        if len(weights) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} (W, b) pairs, got {len(weights)}")
        for layer, (W, b) in zip(self.layers, weights):
            layer.set_weights(W, b)

    def export_weights(self) -> list:
        """All layers as a list of ``(W, b)`` nested lists, the format of ``load_weights``."""
        return [(layer.weight_matrix(), layer.bias_vector()) for layer in self.layers]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(repr(layer) for layer in self.layers)}]"
