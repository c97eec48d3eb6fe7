"""chainrule.viz: DOT text always; a graphviz.Digraph when the package is installed."""

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule.viz import DotGraph, GraphvizUnavailableError, draw_graph, to_dot

LECTURE = [("w0", 2.0), ("x0", -1.0), ("w1", -3.0), ("x1", -2.0), ("w2", -3.0)]


def value_neuron():
    Value = pytest.importorskip("chainrule.scalar").Value
    w0, x0, w1, x1, w2 = (Value(v, label=n) for n, v in LECTURE)
    return (w0 * x0 + w1 * x1 + w2).scale(-1).exp().add_const(1).reciprocal()


def tensor_neuron():
    leaves = {n: cr.tensor(v, dtype=cr.float64, requires_grad=True) for n, v in LECTURE}
    w0, x0, w1, x1, w2 = leaves.values()
    return 1 / ((((w0 * x0 + w1 * x1 + w2) * -1).exp()) + 1), leaves


def parse(dot):
    """(value nodes {id: label}, op nodes {id: label}, edges [(a, b)]) from DOT text."""
    values = dict(re.findall(r'^\t(v\d+) \[label="([^"]*)"', dot, re.M))
    ops = dict(re.findall(r'^\t(op\d+) \[label="([^"]*)"', dot, re.M))
    edges = re.findall(r"^\t(\w+) -> (\w+)$", dot, re.M)
    return values, ops, edges


def test_value_graph_dot():
    f = value_neuron()
    f.backward()
    dot = to_dot(f)
    assert dot.startswith("digraph {") and dot.rstrip().endswith("}")
    values, ops, edges = parse(dot)
    assert len(values) == 5 + 8  # 5 leaves, 8 gate outputs
    assert sorted(ops.values()) == sorted(["*", "*", "+", "+", "*-1", "exp", "+1", "1/x"])
    assert len(edges) == 12 + 8  # one per gate input, one per gate output
    # edges go value -> op -> value
    for a, b in edges:
        assert (a in values and b in ops) or (a in ops and b in values)
    assert "w0\\ndata 2.0000\\ngrad -0.1966" in values.values()
    assert "data 0.7311\\ngrad 1.0000" in values.values()
    assert "grad" not in to_dot(f, show_grad=False)
    assert "data 0.73\\n" in to_dot(f, precision=2)


def test_tensor_graph_dot():
    f, leaves = tensor_neuron()
    f.backward(retain_graph=True)  # keeps the ops' constants (-1, +1) for the op names
    values, ops, edges = parse(to_dot(f, names=leaves))
    assert len(values) == 13 and len(ops) == 8 and len(edges) == 20
    assert "w0\\n() float64\\nvalue 2.0000\\ngrad -0.1966" in values.values()
    assert "() float64\\nvalue 0.7311" in values.values()
    assert sorted(ops.values()) == sorted(["*", "*", "+", "+", "*-1", "exp", "+1", "1/x"])
    assert "tooltip=RDivScalar" in to_dot(f)
    f.backward()  # a plain backward frees the saved arrays but keeps the ops' constants
    _, ops, _ = parse(to_dot(f))
    assert sorted(ops.values()) == sorted(["*", "*", "+", "+", "*-1", "exp", "+1", "1/x"])

    W = cr.tensor(np.ones((2, 3)), requires_grad=True)
    y = (W @ cr.tensor(np.ones(3))).tanh().sum()
    y.backward()
    dot = to_dot(y, names={"W": W})
    values, ops, edges = parse(dot)
    gnorm = np.sqrt(6) * (1 - np.tanh(3.0) ** 2)  # dy/dW = (1 - tanh^2(3)) everywhere
    assert f"W\\n(2, 3) float64\\nnorm {np.sqrt(6):.4f}\\ngrad norm {gnorm:.4f}" in values.values()
    assert "(3,) float64\\nnorm 1.7321" in values.values()
    assert sorted(ops.values()) == ["@", "sum", "tanh"]
    assert "fillcolor=lightblue" in dot and "fillcolor=darkolivegreen1" in dot


def test_leaf_output_and_quoting():
    t = cr.tensor([1.0, 2.0], requires_grad=True)
    values, ops, edges = parse(to_dot(t, names={'say "hi"': t}))
    assert ops == {} and edges == []
    assert to_dot(t, names={'say "hi"': t}).count('say \\"hi\\"') == 1
    with pytest.raises(TypeError):
        to_dot(3.0)


def test_draw_graph_returns_digraph_when_graphviz_is_installed():
    graphviz = pytest.importorskip("graphviz")
    f, leaves = tensor_neuron()
    g = draw_graph(f, names=leaves, format="svg")
    assert isinstance(g, graphviz.Digraph)
    assert g.source == to_dot(f, names=leaves)
    assert g.format == "svg"


def test_fallback_without_graphviz(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # makes `import graphviz` fail
    f, leaves = tensor_neuron()
    g = draw_graph(f, names=leaves)
    assert isinstance(g, DotGraph)
    assert g.source == to_dot(f, names=leaves) and str(g) == g.source
    with pytest.raises(GraphvizUnavailableError, match=r"pip install chainrule\[viz\]"):
        g.render("graph")
    with pytest.raises(ImportError, match="'dot' program"):
        g.pipe()
    assert g._repr_svg_() is None
    path = g.save(str(tmp_path / "graph.dot"))
    assert open(path).read() == g.source


@pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz 'dot' program is not installed")
def test_dot_text_is_valid_graphviz(tmp_path):
    f = value_neuron()
    f.backward()
    svg = subprocess.run(["dot", "-Tsvg"], input=to_dot(f), capture_output=True, text=True, check=True).stdout
    assert "<svg" in svg and "1/x" in svg
    graphviz = pytest.importorskip("graphviz")
    t, leaves = tensor_neuron()
    out = draw_graph(t, names=leaves).render(str(tmp_path / "neuron"), format="svg")
    assert open(out).read().count("<svg") == 1
    assert isinstance(draw_graph(t), graphviz.Digraph)
