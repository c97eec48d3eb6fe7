"""The lectures' worked examples, reproduced with chainrule: each prints its numbers and draws its figures.

>>> from chainrule import demos
>>> sorted(demos.DEMOS)                                                   # doctest: +NORMALIZE_WHITESPACE
['and-gate', 'deep-linear', 'gradient-descent', 'linear-autoencoder', 'mnist-mlp', 'saddle-point',
 'sigmoid-gate', 'universal-approximation', 'xor']
>>> import tempfile
>>> r = demos.run("sigmoid-gate", out_dir=tempfile.mkdtemp(), quiet=True)
>>> round(r["output"], 2), round(r["dw0"], 2), round(r["dx0"], 2)
(0.73, -0.2, 0.39)

``run(name, fast=False, out_dir='.', quiet=False)`` runs one demo and returns a dict of the numbers it
computed, plus ``'figures'``: the paths of the PNG files it wrote into ``out_dir`` (none when matplotlib
is missing: the demo then prints a one-line note and carries on).  ``fast=True`` shrinks every demo to a
few seconds (fewer steps, fewer samples); the numbers then are a little less converged.  Every demo seeds
chainrule's global generator itself (``seed=0``) and puts the caller's generator state back afterwards,
so a run gives the same numbers every time and leaves your random stream alone.

=========================== ===================================================================
demo                        what it shows
=========================== ===================================================================
``sigmoid-gate``            backprop through a sigmoid neuron gate by gate (upstream x local)
``gradient-descent``        gradient descent on a 3-variable quadratic; the Hessian test
``and-gate``                one sigmoid neuron with hand-set weights computes AND / OR
``xor``                     a linear model cannot learn XOR; one hidden layer can
``universal-approximation`` one hidden layer fits sin(x) better and better as it widens
``linear-autoencoder``      a linear autoencoder trained by gradient descent reaches the SVD optimum
``deep-linear``             closed-form gradients of a two-layer linear network = autograd's
``saddle-point``            gradient descent stuck on a saddle's ridge; a nudge (and momentum) escape
``mnist-mlp``               a multilayer perceptron trained on MNIST with ``chainrule.train.fit``
=========================== ===================================================================

The building blocks (``sigmoid_neuron``, ``lecture_quadratic``, ``gradient_descent``, ``logic_neuron``,
``linear_autoencoder``, ``eckart_young_loss``, ``deep_linear_gradients``, ...) are public, so the
scripts in ``examples/`` can use them one at a time.

A note on the lectures' formulas
--------------------------------
* The two-layer linear network y = B A x with L = 1/2 sum_i ||y_i - B A x_i||^2 has

      dL/dA = -B^T (S_yx - B A S_xx),      dL/dB = -(S_yx - B A S_xx) A^T,

  with S_xx = sum_i x_i x_i^T and S_yx = sum_i y_i x_i^T (output x input, shape k x d).  The slides write
  this matrix as "Sigma_xy" while defining it as sum y_i x_i^T; the formulas are right with that
  definition (with Sigma_xy = sum x_i y_i^T one would need its transpose).  Two intermediate lines of the
  slides' derivation are off: d(x^T A^T B^T y)/dA is B^T y x^T (the slide's "x y^T B" has the shape of
  A^T), and d(x^T A^T B^T B A x)/dA = 2 B^T B A x x^T (not "2 B B^T A x x^T", which does not even
  multiply when k != m).  The final results above are correct; ``deep-linear`` checks them against
  autograd to 1e-10.
* The lecture's quadratic f(x) = x1^2 + x1 (1 - x2) + x2^2 - x2 x3 + x3^2 + x3 has its minimum at
  (-1, -1, -1) with f = -1 (not -1.5): at the minimum f = b . x* / 2 with b = (1, 0, 1).
"""

from __future__ import annotations

import math
import os
import time
from typing import Callable, Protocol

import numpy as np

__all__ = [
    "DEMOS", "run",
    "sigmoid_neuron", "lecture_quadratic", "gradient_descent", "logic_neuron", "truth_table",
    "best_linear_accuracy", "linear_autoencoder", "eckart_young_loss", "deep_linear_gradients",
    "saddle", "mnist_subset",
]


class _Demo(Protocol):
    """A registered demo: a function ``demo(ctx) -> dict`` tagged by ``@_demo`` with its name and summary."""

    demo_name: str
    summary: str

    def __call__(self, ctx: _Context) -> dict: ...


DEMOS: dict[str, _Demo] = {}


def _demo(name: str, summary: str):
    def register(fn):
        fn.demo_name = name
        fn.summary = summary
        DEMOS[name] = fn
        return fn
    return register


class _Context:
    """What a demo gets: the options, a ``say`` that honours ``quiet``, and a figure writer."""

    def __init__(self, fast: bool, out_dir, quiet: bool):
        self.fast = bool(fast)
        self.out_dir = os.fspath(out_dir)
        self.quiet = bool(quiet)
        self.figures: list[str] = []
        self._noted = False

    def say(self, *lines) -> None:
        if not self.quiet:
            for line in lines:
                print(line)

    def figure(self, filename: str, draw: Callable) -> str | None:
        """Call ``draw(path)`` to write ``out_dir/filename``; skip with a note if matplotlib is missing."""
        from .plot import MISSING_MATPLOTLIB

        path = os.path.join(self.out_dir, filename)
        try:
            draw(path)
        except ImportError as e:
            if str(e) != MISSING_MATPLOTLIB:  # only a missing matplotlib is skipped; other errors surface
                raise
            if not self._noted:
                self.say(f"(figures skipped: {e})")
                self._noted = True
            return None
        self.figures.append(path)
        self.say(f"figure: {path}")
        return path


def run(name: str, fast: bool = False, out_dir=".", quiet: bool = False, seed: int = 0) -> dict:
    """Run demo ``name`` (see ``DEMOS``) and return the numbers it computed.

    ``fast`` shrinks it to a few seconds; figures (PNG) go to ``out_dir``; ``quiet`` prints nothing.
    The result always has ``'name'``, ``'figures'`` (paths written) and ``'seconds'``.
    An unknown name raises ``ValueError`` listing the demos.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in DEMOS:
        raise ValueError(f"unknown demo {name!r}; available demos: {', '.join(sorted(DEMOS))}")
    from . import random as _random

    ctx = _Context(fast, out_dir, quiet)
    state = _random.get_rng_state()
    _random.manual_seed(seed)
    start = time.perf_counter()
    try:
        fn = DEMOS[key]
        ctx.say(f"== {key}: {fn.summary}{' (fast)' if fast else ''} ==")
        result = fn(ctx)
    finally:
        _random.set_rng_state(state)
    result["name"] = key
    result["figures"] = list(ctx.figures)
    result["seconds"] = time.perf_counter() - start
    return result


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


# ---------------------------------------------------------------------------------------------------
# sigmoid-gate
# ---------------------------------------------------------------------------------------------------
SIGMOID_NEURON = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}


def sigmoid_neuron(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0):
    """The lecture's neuron f = 1 / (1 + exp(-(w0 x0 + w1 x1 + w2))) built from elementary gates.

    Returns ``(f, leaves)``: the output ``Value`` and a dict of the five input ``Value`` objects.
    The gates, from input to output: '*', '*', '+', '+', '*-1', 'exp', '+1', '1/x'.
    """
    from .scalar import Value

    leaves = {k: Value(v, label=k) for k, v in zip(SIGMOID_NEURON, (w0, x0, w1, x1, w2), strict=True)}
    z = leaves["w0"] * leaves["x0"] + leaves["w1"] * leaves["x1"] + leaves["w2"]
    f = z.scale(-1).exp().add_const(1).reciprocal()
    return f, leaves


@_demo("sigmoid-gate", "backprop through a sigmoid neuron, gate by gate")
def _sigmoid_gate(ctx: _Context) -> dict:
    import chainrule as cr

    from .explain import explain

    f, leaves = sigmoid_neuron(**SIGMOID_NEURON)
    ctx.say("f(w, x) = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))  at  "
            + ", ".join(f"{k} = {v:g}" for k, v in SIGMOID_NEURON.items()),
            "Backward pass on the scalar Value graph (downstream = upstream x local):")
    table = explain(f, print_table=not ctx.quiet)
    gate = {r.op: r for r in table}
    inv, plus1, ex = gate["1/x"], gate["+1"], gate["exp"]
    grads = dict(table.grads)
    s = f.data
    ctx.say(f"check: the whole sigmoid is one gate with local gradient f (1 - f) = {s * (1 - s):.2f}, "
            f"and dw0 = f (1 - f) x0 = {s * (1 - s) * SIGMOID_NEURON['x0']:.2f}")

    # the same neuron with 0-d float64 Tensors: the Tensor engine records the same gates
    t = {k: cr.tensor(v, dtype=cr.float64, requires_grad=True) for k, v in SIGMOID_NEURON.items()}
    ft = 1 / (1 + cr.exp(-(t["w0"] * t["x0"] + t["w1"] * t["x1"] + t["w2"])))
    ctx.say("The same neuron with chainrule Tensors:")
    tensor_table = explain(ft, print_table=not ctx.quiet, names=t)
    tensor_grads = {k: float(v) for k, v in tensor_table.grads.items()}
    diff = max(abs(grads[k] - tensor_grads[k]) for k in grads)
    ctx.say(f"Value and Tensor gradients agree: max |difference| = {diff:.1e}")

    dot_file = os.path.join(ctx.out_dir, "sigmoid_gate.dot")
    dot_path: str | None = dot_file  # None when the file could not be written
    try:
        from .serialization import atomic_open
        from .viz import to_dot

        os.makedirs(ctx.out_dir, exist_ok=True)
        with atomic_open(dot_file, "w") as fh:
            fh.write(to_dot(f, precision=2))
        ctx.say(f"graph (Graphviz DOT): {dot_file}")
    except OSError as e:  # a read-only out_dir must not break the demo
        ctx.say(f"(graph not written: {e})")
        dot_path = None

    return {
        "output": s,
        "inv_upstream": inv.upstream, "inv_local": inv.local[0], "inv_downstream": inv.downstream[0],
        "plus1_upstream": plus1.upstream, "plus1_local": plus1.local[0],
        "plus1_downstream": plus1.downstream[0],
        "exp_upstream": ex.upstream, "exp_local": ex.local[0], "exp_downstream": ex.downstream[0],
        **{"d" + k: v for k, v in grads.items()},
        "tensor_grads": tensor_grads,
        "max_abs_diff_value_vs_tensor": diff,
        "dot": dot_path,
    }


# ---------------------------------------------------------------------------------------------------
# gradient-descent
# ---------------------------------------------------------------------------------------------------
def lecture_quadratic(x):
    """f(x) = x1^2 + x1 (1 - x2) + x2^2 - x2 x3 + x3^2 + x3 for a 3-vector (Tensor or array).

    Gradient (2 x1 + 1 - x2, -x1 + 2 x2 - x3, -x2 + 2 x3 + 1); minimum at (-1, -1, -1) with f = -1.
    """
    x1, x2, x3 = x[0], x[1], x[2]
    return x1 * x1 + x1 * (1 - x2) + x2 * x2 - x2 * x3 + x3 * x3 + x3


def gradient_descent(f, x0, lr: float = 0.1, eps_f: float = 1e-10, eps_grad: float = 1e-6,
                     max_steps: int = 10_000) -> dict:
    """Minimise ``f`` (Tensor -> scalar Tensor) by x_{k+1} = x_k - lr grad f(x_k), gradients by autograd.

    Stops at the first of the lecture's two convergence tests: |f(x_k) - f(x_{k-1})| < ``eps_f``, or
    ||grad f(x_k)|| < ``eps_grad`` (or after ``max_steps``).  Works in float64.  Returns a dict with
    ``x`` (final point), ``f``, ``grad_norm``, ``steps``, ``reason`` ('|f_k - f_k-1| < eps',
    '||grad f|| < eps' or 'max_steps'), and the whole ``path`` (steps + 1, n) and ``values``.
    """
    import chainrule as cr

    x = np.array(x0, dtype=np.float64)

    def value_and_grad(x):
        xt = cr.tensor(x, dtype=cr.float64, requires_grad=True)
        y = f(xt)
        y.backward()
        return float(y.item()), xt.grad.numpy().copy()

    fx, g = value_and_grad(x)
    path, values = [x.copy()], [fx]
    reason, steps = "max_steps", 0
    if np.linalg.norm(g) < eps_grad:
        reason = "||grad f|| < eps"
    else:
        for steps in range(1, max_steps + 1):  # noqa: B007  (steps is the count returned)
            x = x - lr * g
            f_prev = fx
            fx, g = value_and_grad(x)
            path.append(x.copy())
            values.append(fx)
            if abs(fx - f_prev) < eps_f:
                reason = "|f_k - f_k-1| < eps"
                break
            if np.linalg.norm(g) < eps_grad:
                reason = "||grad f|| < eps"
                break
    return {"x": x, "f": fx, "grad_norm": float(np.linalg.norm(g)), "steps": steps, "reason": reason,
            "path": np.array(path), "values": np.array(values)}


@_demo("gradient-descent", "gradient descent on the lecture's quadratic, then the Hessian test")
def _gradient_descent(ctx: _Context) -> dict:
    from .func import classify_critical_point, hessian

    lr, eps_f, eps_grad = 0.1, 1e-10, 1e-6
    ctx.say("f(x) = x1^2 + x1(1 - x2) + x2^2 - x2 x3 + x3^2 + x3",
            f"x_(k+1) = x_k - {lr} * grad f(x_k) from x_0 = (0, 0, 0); "
            f"stop when |f_k - f_(k-1)| < {eps_f:g} or ||grad f(x_k)|| < {eps_grad:g}")
    res = gradient_descent(lecture_quadratic, [0.0, 0.0, 0.0], lr=lr, eps_f=eps_f, eps_grad=eps_grad)
    p, v = res["path"], res["values"]
    for k in (0, 1, 2, 10, 50):
        if k < len(p) - 1:
            ctx.say(f"  k = {k:3d}: x = ({p[k][0]:+.4f}, {p[k][1]:+.4f}, {p[k][2]:+.4f})  f = {v[k]:+.6f}")
    x = res["x"]
    ctx.say(f"  k = {res['steps']:3d}: x = ({x[0]:+.4f}, {x[1]:+.4f}, {x[2]:+.4f})  f = {res['f']:+.6f}",
            f"stopped after {res['steps']} steps: {res['reason']} fired "
            f"(||grad f|| = {res['grad_norm']:.1e})")
    x_star = np.array([-1.0, -1.0, -1.0])
    f_star = float(lecture_quadratic(x_star))
    err = float(np.abs(x - x_star).max())
    ctx.say(f"exact minimiser (-1, -1, -1): max |x - x*| = {err:.1e}; f(-1, -1, -1) = {f_star:g} "
            "(1 - 2 + 1 - 1 + 1 - 1)")

    H = hessian(lecture_quadratic, x).numpy()
    kind = classify_critical_point(H)
    eig = np.sort(np.linalg.eigvalsh(H))[::-1]
    ctx.say("Hessian (chainrule.func.hessian, double backward):",
            *("  [" + ", ".join(f"{h:+.0f}" for h in row) + "]" for row in H),
            f"eigenvalues {eig[0]:.3f}, {eig[1]:.3f}, {eig[2]:.3f}  (2 + sqrt 2, 2, 2 - sqrt 2): "
            f"all positive -> {kind}")
    return {"x": x.tolist(), "f": res["f"], "f_at_minimum": f_star, "steps": res["steps"],
            "reason": res["reason"], "grad_norm": res["grad_norm"], "max_abs_error": err,
            "hessian": H.tolist(), "eigenvalues": eig.tolist(), "kind": str(kind)}


# ---------------------------------------------------------------------------------------------------
# and-gate
# ---------------------------------------------------------------------------------------------------
def logic_neuron(w1: float, w2: float, b: float):
    """x -> sigmoid(b + w1 x1 + w2 x2) for an (N, 2) Tensor x: one neuron with hand-set weights."""
    import chainrule as cr

    w = cr.tensor([[w1], [w2]], dtype=cr.float64)

    def neuron(x):
        x = x if isinstance(x, cr.Tensor) else cr.tensor(np.asarray(x, dtype=np.float64))
        return cr.sigmoid(x.double() @ w + b)

    return neuron


def truth_table(neuron) -> list:
    """The neuron's outputs at (0,0), (0,1), (1,0), (1,1), as floats."""
    import chainrule as cr

    corners = cr.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=cr.float64)
    return [float(v) for v in neuron(corners).numpy().reshape(-1)]


@_demo("and-gate", "one sigmoid neuron computes AND (and OR)")
def _and_gate(ctx: _Context) -> dict:
    gates = {"AND": (logic_neuron(20, 20, -30), [0, 0, 0, 1], -30),
             "OR": (logic_neuron(20, 20, -10), [0, 1, 1, 1], -10)}
    out: dict[str, object] = {}
    for name, (neuron, truth, b) in gates.items():
        values = truth_table(neuron)
        ctx.say(f"{name}: sigmoid({b} + 20 x1 + 20 x2)")
        corners, z_values = [(0, 0), (0, 1), (1, 0), (1, 1)], [b, b + 20, b + 20, b + 40]
        for (x1, x2), z, v, t in zip(corners, z_values, values, truth, strict=True):
            ctx.say(f"  x = ({x1}, {x2}): sigmoid({z:+d}) = {v:.5g}   ~ {round(v)}  (truth {t})")
        ok = [round(v) for v in values] == truth
        ctx.say(f"  rounds to the {name} truth table: {ok}")
        out[name.lower()] = values
        out[name.lower() + "_correct"] = ok

    from . import plot

    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)

    def draw(path):
        fig, axes = plot._new_figure(1, 2, width=9.6, height=4.0)
        for ax, (name, (neuron, truth, b)) in zip(axes, gates.items(), strict=True):
            plot.plot_decision_boundary(neuron, X, np.array(truth), ax=ax, xlim=(-0.05, 1.05),
                                        ylim=(-0.05, 1.05), output="prob",
                                        title=f"{name}: sigmoid({b} + 20 x1 + 20 x2)")
        plot.save_figure(fig, path)

    ctx.figure("and_gate.png", draw)
    return out


# ---------------------------------------------------------------------------------------------------
# xor
# ---------------------------------------------------------------------------------------------------
def best_linear_accuracy(X, y, n_lines: int = 20_000, seed: int = 0) -> float:
    """The best accuracy of ``n_lines`` random linear classifiers sign(w . x + b) on (X, y)."""
    rng = np.random.default_rng(seed)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).reshape(-1)
    W = rng.standard_normal((2, n_lines))
    b = rng.standard_normal(n_lines) * 2
    pred = (X @ W + b) > 0
    acc = (pred == y[:, None].astype(bool)).mean(axis=0)
    return float(max(acc.max(), (1 - acc).max()))  # a line and its flip


def _train_binary(model, X, y, steps: int, lr: float):
    """Full-batch Adam on BCE; returns the accuracy after every step and the final loss."""
    from . import nn, optim

    loss_fn = nn.BCELoss()
    opt = optim.Adam(model.parameters(), lr=lr)
    target = y.float().reshape(-1, 1)
    accs = []
    loss = None
    for _ in range(steps):
        opt.zero_grad()
        p = model(X)
        loss = loss_fn(p, target)
        loss.backward()
        opt.step()
        accs.append(float(((p.data > 0.5) == (target.data > 0.5)).mean()))
    p = model(X).data
    accs.append(float(((p > 0.5) == (target.data > 0.5)).mean()))
    assert loss is not None  # every caller trains for steps >= 1
    return accs, float(loss.item())


@_demo("xor", "a linear model cannot learn XOR; one hidden layer can")
def _xor(ctx: _Context) -> dict:
    from . import nn
    from .data import toy

    X, y = toy.xor()
    steps = 300 if ctx.fast else 1000
    ctx.say("XOR truth table: (0,0) -> 0, (0,1) -> 1, (1,0) -> 1, (1,1) -> 0")

    linear = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    lin_accs, lin_loss = _train_binary(linear, X, y, steps, lr=0.1)
    lines = best_linear_accuracy(X.numpy(), y.numpy())
    ctx.say(f"logistic regression sigmoid(w . x + b), {steps} Adam steps on BCE: final accuracy "
            f"{_pct(lin_accs[-1])}, best during training {_pct(max(lin_accs))}, loss {lin_loss:.3f} "
            f"(ln 2 = {math.log(2):.3f}: it learns to answer 0.5 everywhere)",
            f"  the best of 20,000 random lines: {_pct(lines)} -- no line puts (0,1), (1,0) on one side "
            "and (0,0), (1,1) on the other")

    hidden = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1), nn.Sigmoid())
    hid_accs, hid_loss = _train_binary(hidden, X, y, steps, lr=0.1)
    first = next((k for k, a in enumerate(hid_accs) if a == 1.0), None)
    probs = [float(v) for v in hidden(X).data.reshape(-1)]
    ctx.say(f"2-4-1 tanh network, same training: accuracy {_pct(hid_accs[-1])} (100 % from step {first}), "
            f"loss {hid_loss:.4f}",
            "  outputs at the four corners: " + ", ".join(f"{v:.3f}" for v in probs))

    from . import plot

    def draw(path):
        fig, axes = plot._new_figure(1, 2, width=10.0, height=4.2)
        plot.plot_decision_boundary(linear, X, y, ax=axes[0], output="prob",
                                    title=f"linear: {_pct(lin_accs[-1])}")
        plot.plot_decision_boundary(hidden, X, y, ax=axes[1], output="prob",
                                    title=f"one hidden layer (2-4-1 tanh): {_pct(hid_accs[-1])}")
        plot.save_figure(fig, path)

    ctx.figure("xor_boundary.png", draw)
    return {"linear_accuracy": lin_accs[-1], "linear_best_accuracy": max(lin_accs),
            "best_line_accuracy": lines, "linear_loss": lin_loss,
            "hidden_accuracy": hid_accs[-1], "hidden_loss": hid_loss, "hidden_outputs": probs,
            "steps": steps}


# ---------------------------------------------------------------------------------------------------
# universal-approximation
# ---------------------------------------------------------------------------------------------------
@_demo("universal-approximation", "one hidden layer fits sin(x) better as it gets wider")
def _universal(ctx: _Context) -> dict:
    import chainrule as cr

    from . import nn, optim

    widths = (1, 2, 4, 16) if ctx.fast else (1, 2, 4, 8, 16, 32)
    steps = 500 if ctx.fast else 3000
    n = 100 if ctx.fast else 200
    x = np.linspace(-math.pi, math.pi, n, dtype=np.float32).reshape(-1, 1)
    X, Y = cr.tensor(x), cr.tensor(np.sin(x))
    ctx.say(f"target sin(x) on [-pi, pi] ({n} points); model: Linear(1, width) -> tanh -> Linear(width, 1), "
            f"{steps} full-batch Adam steps on the mean squared error")
    errors, fits = [], {}
    loss_fn = nn.MSELoss()
    for width in widths:
        model = nn.Sequential(nn.Linear(1, width), nn.Tanh(), nn.Linear(width, 1))
        opt = optim.Adam(model.parameters(), lr=0.02)
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for _ in range(steps):
            opt.zero_grad()
            loss = loss_fn(model(X), Y)
            loss.backward()
            opt.step()
            sched.step()
        with cr.no_grad():
            pred = model(X)
            mse = float(loss_fn(pred, Y).item())
        errors.append(mse)
        fits[width] = pred.numpy().reshape(-1)
        ctx.say(f"  width {width:3d}: mean squared error {mse:.2e}")
    ctx.say(f"error falls from {errors[0]:.2e} (width {widths[0]}) to {errors[-1]:.2e} "
            f"(width {widths[-1]}), {errors[0] / errors[-1]:.0f} times smaller")
    if any(later > earlier for earlier, later in zip(errors[:-1], errors[1:], strict=True)):
        ctx.say("(not every step down is monotone: once the error is tiny, what is left depends on the "
                "optimiser and float32 rounding more than on the width)")

    from . import plot

    def draw(path):
        fig, ax = plot._new_figure(1, 1, width=6.4, height=4.4)
        ax.plot(x[:, 0], np.sin(x[:, 0]), "k-", lw=3, alpha=0.35, label="sin(x)")
        for width, err in zip(widths, errors, strict=True):
            ax.plot(x[:, 0], fits[width], lw=1.4, label=f"width {width} (mse {err:.1e})")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_title("one hidden tanh layer of growing width")
        ax.legend(fontsize=8)
        plot.save_figure(fig, path)

    ctx.figure("universal_approximation.png", draw)
    return {"widths": list(widths), "errors": errors, "steps": steps}


# ---------------------------------------------------------------------------------------------------
# linear-autoencoder
# ---------------------------------------------------------------------------------------------------
def mnist_subset(n: int, train: bool = True, downsample: int = 1) -> tuple:
    """The first ``n`` MNIST images as a float64 (n, d) array in [0, 1] and their labels.

    ``downsample=2`` averages 2 x 2 pixel blocks (14 x 14 images, d = 196).
    """
    from .data import MNIST

    ds = MNIST(train=train)
    imgs = ds.data.numpy()[:n].astype(np.float64) / 255.0
    if downsample > 1:
        s = 28 // downsample
        imgs = imgs[:, : s * downsample, : s * downsample].reshape(len(imgs), s, downsample, s, downsample)
        imgs = imgs.mean(axis=(2, 4))
    return imgs.reshape(len(imgs), -1), ds.targets.numpy()[:n].copy()


def eckart_young_loss(X, m: int) -> float:
    """The smallest possible value of L = 1/(2n) sum_i ||x_i - D C x_i||^2 with rank(DC) <= m.

    By the Eckart-Young theorem the best rank-m reconstruction of the (n, d) data is its truncated
    SVD, so L* = 1/(2n) sum_{k > m} sigma_k^2 (half the mean squared norm of what is left out).
    """
    X = np.asarray(X, dtype=np.float64)
    s = np.linalg.svd(X, compute_uv=False)
    return float(0.5 * np.sum(s[m:] ** 2) / len(X))


def linear_autoencoder(X, m: int, steps: int, lr: float | None = None, seed: int = 0, dtype=np.float32,
                       callback=None) -> dict:
    """Train x -> C x -> D C x (no bias) by plain gradient descent with chainrule's autograd.

    ``X`` is (n, d), one sample per row (so the codes are X C^T and the reconstructions X C^T D^T).
    Loss: L = 1/(2n) sum_i ||x_i - D C x_i||^2 = 1/(2n) ||X - X C^T D^T||_F^2, the mean (over samples)
    of the lecture's per-sample loss 1/2 ||x - D C x||^2.  C (m, d) and D (d, m) start small and random.
    ``lr`` defaults to 0.75 / lambda_1, lambda_1 = sigma_1^2 / n the largest variance of the data: the
    curvature of L is about lambda_1, so this step is stable whatever the scale of the data.
    Returns a dict with ``C``, ``D`` (ndarrays), ``losses`` (one per step, before the update) and ``lr``.
    """
    import chainrule as cr

    X = np.asarray(X)
    n, d = X.shape
    if lr is None:
        lam1 = float(np.linalg.norm(X.astype(np.float64), 2) ** 2 / n)
        lr = 0.75 / lam1
    rng = np.random.default_rng(seed)
    C = cr.tensor(rng.normal(0.0, 0.01, (m, d)).astype(dtype), requires_grad=True)
    D = cr.tensor(rng.normal(0.0, 0.01, (d, m)).astype(dtype), requires_grad=True)
    Xt = cr.tensor(X.astype(dtype))
    losses = []
    for k in range(steps):
        R = Xt - (Xt @ C.T) @ D.T               # residuals x - D C x, one row per sample
        loss = (R * R).sum() * (0.5 / n)
        C.grad = D.grad = None
        loss.backward()                          # dL/dC = D^T (y - x) x^T, dL/dD = (y - x) x^T C^T (means)
        assert C.grad is not None and D.grad is not None  # backward() just filled them
        with cr.no_grad():
            C -= lr * C.grad
            D -= lr * D.grad
        losses.append(float(loss.item()))
        if callback is not None:
            callback(k, losses[-1])
    with cr.no_grad():
        R = Xt - (Xt @ C.T) @ D.T
        losses.append(float(((R * R).sum() * (0.5 / n)).item()))
    return {"C": C.detach().numpy().astype(np.float64), "D": D.detach().numpy().astype(np.float64),
            "losses": losses, "lr": lr}


@_demo("linear-autoencoder", "a linear autoencoder trained by gradient descent reaches the SVD optimum")
def _linear_autoencoder(ctx: _Context) -> dict:
    if ctx.fast:
        n, down, m, steps, bound = 500, 2, 10, 120, 0.05
    else:
        n, down, m, steps, bound = 2000, 1, 10, 250, 0.01
    X, _ = mnist_subset(n, downsample=down)
    mean = X.mean(axis=0)
    X = X - mean                                     # centred: the SVD then gives the principal components
    d = X.shape[1]
    ctx.say(f"{n} MNIST digits{' (14 x 14)' if down > 1 else ''}, pixels in [0, 1], centred: d = {d}, "
            f"bottleneck m = {m}",
            "loss L = 1/(2n) sum_i ||x_i - D C x_i||^2 (the mean over samples of 1/2 ||x - DCx||^2)")
    U, s, _ = np.linalg.svd(X.T, full_matrices=False)
    optimum = float(0.5 * np.sum(s[m:] ** 2) / n)
    total = float(0.5 * np.sum(s ** 2) / n)
    res = linear_autoencoder(X, m, steps)
    losses = res["losses"]
    for k in sorted({0, steps // 4, steps // 2, steps}):
        ctx.say(f"  step {k:4d}: L = {losses[k]:.4f}")
    final = losses[-1]
    gap = final - optimum
    rel = gap / optimum
    ctx.say(f"gradient descent ({steps} steps, lr = {res['lr']:.3f}): L = {final:.4f}",
            f"Eckart-Young optimum 1/(2n) sum_(k>{m}) sigma_k^2 = {optimum:.4f}  "
            f"(L at C = D = 0 would be {total:.4f})",
            f"gap {gap:.2e}, relative {rel:.2e} ({'within' if rel < bound else 'OUTSIDE'} the "
            f"{bound:.0%} bound)")
    P = res["D"] @ res["C"]
    Um = U[:, :m]
    proj_dist = float(np.linalg.norm(P - Um @ Um.T))
    var = s ** 2 / n
    ctx.say(f"D C vs the projector U_m U_m^T onto the top-{m} principal subspace: "
            f"||D C - U_m U_m^T||_F = {proj_dist:.3f} (of ||U_m U_m^T||_F = {math.sqrt(m):.3f});",
            f"  it shrinks slowly because the variances around the cut are close "
            f"(lambda_{m} = {var[m - 1]:.3f}, lambda_{m + 1} = {var[m]:.3f}), while the loss barely "
            "depends on that last rotation")

    from . import plot

    side = int(round(math.sqrt(d)))

    def draw(path):
        fig, axes = plot._new_figure(2, 6, width=9.0, height=3.4)
        for j in range(6):
            for i, img in enumerate((X[j], (X[j] @ res["C"].T) @ res["D"].T)):
                ax = axes[i, j]
                ax.imshow((img + mean).reshape(side, side), cmap="gray_r", vmin=0, vmax=1)
                ax.set_axis_off()
        axes[0, 0].set_title("input", fontsize=9, loc="left")
        axes[1, 0].set_title(f"D C x (m = {m})", fontsize=9, loc="left")
        plot.save_figure(fig, path)

    def draw_loss(path):
        fig, ax = plot._new_figure(1, 1, width=5.6, height=3.8)
        ax.semilogy(np.arange(len(losses)), np.array(losses) - optimum + 1e-12, label="L - L*")
        ax.set_xlabel("gradient-descent step")
        ax.set_ylabel("L - L* (Eckart-Young)")
        ax.grid(alpha=0.3)
        ax.legend()
        plot.save_figure(fig, path)

    ctx.figure("linear_autoencoder.png", draw)
    ctx.figure("linear_autoencoder_loss.png", draw_loss)
    return {"n": n, "d": d, "m": m, "steps": steps, "loss": final, "optimum": optimum, "gap": gap,
            "relative_gap": rel, "bound": bound, "projector_distance": proj_dist, "losses": losses}


# ---------------------------------------------------------------------------------------------------
# deep-linear
# ---------------------------------------------------------------------------------------------------
def deep_linear_gradients(X, Y, A, B) -> tuple:
    """Closed-form gradients of L = 1/2 sum_i ||y_i - B A x_i||^2 (samples are the rows of X and Y).

    With S_xx = sum_i x_i x_i^T (d x d) and S_yx = sum_i y_i x_i^T (k x d):
    dL/dA = -B^T (S_yx - B A S_xx) and dL/dB = -(S_yx - B A S_xx) A^T.  Returns (dL/dA, dL/dB).
    """
    X, Y, A, B = (np.asarray(v, dtype=np.float64) for v in (X, Y, A, B))
    Sxx = X.T @ X
    Syx = Y.T @ X
    E = Syx - B @ A @ Sxx
    return -B.T @ E, -E @ A.T


@_demo("deep-linear", "closed-form gradients of a two-layer linear network = autograd's")
def _deep_linear(ctx: _Context) -> dict:
    import chainrule as cr

    rng = np.random.default_rng(0)
    n, d, m, k = 50, 6, 3, 4
    X, Y = rng.standard_normal((n, d)), rng.standard_normal((n, k))
    A0, B0 = rng.standard_normal((m, d)), rng.standard_normal((k, m))
    ctx.say(f"y = B A x with x in R^{d}, A ({m} x {d}), B ({k} x {m}); n = {n} random samples, float64",
            "L = 1/2 sum_i ||y_i - B A x_i||^2,  S_xx = sum_i x_i x_i^T,  S_yx = sum_i y_i x_i^T",
            "closed form: dL/dA = -B^T (S_yx - B A S_xx),  dL/dB = -(S_yx - B A S_xx) A^T")
    gA, gB = deep_linear_gradients(X, Y, A0, B0)
    A = cr.tensor(A0, requires_grad=True)
    B = cr.tensor(B0, requires_grad=True)
    R = cr.tensor(Y) - cr.tensor(X) @ A.T @ B.T          # rows: (y_i - B A x_i)^T
    loss = 0.5 * (R * R).sum()
    loss.backward()
    assert A.grad is not None and B.grad is not None  # backward() just filled them
    diff_A = float(np.abs(A.grad.numpy() - gA).max())
    diff_B = float(np.abs(B.grad.numpy() - gB).max())
    ctx.say(f"autograd vs closed form: max |difference| {diff_A:.1e} for A, {diff_B:.1e} for B "
            f"(gradients of size ~{np.abs(gA).max():.0f})")

    # the linear autoencoder is the special case y = x, A = C, B = D: the lecture's per-sample formulas
    x = X[0]
    C0, D0 = rng.standard_normal((m, d)), rng.standard_normal((d, m))
    y = D0 @ C0 @ x
    dC, dD = D0.T @ np.outer(y - x, x), np.outer(y - x, x) @ C0.T
    C, D = cr.tensor(C0, requires_grad=True), cr.tensor(D0, requires_grad=True)
    r = cr.tensor(x) - D @ (C @ cr.tensor(x))
    (0.5 * (r * r).sum()).backward()
    assert C.grad is not None and D.grad is not None
    diff_ae = float(max(np.abs(C.grad.numpy() - dC).max(), np.abs(D.grad.numpy() - dD).max()))
    ctx.say("autoencoder (y = D C x, one sample): dl/dC = D^T (y - x) x^T, dl/dD = (y - x) x^T C^T: "
            f"max |difference| {diff_ae:.1e}",
            "note: the slides call sum y_i x_i^T 'Sigma_xy'; as an output x input matrix it is S_yx here")
    return {"max_abs_diff_A": diff_A, "max_abs_diff_B": diff_B, "max_abs_diff": max(diff_A, diff_B),
            "max_abs_diff_autoencoder": diff_ae, "loss": float(loss.item())}


# ---------------------------------------------------------------------------------------------------
# saddle-point
# ---------------------------------------------------------------------------------------------------
def saddle(p):
    """f(x, y) = x^2 - y^2 for a 2-vector p (Tensor or array): a saddle at the origin."""
    return p[0] * p[0] - p[1] * p[1]


def _descend(start, steps: int, lr: float, momentum: float = 0.0, stop_at: float = 2.0) -> np.ndarray:
    """SGD (chainrule.optim) on the saddle from ``start``; stops early once |y| > stop_at."""
    import chainrule as cr

    from . import optim

    p = cr.tensor(np.array(start, dtype=np.float64), requires_grad=True)
    opt = optim.SGD([p], lr=lr, momentum=momentum)
    path = [p.detach().numpy().copy()]
    for _ in range(steps):
        opt.zero_grad()
        saddle(p).backward()
        opt.step()
        path.append(p.detach().numpy().copy())
        if abs(path[-1][1]) > stop_at:
            break
    return np.array(path)


@_demo("saddle-point", "gradient descent stuck on a saddle's ridge; a nudge and momentum escape")
def _saddle_point(ctx: _Context) -> dict:
    from .func import classify_critical_point, hessian

    steps, lr, nudge = (60 if ctx.fast else 100), 0.1, 1e-4
    ctx.say(f"f(x, y) = x^2 - y^2, gradient (2x, -2y); lr = {lr}, {steps} steps")
    stuck = _descend([1.0, 0.0], steps, lr)
    end = stuck[-1]
    grad_end = float(np.hypot(2 * end[0], 2 * end[1]))
    ctx.say(f"plain GD from (1, 0), on the ridge y = 0: x shrinks by (1 - 2 lr) = {1 - 2 * lr:g} each step, "
            f"y stays exactly 0",
            f"  after {len(stuck) - 1} steps: ({end[0]:.2e}, {end[1]:.1e}), ||grad f|| = {grad_end:.1e}: "
            "stuck at the saddle (0, 0)")
    nudged = _descend([1.0, nudge], steps, lr)
    mom = _descend([1.0, nudge], steps, lr, momentum=0.9)

    def escape_step(path):
        k = np.nonzero(np.abs(path[:, 1]) > 1.0)[0]
        return int(k[0]) if len(k) else None

    e_nudged, e_mom = escape_step(nudged), escape_step(mom)
    ctx.say(f"GD from (1, {nudge:g}): y grows by (1 + 2 lr) = {1 + 2 * lr:g} per step: "
            + (f"|y| > 1 after {e_nudged} steps" if e_nudged is not None else
               f"|y| = {abs(nudged[-1][1]):.2e} after {len(nudged) - 1} steps (escaping, slowly)"),
            "GD with momentum 0.9 from the same point: "
            + (f"|y| > 1 after {e_mom} steps" if e_mom is not None else
               f"|y| = {abs(mom[-1][1]):.2e} after {len(mom) - 1} steps"))
    H = hessian(saddle, np.zeros(2)).numpy()
    kind = classify_critical_point(H)
    eig = np.sort(np.linalg.eigvalsh(H))[::-1]
    ctx.say(f"Hessian at (0, 0): [[{H[0, 0]:+.0f}, {H[0, 1]:+.0f}], [{H[1, 0]:+.0f}, {H[1, 1]:+.0f}]], "
            f"eigenvalues {eig[0]:+.0f}, {eig[1]:+.0f}: one up, one down -> {kind}")

    from . import plot

    ctx.figure("saddle_point.png", lambda path: plot.plot_descent_paths(
        lambda x, y: x ** 2 - y ** 2,
        {"GD from (1, 0): stuck": stuck, f"GD from (1, {nudge:g})": nudged,
         f"momentum 0.9 from (1, {nudge:g})": mom},
        path=path, xlim=(-1.6, 1.6), ylim=(-1.6, 1.6), title="f(x, y) = x^2 - y^2"))
    return {"stuck_end": end.tolist(), "stuck_grad_norm": grad_end,
            "stuck_y_max": float(np.abs(stuck[:, 1]).max()),
            "nudged_end": nudged[-1].tolist(), "nudged_escape_step": e_nudged,
            "momentum_end": mom[-1].tolist(), "momentum_escape_step": e_mom,
            "hessian": H.tolist(), "eigenvalues": eig.tolist(), "kind": str(kind)}


# ---------------------------------------------------------------------------------------------------
# mnist-mlp
# ---------------------------------------------------------------------------------------------------
@_demo("mnist-mlp", "a multilayer perceptron on MNIST, trained with chainrule.train.fit")
def _mnist_mlp(ctx: _Context) -> dict:
    from . import nn, optim
    from .data import MNIST, DataLoader, Subset
    from .train import evaluate, fit

    train: MNIST | Subset = MNIST(train=True, flatten=True)
    test = MNIST(train=False, flatten=True)
    if ctx.fast:
        n_train, n_test, epochs = 20_000, len(test), 1
        train = Subset(train, range(n_train))
    else:
        n_train, n_test, epochs = len(train), len(test), 3
    loader = DataLoader(train, batch_size=64, shuffle=True)
    test_loader = DataLoader(test, batch_size=1000)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.Adam(model.parameters(), lr=2e-3)
    ctx.say(f"784-128-10 ReLU MLP, cross-entropy, Adam lr 2e-3, batch 64: {n_train} training images, "
            f"{epochs} epoch{'s' if epochs > 1 else ''}, {n_test} test images")
    history = fit(model, loss_fn, opt, loader, epochs=epochs, val_loader=test_loader,
                  verbose=0 if ctx.quiet else 2)
    result = evaluate(model, test_loader, loss_fn)
    acc = float(result["accuracy"])
    ctx.say(f"test accuracy {_pct(acc)}, test loss {result['loss']:.4f}")

    from . import plot

    ctx.figure("mnist_first_layer.png", lambda path: plot.plot_first_layer_weights(
        model, path=path, n=64, title="first-layer weights (red +, blue -)"))
    ctx.figure("mnist_history.png", lambda path: plot.plot_history(history, path=path, title="MNIST MLP"))
    hist = {k: list(v) for k, v in history.history.items()}
    return {"test_accuracy": acc, "test_loss": float(result["loss"]), "epochs": epochs,
            "n_train": n_train, "n_test": n_test, "history": hist}
