"""Dtypes: chainrule uses NumPy's dtypes under PyTorch's names.

Policy (as torch): Python floats and float lists become float32, Python ints become int64, bools
become bool; an ndarray keeps its dtype. Nothing in the library silently upcasts float32 to float64.
"""

from __future__ import annotations

import builtins
from typing import Any, overload

import numpy as np

float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
float16 = np.dtype(np.float16)
int64 = np.dtype(np.int64)
int32 = np.dtype(np.int32)
int8 = np.dtype(np.int8)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)
float = float32  # noqa: A001  (torch.float is float32)
double = float64
long = int64
int = int32  # noqa: A001
half = float16

_BY_NAME: dict[str, np.dtype] = {
    "float32": float32, "float": float32, "float64": float64, "double": float64, "float16": float16,
    "half": float16, "int64": int64, "long": int64, "int32": int32, "int": int32, "int8": int8,
    "uint8": uint8, "bool": bool_,
}

_default_float = float32


@overload
def as_dtype(dtype: None) -> None: ...


@overload
def as_dtype(dtype: Any) -> np.dtype: ...


def as_dtype(dtype: Any) -> np.dtype | None:
    """Normalise a dtype given as a chainrule/NumPy dtype, a Python type or a name."""
    if isinstance(dtype, np.dtype):
        return dtype
    if dtype is None:
        return None
    if isinstance(dtype, str):
        key = dtype.removeprefix("torch.").removeprefix("chainrule.")
        if key in _BY_NAME:
            return _BY_NAME[key]
        raise TypeError(f"unknown dtype {dtype!r}; use one of {sorted(_BY_NAME)}")
    if dtype is builtins.float:
        return _default_float
    if dtype is builtins.int:
        return int64
    if dtype is builtins.bool:
        return bool_
    try:
        return np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}") from None


def is_floating(dt: np.dtype) -> bool:
    return dt.kind == "f"


def get_default_dtype() -> np.dtype:
    return _default_float


def set_default_dtype(dtype) -> None:
    """Set the dtype Python floats become (float32 or float64), like ``torch.set_default_dtype``."""
    global _default_float
    dt = as_dtype(dtype)
    if dt not in (float32, float64):
        raise TypeError(f"default dtype must be float32 or float64, got {dt}")
    _default_float = dt


def infer_array(data, dtype=None) -> np.ndarray:
    """Turn Python data or an array into an ndarray following torch's dtype rules."""
    dt = as_dtype(dtype)
    if isinstance(data, np.ndarray):
        return data.astype(dt, copy=False) if dt is not None and data.dtype != dt else data
    if isinstance(data, np.generic):
        arr = np.asarray(data)
        return arr.astype(dt) if dt is not None else arr
    try:
        arr = np.array(data)
    except ValueError as e:  # ragged nesting: NumPy's message points inside NumPy, ours at the data
        raise ValueError(f"cannot make a tensor from ragged data (nested lists of unequal lengths): {e}") from None
    if dt is not None:
        return arr.astype(dt, copy=False)
    k = arr.dtype.kind
    if k == "f":
        return arr.astype(_default_float, copy=False)
    if k in "iu":
        return arr.astype(np.int64, copy=False)
    if k == "b":
        return arr
    if k == "O":
        raise TypeError("cannot make a tensor from ragged or mixed data "
                        "(lists of unequal length, or objects that are not numbers)")
    raise TypeError(f"cannot make a tensor from data of dtype {arr.dtype}")
