"""``chainrule.nn``: modules, layers, activations, losses and initialisers (``torch.nn``).

>>> import chainrule as cr
>>> from chainrule import nn
>>> model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
>>> model
Sequential(
  (0): Linear(in_features=784, out_features=256, bias=True)
  (1): ReLU()
  (2): Linear(in_features=256, out_features=10, bias=True)
)
>>> loss_fn = nn.CrossEntropyLoss()
"""

from . import functional, init
from .activation import (
    ELU,
    GELU,
    Heaviside,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Sign,
    Softmax,
    Softplus,
    Tanh,
)
from .layers import Concat, Dropout, Flatten, Identity, Linear, ModuleDict, ModuleList, Sequential, Unflatten
from .loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from .module import Module
from .parameter import Parameter

__all__ = [
    "functional", "init", "Module", "Parameter",
    "Linear", "Sequential", "ModuleList", "ModuleDict", "Concat", "Identity", "Flatten", "Unflatten",
    "Dropout", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Softplus", "ELU", "GELU", "Softmax", "LogSoftmax",
    "Heaviside", "Sign",
    "MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss",
    "NLLLoss", "KLDivLoss",
]
