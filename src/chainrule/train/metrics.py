"""Metrics for ``fit`` and ``evaluate``: accuracy, mean squared / absolute error, running means.

A metric sees every batch's model output and target through ``update(output, target)`` and
reports its value over all batches so far with ``compute()`` -- weighted by batch size, so the
accuracy of an epoch is the fraction of all its samples classified correctly, whatever the
batch sizes were. ``reset()`` starts over (``fit`` resets at each epoch).

Metrics are named by strings in ``fit(..., metrics=("accuracy",))``:

==============  ===========================================================================
name            what it measures
==============  ===========================================================================
``accuracy``    fraction of correct predictions; see :class:`Accuracy` for the rules
``mse``         mean squared error (regression)
``mae``         mean absolute error (regression)
==============  ===========================================================================

>>> import chainrule as cr
>>> acc = Accuracy()
>>> acc.update(cr.tensor([[2.0, 0.1], [0.3, 1.5], [0.9, 0.2]]), cr.tensor([0, 1, 1]))
>>> round(acc.compute(), 4)          # 2 of 3 right
0.6667
"""

from __future__ import annotations

import numpy as np

from ..autograd import Tensor

__all__ = ["Metric", "Mean", "Accuracy", "MeanSquaredError", "MeanAbsoluteError", "get_metric", "accuracy"]


def _np(x) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


class Metric:
    """Base class: accumulate a weighted sum over batches; ``compute()`` is ``total / count``.

    Subclasses set ``name`` (the key in the logs and the History) and implement
    ``batch_values(output, target) -> ndarray`` (one value per sample).
    """

    name = "metric"

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.total = 0.0
        self.count = 0

    def batch_values(self, output: np.ndarray, target: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update(self, output, target) -> None:
        values = self.batch_values(_np(output), _np(target))
        self.total += float(values.sum(dtype=np.float64))
        self.count += values.size

    def compute(self) -> float:
        return self.total / self.count if self.count else float("nan")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Mean(Metric):
    """The running, weighted mean of a value reported per batch (``fit`` uses it for the loss).

    >>> m = Mean("loss")
    >>> m.add(1.0, 10); m.add(4.0, 30)        # batches of 10 and 30 samples
    >>> m.compute()
    3.25
    """

    def __init__(self, name: str = "mean"):
        self.name = name
        super().__init__()

    def add(self, value: float, weight: int = 1) -> None:
        self.total += float(value) * weight
        self.count += weight


class Accuracy(Metric):
    """The fraction of samples whose predicted class is the target.

    What counts as the prediction depends on the output's shape:

    * ``(N, C)`` with ``C > 1`` (scores or logits per class, as fed to ``CrossEntropyLoss``): the
      class with the highest score, ``argmax``. A target of shape ``(N, C)`` (one-hot or
      probabilities) is turned into its ``argmax`` too.
    * ``(N,)`` or ``(N, 1)`` (one output, a binary classifier): class 1 if the output exceeds
      ``threshold``. By default the threshold is 0.5 when all outputs of the batch lie in [0, 1]
      (probabilities, after a sigmoid) and 0 otherwise (logits, or a tanh output). Targets are
      0/1 labels (class 1 if > 0.5) or -1/+1 labels (class 1 if > 0). Pass ``threshold=`` to
      fix the output threshold.

    >>> import chainrule as cr
    >>> acc = Accuracy()
    >>> acc.update(cr.tensor([0.9, 0.2, 0.7]), cr.tensor([1.0, 0.0, 0.0]))
    >>> round(acc.compute(), 4)
    0.6667
    """

    name = "accuracy"

    def __init__(self, threshold: float | None = None):
        self.threshold = threshold
        super().__init__()

    def batch_values(self, output: np.ndarray, target: np.ndarray) -> np.ndarray:
        if output.ndim >= 2 and output.shape[-1] > 1:
            pred = output.argmax(axis=-1)
            if target.shape == output.shape:
                target = target.argmax(axis=-1)
            return pred.reshape(-1) == target.reshape(-1)
        out = output.reshape(-1)
        threshold = self.threshold
        if threshold is None:
            threshold = 0.5 if out.size and out.min() >= 0 and out.max() <= 1 else 0.0
        tgt = target.reshape(-1)
        target_threshold = 0.5 if tgt.size == 0 or tgt.min() >= 0 else 0.0     # 0/1 or -1/+1 labels
        return (out > threshold) == (tgt > target_threshold)


class MeanSquaredError(Metric):
    """Mean of ``(output - target)**2`` over all elements (``name = "mse"``)."""

    name = "mse"

    def batch_values(self, output, target):
        return np.square(output.astype(np.float64) - target.reshape(output.shape))


class MeanAbsoluteError(Metric):
    """Mean of ``|output - target|`` over all elements (``name = "mae"``)."""

    name = "mae"

    def batch_values(self, output, target):
        return np.abs(output.astype(np.float64) - target.reshape(output.shape))


_BY_NAME = {"accuracy": Accuracy, "acc": Accuracy, "mse": MeanSquaredError, "mae": MeanAbsoluteError}


def get_metric(metric) -> Metric:
    """A fresh metric from its name (``"accuracy"``, ``"mse"``, ``"mae"``), or the metric itself.

    >>> get_metric("accuracy").name, get_metric("acc").name
    ('accuracy', 'acc')
    """
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, type) and issubclass(metric, Metric):
        return metric()
    if isinstance(metric, str) and metric.lower() in _BY_NAME:
        m = _BY_NAME[metric.lower()]()
        if metric.lower() == "acc":
            m.name = "acc"          # logged as 'acc' / 'val_acc', as Keras names it after the string given
        return m
    raise ValueError(f"unknown metric {metric!r}; use one of {sorted(set(_BY_NAME) - {'acc'})} "
                     "or a chainrule.train.metrics.Metric")


def accuracy(output, target) -> float:
    """The accuracy of one batch (see :class:`Accuracy`).

    >>> import chainrule as cr
    >>> accuracy(cr.tensor([[0.1, 0.9], [0.8, 0.2]]), cr.tensor([1, 1]))
    0.5
    """
    m = Accuracy()
    m.update(output, target)
    return m.compute()
