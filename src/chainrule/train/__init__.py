"""``chainrule.train``: a Keras-style ``fit`` around the plain PyTorch loop, plus callbacks and metrics.

>>> import chainrule as cr
>>> from chainrule import nn, optim
>>> from chainrule.data import toy
>>> from chainrule.train import fit, EarlyStopping
>>> _ = cr.manual_seed(0)
>>> X, y = toy.two_moons(200, noise=0.1, seed=0)
>>> loader = toy.make_loader(X, y, batch_size=32)
>>> model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
>>> history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05), loader,
...               epochs=30, val_loader=loader, callbacks=[EarlyStopping(patience=5)], verbose=0)
>>> history.history["val_accuracy"][-1] > 0.9
True

``fit`` returns a :class:`History`; ``evaluate`` a dict of mean loss and metrics; ``predict`` the
outputs. :class:`TrainStep` is one step of the loop (zero_grad, forward, loss, backward, optimizer
step), recorded once and replayed for speed; ``fit`` uses it.
Callbacks (``chainrule.train.callbacks``): ``ProgressBar``, ``EarlyStopping``,
``ConvergenceCriterion``, ``LRSchedulerCallback``, ``ModelCheckpoint``, ``TerminateOnNaN``,
``CSVLogger``, ``LambdaCallback``. Metrics (``chainrule.train.metrics``): ``accuracy``, ``mse``,
``mae``.
"""

from . import callbacks, metrics
from .callbacks import (
    Callback,
    ConvergenceCriterion,
    CSVLogger,
    EarlyStopping,
    LambdaCallback,
    LRSchedulerCallback,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
)
from .loop import History, Trainer, evaluate, fit, predict
from .metrics import Accuracy, Metric, accuracy
from .step import TrainStep

__all__ = [
    "fit", "evaluate", "predict", "History", "Trainer", "TrainStep",
    "Callback", "ProgressBar", "EarlyStopping", "ConvergenceCriterion", "LRSchedulerCallback",
    "ModelCheckpoint", "TerminateOnNaN", "CSVLogger", "LambdaCallback",
    "Metric", "Accuracy", "accuracy", "callbacks", "metrics",
]
