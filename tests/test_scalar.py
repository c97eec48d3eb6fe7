"""Tests for chainrule.scalar: the scalar autograd engine and its micrograd-style MLP."""

import math
import random
import sys
import time

import numpy as np
import pytest

from chainrule.scalar import MLP, Layer, Neuron, Value, maximum, topological_order

# ----------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------

H = 1e-6  # finite-difference step
FD_RTOL, FD_ATOL = 1e-6, 1e-8  # central differences are accurate to ~H^2 * f''' + roundoff


def analytic_grads(f, xs):
    vals = [Value(x) for x in xs]
    out = f(*vals)
    out.backward()
    return out.data, [v.grad for v in vals]


def numeric_grads(f, xs):
    """Central differences (f(x+h) - f(x-h)) / 2h, one input at a time."""
    grads = []
    for i in range(len(xs)):
        up = list(xs)
        dn = list(xs)
        up[i] += H
        dn[i] -= H
        fu = f(*[Value(x) for x in up]).data
        fd = f(*[Value(x) for x in dn]).data
        grads.append((fu - fd) / (2 * H))
    return grads


# (name, function of Values, input point); points keep away from kinks (relu at 0, max ties)
OPS = [
    ("add", lambda a, b: a + b, (1.3, -0.7)),
    ("sub", lambda a, b: a - b, (1.3, -0.7)),
    ("mul", lambda a, b: a * b, (1.3, -0.7)),
    ("div", lambda a, b: a / b, (1.3, -0.7)),
    ("pow2", lambda a: a**2, (-1.3,)),
    ("pow3", lambda a: a**3, (0.8,)),
    ("pow_half", lambda a: a**0.5, (2.1,)),
    ("pow_neg", lambda a: a**-1.5, (1.7,)),
    ("neg", lambda a: -a, (0.4,)),
    ("neg_method", lambda a: a.neg(), (0.4,)),
    ("exp", lambda a: a.exp(), (0.9,)),
    ("log", lambda a: a.log(), (0.6,)),
    ("tanh", lambda a: a.tanh(), (0.35,)),
    ("sigmoid_pos", lambda a: a.sigmoid(), (1.2,)),
    ("sigmoid_neg", lambda a: a.sigmoid(), (-2.5,)),
    ("relu_pos", lambda a: a.relu(), (0.8,)),
    ("relu_neg", lambda a: a.relu(), (-0.8,)),
    ("max_first", lambda a, b: a.max(b), (1.5, 0.2)),
    ("max_second", lambda a, b: maximum(a, b), (-1.5, 0.2)),
    ("reciprocal", lambda a: a.reciprocal(), (-1.7,)),
    ("add_const", lambda a: a.add_const(2.5), (0.3,)),
    ("scale", lambda a: a.scale(-1.75), (0.3,)),
    ("radd", lambda a: 2.5 + a, (0.3,)),
    ("add_number", lambda a: a + 2.5, (0.3,)),
    ("rsub", lambda a: 2.5 - a, (0.3,)),
    ("sub_number", lambda a: a - 2.5, (0.3,)),
    ("rmul", lambda a: 3 * a, (0.3,)),
    ("rtruediv", lambda a: 3.0 / a, (0.7,)),
    ("div_number", lambda a: a / 4, (0.7,)),
    ("composite", lambda a, b: ((a * b).tanh() + (a / b).exp()).sigmoid() * a.log(), (1.2, 0.9)),
]


# ----------------------------------------------------------------------------------
# construction, repr, errors
# ----------------------------------------------------------------------------------


def test_construction_stores_python_float_and_label():
    v = Value(3, label="x")
    assert type(v.data) is float and v.data == 3.0
    assert v.grad == 0.0 and v.label == "x" and v.op == "" and v._prev == () and v._local == ()
    assert type(Value(np.float32(0.5)).data) is float
    assert Value(np.int64(4)).data == 4.0


def test_repr():
    v = Value(0.7310585786300049)
    assert repr(v) == "Value(data=0.7311, grad=0.0)"
    v.grad = -0.19661193324148185
    assert repr(v) == "Value(data=0.7311, grad=-0.1966)"
    assert repr(Value(1e-7)) == "Value(data=1e-07, grad=0.0)"  # tiny values are not hidden as 0.0
    assert "label='w'" in repr(Value(2.0, label="w"))


def test_bad_data_raises_type_error_naming_type():
    with pytest.raises(TypeError, match="str"):
        Value("a")
    with pytest.raises(TypeError, match="list"):
        Value([1.0])
    with pytest.raises(TypeError, match="Value"):
        Value(Value(1.0))


def test_micrograd_style_positional_children_rejected_clearly():
    a, b = Value(1.0), Value(2.0)
    with pytest.raises(TypeError, match="label must be a str"):
        Value(3.0, (a, b))
    with pytest.raises(TypeError):
        Value(3.0, (a, b), "+")


def test_hand_built_node_with_children_and_local():
    a, b = Value(1.0), Value(2.0)
    c = Value(a.data + b.data, _children=(a, b), _op="+", _local=(1.0, 1.0))
    c.backward()
    assert (a.grad, b.grad) == (1.0, 1.0)
    with pytest.raises(ValueError, match="_local"):
        Value(3.0, _children=(a, b), _op="+")


def test_log_of_non_positive_raises_value_error_naming_value():
    with pytest.raises(ValueError, match="0.0"):
        Value(0.0).log()
    with pytest.raises(ValueError, match="-2.5"):
        Value(-2.5).log()


def test_other_errors():
    with pytest.raises(ZeroDivisionError):
        Value(0.0).reciprocal()
    with pytest.raises(ZeroDivisionError):
        Value(1.0) / Value(0.0)
    with pytest.raises(ZeroDivisionError):
        Value(0.0) ** -1
    with pytest.raises(TypeError, match="number exponent"):
        Value(2.0) ** Value(2.0)
    with pytest.raises(ValueError, match="not a real number"):
        Value(-8.0) ** 0.5
    with pytest.raises(TypeError):
        Value(1.0) + "a"
    with pytest.raises(TypeError):
        "a" * Value(1.0)
    with pytest.raises(TypeError, match="str"):
        Value(1.0).scale("2")
    with pytest.raises(OverflowError, match="1000"):
        Value(1000.0).exp()


def test_numpy_scalars_on_the_left_give_values():
    v = Value(2.0)
    for out in (np.float64(3.0) * v, np.float64(3.0) + v, np.float32(3.0) - v):
        assert isinstance(out, Value)
    assert (np.float64(3.0) * v).data == 6.0


# ----------------------------------------------------------------------------------
# local gradients and the recorded graph
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,f,xs", OPS, ids=[op[0] for op in OPS])
def test_gradient_matches_central_differences(name, f, xs):
    _, g = analytic_grads(f, xs)
    g_num = numeric_grads(f, xs)
    for ga, gn in zip(g, g_num):
        assert ga == pytest.approx(gn, rel=FD_RTOL, abs=FD_ATOL), name


def test_forward_values():
    x = Value(0.5)
    assert x.exp().data == pytest.approx(math.exp(0.5), rel=1e-15)
    assert x.log().data == pytest.approx(math.log(0.5), rel=1e-15)
    assert x.tanh().data == pytest.approx(math.tanh(0.5), rel=1e-15)
    assert x.sigmoid().data == pytest.approx(1 / (1 + math.exp(-0.5)), rel=1e-15)
    assert Value(-0.5).relu().data == 0.0 and x.relu().data == 0.5
    assert (x**2).data == 0.25 and x.reciprocal().data == 2.0
    # sigmoid is stable far out in both tails
    assert Value(-800.0).sigmoid().data == 0.0 and Value(800.0).sigmoid().data == 1.0


def test_nodes_record_op_inputs_and_local_gradients():
    a, b = Value(2.0), Value(-3.0)
    cases = [
        (a + b, "+", (a, b), (1.0, 1.0)),
        (a - b, "-", (a, b), (1.0, -1.0)),
        (a * b, "*", (a, b), (-3.0, 2.0)),
        (a / b, "/", (a, b), (-1 / 3, -2.0 / 9.0)),
        (a**3, "**", (a,), (12.0,)),
        (-a, "neg", (a,), (-1.0,)),
        (a.exp(), "exp", (a,), (math.exp(2.0),)),
        (a.log(), "log", (a,), (0.5,)),
        (a.tanh(), "tanh", (a,), (1 - math.tanh(2.0) ** 2,)),
        (b.relu(), "relu", (b,), (0.0,)),
        (a.reciprocal(), "1/x", (a,), (-0.25,)),
        (a.add_const(1), "+c", (a,), (1.0,)),
        (a + 1, "+c", (a,), (1.0,)),
        (a.scale(-1), "*c", (a,), (-1.0,)),
        (5 * a, "*c", (a,), (5.0,)),
        (a.max(b), "max", (a, b), (1.0, 0.0)),
    ]
    for out, op, prev, local in cases:
        assert out.op == op and out._op == op
        assert type(out._prev) is tuple and all(p is q for p, q in zip(out._prev, prev))
        assert out.children is out._prev and len(out._prev) == len(prev)
        assert type(out._local) is tuple and all(type(g) is float for g in out._local)
        assert out._local == pytest.approx(local, rel=1e-15), op
    s = a.sigmoid()
    assert s.op == "sigmoid" and s._local[0] == pytest.approx(s.data * (1 - s.data), rel=1e-15)


# ----------------------------------------------------------------------------------
# the lecture's sigmoid neuron: f = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))
# ----------------------------------------------------------------------------------

LECTURE_INPUTS = dict(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)
LECTURE_GRADS = dict(w0=-0.20, x0=0.39, w1=-0.39, x1=-0.59, w2=0.20)


def test_lecture_sigmoid_neuron_from_gates():
    v = {k: Value(x, label=k) for k, x in LECTURE_INPUTS.items()}
    dot = v["w0"] * v["x0"] + v["w1"] * v["x1"] + v["w2"]  # '*' and '+' gates: 1.0
    f = dot.scale(-1).exp().add_const(1).reciprocal()  # *c, exp, +c, 1/x
    assert [n.op for n in (f, f._prev[0], f._prev[0]._prev[0], f._prev[0]._prev[0]._prev[0])] == [
        "1/x", "+c", "exp", "*c"]
    f.backward()
    assert f.data == pytest.approx(0.73, abs=0.005)
    assert f.data == pytest.approx(1 / (1 + math.exp(-1.0)), rel=1e-12)
    for k, g in LECTURE_GRADS.items():
        assert round(v[k].grad, 2) == g, k
    # the exact values: df/d(dot) = s(1-s) with s = sigmoid(1)
    s = 1 / (1 + math.exp(-1.0))
    assert v["w0"].grad == pytest.approx(s * (1 - s) * -1.0, rel=1e-12)
    assert v["x1"].grad == pytest.approx(s * (1 - s) * -3.0, rel=1e-12)


def test_lecture_sigmoid_neuron_with_fused_sigmoid_gate():
    v = {k: Value(x, label=k) for k, x in LECTURE_INPUTS.items()}
    f = (v["w0"] * v["x0"] + v["w1"] * v["x1"] + v["w2"]).sigmoid()
    f.backward()
    assert round(f.data, 2) == 0.73
    for k, g in LECTURE_GRADS.items():
        assert round(v[k].grad, 2) == g, k
    # the fused gate and the chain of gates agree to rounding error
    w = {k: Value(x) for k, x in LECTURE_INPUTS.items()}
    g = (w["w0"] * w["x0"] + w["w1"] * w["x1"] + w["w2"]).scale(-1).exp().add_const(1).reciprocal()
    g.backward()
    for k in v:
        assert v[k].grad == pytest.approx(w[k].grad, rel=1e-12, abs=1e-15)


# ----------------------------------------------------------------------------------
# gradient routing, fan-out, accumulation, deep graphs
# ----------------------------------------------------------------------------------


def test_max_gate_routes_full_gradient_to_the_larger_input():
    a, b = Value(4.0), Value(2.0)
    out = maximum(a, b).scale(3.0)  # upstream gradient 3 into the max gate
    out.backward()
    assert out.data == 12.0 and (a.grad, b.grad) == (3.0, 0.0)

    a, b = Value(-1.0), Value(2.0)
    maximum(a, b).scale(3.0).backward()
    assert (a.grad, b.grad) == (0.0, 3.0)


def test_max_gate_tie_goes_to_first_input():
    a, b = Value(2.0), Value(2.0)
    a.max(b).backward()
    assert (a.grad, b.grad) == (1.0, 0.0)
    a, b = Value(2.0), Value(2.0)
    maximum(b, a).backward()
    assert (a.grad, b.grad) == (0.0, 1.0)


def test_maximum_accepts_numbers():
    a = Value(-3.0)
    out = maximum(a, 0.0)  # a relu written with the max gate
    out.backward()
    assert out.data == 0.0 and a.grad == 0.0
    assert maximum(5, Value(1.0)).data == 5.0


def test_fan_out_accumulates():
    x = Value(3.0)
    (x * x).backward()  # d(x^2)/dx = 2x: both inputs of '*' are x
    assert x.grad == 6.0

    x = Value(3.0)
    (x + x).backward()
    assert x.grad == 2.0

    # a value feeding two branches: f = a*b + exp(a)
    a, b = Value(0.5), Value(-2.0)
    (a * b + a.exp()).backward()
    assert a.grad == pytest.approx(-2.0 + math.exp(0.5), rel=1e-15)
    assert b.grad == 0.5

    # a shared intermediate node: y = t*t + t with t = tanh(x)
    x = Value(0.3)
    t = x.tanh()
    (t * t + t).backward()
    tt = math.tanh(0.3)
    assert t.grad == pytest.approx(2 * tt + 1, rel=1e-15)
    assert x.grad == pytest.approx((2 * tt + 1) * (1 - tt * tt), rel=1e-15)


def test_backward_accumulates_until_zeroed():
    x = Value(2.0)
    y = x * 3
    y.backward()
    y.backward()  # no automatic zeroing, as in micrograd / PyTorch
    assert x.grad == 6.0
    x.grad = 0.0
    (x * 3).backward()
    assert x.grad == 3.0


def test_backward_on_a_leaf():
    x = Value(2.0)
    x.backward()
    assert x.grad == 1.0


def test_chain_of_100k_values():
    n = 100_000
    limit = sys.getrecursionlimit()
    x = Value(1.0)
    y = x
    for _ in range(n):
        y = y.scale(1.00001)
    t0 = time.perf_counter()
    y.backward()
    assert time.perf_counter() - t0 < 5.0
    assert sys.getrecursionlimit() == limit  # no recursion-limit games
    assert y.data == pytest.approx(1.00001**n, rel=1e-9)
    assert x.grad == pytest.approx(1.00001**n, rel=1e-9)  # about e
    del y  # freeing a deep chain must not crash either


def test_deep_two_input_chain():
    # each step has two inputs, one of them shared: y_{k+1} = y_k + x * 0.5
    x = Value(1.0)
    y = x
    for _ in range(50_000):
        y = y + x.scale(0.5)
    y.backward()
    assert x.grad == pytest.approx(1 + 50_000 * 0.5, rel=1e-12)


def test_topological_order():
    a, b = Value(1.0, label="a"), Value(2.0, label="b")
    c = a * b
    d = c + a
    e = d.tanh() * c
    order = topological_order(e)
    assert order[-1] is e
    assert len(order) == len({id(n) for n in order}) == 6  # a, b, c, d, tanh(d), e; each once
    pos = {id(n): i for i, n in enumerate(order)}
    for n in order:
        for child in n._prev:
            assert pos[id(child)] < pos[id(n)]
    interior = topological_order(e, include_leaves=False)
    assert all(n._prev for n in interior) and interior[-1] is e


# ----------------------------------------------------------------------------------
# the neural network
# ----------------------------------------------------------------------------------


def test_mlp_shapes_and_parameter_count():
    model = MLP(2, [16, 16, 1], rng=0)
    assert len(model.parameters()) == (2 + 1) * 16 + (16 + 1) * 16 + (16 + 1) * 1
    assert [len(layer.weight_matrix()) for layer in model.layers] == [16, 16, 1]
    assert [len(layer.weight_matrix()[0]) for layer in model.layers] == [2, 16, 16]
    assert [n.nonlin for n in (model.layers[0].neurons[0], model.layers[-1].neurons[0])] == ["tanh", "linear"]
    assert isinstance(model([0.5, -0.5]), Value)
    assert len(MLP(3, [4, 2], rng=0)([1.0, 2.0, 3.0])) == 2


@pytest.mark.parametrize(
    "make_rng", [lambda: random.Random(42), lambda: np.random.default_rng(42), lambda: 42],
    ids=["random.Random", "numpy.Generator", "int-seed"],
)
def test_mlp_is_deterministic_with_a_seed(make_rng):
    w1 = MLP(2, [8, 8, 1], rng=make_rng()).export_weights()
    w2 = MLP(2, [8, 8, 1], rng=make_rng()).export_weights()
    assert w1 == w2
    flat = [w for W, _ in w1 for row in W for w in row]
    assert all(-1.0 <= w <= 1.0 for w in flat) and len(set(flat)) == len(flat)
    assert all(b == 0.0 for _, bs in w1 for b in bs)  # micrograd starts biases at 0


def test_different_seeds_differ():
    assert MLP(2, [4, 1], rng=1).export_weights() != MLP(2, [4, 1], rng=2).export_weights()


def test_bad_rng_and_nonlin():
    with pytest.raises(TypeError, match="rng"):
        MLP(2, [4, 1], rng="seed")
    with pytest.raises(ValueError, match="nonlin"):
        Neuron(2, nonlin="gelu")


def test_load_weights_matches_numpy_forward_in_torch_layout():
    rng = np.random.default_rng(0)
    weights = [(rng.normal(size=(5, 3)), rng.normal(size=5)), (rng.normal(size=(2, 5)), rng.normal(size=2))]
    model = MLP(3, [5, 2], rng=0)
    params_before = model.parameters()
    model.load_weights(weights)
    assert all(p is q for p, q in zip(params_before, model.parameters()))  # updated in place
    x = np.array([0.3, -1.2, 0.8])
    expected = weights[1][0] @ np.tanh(weights[0][0] @ x + weights[0][1]) + weights[1][1]
    got = [v.data for v in model(list(x))]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    # export round-trips, as nested lists of Python floats
    exported = model.export_weights()
    np.testing.assert_array_equal(np.array(exported[0][0]), weights[0][0])
    assert type(exported[0][0][0][0]) is float


def test_set_weights_rejects_wrong_shapes():
    layer = Layer(3, 2, rng=0)
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        layer.set_weights(np.zeros((3, 2)), np.zeros(2))
    with pytest.raises(ValueError, match="length"):
        layer.set_weights(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="pairs"):
        MLP(3, [2, 1], rng=0).load_weights([(np.zeros((2, 3)), np.zeros(2))])


@pytest.mark.parametrize("nonlin,fn", [
    ("tanh", math.tanh),
    ("relu", lambda z: max(z, 0.0)),
    ("sigmoid", lambda z: 1 / (1 + math.exp(-z))),
    ("linear", lambda z: z),
])
def test_neuron_activations(nonlin, fn):
    n = Neuron(2, nonlin=nonlin, rng=0)
    n.w[0].data, n.w[1].data, n.b.data = 0.5, -1.0, 0.25
    for x in ([1.0, 2.0], [-1.0, -2.0]):
        z = 0.5 * x[0] - 1.0 * x[1] + 0.25
        assert n(x).data == pytest.approx(fn(z), rel=1e-15, abs=1e-15)


def test_mlp_gradients_match_finite_differences():
    model = MLP(2, [3, 1], rng=7)
    x, y = [0.4, -0.9], 0.5
    loss = (model(x) - y) ** 2
    model.zero_grad()
    loss.backward()
    for p in model.parameters():
        p0 = p.data
        p.data = p0 + H
        up = ((model(x) - y) ** 2).data
        p.data = p0 - H
        dn = ((model(x) - y) ** 2).data
        p.data = p0
        assert p.grad == pytest.approx((up - dn) / (2 * H), rel=1e-5, abs=1e-8)
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())


def test_xor_training():
    t0 = time.perf_counter()
    X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    Y = [-1.0, 1.0, 1.0, -1.0]
    model = MLP(2, [8, 1], rng=random.Random(1))
    params = model.parameters()
    for _ in range(200):  # full-batch gradient descent on the mean squared error
        loss = sum(((model(x) - y) ** 2 for x, y in zip(X, Y)), Value(0.0)) / len(X)
        model.zero_grad()
        loss.backward()
        for p in params:
            p.data -= 0.1 * p.grad
    assert loss.data < 0.05
    assert all((model(x).data > 0) == (y > 0) for x, y in zip(X, Y))
    assert time.perf_counter() - t0 < 3.0
