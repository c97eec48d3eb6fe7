"""Optimizers and learning-rate schedulers (``torch.optim``).

>>> import chainrule as cr
>>> from chainrule.optim import SGD
>>> w = cr.tensor([1.0, -2.0], requires_grad=True)
>>> opt = SGD([w], lr=0.1, momentum=0.9)
>>> for _ in range(3):
...     opt.zero_grad()
...     loss = (w * w).sum()          # minimum at w = 0
...     loss.backward()
...     opt.step()
>>> [round(v, 4) for v in w.tolist()]
[0.062, -0.124]

Every optimizer updates ``p.data`` in place with NumPy, keeps its state in float32 for float32
parameters, and saves/loads its state in torch's ``state_dict`` layout (see
``flatten_state_dict`` for safetensors checkpoints).
"""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer, flatten_state_dict, unflatten_state_dict
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler", "flatten_state_dict",
           "unflatten_state_dict"]
