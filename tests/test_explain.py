"""chainrule.explain: the backward pass narrated gate by gate.

The lectures' example, f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) at w0 = 2, x0 = -1, w1 = -3,
x1 = -2, w2 = -3, must show exactly the lecture's numbers, for a scalar Value graph and for the
same function built from 0-d Tensors.
"""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.explain import Explanation, GateRecord, explain

LECTURE = [("w0", 2.0), ("x0", -1.0), ("w1", -3.0), ("x1", -2.0), ("w2", -3.0)]
LECTURE_GRADS = {"w0": -0.20, "x0": 0.39, "w1": -0.39, "x1": -0.59, "w2": 0.20}
# backward order: (gate, value, upstream, [local per input], [downstream per input]), 2 decimals
LECTURE_STEPS = [
    ("1/x", 0.73, 1.00, [-0.53], [-0.53]),
    ("+1", 1.37, -0.53, [1.00], [-0.53]),
    ("exp", 0.37, -0.53, [0.37], [-0.20]),
    ("*-1", -1.00, -0.20, [-1.00], [0.20]),
    ("+", 1.00, 0.20, [1.00, 1.00], [0.20, 0.20]),
    ("+", 4.00, 0.20, [1.00, 1.00], [0.20, 0.20]),
    ("*", 6.00, 0.20, [-2.00, -3.00], [-0.39, -0.59]),
    ("*", -2.00, 0.20, [-1.00, 2.00], [-0.20, 0.39]),
]
LECTURE_TABLE = """\
step  gate  inputs  value  upstream  local  downstream
----  ----  ------  -----  --------  -----  ----------
   1  1/x   [2]      0.73      1.00  -0.53       -0.53
   2  +1    [3]      1.37     -0.53   1.00       -0.53
   3  exp   [4]      0.37     -0.53   0.37       -0.20
   4  *-1   [5]     -1.00     -0.20  -1.00        0.20
   5  +     [6]      1.00      0.20   1.00        0.20
            w2                        1.00        0.20
   6  +     [8]      4.00      0.20   1.00        0.20
            [7]                       1.00        0.20
   7  *     w1       6.00      0.20  -2.00       -0.39
            x1                       -3.00       -0.59
   8  *     w0      -2.00      0.20  -1.00       -0.20
            x0                        2.00        0.39
[k] = the output of step k
gradients: w0 = -0.20, x0 = 0.39, w1 = -0.39, x1 = -0.59, w2 = 0.20"""

SIG = 1 / (1 + math.exp(-1.0))  # the neuron's output, sigmoid(1)
EXACT_GRADS = {"w0": -1 * SIG * (1 - SIG), "x0": 2 * SIG * (1 - SIG), "w1": -2 * SIG * (1 - SIG),
               "x1": -3 * SIG * (1 - SIG), "w2": SIG * (1 - SIG)}


def scalar_module():
    return pytest.importorskip("chainrule.scalar")


def value_neuron():
    Value = scalar_module().Value
    leaves = {n: Value(v, label=n) for n, v in LECTURE}
    w0, x0, w1, x1, w2 = leaves.values()
    f = (w0 * x0 + w1 * x1 + w2).scale(-1).exp().add_const(1).reciprocal()
    return f, leaves


def tensor_neuron():
    leaves = {n: cr.tensor(v, dtype=cr.float64, requires_grad=True) for n, v in LECTURE}
    w0, x0, w1, x1, w2 = leaves.values()
    f = 1 / ((((w0 * x0 + w1 * x1 + w2) * -1).exp()) + 1)
    return f, leaves


def check_lecture_records(result):
    assert isinstance(result, Explanation) and isinstance(result, list)
    assert all(isinstance(r, GateRecord) for r in result) and result.records == list(result)
    assert [r.step for r in result] == list(range(1, 9))
    for r, (op, value, up, local, down) in zip(result, LECTURE_STEPS, strict=True):
        assert r.op == op
        assert round(r.value, 2) == value
        assert round(r.upstream, 2) == up
        assert [round(v, 2) for v in r.local] == local
        assert [round(v, 2) for v in r.downstream] == down
        for lo, d in zip(r.local, r.downstream, strict=True):  # downstream = upstream x local
            assert d == pytest.approx(r.upstream * lo, rel=1e-12)
    assert list(result.grads) == ["w0", "x0", "w1", "x1", "w2"]
    assert {k: round(v, 2) for k, v in result.grads.items()} == LECTURE_GRADS
    for k, v in result.grads.items():
        assert v == pytest.approx(EXACT_GRADS[k], rel=1e-12)
    assert result[-1].inputs == ("w0", "x0") and result[-2].inputs == ("w1", "x1")
    assert result[4].inputs == ("[6]", "w2") and result[0].output == "[1]"


def test_lecture_value_graph(capsys):
    f, leaves = value_neuron()
    result = explain(f)
    printed = capsys.readouterr().out
    assert printed.strip() == LECTURE_TABLE
    check_lecture_records(result)
    assert [r.kind for r in result] == ["1/x", "+c", "exp", "*c", "+", "+", "*", "*"]
    assert str(result) == result.table() == LECTURE_TABLE
    # explain is a backward pass: it filled .grad like f.backward()
    assert f.grad == 1.0
    for name, v in leaves.items():
        assert v.grad == pytest.approx(EXACT_GRADS[name], rel=1e-12)


def test_lecture_tensor_graph(capsys):
    f, leaves = tensor_neuron()
    result = explain(f, names=leaves)
    assert capsys.readouterr().out.strip() == LECTURE_TABLE
    check_lecture_records(result)
    assert [r.kind for r in result] == ["RDivScalar", "AddScalar", "Exp", "MulScalar", "Add", "Add",
                                        "Mul", "Mul"]
    for name, t in leaves.items():
        assert t.grad.item() == pytest.approx(EXACT_GRADS[name], rel=1e-12)


def test_value_and_tensor_tables_agree():
    scalar_module()
    fv, _ = value_neuron()
    ft, leaves = tensor_neuron()
    assert explain(fv, print_table=False).table() == explain(ft, names=leaves, print_table=False).table()


def test_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    tl = {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in LECTURE}
    tf = 1 / ((((tl["w0"] * tl["x0"] + tl["w1"] * tl["x1"] + tl["w2"]) * -1).exp()) + 1)
    tf.backward()
    f, leaves = tensor_neuron()
    result = explain(f, names=leaves, print_table=False)
    for name in leaves:
        assert result.grads[name] == pytest.approx(tl[name].grad.item(), rel=1e-12, abs=1e-15)


def test_accumulation_semantics():
    f, leaves = tensor_neuron()
    w0 = leaves["w0"]
    explain(f, print_table=False, accumulate=False)
    assert w0.grad is None  # accumulate=False: read only
    explain(f, print_table=False)
    assert w0.grad.item() == pytest.approx(EXACT_GRADS["w0"])
    f.backward()  # the graph was not freed; a second backward adds, as in torch
    assert w0.grad.item() == pytest.approx(2 * EXACT_GRADS["w0"])
    with pytest.raises(RuntimeError, match="freed"):
        explain(f, print_table=False)


def test_value_accumulation_semantics():
    f, leaves = value_neuron()
    f.backward()
    explain(f, print_table=False)  # a second backward pass: gradients add up
    assert leaves["x1"].grad == pytest.approx(2 * EXACT_GRADS["x1"])
    explain(f, print_table=False, accumulate=False)
    assert leaves["x1"].grad == pytest.approx(2 * EXACT_GRADS["x1"])


def test_fan_out_sums_gradients_before_the_node_is_processed():
    # f = x*x + x at x = 3: df/dx = 2x + 1 = 7; x*x has x twice (fan-out into one gate)
    x = cr.tensor(3.0, dtype=cr.float64, requires_grad=True)
    s = x * 2.0  # an intermediate used by two gates: s*s and s
    f = s * s + s  # df/ds = 2s + 1 = 13, df/dx = 26
    result = explain(f, names={"x": x, "s": s}, print_table=False)
    assert [r.op for r in result] == ["+", "*", "*2"]
    assert result[1].inputs == ("s", "s")
    assert result[2].upstream == pytest.approx(13.0)  # summed over both consumers before use
    assert result.grads == {"x": pytest.approx(26.0)}
    assert x.grad.item() == pytest.approx(26.0)


def test_value_fan_out():
    Value = scalar_module().Value
    a = Value(3.0, label="a")
    b = a * a + a
    result = explain(b, print_table=False)
    assert result.grads == {"a": pytest.approx(7.0)}
    assert a.grad == pytest.approx(7.0)


def test_tensor_mlp_locals_and_jacobians():
    rng = np.random.default_rng(1)
    W = cr.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    b = cr.tensor(rng.standard_normal(2), requires_grad=True)
    x = cr.tensor(rng.standard_normal(3))

    def loss_fn():
        return ((W @ x + b).tanh() ** 2).sum()

    result = explain(loss_fn(), names={"W": W, "b": b, "x": x}, print_table=False)
    by_op = {r.op: r for r in result}
    assert set(by_op) == {"sum", "**2", "tanh", "+", "@"}
    # elementwise op: local gradient = 1 - tanh^2, elementwise; downstream = upstream * local
    tanh = by_op["tanh"]
    np.testing.assert_allclose(tanh.local[0], 1 - tanh.value**2, rtol=1e-12)
    np.testing.assert_allclose(tanh.downstream[0], tanh.upstream * tanh.local[0], rtol=1e-12)
    # sum to a scalar: the local gradient is the whole (row) Jacobian, ones
    np.testing.assert_array_equal(by_op["sum"].local[0], np.ones(2))
    # matmul: a full Jacobian, not shown; x is a constant (no gradient)
    mm = by_op["@"]
    assert mm.inputs == ("W", "x")
    assert mm.local == ("J[(2,)x(2,3)]", None) and mm.downstream[1] is None
    # the gradients are the engine's
    expected = {}
    for name, p in (("W", W), ("b", b)):
        expected[name] = p.grad.data.copy()
    W.grad = b.grad = None
    loss_fn().backward()
    np.testing.assert_allclose(expected["W"], W.grad.data, rtol=1e-12)
    np.testing.assert_allclose(result.grads["b"], b.grad.data, rtol=1e-12)
    table = result.table()
    assert "J[(2,)x(2,3)]" in table and "(2,3) norm" in table and "gradients: W = (2,3) norm" in table


def test_precision_and_unnamed_leaves():
    a = cr.tensor(1.0 / 3.0, dtype=cr.float64, requires_grad=True)
    y = (a * a).exp()
    result = explain(y, print_table=False, precision=4)
    assert result[1].inputs == ("leaf1", "leaf1")
    assert "0.1111" in result.table()  # a*a
    assert "0.11" in result.table(precision=2) and "0.1111" not in result.table(precision=2)
    assert result.grads["leaf1"] == pytest.approx(2 / 3 * math.exp(1 / 9))


def test_errors():
    with pytest.raises(RuntimeError, match="does not require grad"):
        explain(cr.tensor([1.0]) * 2, print_table=False)
    v = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="grad_output"):
        explain(v * 2, print_table=False)
    r = explain(v * 2, grad_output=[1.0, -1.0], print_table=False)
    np.testing.assert_allclose(r.grads["leaf1"], [2.0, -2.0])
    with pytest.raises(TypeError):
        explain(3.0)
