"""chainrule.autograd: tensors, the graph of Functions, the backward engine and gradient checks."""

from .engine import GraphFreedError
from .function import (
    Function,
    detect_anomaly,
    enable_grad,
    inference_mode,
    is_anomaly_enabled,
    is_grad_enabled,
    no_grad,
    set_detect_anomaly,
    set_grad_enabled,
)
from .tensor import Tensor
from .api import backward, grad
from .gradcheck import GradcheckError, gradcheck, gradgradcheck

__all__ = [
    "Function", "Tensor", "backward", "grad", "gradcheck", "gradgradcheck", "GradcheckError", "no_grad",
    "enable_grad", "set_grad_enabled", "inference_mode", "is_grad_enabled", "set_detect_anomaly",
    "detect_anomaly", "is_anomaly_enabled", "GraphFreedError",
]
