"""Porting checks: data, optim, schedulers and fit callbacks behave as in PyTorch (and Keras for fit)."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import DataLoader, TensorDataset, default_collate, default_convert
from chainrule.optim import lr_scheduler as lrs
from chainrule.train import Callback, EarlyStopping, ModelCheckpoint, fit

torch = pytest.importorskip("torch")
tdata = torch.utils.data

OPTIMIZERS = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]
SCHEDULERS = ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau",
              "LambdaLR", "LinearLR"]


def _positional(fn) -> list[str]:
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [n for n, p in inspect.signature(fn).parameters.items() if p.kind in kinds]


# ---- signatures ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("ours, theirs", [(DataLoader, tdata.DataLoader)]
                         + [(getattr(optim, n), getattr(torch.optim, n)) for n in OPTIMIZERS]
                         + [(getattr(lrs, n), getattr(torch.optim.lr_scheduler, n)) for n in SCHEDULERS],
                         ids=["DataLoader"] + OPTIMIZERS + SCHEDULERS)
def test_every_torch_argument_is_accepted_with_its_default_and_position(ours, theirs):
    """Each torch argument exists with torch's default, and torch's positional arguments keep their order."""
    ps, tps = inspect.signature(ours).parameters, inspect.signature(theirs).parameters
    missing = [n for n in tps if n not in ps]
    assert not missing, f"{ours.__name__} lacks {missing}"
    for name, p in tps.items():
        if p.default is not inspect.Parameter.empty:
            assert ps[name].default == p.default, name
    theirs_pos = _positional(theirs)
    assert _positional(ours)[:len(theirs_pos)] == theirs_pos


# ---- data ---------------------------------------------------------------------------------------------

def _plain(x):
    """Batches of either library as nested Python values with dtype names."""
    if isinstance(x, (cr.Tensor, torch.Tensor)):
        return str(x.dtype).removeprefix("torch."), x.tolist()
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return [_plain(v) for v in x]
    return x


def test_batch_size_none_yields_single_converted_samples_like_torch():
    """batch_size=None turns batching off: samples one by one, arrays converted, numbers left as is."""
    data = [({"x": np.full(2, i, np.float32)}, i, np.int32(i)) for i in range(5)]
    cr.manual_seed(0)
    ours = DataLoader(data, batch_size=None)
    theirs = tdata.DataLoader(data, batch_size=None)
    assert len(ours) == len(theirs) == 5
    assert [_plain(s) for s in ours] == [_plain(s) for s in theirs]
    assert isinstance(next(iter(ours))[1], int)
    assert sorted(s[1] for s in DataLoader(data, batch_size=None, shuffle=True)) == list(range(5))
    assert [s for s in DataLoader(range(3), batch_size=None, sampler=[2, 0])] == [2, 0]
    with pytest.raises(ValueError, match="drop_last"):
        DataLoader(data, batch_size=None, drop_last=True)
    assert default_convert([np.array(["a"]), "b"])[1] == "b"


@pytest.mark.parametrize("kwargs", [
    {"batch_size": 3}, {"batch_size": 3, "drop_last": True}, {"batch_size": 4, "sampler": [6, 1, 3, 0, 5]},
    {"batch_size": 2, "sampler": range(6, -1, -2), "drop_last": True}, {"batch_sampler": [[3], [0, 6, 1]]},
], ids=["plain", "drop_last", "sampler", "sampler_drop_last", "batch_sampler"])
def test_unshuffled_batches_and_len_match_torch(kwargs):
    """Batch contents, order, last-batch size and len(loader) are torch's for every way of batching."""
    X = np.arange(14, dtype=np.float32).reshape(7, 2)
    y = np.arange(7)
    ours = DataLoader(TensorDataset(cr.from_numpy(X), cr.from_numpy(y)), **kwargs)
    theirs = tdata.DataLoader(tdata.TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), **kwargs)
    assert [_plain(b) for b in ours] == [_plain(b) for b in theirs]
    assert len(ours) == len(theirs)


def test_default_collate_python_floats_are_float32_a_documented_difference():
    """Python float samples collate to float32 (torch: float64): README's differences list says why."""
    assert default_collate([0.5, 1.5]).dtype == np.float32
    assert default_collate([np.float64(0.5)]).dtype == np.float64   # a float64 NumPy value keeps its dtype


# ---- optimizers ---------------------------------------------------------------------------------------

def _grads(seed, shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _to_torch(v):
    if isinstance(v, cr.Tensor):
        return torch.from_numpy(v.numpy().copy())
    if isinstance(v, dict):
        return {k: _to_torch(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_to_torch(x) for x in v]
    return v


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "fused": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "foreach": False}),
    ("AdamW", {"lr": 0.01, "fused": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "foreach": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "foreach": False}),
])
def test_state_dict_loads_into_torch_and_training_continues_identically(name, kwargs):
    """torch's switches are accepted and kept; torch loads our state_dict and takes the same next steps."""
    shapes = [(3, 4), (4,)]
    init = _grads(0, shapes)
    ps = [nn.Parameter(cr.from_numpy(w.copy())) for w in init]
    tps = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in init]
    opt, topt = getattr(optim, name)(ps, **kwargs), getattr(torch.optim, name)(tps, **kwargs)
    assert set(opt.param_groups[0]) == set(topt.param_groups[0])
    for k in range(3):
        for p, g in zip(ps, _grads(k + 1, shapes), strict=True):
            p.grad = cr.from_numpy(g)
        opt.step()
    resumed = [torch.nn.Parameter(torch.from_numpy(p.data.copy())) for p in ps]
    topt = getattr(torch.optim, name)(resumed, **kwargs)
    topt.load_state_dict(_to_torch(opt.state_dict()))
    for k in range(3, 6):
        grads = _grads(k + 1, shapes)
        for p, q, g in zip(ps, resumed, grads, strict=True):
            p.grad, q.grad = cr.from_numpy(g), torch.from_numpy(g.copy())
        opt.step()
        topt.step()
    for p, q in zip(ps, resumed, strict=True):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_differentiable_is_refused_and_fused_with_foreach_is_an_error():
    """differentiable=True can't be honoured (NumPy steps) and fused+foreach is torch's error too."""
    p = nn.Parameter(cr.ones(2))
    with pytest.raises(ValueError, match="differentiable"):
        optim.Adam([p], differentiable=True)
    with pytest.raises(RuntimeError, match="fused"):
        optim.AdamW([p], fused=True, foreach=True)


# ---- schedulers ---------------------------------------------------------------------------------------

def _chained_lrs(lib, make_scheds, steps=30):
    mod = optim if lib is cr else torch.optim
    opt = mod.SGD([lib.nn.Parameter(lib.ones(1))], lr=0.1, momentum=0.9)
    scheds = make_scheds(opt, lrs if lib is cr else torch.optim.lr_scheduler)
    out = []
    for _ in range(steps):
        opt.step()
        for s in scheds:
            s.step()
        out.append([s.get_last_lr()[0] for s in scheds] + [opt.param_groups[0]["lr"]])
    return np.array(out), [s.last_epoch for s in scheds]


class _Warmup:
    """A user scheduler written for torch < 2.0 (subclassing ``_LRScheduler``), for both libraries."""

    @staticmethod
    def make(base):
        class Warmup(base):
            def get_lr(self):
                return [b * min(1.0, (self.last_epoch + 1) / 4) for b in self.base_lrs]
        return Warmup


@pytest.mark.parametrize("make_scheds", [
    lambda o, m: [m.LinearLR(o, start_factor=0.1, total_iters=5), m.ExponentialLR(o, gamma=0.9)],
    lambda o, m: [m.StepLR(o, step_size=5, gamma=0.5), m.CosineAnnealingLR(o, T_max=12, eta_min=0.001)],
    lambda o, m: [m.MultiStepLR(o, milestones=[4, 9, 9]), m.LambdaLR(o, lambda e: 0.97 ** e)],
    lambda o, m: [_Warmup.make(m._LRScheduler)(o)],
], ids=["linear+exp", "step+cosine", "multistep+lambda", "custom_LRScheduler"])
def test_chained_schedulers_match_torch_for_30_steps(make_scheds):
    """Two schedulers on one optimizer compose as in torch; a torch-style _LRScheduler subclass works."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # torch warns about _LRScheduler
        ours, our_epochs = _chained_lrs(cr, make_scheds)
        theirs, their_epochs = _chained_lrs(torch, make_scheds)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)
    assert our_epochs == their_epochs


# ---- fit and callbacks (Keras) ------------------------------------------------------------------------

def _keras_early_stopping(values, patience=0, min_delta=0.0, mode="min", baseline=None, start_from_epoch=0):
    """Keras 3's EarlyStopping.on_epoch_end, reduced to numbers: (stopped epoch or None, best epoch)."""
    delta = -abs(min_delta) if mode == "min" else abs(min_delta)

    def better(a, ref):
        return ref is None or (a - delta < ref if mode == "min" else a - delta > ref)

    best, best_epoch, wait = None, None, 0
    for epoch, value in enumerate(values):
        if epoch < start_from_epoch:
            continue
        wait += 1
        if better(value, best):
            best, best_epoch = value, epoch
            if baseline is None or better(value, baseline):
                wait = 0
            continue
        if wait >= patience and epoch > 0:
            return epoch, best_epoch
    return None, best_epoch


class _Scripted(Callback):
    """Puts a scripted val_loss into the logs and stamps the epoch number into the weights."""

    order = -5

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]
        self.model.weight.data[...] = epoch


def _tiny_fit(callbacks, epochs, metrics=(), val=False):
    cr.manual_seed(0)
    X, y = cr.randn(8, 2), cr.tensor([0, 1] * 4)
    loader = DataLoader(TensorDataset(X, y), batch_size=4)
    model = nn.Linear(2, 2)
    history = fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), loader, epochs=epochs,
                  val_loader=loader if val else None, metrics=metrics, callbacks=callbacks, verbose=0)
    return model, history


@pytest.mark.parametrize("values, kwargs", [
    ([0.9, 0.7, 0.8], {"patience": 2, "min_delta": 0.2}),                   # 0.7 + 0.2 < 0.9 in floats
    ([0.8, 0.6, 1.0, 0.4, 0.6, 0.6], {"patience": 0, "min_delta": 0.2}),    # 0.6 + 0.2 == 0.8: no improvement
    ([0.5, 0.4, 0.45, 0.3, 0.35, 0.36, 0.2], {"patience": 2}),
    ([0.9, 0.8, 0.7, 0.6, 0.55, 0.5], {"patience": 3, "baseline": 0.4}),   # never reaches the baseline
    ([0.9, 0.3, 0.35, 0.36, 0.1], {"patience": 2, "baseline": 0.5}),
    ([0.1, 0.9, 0.8, 0.85, 0.9, 0.95], {"patience": 1, "start_from_epoch": 2}),
])
def test_early_stopping_matches_keras(values, kwargs):
    """Stop epoch and restored weights follow Keras (min_delta arithmetic, baseline, start_from_epoch)."""
    stopped, best = _keras_early_stopping(values, **kwargs)
    stop = EarlyStopping(monitor="val_loss", restore_best_weights=True, **kwargs)
    model, history = _tiny_fit([_Scripted(values), stop], epochs=len(values))
    assert stop.stopped_epoch == stopped
    assert history.epoch == list(range(len(values) if stopped is None else stopped + 1))
    assert int(model.weight.data[0, 0]) == best


def test_acc_metric_keeps_its_name_like_keras():
    """metrics=['acc'] logs 'acc' and 'val_acc', so EarlyStopping(monitor='val_acc') finds its value."""
    stop = EarlyStopping(monitor="val_acc", patience=50)
    with warnings.catch_warnings():
        warnings.simplefilter("error")             # a missing monitor would warn
        _, history = _tiny_fit([stop], epochs=3, metrics=["acc"], val=True)
    assert {"acc", "val_acc", "loss", "val_loss"} <= set(history.history)
    assert stop.mode == "max" and stop.best == max(history.history["val_acc"])


def test_model_checkpoint_save_best_only(tmp_path):
    """save_best_only=True (Keras' name) writes best.safetensors only, from the best epoch by monitor/mode."""
    values = [0.5, 0.3, 0.4]
    ckpt = ModelCheckpoint(tmp_path, monitor="val_loss", mode="min", save_best_only=True)
    _tiny_fit([_Scripted(values), ckpt], epochs=3)
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["best.safetensors"]
    assert ckpt.best == 0.3 and ckpt.best_epoch == 1
    saved = cr.load(tmp_path / "best.safetensors")
    assert float(saved["model.weight"].numpy()[0, 0]) == 1.0
