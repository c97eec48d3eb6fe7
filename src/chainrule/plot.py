"""Pictures of training: learning curves, decision boundaries, first-layer weights, descent paths.

These need matplotlib (``pip install chainrule[plot]``).  chainrule itself never imports it: the
import happens when a plot function is called, and a missing matplotlib raises an ``ImportError``
that says how to install it.

Every function draws a fresh matplotlib ``Figure`` on the non-interactive Agg canvas (no window,
no ``pyplot`` global state, so nothing piles up in memory when you make hundreds of figures) and
returns it (in Jupyter it displays as a cell's value once the inline backend is on, e.g. after
``%matplotlib inline``).  ``path='curves.png'`` also writes it to disk *atomically*: the image
goes to a temporary file in the same folder that then replaces ``path`` in one step, so a crash
never leaves a half-written picture.  The format follows the suffix (``.png``, ``.svg``,
``.pdf``); a missing parent folder is created::

    from chainrule.plot import plot_descent_paths
    fig = plot_descent_paths(lambda x, y: x**2 - y**2,
                             {"GD": [(1.0, 0.0), (0.8, 0.0), (0.64, 0.0)]}, path="saddle.png")

=============================  ===============================================================
function                       draws
=============================  ===============================================================
``plot_history``               loss (and accuracy) per epoch, training and validation
``plot_decision_boundary``     a 2-D classifier's predicted probability / class over the plane
``plot_first_layer_weights``   the first Linear layer's rows as 28 x 28 images
``plot_descent_paths``         contours of a 2-D function with optimisation paths on top
``save_figure``                write any Figure atomically (what ``path=`` does)
=============================  ===============================================================
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = [
    "plot_history",
    "plot_decision_boundary",
    "plot_first_layer_weights",
    "plot_descent_paths",
    "save_figure",
    "MISSING_MATPLOTLIB",
]

MISSING_MATPLOTLIB = "plots need the plot extra: pip install chainrule[plot]"


def _figure_class():
    """matplotlib's ``Figure``, imported on first use; a clear ImportError when it is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as e:  # also when sys.modules['matplotlib'] is None
        raise ImportError(MISSING_MATPLOTLIB) from e
    return Figure


def _new_figure(nrows: int = 1, ncols: int = 1, *, width: float | None = None, height: float | None = None,
                squeeze: bool = True, **kwargs):
    """A Figure on the Agg canvas and its axes, like ``plt.subplots`` without pyplot's global state."""
    Figure = _figure_class()
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = Figure(figsize=(width or 4.6 * ncols, height or 3.8 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=squeeze, **kwargs)
    return fig, axes


def save_figure(fig, path) -> str:
    """Write ``fig`` to ``path`` atomically (temporary file + ``os.replace``); return the path.

    The format is the suffix of ``path`` (png when there is none).  Parent folders are created.
    """
    from .serialization import atomic_open

    target = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    fmt = os.path.splitext(target)[1].lstrip(".").lower() or "png"
    with atomic_open(target, "wb") as f:
        fig.savefig(f, format=fmt, dpi=fig.dpi if fmt == "png" else "figure")
    return target


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path)
    return fig


def _np(x) -> np.ndarray:
    """A Tensor, array, number or nested list (of Tensors) as a float64 ndarray (detached)."""
    from .autograd import Tensor

    if isinstance(x, Tensor):
        return np.asarray(x.data, dtype=np.float64)
    if isinstance(x, (list, tuple)) and any(isinstance(v, Tensor) for v in x):
        return np.asarray([_np(v) for v in x], dtype=np.float64)
    return np.asarray(x, dtype=np.float64)


# ---------------------------------------------------------------------------------------------------
# learning curves
# ---------------------------------------------------------------------------------------------------
_VAL_PREFIXES = ("val_", "test_", "valid_")


def _history_dict(history) -> dict:
    h = getattr(history, "history", history)
    if not isinstance(h, dict):
        raise TypeError(f"plot_history: expected a History (with .history) or a dict of per-epoch lists, "
                        f"got {type(history).__name__}")
    out = {}
    for k, vals in h.items():
        if not isinstance(vals, (list, tuple, np.ndarray)) or len(vals) == 0:
            continue
        try:  # an epoch that did not log a value has None there: a gap in the curve
            out[k] = [math.nan if v is None else float(v) for v in vals]
        except (TypeError, ValueError):
            continue  # not numbers (a note, a path, ...): nothing to plot
    return out


def plot_history(history, path=None, *, title: str | None = None):
    """Loss and accuracy per epoch, for training and validation.

    ``history`` is what ``chainrule.train.fit`` returns (its ``.history`` dict) or such a dict of
    per-epoch lists: ``'loss'``, ``'accuracy'``, and their validation twins ``'val_loss'``,
    ``'val_accuracy'`` (``test_`` prefixes work too).  One panel for the losses and, when there
    is an accuracy, one for the accuracies (in percent).  Returns the Figure.
    """
    h = _history_dict(history)
    panels = []
    for metric in ("loss", "accuracy"):
        keys = [k for k in [metric] + [p + metric for p in _VAL_PREFIXES] if k in h]
        if keys:
            panels.append((metric, keys))
    if not panels:
        raise ValueError(f"plot_history: no 'loss' or 'accuracy' entries to plot (keys: {sorted(h)})")
    fig, axes = _new_figure(1, len(panels), squeeze=False)
    for ax, (metric, keys) in zip(axes[0], panels, strict=True):
        for k in keys:
            vals = np.asarray(h[k]) * (100.0 if metric == "accuracy" else 1.0)
            epochs = np.arange(1, len(vals) + 1)
            split = "train" if k == metric else k[: -len(metric) - 1]
            ax.plot(epochs, vals, marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "loss")
        ax.set_title(metric)
        n = max(len(h[k]) for k in keys)
        ax.set_xticks(np.arange(1, n + 1) if n <= 12 else np.linspace(1, n, 7).round())
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------------
# decision boundary
# ---------------------------------------------------------------------------------------------------
def _predict_grid(model, grid: np.ndarray) -> np.ndarray:
    """The model's output on the (N, 2) grid as an (N, C) float64 array, without recording a graph."""
    from .autograd import Tensor
    from .autograd.function import no_grad

    dtype = np.float32
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            dtype = p.data.dtype
            break
    was_training = getattr(model, "training", None)
    if was_training and hasattr(model, "eval"):
        model.eval()
    try:
        with no_grad():
            out = model(Tensor._make(grid.astype(dtype)))
    finally:
        if was_training and hasattr(model, "train"):
            model.train()
    out = _np(out)
    return out.reshape(len(grid), -1)


def plot_decision_boundary(model, X, y, path=None, resolution: int = 200, *, output: str = "auto",
                           xlim=None, ylim=None, ax=None, title: str | None = None):
    """What a 2-D classifier predicts over the plane, with the data on top.

    ``model`` maps an (N, 2) Tensor to (N, 1) or (N,) scores for two classes, or (N, C) scores for
    C classes (a Module or any callable).  ``output`` says what a single score is: ``'prob'``
    (already a probability, e.g. after ``nn.Sigmoid``), ``'logit'`` (sigmoid is applied), or
    ``'auto'``: probabilities if every value on the grid lies in [0, 1], else logits.  Two classes
    are drawn as the probability of class 1 with the 0.5 contour (the decision boundary); C > 2
    classes as the arg-max class regions.

    ``X`` (N, 2) and labels ``y`` (N,) are drawn as points; the grid spans them with a margin
    unless ``xlim`` / ``ylim`` are given.  ``resolution`` points per axis.  ``ax`` draws into an
    existing matplotlib Axes (then its figure is returned and saved).
    """
    if output not in ("auto", "prob", "logit"):
        raise ValueError(f"output must be 'auto', 'prob' or 'logit', got {output!r}")
    X = _np(X).reshape(-1, 2)
    y = _np(y).reshape(-1)
    if ax is None:
        fig, ax = _new_figure(1, 1)
    else:
        _figure_class()
        fig = ax.figure

    def span(lim, col):
        if lim is not None:
            return float(lim[0]), float(lim[1])
        lo, hi = (float(X[:, col].min()), float(X[:, col].max())) if len(X) else (0.0, 1.0)
        pad = 0.15 * (hi - lo) + 0.25
        return lo - pad, hi + pad

    (x0, x1), (y0, y1) = span(xlim, 0), span(ylim, 1)
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.column_stack([gx.ravel(), gy.ravel()])
    scores = _predict_grid(model, grid)
    if scores.shape[1] == 1:
        s = scores[:, 0]
        if output == "logit" or (output == "auto" and (s.min() < 0.0 or s.max() > 1.0)):
            s = 1.0 / (1.0 + np.exp(-np.clip(s, -500, 500)))
        p = s.reshape(gx.shape)
        cs = ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 21), cmap="RdBu_r", alpha=0.75)
        if p.min() < 0.5 < p.max():
            ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1.5)
        fig.colorbar(cs, ax=ax, label="P(class 1)", ticks=[0, 0.25, 0.5, 0.75, 1])
        cmap_points, vmin, vmax = "RdBu_r", 0, 1
    else:
        classes = scores.argmax(axis=1).reshape(gx.shape)
        k = scores.shape[1]
        ax.contourf(gx, gy, classes, levels=np.arange(k + 1) - 0.5, cmap="tab10", alpha=0.35, vmin=0, vmax=9)
        cmap_points, vmin, vmax = "tab10", 0, 9
    if len(X):
        ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap_points, vmin=vmin, vmax=vmax, edgecolors="k", s=40,
                   zorder=3)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------------
# first-layer weights
# ---------------------------------------------------------------------------------------------------
def _first_weight(model_or_weight) -> np.ndarray:
    """The first Linear layer's weight (out, in) of a model, or the given weight itself."""
    if hasattr(model_or_weight, "modules") and callable(model_or_weight.modules):
        from .nn import Linear

        found = None
        for m in model_or_weight.modules():
            if isinstance(m, Linear):
                found = m.weight
                break
        if found is None:  # any layer with a 2-D weight
            for name, p in model_or_weight.named_parameters():
                if name.endswith("weight") and p.ndim == 2:
                    found = p
                    break
        if found is None:
            raise ValueError("plot_first_layer_weights: the model has no Linear layer (no 2-D weight)")
        model_or_weight = found
    w = _np(model_or_weight)
    if w.ndim != 2:
        raise ValueError(f"plot_first_layer_weights: expected a 2-D weight (out, in), got shape {w.shape}")
    return w


def plot_first_layer_weights(model_or_weight, path=None, n: int = 64, *, image_shape=None,
                             title: str | None = None):
    """The first Linear layer's rows as images: what each hidden unit looks for in the input.

    Row j of the weight (out_features, in_features) is the template that unit j correlates with
    the input, w_j . x.  For MNIST (784 inputs) each row is shown as a 28 x 28 image: red pixels push
    the unit up, blue ones down (a symmetric colour scale per image).  ``model_or_weight`` is a
    model (its first ``nn.Linear``), a weight Tensor or an array.  The first ``n`` rows are drawn;
    ``image_shape`` defaults to the square root of in_features.
    """
    w = _first_weight(model_or_weight)
    n = max(1, min(int(n), w.shape[0]))
    if image_shape is None:
        side = int(round(math.sqrt(w.shape[1])))
        if side * side != w.shape[1]:
            raise ValueError(f"plot_first_layer_weights: {w.shape[1]} inputs are not a square image; "
                             "pass image_shape=(h, w)")
        image_shape = (side, side)
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    fig, axes = _new_figure(rows, cols, width=1.1 * cols + 0.4, height=1.1 * rows + (0.4 if title else 0.1),
                            squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.set_axis_off()
        if k < n:
            img = w[k].reshape(image_shape)
            lim = float(np.abs(img).max()) or 1.0
            ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


# ---------------------------------------------------------------------------------------------------
# descent paths
# ---------------------------------------------------------------------------------------------------
def _surface(f, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """f on the grid: one vectorised call f(X, Y) if that works, else point by point."""
    try:
        z = _np(f(gx, gy))
        if z.shape == gx.shape:
            return z
    except Exception:  # not vectorised (e.g. written for floats or Tensors): go point by point
        pass
    return np.array([[float(_np(f(float(a), float(b)))) for a, b in zip(ra, rb, strict=True)]
                     for ra, rb in zip(gx, gy, strict=True)])


def plot_descent_paths(f, paths: dict, path=None, xlim=None, ylim=None, *, levels: int = 30,
                       resolution: int = 200, title: str | None = None, log_levels: bool = False):
    """Contours of a 2-D function with optimisation paths drawn on top.

    ``f(x, y)`` gives the height; it is called once with two grid arrays (NumPy broadcasting, e.g.
    ``lambda x, y: x**2 - y**2``) and, if that fails, once per grid point with floats.
    ``paths`` maps a label to a sequence of points (k, 2) (arrays, lists or Tensors): each path
    is a line with its start marked by a circle and its end by a cross.  ``xlim`` / ``ylim``
    default to the paths' extent with a margin.  ``log_levels`` spaces the contour levels
    logarithmically above the minimum (for steep bowls).
    """
    if not isinstance(paths, dict):
        raise TypeError(f"paths must be a dict label -> points, got {type(paths).__name__}")
    pts = {str(k): _np(v).reshape(-1, 2) for k, v in paths.items()}
    allp = np.concatenate([p for p in pts.values() if len(p)] or [np.zeros((1, 2))])
    finite = allp[np.all(np.isfinite(allp), axis=1)]
    if not len(finite):
        finite = np.zeros((1, 2))

    def span(lim, col):
        if lim is not None:
            return float(lim[0]), float(lim[1])
        lo, hi = float(finite[:, col].min()), float(finite[:, col].max())
        pad = 0.2 * (hi - lo) + 0.5
        return lo - pad, hi + pad

    (x0, x1), (y0, y1) = span(xlim, 0), span(ylim, 1)
    fig, ax = _new_figure(1, 1, width=5.6, height=4.6)
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    z = _surface(f, gx, gy)
    if log_levels:
        zmin = float(np.nanmin(z))
        lv = zmin + np.logspace(-3, np.log10(float(np.nanmax(z)) - zmin + 1e-12), levels)
        cs = ax.contour(gx, gy, z, levels=lv, cmap="viridis", linewidths=0.8)
    else:
        cs = ax.contourf(gx, gy, z, levels=levels, cmap="viridis", alpha=0.55)
        ax.contour(gx, gy, z, levels=levels, colors="k", linewidths=0.3, alpha=0.5)
    fig.colorbar(cs, ax=ax, label="f(x, y)")
    colors = ["tab:red", "tab:orange", "tab:cyan", "magenta", "white", "black", "tab:brown"]
    styles = ["-", "--", "-.", ":"]
    for i, (label, p) in enumerate(pts.items()):
        c = colors[i % len(colors)]
        lw = max(1.4, 3.4 - 0.8 * i)  # earlier paths wider, so overlapping paths stay visible
        ax.plot(p[:, 0], p[:, 1], styles[i % len(styles)], color=c, lw=lw, label=label, marker=".", ms=4)
        if len(p):
            ax.plot(p[0, 0], p[0, 1], "o", color=c, mec="k", ms=8)
            ax.plot(p[-1, 0], p[-1, 1], "X", color=c, mec="k", ms=9)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if pts:
        ax.legend(loc="best", framealpha=0.8)
    if title:
        ax.set_title(title)
    return _finish(fig, path)
