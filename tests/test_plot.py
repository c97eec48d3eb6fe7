"""chainrule.plot: each function draws a Figure and saves a PNG atomically; clear error without matplotlib."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, plot

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def is_png(path) -> bool:
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib")


def only_file(folder, name):
    """The folder holds exactly ``name``: no temporary file was left behind."""
    assert sorted(os.listdir(folder)) == [name]


# ---- each function writes a PNG ------------------------------------------------------------------
def test_plot_history_from_dict_and_history(tmp_path, mpl):
    from matplotlib.figure import Figure

    from chainrule.train import History

    h = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.6, 0.4], "accuracy": [0.5, 0.8, 0.9],
         "val_accuracy": [0.45, 0.7, 0.85], "lr": [0.1, 0.1, 0.1]}
    fig = plot.plot_history(h, tmp_path / "h.png")
    assert isinstance(fig, Figure) and len(fig.axes) == 2          # loss panel and accuracy panel
    assert is_png(tmp_path / "h.png")
    only_file(tmp_path, "h.png")

    hist = History()
    hist.append(0, {"loss": 0.7})
    hist.append(1, {"loss": 0.4, "val_loss": 0.5})                      # epoch 0 logged no val_loss: None
    fig = plot.plot_history(hist, tmp_path / "sub" / "loss_only.png")   # parent folder is created
    assert len(fig.axes) == 1 and is_png(tmp_path / "sub" / "loss_only.png")
    with pytest.raises(ValueError, match="no 'loss' or 'accuracy'"):
        plot.plot_history({"lr": [0.1]})
    with pytest.raises(TypeError):
        plot.plot_history([1, 2, 3])


def test_plot_decision_boundary_binary_and_multiclass(tmp_path, mpl):
    X, y = cr.data.toy.xor()
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1), nn.Sigmoid())
    fig = plot.plot_decision_boundary(model, X, y, tmp_path / "xor.png", resolution=50)
    assert is_png(tmp_path / "xor.png")
    assert fig.axes[0].get_xlabel() == "$x_1$"
    assert model.training                                   # put back in training mode

    logits = nn.Linear(2, 1)                                 # raw scores: sigmoid applied
    plot.plot_decision_boundary(logits, X, y, tmp_path / "logit.png", resolution=30, output="logit")
    assert is_png(tmp_path / "logit.png")

    X3, y3 = cr.data.toy.spirals(90, classes=3, seed=0)
    three = nn.Linear(2, 3)
    plot.plot_decision_boundary(three, X3, y3, tmp_path / "three.png", resolution=40)
    assert is_png(tmp_path / "three.png")

    def fn(x):                                              # any callable works
        return cr.sigmoid(x[:, :1] * 10 - 5)

    plot.plot_decision_boundary(fn, np.zeros((0, 2)), np.zeros(0), tmp_path / "fn.png", resolution=20,
                                xlim=(0, 1), ylim=(0, 1))
    assert is_png(tmp_path / "fn.png")
    with pytest.raises(ValueError, match="output must be"):
        plot.plot_decision_boundary(fn, X, y, output="probability")


def test_plot_decision_boundary_into_existing_axes(tmp_path, mpl):
    fig, axes = plot._new_figure(1, 2)
    X, y = cr.data.toy.and_gate()
    for ax in axes:
        out = plot.plot_decision_boundary(nn.Linear(2, 1), X, y, ax=ax, resolution=20)
        assert out is fig
    plot.save_figure(fig, tmp_path / "two.png")
    assert is_png(tmp_path / "two.png")


def test_plot_first_layer_weights(tmp_path, mpl):
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 20), nn.ReLU(), nn.Linear(20, 10))
    fig = plot.plot_first_layer_weights(model, tmp_path / "w.png", n=16)
    assert len([ax for ax in fig.axes if ax.images]) == 16
    assert is_png(tmp_path / "w.png")
    fig = plot.plot_first_layer_weights(model[1].weight, tmp_path / "t.png", n=64)   # n capped at 20
    assert len([ax for ax in fig.axes if ax.images]) == 20
    plot.plot_first_layer_weights(np.random.default_rng(0).normal(size=(5, 12)), tmp_path / "a.png",
                                  image_shape=(3, 4))
    assert is_png(tmp_path / "a.png")
    with pytest.raises(ValueError, match="not a square image"):
        plot.plot_first_layer_weights(np.zeros((3, 10)))
    with pytest.raises(ValueError, match="no Linear layer"):
        plot.plot_first_layer_weights(nn.Sequential(nn.ReLU()))


def test_plot_descent_paths(tmp_path, mpl):
    paths = {"GD": np.array([[1.0, 0.0], [0.8, 0.0], [0.64, 0.0]]),
             "momentum": [cr.tensor([1.0, 0.1]), cr.tensor([0.5, 0.4])]}
    fig = plot.plot_descent_paths(lambda x, y: x ** 2 - y ** 2, paths, tmp_path / "p.png",
                                  xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), resolution=40)
    assert is_png(tmp_path / "p.png")
    assert fig.axes[0].get_xlim() == (-1.5, 1.5)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["GD", "momentum"]

    import math

    calls = []

    def scalar_only(x, y):                                  # not vectorised: evaluated point by point
        calls.append(1)
        return math.exp(-x * x) + y * y

    plot.plot_descent_paths(scalar_only, {"a": [(0, 0), (1, 1)]}, tmp_path / "s.png", resolution=10,
                            log_levels=True)
    assert is_png(tmp_path / "s.png") and len(calls) == 1 + 100
    with pytest.raises(TypeError, match="dict"):
        plot.plot_descent_paths(lambda x, y: x, [(0, 0)])


def test_save_is_atomic_and_replaces(tmp_path, mpl):
    target = tmp_path / "curve.png"
    target.write_bytes(b"old")
    plot.plot_history({"loss": [1.0, 0.5]}, target)
    assert is_png(target)
    only_file(tmp_path, "curve.png")
    fig = plot.plot_history({"loss": [1.0, 0.5]})
    assert plot.save_figure(fig, tmp_path / "curve.svg").endswith("curve.svg")
    assert (tmp_path / "curve.svg").read_text().lstrip().startswith("<?xml")

    class Boom(Exception):
        pass

    def broken(*a, **k):
        raise Boom

    fig.savefig = broken                                    # a failing write leaves the old file intact
    before = target.read_bytes()
    with pytest.raises(Boom):
        plot.save_figure(fig, target)
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["curve.png", "curve.svg"]


# ---- without matplotlib -------------------------------------------------------------------------
def hide_matplotlib(monkeypatch):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)    # import matplotlib -> ImportError


def test_missing_matplotlib_gives_a_clear_error(tmp_path, monkeypatch):
    hide_matplotlib(monkeypatch)
    X, y = cr.data.toy.xor()
    calls = [
        lambda: plot.plot_history({"loss": [1.0]}, tmp_path / "h.png"),
        lambda: plot.plot_decision_boundary(nn.Linear(2, 1), X, y, tmp_path / "d.png"),
        lambda: plot.plot_first_layer_weights(np.zeros((4, 784)), tmp_path / "w.png"),
        lambda: plot.plot_descent_paths(lambda a, b: a * b, {"p": [(0, 0)]}, tmp_path / "p.png"),
    ]
    for call in calls:
        with pytest.raises(ImportError, match=r"plots need the plot extra: pip install chainrule\[plot\]"):
            call()
    assert not os.listdir(tmp_path)


def test_importing_chainrule_does_not_need_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import chainrule, chainrule.plot, chainrule.demos\n"
            "assert 'matplotlib.figure' not in sys.modules\n"
            "try:\n"
            "    chainrule.plot.plot_history({'loss': [1.0]})\n"
            "except ImportError as e:\n"
            "    print(e)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [
        os.path.join(os.path.dirname(__file__), "..", "src"), os.environ.get("PYTHONPATH")])))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "plots need the plot extra: pip install chainrule[plot]"
