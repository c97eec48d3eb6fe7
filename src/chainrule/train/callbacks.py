"""Callbacks: code that ``fit`` runs at fixed points of training (Keras style).

Subclass :class:`Callback` and override the hooks you need::

    class PrintLR(Callback):
        def on_epoch_end(self, epoch, logs=None):
            print(f"epoch {epoch + 1}: lr = {logs['lr']:.4g}")

    fit(model, loss_fn, opt, loader, epochs=10, callbacks=[PrintLR()])

The hooks, in the order ``fit`` calls them::

    on_train_begin(logs)
        on_epoch_begin(epoch, logs)              epoch counts from 0
            on_batch_begin(step, logs)           step: the batch's index within the epoch
            ... zero_grad, forward, backward, optimizer.step() ...
            on_batch_end(step, logs)             logs: running loss/metrics, batch_loss, size
        on_epoch_end(epoch, logs)                logs: loss, accuracy, val_*, lr, samples_per_sec, time
    on_train_end(logs)

Every callback can reach the running :class:`~chainrule.train.loop.Trainer` as ``self.trainer``
(and the model as ``self.model``). To stop training, set ``self.trainer.stop_training = True``
(and, to say why, ``self.trainer.stop_reason``): ``fit`` finishes the current batch and returns.

Callbacks run in the order given, except that each class has an ``order``: learning-rate
schedulers (-10) run before the others, and :class:`ModelCheckpoint` (10) after them, so a
checkpoint always holds the scheduler's state *after* its end-of-epoch step.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
import warnings
from typing import Any, Callable

import numpy as np

__all__ = [
    "Callback", "ProgressBar", "EarlyStopping", "ConvergenceCriterion", "LRSchedulerCallback",
    "ModelCheckpoint", "TerminateOnNaN", "CSVLogger", "LambdaCallback",
]


def _copy_state(model) -> dict:
    """A snapshot of a model's ``state_dict()`` (arrays copied, so later steps don't change it)."""
    return {k: v.data.copy() for k, v in model.state_dict().items()}


def _restore_state(model, snapshot: dict) -> None:
    """Put a snapshot from ``_copy_state`` back into the model, in place."""
    model.load_state_dict(snapshot)


class Callback:
    """Base class of callbacks: every hook does nothing; override the ones you need."""

    #: Callbacks run sorted by ``order`` (stable): schedulers -10, default 0, checkpoints 10.
    order = 0

    def __init__(self):
        self.trainer = None

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer

    @property
    def model(self):
        return None if self.trainer is None else self.trainer.model

    def on_train_begin(self, logs: dict | None = None) -> None: ...

    def on_train_end(self, logs: dict | None = None) -> None: ...

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...

    def on_batch_begin(self, step: int, logs: dict | None = None) -> None: ...

    def on_batch_end(self, step: int, logs: dict | None = None) -> None: ...


class LambdaCallback(Callback):
    """A callback made of plain functions, e.g. ``LambdaCallback(on_epoch_end=lambda e, logs: ...)``."""

    def __init__(self, **hooks: Callable):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)


# --------------------------------------------------------------------------------------------------
# monitoring helpers
# --------------------------------------------------------------------------------------------------

def _resolve_mode(mode: str, monitor: str) -> str:
    """'min' or 'max': 'auto' means 'max' for accuracies, 'min' for losses and errors."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    return "max" if "acc" in monitor else "min"


def _improved(value: float, best: float | None, mode: str, min_delta: float) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    # Keras's arithmetic (current -/+ min_delta against best), so ties at the margin go the same way
    return value + min_delta < best if mode == "min" else value - min_delta > best


class _Monitor:
    """Reads ``monitor`` from the epoch logs, warning once if it is missing."""

    def __init__(self, owner: str, monitor: str):
        self.owner, self.monitor, self._warned = owner, monitor, False

    def get(self, logs: dict | None):
        value = (logs or {}).get(self.monitor)
        if value is None and not self._warned:
            self._warned = True
            hint = " (pass val_loader= to fit)" if self.monitor.startswith("val_") else ""
            warnings.warn(f"{self.owner}: the metric {self.monitor!r} is not in the logs{hint}; "
                          f"available: {', '.join(sorted(logs or {}))}", RuntimeWarning, stacklevel=3)
        return value


def _fmt_epoch(epoch: int) -> str:
    return f"epoch {epoch + 1}"


# --------------------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------------------

def _format_value(key: str, value: Any) -> str:
    if isinstance(value, float) and ("accuracy" in key or key.endswith("acc")):
        return f"{value:.2%}"
    if isinstance(value, float):
        return f"{value:.4g}" if key == "lr" else f"{value:.4f}"
    return str(value)


class ProgressBar(Callback):
    """Show training progress: a tqdm bar per epoch, then one summary line per epoch.

    ``verbose=1``: a progress bar (loss, accuracy, samples/s) while the epoch runs, if the output
    is a terminal; afterwards -- and always when it is not a terminal -- one line per epoch.
    ``verbose=2``: only the line per epoch. ``verbose=0``: nothing. ``val_label`` is how the
    ``val_*`` entries are shown (the CLI shows the test set as ``test``).

    A line looks like::

        Epoch  3/10  loss 0.0712  accuracy 97.81%  val loss 0.0803  val accuracy 97.52%  lr 0.08  ...
        ...  41,233 samples/s  1.6s
    """

    def __init__(self, verbose: int = 1, val_label: str = "val", file=None, bar_file=None):
        super().__init__()
        self.verbose = verbose
        self.val_label = val_label
        self.file = file
        self.bar_file = bar_file
        self._bar = None
        self._last_postfix = 0.0
        self._epoch_start = 0.0
        self._seen = 0

    def _out(self):
        return self.file if self.file is not None else sys.stdout

    def _bar_out(self):
        return self.bar_file if self.bar_file is not None else sys.stderr

    def _use_bar(self) -> bool:
        if self.verbose != 1:
            return False
        try:
            import tqdm  # noqa: F401
        except ImportError:
            return False
        stream = self._bar_out()
        return bool(getattr(stream, "isatty", lambda: False)())

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start, self._seen = time.perf_counter(), 0
        if not self._use_bar():
            return
        from tqdm.auto import tqdm

        t = self.trainer
        total = None
        try:
            total = len(t.train_loader)
        except TypeError:
            pass
        self._bar = tqdm(total=total, desc=f"Epoch {epoch + 1}/{t.epochs}", unit="batch", leave=False,
                         file=self._bar_out(), dynamic_ncols=True)
        self._last_postfix = 0.0

    def on_batch_end(self, step, logs=None):
        if self._bar is None:
            return
        logs = logs or {}
        self._seen += logs.get("size", 0)
        self._bar.update(1)
        now = time.perf_counter()
        if now - self._last_postfix > 0.25:         # formatting the postfix costs; do it 4x a second
            self._last_postfix = now
            postfix = {"loss": f"{logs.get('loss', float('nan')):.4f}"}
            acc = logs.get("accuracy", logs.get("acc"))
            if acc is not None:
                postfix["acc"] = f"{acc:.2%}"
            postfix["samples/s"] = f"{self._seen / max(now - self._epoch_start, 1e-9):,.0f}"
            self._bar.set_postfix(postfix, refresh=False)

    def _close_bar(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def format_line(self, epoch: int, logs: dict) -> str:
        """The summary line for one epoch."""
        t = self.trainer
        width = len(str(t.epochs))
        parts = [f"Epoch {epoch + 1:>{width}}/{t.epochs}"]
        for key, value in logs.items():
            if key in ("samples_per_sec", "time", "lr") or not isinstance(value, (int, float)):
                continue
            label = key.replace("_", " ")
            if key.startswith("val_"):
                label = f"{self.val_label} {key[4:].replace('_', ' ')}"
            parts.append(f"{label} {_format_value(key, value)}")
        if "lr" in logs:
            parts.append(f"lr {_format_value('lr', logs['lr'])}")
        if "samples_per_sec" in logs:
            parts.append(f"{logs['samples_per_sec']:,.0f} samples/s")
        if "time" in logs:
            parts.append(f"{logs['time']:.1f}s")
        return "  ".join(parts)

    def on_epoch_end(self, epoch, logs=None):
        self._close_bar()
        if self.verbose:
            print(self.format_line(epoch, logs or {}), file=self._out(), flush=True)

    def on_train_end(self, logs=None):
        self._close_bar()
        t = self.trainer
        if self.verbose and t is not None:
            if t.stop_reason:
                print(t.stop_reason, file=self._out(), flush=True)
            if t.history.note and t.history.note != t.stop_reason:
                print(t.history.note, file=self._out(), flush=True)


# --------------------------------------------------------------------------------------------------
# stopping rules
# --------------------------------------------------------------------------------------------------

class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: the epoch-log entry to watch (``val_loss``, ``val_accuracy``, ``loss``, ...).
        patience: stop after this many epochs in a row without improvement (as Keras: 0 and 1
            both stop at the first epoch that does not improve).
        min_delta: the smallest change that counts as an improvement.
        mode: ``'min'``, ``'max'`` or ``'auto'`` (max for accuracies, min otherwise).
        restore_best_weights: at the end of training, put back the weights of the best epoch.
        baseline: as Keras: an epoch resets the patience count only if it also beats ``baseline``,
            so training stops if ``patience`` epochs pass without reaching it.
        start_from_epoch: ignore the epochs before this one (0-based), a warm-up.

    >>> from chainrule.train import EarlyStopping
    >>> stop = EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 0, min_delta: float = 0.0,
                 mode: str = "auto", restore_best_weights: bool = False, verbose: int = 0,
                 baseline: float | None = None, start_from_epoch: int = 0):
        super().__init__()
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = abs(min_delta)
        self.mode = _resolve_mode(mode, monitor)
        self.restore_best_weights = restore_best_weights
        self.verbose = verbose
        self.baseline = baseline
        self.start_from_epoch = start_from_epoch
        self._reader = _Monitor("EarlyStopping", monitor)

    def on_train_begin(self, logs=None):
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.wait = 0
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        value = self._reader.get(logs)
        if value is None or epoch < self.start_from_epoch:
            return
        self.wait += 1
        if _improved(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = _copy_state(self.model)
            if self.baseline is None or _improved(value, self.baseline, self.mode, self.min_delta):
                self.wait = 0
            return
        if self.wait >= max(self.patience, 1):
            self.stopped_epoch = epoch
            self.trainer.stop_training = True
            best = "none" if self.best is None else f"{self.best:.4g} at {_fmt_epoch(self.best_epoch)}"
            self.trainer.stop_reason = (f"EarlyStopping: {self.monitor} did not improve for {self.wait} "
                                        f"epoch(s) (best {best}); stopped after {_fmt_epoch(epoch)}")

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            _restore_state(self.model, self.best_weights)
            if self.verbose:
                print(f"EarlyStopping: restored the weights of {_fmt_epoch(self.best_epoch)} "
                      f"({self.monitor} {self.best:.4g})")


def _grad_norm(params) -> float:
    """The 2-norm of all gradients together, sqrt(sum over parameters of sum(g**2))."""
    total = 0.0
    for p in params:
        if p.grad is not None:
            g = p.grad.data.reshape(-1)
            total += float(np.dot(g, g))
    return math.sqrt(total)


class ConvergenceCriterion(Callback):
    """Stop when training has converged, by the lectures' stopping rules (checked once per epoch):

    * ``loss_tol``: ``|L_k - L_{k-1}| < loss_tol``, where ``L_k`` is epoch ``k``'s ``monitor``
      (default: the training loss);
    * ``grad_tol``: ``||grad L|| < grad_tol``, the gradient norm (all parameters together), averaged
      over the epoch's batches.

    With full-batch gradient descent (one batch per epoch) an epoch is a single step, and these are
    exactly the textbook rules. With mini-batches the gradient of a batch is noisy and rarely tiny:
    ``loss_tol`` is the more useful rule there. Each epoch's gradient norm is put in the epoch logs
    as ``grad_norm`` and kept in ``self.grad_norms``.

    >>> from chainrule.train import ConvergenceCriterion
    >>> stop = ConvergenceCriterion(loss_tol=1e-6, grad_tol=1e-4)
    """

    def __init__(self, loss_tol: float | None = None, grad_tol: float | None = None, monitor: str = "loss",
                 min_epochs: int = 1):
        super().__init__()
        if loss_tol is None and grad_tol is None:
            raise ValueError("ConvergenceCriterion: give loss_tol, grad_tol or both")
        for name, value in (("loss_tol", loss_tol), ("grad_tol", grad_tol)):
            if value is not None and not value > 0:
                raise ValueError(f"ConvergenceCriterion: {name} must be > 0, got {value}")
        self.loss_tol = loss_tol
        self.grad_tol = grad_tol
        self.monitor = monitor
        self.min_epochs = min_epochs
        self._reader = _Monitor("ConvergenceCriterion", monitor)

    def on_train_begin(self, logs=None) -> None:
        self.previous: float | None = None
        self.grad_norms: list[float] = []
        self.converged_epoch: int | None = None
        self._norm_sum, self._norm_count = 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._norm_sum, self._norm_count = 0.0, 0

    def on_batch_end(self, step, logs=None):
        if self.grad_tol is not None:
            self._norm_sum += _grad_norm(self.model.parameters())
            self._norm_count += 1

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        reasons = []
        if self.grad_tol is not None and self._norm_count:
            norm = self._norm_sum / self._norm_count
            self.grad_norms.append(norm)
            logs["grad_norm"] = norm
            if norm < self.grad_tol:
                reasons.append(f"||grad L|| = {norm:.3g} < {self.grad_tol:g}")
        value = self._reader.get(logs) if self.loss_tol is not None else None
        if value is not None:
            if self.previous is not None and abs(value - self.previous) < self.loss_tol:
                reasons.append(f"|L_k - L_(k-1)| = {abs(value - self.previous):.3g} < {self.loss_tol:g}")
            self.previous = value
        done = epoch + 1 - self.trainer.initial_epoch >= self.min_epochs
        if reasons and done:
            self.converged_epoch = epoch
            self.trainer.stop_training = True
            self.trainer.stop_reason = (f"ConvergenceCriterion: converged after {_fmt_epoch(epoch)}: "
                                        + " and ".join(reasons))


class TerminateOnNaN(Callback):
    """Stop at the first batch whose loss is NaN or infinite, and put back the last good weights.

    The weights (and optimizer state) are copied at the start of every epoch -- one copy per
    epoch, cheap -- and every batch's loss is checked. When a loss is not finite, training stops,
    the model and optimizer are restored to the start of that epoch (the end of the last complete
    one), and the stop reason names the epoch and step that diverged, e.g.::

        TerminateOnNaN: the loss became nan at epoch 3, batch 17 (step 1055); restored the
        weights from the start of epoch 3

    ``diverged_epoch`` / ``diverged_step`` (0-based) keep where it happened.
    """

    def __init__(self, restore: bool = True):
        super().__init__()
        self.restore = restore
        self.diverged_epoch = None
        self.diverged_step = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.restore:
            self._weights = _copy_state(self.model)
            opt = self.trainer.optimizer
            self._optimizer = opt.state_dict() if opt is not None else None

    def on_batch_end(self, step, logs=None):
        loss = (logs or {}).get("batch_loss")
        if loss is None or math.isfinite(loss):
            return
        t = self.trainer
        self.diverged_epoch, self.diverged_step = t.epoch, step
        where = f"epoch {t.epoch + 1}, batch {step + 1} (step {t.global_step})"
        message = f"TerminateOnNaN: the loss became {loss} at {where}"
        if self.restore:
            _restore_state(self.model, self._weights)
            if self._optimizer is not None:
                t.optimizer.load_state_dict(self._optimizer)
            message += f"; restored the weights from the start of epoch {t.epoch + 1}"
        t.stop_training = True
        t.stop_reason = message


# --------------------------------------------------------------------------------------------------
# learning rate
# --------------------------------------------------------------------------------------------------

def _is_plateau(scheduler) -> bool:
    return type(scheduler).__name__ == "ReduceLROnPlateau" or (
        hasattr(scheduler, "num_bad_epochs") and hasattr(scheduler, "best"))


def _default_per(scheduler) -> str:
    """Schedulers designed to step every batch (OneCycleLR, CyclicLR) -> 'batch', else 'epoch'."""
    return "batch" if type(scheduler).__name__ in ("OneCycleLR", "CyclicLR") else "epoch"


class LRSchedulerCallback(Callback):
    """Step a learning-rate scheduler after every epoch (``per='epoch'``) or batch (``per='batch'``).

    ``ReduceLROnPlateau`` is stepped with the epoch's ``monitor`` value (default ``val_loss``;
    ``loss`` if there is no validation set). ``per=None`` picks 'batch' for ``OneCycleLR`` (which
    is defined per step) and 'epoch' for the others. ``fit(..., scheduler=s)`` adds one for you.

    >>> import chainrule as cr
    >>> from chainrule import nn, optim
    >>> from chainrule.train import LRSchedulerCallback
    >>> opt = optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
    >>> cb = LRSchedulerCallback(optim.lr_scheduler.StepLR(opt, step_size=10))
    """

    order = -10

    def __init__(self, scheduler, per: str | None = None, monitor: str = "val_loss"):
        super().__init__()
        per = _default_per(scheduler) if per is None else per
        if per not in ("epoch", "batch"):
            raise ValueError(f"LRSchedulerCallback: per must be 'epoch' or 'batch', got {per!r}")
        if per == "batch" and _is_plateau(scheduler):
            raise ValueError("LRSchedulerCallback: ReduceLROnPlateau needs an epoch metric: use per='epoch'")
        self.scheduler = scheduler
        self.per = per
        self.monitor = monitor
        self._warned = False

    def on_batch_end(self, step, logs=None):
        if self.per == "batch":
            self.scheduler.step()

    def on_epoch_end(self, epoch, logs=None):
        if self.per != "epoch":
            return
        if _is_plateau(self.scheduler):
            logs = logs or {}
            value = logs.get(self.monitor)
            if value is None:
                fallback = "loss" if self.monitor.startswith("val_") else None
                if not self._warned:
                    self._warned = True
                    warnings.warn(f"LRSchedulerCallback: {self.monitor!r} is not in the logs; "
                                  f"ReduceLROnPlateau uses {fallback!r} instead", RuntimeWarning,
                                  stacklevel=2)
                value = logs.get(fallback) if fallback else None
            if value is not None:
                self.scheduler.step(value)
        else:
            self.scheduler.step()


# --------------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------------

class ModelCheckpoint(Callback):
    """Save resumable checkpoints into ``dirpath`` after every epoch, atomically.

    * ``last.safetensors`` (``save_last``): the state after the latest epoch -- model, optimizer,
      scheduler, epoch, step, RNG state and the history -- everything ``fit(resume=...)`` needs
      to continue exactly where it stopped.
    * ``best.safetensors`` (``save_best``): the same, from the epoch with the best ``monitor``
      (``val_loss`` by default; ``mode`` 'auto' maximises accuracies).

    ``save_best_only=True`` (Keras' name) writes only ``best.safetensors``.

    Files are written to a temporary file and renamed into place, so an interrupted save (a
    crash, Ctrl-C) leaves the previous checkpoint intact. ``extra`` (a dict, or a function
    returning one) is stored in every checkpoint (the CLI keeps the architecture there).

    >>> from chainrule.train import ModelCheckpoint
    >>> ckpt = ModelCheckpoint("runs/mnist", monitor="val_accuracy")
    """

    order = 10

    def __init__(self, dirpath, save_last: bool = True, save_best: bool = True, monitor: str = "val_loss",
                 mode: str = "auto", extra: dict | Callable[[], dict] | None = None, verbose: int = 0,
                 save_best_only: bool = False):
        super().__init__()
        self.dirpath = os.fspath(dirpath)
        self.save_last = save_last and not save_best_only
        self.save_best = save_best or save_best_only
        self.monitor = monitor
        self.mode = _resolve_mode(mode, monitor)
        self.extra = extra
        self.verbose = verbose
        self.best = None
        self.best_epoch = None
        self._reader = _Monitor("ModelCheckpoint", monitor)

    @property
    def last_path(self) -> str:
        return os.path.join(self.dirpath, "last.safetensors")

    @property
    def best_path(self) -> str:
        return os.path.join(self.dirpath, "best.safetensors")

    def on_train_begin(self, logs=None):
        os.makedirs(self.dirpath, exist_ok=True)
        resumed = (self.trainer.resume_info or {}).get("extra", {}).get("model_checkpoint", {})
        if resumed.get("monitor") == self.monitor:
            self.best, self.best_epoch = resumed.get("best"), resumed.get("best_epoch")

    def _extra(self) -> dict:
        extra = self.extra() if callable(self.extra) else dict(self.extra or {})
        extra["history"] = self.trainer.history.to_dict()
        extra["model_checkpoint"] = {"monitor": self.monitor, "best": self.best,
                                     "best_epoch": self.best_epoch}
        return extra

    def _save(self, path: str, epoch: int) -> None:
        from ..io import save_checkpoint

        t = self.trainer
        save_checkpoint(path, t.model, t.optimizer, t.scheduler, epoch=epoch + 1, step=t.global_step,
                        extra=self._extra(), loader=t.train_loader)
        if self.verbose:
            print(f"ModelCheckpoint: saved {path}")

    def on_epoch_end(self, epoch, logs=None):
        improved = False
        if self.save_best:
            value = self._reader.get(logs)
            if _improved(value, self.best, self.mode, 0.0):
                self.best, self.best_epoch, improved = float(value), epoch, True
        if self.save_last:
            self._save(self.last_path, epoch)
        if improved:
            self._save(self.best_path, epoch)


class CSVLogger(Callback):
    """Append each epoch's logs as a row of a CSV file (header written once).

    ``append=True`` keeps an existing file (for resumed runs). The file is flushed after every
    row, so it can be followed while training runs.
    """

    def __init__(self, filename, separator: str = ",", append: bool = False):
        super().__init__()
        self.filename = os.fspath(filename)
        self.separator = separator
        self.append = append
        self._file = None
        self._writer = None
        self._keys = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._file = open(self.filename, "a" if self.append else "w", newline="", encoding="utf-8")
        self._keys = None
        if exists:
            with open(self.filename, encoding="utf-8") as f:
                first = f.readline().strip()
            self._keys = first.split(self.separator)[1:] if first else None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = list(logs)
            self._writer = csv.writer(self._file, delimiter=self.separator)
            self._writer.writerow(["epoch", *self._keys])
        if self._writer is None:
            self._writer = csv.writer(self._file, delimiter=self.separator)
        self._writer.writerow([epoch, *(logs.get(k, "") for k in self._keys)])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None
