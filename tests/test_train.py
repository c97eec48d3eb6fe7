"""chainrule.train: fit / evaluate / predict, the History, metrics and every callback."""

from __future__ import annotations

import io
import math
import os

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import DataLoader, TensorDataset, toy
from chainrule.io import load_checkpoint, read_checkpoint
from chainrule.train import (
    Accuracy,
    Callback,
    ConvergenceCriterion,
    CSVLogger,
    EarlyStopping,
    History,
    LambdaCallback,
    LRSchedulerCallback,
    ModelCheckpoint,
    ProgressBar,
    TerminateOnNaN,
    accuracy,
    evaluate,
    fit,
    predict,
)
from chainrule.train.metrics import MeanAbsoluteError, MeanSquaredError, get_metric


def _spirals(n=300, batch_size=32, seed=0):
    X, y = toy.spirals(n, classes=3, seed=seed)
    return DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)


def _classifier(seed=0, hidden=32):
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, 3))


def _weights(model) -> dict[str, np.ndarray]:
    return {k: v.data.copy() for k, v in model.state_dict().items()}


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


class Script(Callback):
    """Puts a scripted value into each epoch's logs, before any other callback reads them."""

    order = -20

    def __init__(self, key, values):
        super().__init__()
        self.key, self.values = key, list(values)

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]


# --------------------------------------------------------------------------------------------------
# fit and the History
# --------------------------------------------------------------------------------------------------

def test_fit_learns_and_fills_the_history():
    loader = _spirals()
    model = _classifier()
    opt = optim.Adam(model.parameters(), lr=0.01)
    history = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=40, val_loader=loader, verbose=0)
    assert isinstance(history, History)
    assert history.epoch == list(range(40))
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "samples_per_sec", "time"):
        assert len(history.history[key]) == 40, key
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.9
    assert all(v == 0.01 for v in history.history["lr"])
    assert all(v > 0 for v in history.history["samples_per_sec"])
    assert all(v > 0 for v in history.history["time"])
    assert history.note is None
    assert "loss" in repr(history)
    assert model.training                                 # fit leaves the model in train mode


def test_the_plain_pytorch_loop_works_too():
    loader = _spirals()
    model = _classifier()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for _ in range(30):
        model.train()
        total = 0.0
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(x)
        losses.append(total / 300)
    assert losses[-1] < 0.5 * losses[0]
    assert evaluate(model, loader)["accuracy"] > 0.85


def test_xor_needs_a_hidden_layer():
    """The lectures' classic: a 2-4-1 tanh network learns XOR; a single linear layer cannot."""
    X, y = toy.xor()
    y = y.float().reshape(-1, 1)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)           # full batch
    loss_fn = nn.BCEWithLogitsLoss()

    cr.manual_seed(1)
    net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    fit(net, loss_fn, optim.Adam(net.parameters(), lr=0.05), loader, epochs=500, verbose=0)
    assert evaluate(net, loader, loss_fn)["accuracy"] == 1.0

    cr.manual_seed(1)
    linear = nn.Linear(2, 1)
    fit(linear, loss_fn, optim.Adam(linear.parameters(), lr=0.05), loader, epochs=500, verbose=0)
    result = evaluate(linear, loader, loss_fn)
    assert result["accuracy"] <= 0.75
    assert result["loss"] > 0.6                 # stuck near log(2): no line separates XOR


def test_epochs_zero_and_bad_epochs():
    model = _classifier()
    opt = optim.SGD(model.parameters(), lr=0.1)
    h = fit(model, nn.CrossEntropyLoss(), opt, _spirals(), epochs=0, verbose=0)
    assert len(h) == 0
    with pytest.raises(ValueError, match="epochs"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), _spirals(), epochs=-1)


def test_loader_must_yield_pairs():
    X = cr.randn(8, 2)
    loader = DataLoader(TensorDataset(X), batch_size=4)
    model = nn.Linear(2, 3)
    with pytest.raises(ValueError, match="pairs"):
        fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), loader, epochs=1, verbose=0)


# --------------------------------------------------------------------------------------------------
# evaluate, predict, metrics
# --------------------------------------------------------------------------------------------------

def test_evaluate_matches_a_manual_computation():
    X, y = toy.spirals(200, classes=3, seed=1)
    loader = DataLoader(TensorDataset(X, y), batch_size=64)          # uneven last batch: 8 samples
    model = _classifier()
    model.train()
    result = evaluate(model, loader, nn.CrossEntropyLoss())
    with cr.no_grad():
        logits = model(X)
        loss = nn.CrossEntropyLoss()(logits, y).item()
    assert result["loss"] == pytest.approx(loss, rel=1e-5)
    assert result["accuracy"] == pytest.approx(np.mean(logits.data.argmax(1) == y.data))
    assert model.training                                      # the mode is restored
    assert evaluate(model, loader, metrics=()) == {}


def test_evaluate_turns_dropout_off():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 64), nn.Dropout(0.5), nn.Linear(64, 3))
    loader = DataLoader(TensorDataset(*toy.spirals(100, classes=3, seed=0)), batch_size=100)
    a = evaluate(model, loader, nn.CrossEntropyLoss())
    b = evaluate(model, loader, nn.CrossEntropyLoss())
    assert a == b


def test_predict_on_tensors_arrays_and_loaders():
    model = _classifier()
    X, y = toy.spirals(100, classes=3, seed=0)
    out = predict(model, X, batch_size=7)
    assert isinstance(out, cr.Tensor) and tuple(out.shape) == (100, 3)
    with cr.no_grad():
        np.testing.assert_allclose(out.data, model(X).data, atol=1e-6)     # BLAS rounds per batch shape
    np.testing.assert_array_equal(predict(model, X.data, batch_size=7).data, out.data)
    from_loader = predict(model, DataLoader(TensorDataset(X, y), batch_size=33))
    np.testing.assert_allclose(from_loader.data, out.data, atol=1e-6)
    with pytest.raises(ValueError):
        predict(model, X, batch_size=0)


def test_metrics():
    assert accuracy(cr.tensor([[0.1, 0.9], [0.8, 0.2]]), cr.tensor([1, 1])) == 0.5
    # one-hot targets
    assert accuracy(cr.tensor([[0.1, 0.9], [0.8, 0.2]]), cr.tensor([[0.0, 1.0], [1.0, 0.0]])) == 1.0
    # binary: probabilities (threshold 0.5), logits (threshold 0), tanh outputs with -1/+1 targets
    assert accuracy(cr.tensor([0.9, 0.2, 0.6]), cr.tensor([1.0, 0.0, 0.0])) == pytest.approx(2 / 3)
    assert accuracy(cr.tensor([[3.0], [-2.0]]), cr.tensor([[1.0], [0.0]])) == 1.0
    assert accuracy(cr.tensor([0.7, -0.4]), cr.tensor([1.0, -1.0])) == 1.0
    acc = Accuracy()
    acc.update(cr.tensor([[1.0, 0.0]] * 10), cr.tensor([0] * 10))     # batch of 10, all right
    acc.update(cr.tensor([[1.0, 0.0]] * 30), cr.tensor([1] * 30))     # batch of 30, all wrong
    assert acc.compute() == 0.25                                        # weighted by samples
    mse, mae = MeanSquaredError(), MeanAbsoluteError()
    for m in (mse, mae):
        m.update(cr.tensor([1.0, 2.0]), cr.tensor([0.0, 4.0]))
    assert mse.compute() == 2.5 and mae.compute() == 1.5
    assert get_metric("mse").name == "mse"
    with pytest.raises(ValueError, match="unknown metric"):
        get_metric("f1")


def test_regression_with_mse_metric():
    X = cr.linspace(-1, 1, 64).reshape(-1, 1)
    y = 3 * X + 1
    loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
    model = nn.Linear(1, 1)
    h = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), loader, epochs=100, metrics=["mae"],
            verbose=0)
    assert h.history["mae"][-1] < 1e-2
    assert model.weight.item() == pytest.approx(3.0, abs=1e-2)


# --------------------------------------------------------------------------------------------------
# progress output
# --------------------------------------------------------------------------------------------------

def test_verbose_modes(capsys):
    loader = _spirals(60)
    model = _classifier()
    opt = optim.SGD(model.parameters(), lr=0.1)
    fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=3, verbose=0)
    assert capsys.readouterr().out == ""
    fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=3, val_loader=loader, verbose=2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("Epoch 1/3") and "loss" in lines[0] and "val accuracy" in lines[0]
    assert "samples/s" in lines[0]
    # verbose=1 without a terminal: the same one line per epoch, no bar
    fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=2, verbose=1)
    out = capsys.readouterr()
    assert len(out.out.strip().splitlines()) == 2 and "\r" not in out.err


class _FakeTTY(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal():
    pytest.importorskip("tqdm")
    bar, lines = _FakeTTY(), io.StringIO()
    model = _classifier()
    fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), _spirals(), epochs=2,
        callbacks=[ProgressBar(1, val_label="test", file=lines, bar_file=bar)], val_loader=_spirals())
    assert "Epoch 1/2" in bar.getvalue() and "batch" in bar.getvalue()
    text = lines.getvalue()
    assert len(text.strip().splitlines()) == 2 and "test loss" in text


# --------------------------------------------------------------------------------------------------
# stopping rules
# --------------------------------------------------------------------------------------------------

def test_early_stopping_stops_and_restores_the_best_weights():
    loader = _spirals()
    model = _classifier()
    snapshots = {}
    keep = LambdaCallback(on_epoch_end=lambda epoch, logs: snapshots.__setitem__(epoch, _weights(model)))
    stop = EarlyStopping(monitor="score", patience=2, restore_best_weights=True, mode="min")
    h = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.01), loader, epochs=20,
            callbacks=[Script("score", [1.0, 0.5, 0.7, 0.6, 0.9, 0.1] + [1] * 14), keep, stop], verbose=0)
    assert h.epoch == [0, 1, 2, 3]                  # best at epoch 1, then 2 epochs without improvement
    assert stop.best == 0.5 and stop.best_epoch == 1 and stop.stopped_epoch == 3
    assert "EarlyStopping" in h.note and "score" in h.note
    assert _equal(_weights(model), snapshots[1])
    assert not _equal(snapshots[3], snapshots[1])


def test_early_stopping_min_delta_and_max_mode():
    model = _classifier()
    opt = optim.SGD(model.parameters(), lr=0.0)
    # improvements smaller than min_delta do not count
    stop = EarlyStopping(monitor="score", patience=1, min_delta=0.1)
    scores = [1.0, 0.95, 0.5, 0.45, 0.44, 0.43, 0.4, 0.3, 0.2, 0.1]
    h = fit(model, nn.CrossEntropyLoss(), opt, _spirals(60), epochs=10,
            callbacks=[Script("score", scores), stop], verbose=0)
    assert h.epoch == [0, 1]
    # 'auto' maximises accuracies
    stop = EarlyStopping(monitor="val_accuracy", patience=0)
    h = fit(model, nn.CrossEntropyLoss(), opt, _spirals(60), epochs=10,
            callbacks=[Script("val_accuracy", [0.5, 0.6, 0.6] + [0.0] * 7), stop], verbose=0)
    assert h.epoch == [0, 1, 2] and stop.mode == "max"


def test_early_stopping_warns_without_its_metric():
    model = _classifier()
    with pytest.warns(RuntimeWarning, match="val_loss"):
        h = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), _spirals(60), epochs=3,
                callbacks=[EarlyStopping()], verbose=0)
    assert len(h) == 3


def test_convergence_criterion_loss_tolerance():
    """Full-batch gradient descent on least squares: |L_k - L_(k-1)| < eps stops it."""
    X = cr.from_numpy(np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32))
    y = X @ cr.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    loader = DataLoader(TensorDataset(X, y), batch_size=50)
    model = nn.Linear(3, 1)
    crit = ConvergenceCriterion(loss_tol=1e-7)
    h = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), loader, epochs=5000, metrics=(),
            callbacks=[crit], verbose=0)
    assert 10 < len(h) < 5000
    assert abs(h.history["loss"][-1] - h.history["loss"][-2]) < 1e-7
    assert crit.converged_epoch == h.epoch[-1]
    assert "ConvergenceCriterion" in h.note and "L_k" in h.note


def test_convergence_criterion_gradient_tolerance():
    X = cr.from_numpy(np.random.default_rng(0).standard_normal((50, 3)).astype(np.float32))
    y = X @ cr.tensor([[1.0], [-2.0], [0.5]])
    loader = DataLoader(TensorDataset(X, y), batch_size=50)
    model = nn.Linear(3, 1)
    crit = ConvergenceCriterion(grad_tol=1e-3)
    h = fit(model, nn.MSELoss(), optim.SGD(model.parameters(), lr=0.1), loader, epochs=5000, metrics=(),
            callbacks=[crit], verbose=0)
    assert len(h) < 5000
    assert h.history["grad_norm"][-1] < 1e-3 <= h.history["grad_norm"][-2]
    assert "grad L" in h.note
    with pytest.raises(ValueError):
        ConvergenceCriterion()


def test_terminate_on_nan_restores_the_last_good_weights():
    loader = DataLoader(TensorDataset(*toy.spirals(160, classes=3, seed=0)), batch_size=32, shuffle=True)
    model = _classifier()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    calls = {"n": 0}
    base = nn.CrossEntropyLoss()

    def loss_fn(output, target):             # the 13th batch (epoch 3, batch 3) diverges
        calls["n"] += 1
        loss = base(output, target)
        return loss * float("nan") if calls["n"] == 13 else loss

    starts = {}
    record = LambdaCallback(on_epoch_begin=lambda epoch, logs: starts.__setitem__(epoch, _weights(model)))
    guard = TerminateOnNaN()
    h = fit(model, loss_fn, opt, loader, epochs=10, callbacks=[record, guard], verbose=0)
    assert h.epoch == [0, 1]                                    # epochs 1 and 2 completed
    assert guard.diverged_epoch == 2 and guard.diverged_step == 2
    assert "epoch 3, batch 3 (step 13)" in h.note and "nan" in h.note
    assert _equal(_weights(model), starts[2])
    assert all(np.isfinite(p.data).all() for p in model.parameters())
    buffers = [opt.state[p]["momentum_buffer"].data for p in model.parameters()]
    assert all(np.isfinite(b).all() for b in buffers)          # optimizer state restored as well


# --------------------------------------------------------------------------------------------------
# learning-rate schedules
# --------------------------------------------------------------------------------------------------

def test_scheduler_per_epoch_and_per_batch():
    loader = _spirals(64, batch_size=16)                  # 4 batches per epoch
    model = _classifier()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    h = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=5, scheduler=sched, verbose=0)
    assert h.history["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, epochs=3, steps_per_epoch=4)
    fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=3, scheduler=sched, verbose=0)
    assert sched.last_epoch == 12                         # OneCycleLR is stepped every batch

    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)
    fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=2,
        callbacks=[LRSchedulerCallback(sched, per="batch")], verbose=0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 8)


def test_reduce_lr_on_plateau_gets_the_metric():
    model = _classifier()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    h = fit(model, nn.CrossEntropyLoss(), opt, _spirals(60), epochs=5,
            callbacks=[Script("score", [1.0, 0.5, 0.5, 0.5, 0.2]),
                       LRSchedulerCallback(sched, monitor="score")], verbose=0)
    assert h.history["lr"] == [0.1, 0.1, 0.1, 0.05, 0.025]
    assert opt.param_groups[0]["lr"] == 0.025                # epoch 5 improved: no further cut
    with pytest.raises(ValueError, match="epoch"):
        LRSchedulerCallback(sched, per="batch")


# --------------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------------

def test_model_checkpoint_writes_last_and_best(tmp_path):
    model = _classifier()
    opt = optim.Adam(model.parameters(), lr=0.01)
    ck = ModelCheckpoint(tmp_path / "ck", monitor="score", extra={"run": "test"})
    h = fit(model, nn.CrossEntropyLoss(), opt, _spirals(), epochs=5,
            callbacks=[Script("score", [0.9, 0.5, 0.7, 0.4, 0.6]), ck], verbose=0)
    assert sorted(os.listdir(tmp_path / "ck")) == ["best.safetensors", "last.safetensors"]   # no temp files
    last, best = read_checkpoint(ck.last_path), read_checkpoint(ck.best_path)
    assert last["epoch"] == 5 and best["epoch"] == 4          # best score 0.4 after the 4th epoch
    assert last["step"] == 5 * 10
    assert last["extra"]["run"] == "test"
    assert last["extra"]["history"]["history"]["loss"] == h.history["loss"]
    other = _classifier(seed=9)
    load_checkpoint(ck.last_path, other, optim.Adam(other.parameters()))
    assert _equal(_weights(other), _weights(model))


def test_keyboard_interrupt_returns_the_history_and_keeps_the_checkpoint(tmp_path):
    model = _classifier()

    def interrupt(step, logs):
        if len(history_epochs) == 2 and step == 3:
            raise KeyboardInterrupt

    history_epochs = []
    ck = ModelCheckpoint(tmp_path)
    h = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), _spirals(), epochs=10,
            val_loader=_spirals(),
            callbacks=[LambdaCallback(on_epoch_end=lambda e, logs: history_epochs.append(e),
                                      on_batch_end=interrupt), ck], verbose=0)
    assert h.epoch == [0, 1]
    assert "KeyboardInterrupt" in h.note and "epoch 3" in h.note and "intact" in h.note
    assert read_checkpoint(ck.last_path)["epoch"] == 2


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    model = _classifier()
    opt = optim.SGD(model.parameters(), lr=0.1)
    fit(model, nn.CrossEntropyLoss(), opt, _spirals(60), epochs=3, callbacks=[CSVLogger(path)], verbose=0)
    fit(model, nn.CrossEntropyLoss(), opt, _spirals(60), epochs=2, callbacks=[CSVLogger(path, append=True)],
        verbose=0)
    rows = path.read_text().strip().splitlines()
    assert rows[0].startswith("epoch,loss,accuracy,lr")
    assert len(rows) == 1 + 3 + 2
    assert all(math.isfinite(float(r.split(",")[1])) for r in rows[1:])


def test_callback_order_puts_schedulers_first_and_checkpoints_last(tmp_path):
    model = _classifier()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    ck = ModelCheckpoint(tmp_path, save_best=False)
    fit(model, nn.CrossEntropyLoss(), opt, _spirals(60), epochs=2, callbacks=[ck, LRSchedulerCallback(sched)],
        verbose=0)
    saved = read_checkpoint(ck.last_path)
    assert saved["scheduler"]["state"]["last_epoch"] == 2               # saved after the scheduler's step
    assert saved["optimizer"]["param_groups"][0]["lr"] == 0.025
