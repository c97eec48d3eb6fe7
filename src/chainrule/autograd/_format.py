"""``repr`` of a Tensor, laid out by torch's rules (``torch/_tensor_str.py`` with its default print options).

Four significant decimals; scientific notation when the non-zero finite magnitudes span more than 1000x,
exceed 1e8 or fall below 1e-4; integral floats print as ``1.``; every element is right-aligned to the
widest; more than 1000 elements are summarised to 3 at each edge; lines wrap at 80 characters.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _dtypes

_PRECISION = 4
_THRESHOLD = 1000
_EDGEITEMS = 3
_LINEWIDTH = 80


class _Formatter:
    """Chooses one format (integer, fixed or scientific) and one width for all the elements shown."""

    def __init__(self, a: np.ndarray):
        self.floating = a.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = a.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(f"{v}"))
            return
        vals = flat[np.isfinite(flat) & (flat != 0)]
        if vals.size == 0:
            return
        mags = np.abs(vals).astype(np.float64)
        lo, hi = mags.min(), mags.max()
        self.int_mode = bool(np.all(vals == np.ceil(vals)))
        values = vals.tolist()
        if self.int_mode:
            if hi / lo > 1000.0 or hi > 1.0e8:
                self.sci_mode = True
                self.max_width = max(len(f"{v:.{_PRECISION}e}") for v in values)
            else:
                self.max_width = max(len(f"{v:.0f}") + 1 for v in values)
        elif hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4:
            self.sci_mode = True
            self.max_width = max(len(f"{v:.{_PRECISION}e}") for v in values)
        else:
            self.max_width = max(len(f"{v:.{_PRECISION}f}") for v in values)

    def format(self, v) -> str:
        if not self.floating:
            ret = f"{v}"
        elif self.sci_mode:
            ret = f"{v:{self.max_width}.{_PRECISION}e}"
        elif self.int_mode:
            ret = f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
        else:
            ret = f"{v:.{_PRECISION}f}"
        return (self.max_width - len(ret)) * " " + ret


def _summarized(a: np.ndarray) -> np.ndarray:
    """The elements a summarised print shows (the edges of every dimension)."""
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return np.concatenate([a[:_EDGEITEMS], a[-_EDGEITEMS:]]) if a.shape[0] > 2 * _EDGEITEMS else a
    rows = list(range(a.shape[0]))
    if a.shape[0] > 2 * _EDGEITEMS:
        rows = list(range(_EDGEITEMS)) + list(range(a.shape[0] - _EDGEITEMS, a.shape[0]))
    return np.stack([_summarized(a[i]) for i in rows])


def _vector_str(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    per_line = max(1, int(math.floor((_LINEWIDTH - indent) / (fmt.max_width + 2))))
    if summarize and a.shape[0] > 2 * _EDGEITEMS:
        data = ([fmt.format(v) for v in a[:_EDGEITEMS].tolist()] + [" ..."]
                + [fmt.format(v) for v in a[-_EDGEITEMS:].tolist()])
    else:
        data = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _tensor_str(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector_str(a, indent, summarize, fmt)
    n = a.shape[0]
    if summarize and n > 2 * _EDGEITEMS:
        parts = ([_tensor_str(a[i], indent + 1, summarize, fmt) for i in range(_EDGEITEMS)] + ["..."]
                 + [_tensor_str(a[i], indent + 1, summarize, fmt) for i in range(n - _EDGEITEMS, n)])
    else:
        parts = [_tensor_str(a[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(parts) + "]"


def _add_suffixes(text: str, suffixes: list[str], indent: int) -> str:
    out = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > _LINEWIDTH:
            out.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            out.append(", " + suffix)
            last_line_len += len(suffix) + 2
    out.append(")")
    return "".join(out)


def tensor_repr(t) -> str:
    """``tensor([...], dtype=..., grad_fn=<...>)`` as torch prints it (dtypes named ``chainrule.*``)."""
    d = t.data
    prefix = "tensor("
    indent = len(prefix)
    default = _dtypes.get_default_dtype()
    suffixes = []
    if d.size == 0:
        if d.ndim != 1:
            suffixes.append(f"size={tuple(d.shape)}")
        if d.dtype != default:
            suffixes.append(f"dtype=chainrule.{d.dtype}")
        body = "[]"
    else:
        if d.dtype not in (default, _dtypes.int64, _dtypes.bool_):
            suffixes.append(f"dtype=chainrule.{d.dtype}")
        shown = d.astype(np.float32) if d.dtype == np.float16 else d
        summarize = d.size > _THRESHOLD
        body = _tensor_str(shown, indent, summarize, _Formatter(_summarized(shown) if summarize else shown))
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name}Backward>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
