"""``fit``, ``evaluate`` and ``predict``: the training loop written once, Keras style.

Inside, ``fit`` is the plain PyTorch loop you would write yourself::

    for epoch in range(epochs):
        model.train()
        for x, y in train_loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
        ... evaluate on val_loader under no_grad(), log, call the callbacks ...

(one step of it is a :class:`~chainrule.train.step.TrainStep`, which records that step and replays it,
with the same numbers bit for bit, without the Python around each operation), plus the bookkeeping
around it: running loss and metrics, samples per second, the learning rate,
callbacks (progress bar, early stopping, checkpoints, ...), a :class:`History` of every epoch, and
resuming from a checkpoint. Nothing is hidden: the :class:`Trainer` methods are short enough to read
in one sitting.

>>> import chainrule as cr
>>> from chainrule import nn, optim
>>> from chainrule.data import toy
>>> from chainrule.train import fit, evaluate
>>> _ = cr.manual_seed(0)
>>> X, y = toy.spirals(300, classes=3, seed=0)
>>> loader = toy.make_loader(X, y, batch_size=32)
>>> model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 3))
>>> opt = optim.Adam(model.parameters(), lr=0.01)
>>> history = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=20, verbose=0)
>>> history.history["accuracy"][-1] > 0.8
True
>>> sorted(evaluate(model, loader, nn.CrossEntropyLoss()))
['accuracy', 'loss']
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..autograd import Tensor, no_grad
from ..autograd.factories import from_numpy
from .callbacks import Callback, LRSchedulerCallback, ProgressBar
from .metrics import Mean, Metric, get_metric
from .step import TrainStep

__all__ = ["fit", "evaluate", "predict", "History", "Trainer"]


class History:
    """What ``fit`` returns: one entry per epoch for every logged value.

    Attributes:
        history: dict ``name -> list`` (one value per epoch): ``loss``, ``accuracy`` (and other
            metrics), ``val_loss``, ``val_accuracy``, ``lr``, ``samples_per_sec``, ``time``.
            A value a given epoch did not log is ``None``.
        epoch: the epoch numbers (0-based) the lists refer to.
        note: why training ended early (EarlyStopping, NaN, Ctrl-C, ...), or None.

    >>> h = History()
    >>> h.append(0, {"loss": 0.5, "accuracy": 0.8}); h.append(1, {"loss": 0.3, "accuracy": 0.9})
    >>> h.history["loss"], h.epoch, h["accuracy"][-1]
    ([0.5, 0.3], [0, 1], 0.9)
    """

    def __init__(self) -> None:
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []
        self.note: str | None = None

    def append(self, epoch: int, logs: dict[str, Any]) -> None:
        """Add one epoch's logs (missing keys, new or old, are padded with None)."""
        self.epoch.append(int(epoch))
        n = len(self.epoch)
        for key, value in logs.items():
            column = self.history.setdefault(key, [None] * (n - 1))
            column.append(_plain(value))
        for column in self.history.values():
            if len(column) < n:
                column.append(None)

    def update_last(self, logs: dict[str, Any]) -> None:
        """Record values that callbacks added to the latest epoch's logs."""
        n = len(self.epoch)
        for key, value in logs.items():
            column = self.history.setdefault(key, [None] * n)
            if column[-1] is None:
                column[-1] = _plain(value)

    def __getitem__(self, key: str) -> list:
        return self.history[key]

    def __len__(self) -> int:
        return len(self.epoch)

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()},
                "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        h = cls()
        h.epoch = [int(e) for e in d.get("epoch", [])]
        h.history = {k: list(v) for k, v in d.get("history", {}).items()}
        h.note = d.get("note")
        return h

    def __repr__(self) -> str:
        keys = ", ".join(self.history)
        note = f", note={self.note!r}" if self.note else ""
        return f"History(epochs={len(self.epoch)}, keys=[{keys}]{note})"


def _plain(value):
    """Python numbers for the history (NumPy scalars and 0-d tensors become float/int)."""
    if isinstance(value, Tensor):
        value = value.data
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _split_batch(batch) -> tuple[Any, Any]:
    """A loader's batch -> (inputs, targets)."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    got = type(batch).__name__
    if isinstance(batch, (tuple, list)):
        got += f" of length {len(batch)}"
    raise ValueError(f"fit/evaluate expect the loader to yield (inputs, targets) pairs, got a {got}")


def _batch_size(x) -> int:
    shape = getattr(x, "shape", None)
    return int(shape[0]) if shape else len(x)


def _metric_list(metrics) -> list[Metric]:
    if metrics is None:
        return []
    if isinstance(metrics, (str, Metric)):
        metrics = [metrics]
    return [get_metric(m) for m in metrics]


class Trainer:
    """The state of one ``fit`` call; callbacks see it as ``self.trainer``.

    Attributes callbacks may read: ``model``, ``loss_fn``, ``optimizer``, ``scheduler``,
    ``train_loader``, ``val_loader``, ``epochs``, ``initial_epoch``, ``epoch`` (current, 0-based),
    ``global_step`` (optimizer steps so far), ``history``, ``resume_info``.
    Attributes callbacks may set: ``stop_training`` (True stops after the current batch) and
    ``stop_reason`` (a message for the History's ``note``).
    """

    def __init__(self, model, loss_fn, optimizer, train_loader, epochs: int, val_loader=None,
                 metrics: Iterable = ("accuracy",), callbacks: Sequence[Callback] = (), scheduler=None,
                 verbose: int = 1, initial_epoch: int = 0, replay: bool | str = "auto"):
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
            raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.train_loader = train_loader
        self.val_loader = val_loader
        self.epochs = epochs
        self.initial_epoch = initial_epoch
        self.metrics = _metric_list(metrics)
        self.verbose = verbose
        self.history = History()
        self.epoch = initial_epoch
        self.global_step = 0
        self.stop_training = False
        self.stop_reason: str | None = None
        self.resume_info: dict | None = None
        self.replay = replay
        self._train_step: TrainStep | None = None

        callbacks = list(callbacks)
        sched_cbs = [c for c in callbacks if isinstance(c, LRSchedulerCallback)]
        if scheduler is not None:
            if isinstance(scheduler, LRSchedulerCallback):
                callbacks.append(scheduler)
                scheduler = scheduler.scheduler
            elif not any(c.scheduler is scheduler for c in sched_cbs):
                callbacks.append(LRSchedulerCallback(scheduler))
        elif sched_cbs:
            scheduler = sched_cbs[0].scheduler
        self.scheduler = scheduler
        if verbose and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(ProgressBar(verbose))
        self.callbacks = sorted(callbacks, key=lambda c: getattr(c, "order", 0))
        for c in self.callbacks:
            c.set_trainer(self)

    # ---- calling the callbacks -----------------------------------------------------------------
    def _call(self, hook: str, *args) -> None:
        for c in self.callbacks:
            getattr(c, hook)(*args)

    # ---- resuming ------------------------------------------------------------------------------
    def resume(self, path) -> dict:
        """Load a checkpoint written by ``ModelCheckpoint`` and continue after its epoch."""
        from ..io import load_checkpoint

        info = load_checkpoint(path, self.model, self.optimizer, self.scheduler, loader=self.train_loader)
        self.resume_info = info
        self.initial_epoch = self.epoch = info["epoch"]
        self.global_step = info["step"]
        saved = info["extra"].get("history")
        if saved:
            self.history = History.from_dict(saved)
            self.history.note = None
        return info

    def train_step(self) -> TrainStep:
        """The :class:`TrainStep` for the current model, loss and optimizer (kept across epochs)."""
        st = self._train_step
        if st is None or st.model is not self.model or st.loss_fn is not self.loss_fn \
                or st.optimizer is not self.optimizer:
            st = self._train_step = TrainStep(self.model, self.loss_fn, self.optimizer, replay=self.replay)
        return st

    # ---- one epoch -----------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> dict[str, Any] | None:
        """Train one epoch; return its logs, or None if a callback stopped it part-way."""
        model = self.model
        step_fn = self.train_step()
        loss_mean = Mean("loss")
        for m in self.metrics:
            m.reset()
        model.train()
        start, seen = time.perf_counter(), 0
        for step, batch in enumerate(self.train_loader):
            x, y = _split_batch(batch)
            self._call("on_batch_begin", step, {})
            # -- the PyTorch loop: zero_grad, model, loss_fn, backward, optimizer step (TrainStep) --
            loss = step_fn(x, y)
            output = step_fn.output
            # -- bookkeeping --
            self.global_step += 1
            n = _batch_size(x)
            seen += n
            batch_loss = float(loss.item())
            loss_mean.add(batch_loss, n)
            logs = {"loss": loss_mean.compute()}
            for m in self.metrics:
                m.update(output.data, y)
                logs[m.name] = m.compute()
            logs["batch_loss"] = batch_loss
            logs["size"] = n
            self._call("on_batch_end", step, logs)
            if self.stop_training:
                return None
        train_time = time.perf_counter() - start
        logs = {"loss": loss_mean.compute()}
        for m in self.metrics:
            logs[m.name] = m.compute()
        if self.val_loader is not None:
            val = evaluate(model, self.val_loader, self.loss_fn, self.metrics)
            logs.update({f"val_{k}": v for k, v in val.items()})
        if self.optimizer is not None and self.optimizer.param_groups:
            logs["lr"] = float(self.optimizer.param_groups[0]["lr"])
        logs["samples_per_sec"] = seen / train_time if train_time > 0 else math.inf
        logs["time"] = time.perf_counter() - start
        return logs

    # ---- the whole run -------------------------------------------------------------------------
    def fit(self) -> History:
        self._call("on_train_begin", {})
        epoch = self.initial_epoch
        try:
            for epoch in range(self.initial_epoch, self.epochs):
                self.epoch = epoch
                self._call("on_epoch_begin", epoch, {})
                logs = self.train_epoch(epoch)
                if logs is None:                      # stopped mid-epoch (e.g. TerminateOnNaN)
                    break
                self.history.append(epoch, logs)
                self._call("on_epoch_end", epoch, logs)
                self.history.update_last(logs)
                if self.stop_training:
                    break
        except KeyboardInterrupt:
            done = len(self.history.epoch)
            checkpoints = any(type(c).__name__ == "ModelCheckpoint" for c in self.callbacks)
            self.stop_reason = (f"Interrupted (KeyboardInterrupt) during epoch {epoch + 1}; "
                                f"{done} complete epoch(s) are in the history"
                                + (", and the last checkpoint on disk is intact" if checkpoints else ""))
        self.history.note = self.stop_reason
        self._call("on_train_end", {})
        return self.history


def fit(model, loss_fn, optimizer, train_loader, epochs: int = 1, val_loader=None,
        metrics: Iterable = ("accuracy",), callbacks: Sequence[Callback] = (), scheduler=None,
        verbose: int = 1, initial_epoch: int = 0, resume=None, replay: bool | str = "auto") -> History:
    """Train ``model`` for ``epochs`` epochs and return a :class:`History`.

    Args:
        model: an ``nn.Module``.
        loss_fn: called as ``loss_fn(model(x), y)``; returns the batch's mean loss (a scalar).
        optimizer: e.g. ``optim.SGD(model.parameters(), lr=0.1, momentum=0.9)``.
        train_loader: yields ``(x, y)`` batches (a ``DataLoader``, usually with ``shuffle=True``).
        epochs: the *total* number of epochs (a resumed run continues up to it).
        val_loader: evaluated after each epoch (``val_loss``, ``val_accuracy``, ...).
        metrics: metric names or :class:`~chainrule.train.metrics.Metric` objects.
        callbacks: :class:`~chainrule.train.callbacks.Callback` objects.
        scheduler: a learning-rate scheduler, stepped for you (per batch for ``OneCycleLR``, per
            epoch otherwise; ``ReduceLROnPlateau`` gets ``val_loss``), or an
            ``LRSchedulerCallback`` saying how.
        verbose: 1 = progress bar in a terminal plus one line per epoch, 2 = one line per epoch,
            0 = silent.
        initial_epoch: the epoch to start at (0-based), as in Keras.
        resume: path of a checkpoint (``ModelCheckpoint``'s ``last.safetensors``): restores model,
            optimizer, scheduler, RNG state and history, and continues after its epoch, ending
            with the same weights, bit for bit, as a run that was never interrupted.
        replay: how :class:`TrainStep` runs the steps: ``"auto"`` records a step once and replays it
            (same results, less Python per step) when the model and loss are chainrule's own
            modules and functions; ``True`` also for your own (their Python must not branch on the
            data or have side effects); ``False`` runs every step eagerly.

    A ``KeyboardInterrupt`` (Ctrl-C) ends training cleanly: the epochs completed so far are in the
    returned History, whose ``note`` says what happened; checkpoints already written are intact.
    """
    trainer = Trainer(model, loss_fn, optimizer, train_loader, epochs, val_loader=val_loader,
                      metrics=metrics, callbacks=callbacks, scheduler=scheduler, verbose=verbose,
                      initial_epoch=initial_epoch, replay=replay)
    if resume is not None:
        trainer.resume(resume)
    return trainer.fit()


def evaluate(model, loader, loss_fn=None, metrics: Iterable = ("accuracy",)) -> dict[str, float]:
    """The mean loss (if ``loss_fn``) and metrics of ``model`` over ``loader``.

    Runs under ``no_grad()`` in eval mode (Dropout off) and puts the model back in the mode it
    was in. Values are averaged over samples, not batches.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> from chainrule.data import DataLoader, TensorDataset
    >>> model = nn.Linear(2, 2)
    >>> loader = DataLoader(TensorDataset(cr.randn(10, 2), cr.tensor([0, 1] * 5)), batch_size=4)
    >>> sorted(evaluate(model, loader, nn.CrossEntropyLoss()))
    ['accuracy', 'loss']
    """
    metric_objs = [copy.deepcopy(m) for m in _metric_list(metrics)]    # never touch the caller's
    for m in metric_objs:
        m.reset()
    loss_mean = Mean("loss")
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            for batch in loader:
                x, y = _split_batch(batch)
                output = model(x)
                if loss_fn is not None:
                    loss_mean.add(float(loss_fn(output, y).item()), _batch_size(x))
                for m in metric_objs:
                    m.update(output.data, y)
    finally:
        model.train(was_training)
    result = {}
    if loss_fn is not None:
        result["loss"] = loss_mean.compute()
    for m in metric_objs:
        result[m.name] = m.compute()
    return result


def predict(model, x_or_loader, batch_size: int = 256) -> Tensor:
    """The model's outputs for every input, concatenated into one Tensor (no_grad, eval mode).

    ``x_or_loader`` is a Tensor or array of inputs (cut into batches of ``batch_size``) or a
    loader yielding inputs or ``(inputs, targets)`` batches (the targets are ignored).

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> tuple(predict(nn.Linear(3, 2), cr.randn(1000, 3)).shape)
    (1000, 2)
    """
    if isinstance(x_or_loader, (Tensor, np.ndarray)):
        data = x_or_loader.data if isinstance(x_or_loader, Tensor) else np.asarray(x_or_loader)
        if batch_size <= 0:
            raise ValueError(f"predict: batch_size must be positive, got {batch_size}")
        batches: Iterable = (from_numpy(data[i:i + batch_size]) for i in range(0, len(data), batch_size))
    else:
        batches = x_or_loader
    outputs = []
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                outputs.append(model(x).data)
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError("predict: no inputs")
    return from_numpy(np.concatenate(outputs))
