"""``Parameter``: a Tensor that a ``Module`` registers as one of its learnable weights.

Assigning a Parameter to a module attribute (``self.weight = Parameter(...)``) is what makes it show
up in ``module.parameters()`` (and so in the optimizer) and in ``state_dict()``.  Otherwise it is an
ordinary leaf tensor with ``requires_grad=True``.
"""

from __future__ import annotations

import numpy as np

from .. import _dtypes

from ..autograd import ops as _ops
from ..autograd.tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that a Module treats as a learnable weight (``torch.nn.Parameter``).

    ``Parameter(data)`` shares memory with ``data`` (a Tensor or ndarray), as torch does.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Parameter(cr.ones(2))
    Parameter containing:
    tensor([1., 1.], requires_grad=True)
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=np.float32)
        # As torch: a Parameter keeps its data's dtype (float64 stays float64; Python floats -> float32).
        self._init_leaf(_dtypes.infer_array(data.data if isinstance(data, Tensor) else data), requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (Parameter, (self.data, self.requires_grad))

    def __deepcopy__(self, memo):
        # As torch's Parameter: the copy gets the values and requires_grad, not the .grad
        if id(self) in memo:
            return memo[id(self)]
        p = Parameter(self.data.copy(), self.requires_grad)
        memo[id(self)] = p
        return p

    # The core's Tensor operators dispatch on the *exact* class ``Tensor`` in their fast paths, so
    # ``tensor * parameter`` would take the "Python scalar" path and fail.  Python calls a subclass's
    # reflected operator first, so these route Tensor-with-Parameter to the general ops (which use
    # isinstance); Python numbers keep Tensor's fast scalar path.
    def __radd__(self, other):
        return _ops.add(other, self) if isinstance(other, Tensor) else Tensor.__radd__(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self) if isinstance(other, Tensor) else Tensor.__rsub__(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self) if isinstance(other, Tensor) else Tensor.__rmul__(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self) if isinstance(other, Tensor) else Tensor.__rtruediv__(self, other)

    def __rpow__(self, other):
        return _ops.pow(other, self) if isinstance(other, Tensor) else Tensor.__rpow__(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)
