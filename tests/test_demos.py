"""The demos reproduce the lectures' numbers (run in fast mode, into a temporary folder)."""

from __future__ import annotations

import importlib.util
import math
import os
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import demos

HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_fast(name, tmp_path, **kw):
    return demos.run(name, fast=True, out_dir=tmp_path, quiet=True, **kw)


def check_figures(result, expected: int):
    """With matplotlib every promised figure is a real PNG file; without it there are none."""
    figs = result["figures"]
    if not HAVE_MPL:
        assert figs == []
        return
    assert len(figs) == expected
    for path in figs:
        assert path.endswith(".png")
        with open(path, "rb") as f:
            assert f.read(8) == PNG_MAGIC
        assert os.path.getsize(path) > 1000


def test_registry_lists_every_demo():
    assert sorted(demos.DEMOS) == sorted([
        "sigmoid-gate", "gradient-descent", "and-gate", "xor", "universal-approximation",
        "linear-autoencoder", "deep-linear", "saddle-point", "mnist-mlp",
    ])


def test_unknown_demo_lists_the_available_ones():
    with pytest.raises(ValueError, match="unknown demo 'nope'") as info:
        demos.run("nope")
    for name in demos.DEMOS:
        assert name in str(info.value)


def test_sigmoid_gate_reproduces_the_lecture_trace(tmp_path):
    r = run_fast("sigmoid-gate", tmp_path)
    rounded = {k: round(r[k], 2) for k in (
        "output", "inv_upstream", "inv_local", "inv_downstream", "plus1_local", "plus1_downstream",
        "exp_local", "exp_downstream", "dw0", "dx0", "dw1", "dx1", "dw2")}
    assert rounded == {
        "output": 0.73, "inv_upstream": 1.0, "inv_local": -0.53, "inv_downstream": -0.53,
        "plus1_local": 1.0, "plus1_downstream": -0.53, "exp_local": 0.37, "exp_downstream": -0.2,
        "dw0": -0.2, "dx0": 0.39, "dw1": -0.39, "dx1": -0.59, "dw2": 0.2,
    }
    s = 1 / (1 + math.exp(-1.0))                       # w0 x0 + w1 x1 + w2 = 1
    assert r["dw0"] == pytest.approx(-s * (1 - s))     # the sigmoid's own local gradient f (1 - f)
    assert r["max_abs_diff_value_vs_tensor"] < 1e-12   # Tensor engine: same gradients
    assert set(r["tensor_grads"]) == {"w0", "x0", "w1", "x1", "w2"}
    with open(r["dot"]) as f:
        assert f.read().startswith("digraph")


def test_gradient_descent_finds_the_minimum_and_the_hessian_confirms_it(tmp_path):
    r = run_fast("gradient-descent", tmp_path)
    assert np.allclose(r["x"], [-1, -1, -1], atol=1e-3)
    assert r["max_abs_error"] < 1e-3
    assert r["f_at_minimum"] == pytest.approx(-1.0)    # f(-1, -1, -1) = 1 - 2 + 1 - 1 + 1 - 1
    assert r["f"] == pytest.approx(-1.0, abs=1e-6)
    assert r["reason"] in ("|f_k - f_k-1| < eps", "||grad f|| < eps")
    assert 0 < r["steps"] < 10_000
    assert np.allclose(r["hessian"], [[2, -1, 0], [-1, 2, -1], [0, -1, 2]], atol=1e-12)
    assert np.allclose(r["eigenvalues"], [2 + math.sqrt(2), 2, 2 - math.sqrt(2)], atol=1e-3)
    assert r["kind"] == "minimum"


def test_gradient_descent_building_block_reports_its_stopping_rule():
    res = demos.gradient_descent(demos.lecture_quadratic, [-1.0, -1.0, -1.0])
    assert res["steps"] == 0 and res["reason"] == "||grad f|| < eps"      # already at the minimum
    res = demos.gradient_descent(demos.lecture_quadratic, [0.0, 0.0, 0.0], max_steps=5)
    assert res["steps"] == 5 and res["reason"] == "max_steps" and res["path"].shape == (6, 3)
    assert np.all(np.diff(res["values"]) < 0)                            # every step goes downhill


def test_and_gate_truth_table(tmp_path):
    r = run_fast("and-gate", tmp_path)
    assert r["and_correct"] and r["or_correct"]
    assert [round(v) for v in r["and"]] == [0, 0, 0, 1]
    assert [round(v) for v in r["or"]] == [0, 1, 1, 1]
    assert r["and"][0] == pytest.approx(9.357623e-14, rel=1e-5)          # sigmoid(-30)
    assert r["and"][1] == r["and"][2] == pytest.approx(4.5398e-5, rel=1e-4)  # sigmoid(-10)
    assert r["and"][3] == pytest.approx(0.9999546, rel=1e-6)             # sigmoid(10)
    check_figures(r, 1)


def test_xor_linear_fails_hidden_layer_succeeds(tmp_path):
    r = run_fast("xor", tmp_path)
    assert r["linear_accuracy"] <= 0.75
    assert r["linear_best_accuracy"] <= 0.75
    assert r["best_line_accuracy"] == 0.75
    assert r["hidden_accuracy"] == 1.0
    assert r["hidden_loss"] < 0.05
    check_figures(r, 1)


def test_universal_approximation_error_falls_with_width(tmp_path):
    r = run_fast("universal-approximation", tmp_path)
    errors = r["errors"]
    assert r["widths"][0] == 1 and len(errors) == len(r["widths"]) >= 3
    assert errors[-1] < errors[0] / 10
    assert min(errors[1:]) < errors[0]
    check_figures(r, 1)


def test_linear_autoencoder_reaches_the_eckart_young_optimum(tmp_path):
    r = run_fast("linear-autoencoder", tmp_path)
    assert r["loss"] >= r["optimum"] * (1 - 1e-4)     # nothing beats the truncated SVD (float32 slack)
    assert r["relative_gap"] < r["bound"] <= 0.05
    losses = r["losses"]
    assert losses[-1] < losses[0] / 2
    check_figures(r, 2)


def test_eckart_young_loss_is_half_the_discarded_energy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6)) @ np.diag([5, 4, 3, 0.5, 0.2, 0.1])
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    Xm = (U[:, :2] * s[:2]) @ Vt[:2]
    assert demos.eckart_young_loss(X, 2) == pytest.approx(0.5 * np.sum((X - Xm) ** 2) / 40)
    res = demos.linear_autoencoder(X, 2, steps=400, dtype=np.float64)
    assert res["losses"][-1] == pytest.approx(demos.eckart_young_loss(X, 2), rel=1e-3)


def test_deep_linear_closed_form_matches_autograd(tmp_path):
    r = run_fast("deep-linear", tmp_path)
    assert r["max_abs_diff"] < 1e-10
    assert r["max_abs_diff_autoencoder"] < 1e-10


def test_saddle_point_stuck_on_the_ridge_then_escapes(tmp_path):
    r = run_fast("saddle-point", tmp_path)
    assert r["stuck_y_max"] == 0.0                       # y never leaves the ridge
    assert np.hypot(*r["stuck_end"]) < 1e-4              # ... and x walks into the saddle
    assert r["stuck_grad_norm"] < 1e-4
    assert abs(r["momentum_end"][1]) > 1.0               # with a nudge and momentum it escapes
    assert r["momentum_escape_step"] is not None
    assert abs(r["nudged_end"][1]) > 1e-4 * 100          # a nudge alone already grows
    if r["nudged_escape_step"] is not None:
        assert r["momentum_escape_step"] < r["nudged_escape_step"]
    assert sorted(r["eigenvalues"]) == pytest.approx([-2.0, 2.0])
    assert r["kind"] == "saddle"
    check_figures(r, 1)


def test_mnist_mlp_trains_with_fit(tmp_path):
    r = run_fast("mnist-mlp", tmp_path)
    assert r["test_accuracy"] > 0.90
    assert len(r["history"]["loss"]) == r["epochs"] == 1
    check_figures(r, 2)


def test_run_is_quiet_reproducible_and_leaves_the_global_generator_alone(tmp_path, capsys):
    cr.manual_seed(123)
    before = cr.rand(3).tolist()
    cr.manual_seed(123)
    a = demos.run("xor", fast=True, out_dir=tmp_path, quiet=True)
    after = cr.rand(3).tolist()
    assert capsys.readouterr().out == ""
    assert after == before                              # the caller's random stream is untouched
    b = demos.run("XOR", fast=True, out_dir=tmp_path / "again", quiet=True)
    assert a["hidden_outputs"] == b["hidden_outputs"]   # seeded: the same numbers every run
    assert a["name"] == b["name"] == "xor"


def test_run_prints_its_numbers(tmp_path, capsys):
    demos.run("gradient_descent", fast=True, out_dir=tmp_path)   # underscores work too
    out = capsys.readouterr().out
    assert "gradient-descent" in out and "eigenvalues 3.414, 2.000, 0.586" in out
    assert "fired" in out and "minimum" in out


def test_demos_without_matplotlib_skip_figures_with_a_note(tmp_path, monkeypatch, capsys):
    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = demos.run("and-gate", fast=True, out_dir=tmp_path)
    out = capsys.readouterr().out
    assert r["figures"] == [] and r["and_correct"]
    assert "figures skipped" in out and "pip install chainrule[plot]" in out
    assert not list(tmp_path.glob("*.png"))
