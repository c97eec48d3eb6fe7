"""A wide sweep of ``TrainStep`` against the plain eager loop (complements ``test_train_step.py``).

Each case trains two copies of a model from the same seed on the same (different every step) batches: one
with ``zero_grad(); loss_fn(model(x), y).backward(); step()``, one with ``TrainStep``; losses, outputs,
parameters, gradients and optimizer state must agree bit for bit.  The tests after section 4 are the silent
mismatches the sweep found in the first version (replay gave other numbers than eager and did not refuse),
now fixed.
"""

from __future__ import annotations

import os
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import DataLoader, TensorDataset, toy
from chainrule.nn import functional as F
from chainrule.train import Callback, EarlyStopping, ModelCheckpoint, TerminateOnNaN, TrainStep, fit
from train_step_helpers import assert_same_runs, one_step

STEPS = 8

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _batches(steps, xshape, kind="cls", classes=3, dtype=np.float32, seed=1):
    """(x, y) ndarrays, a new random batch for every step; y: class indices, regression, 0/1 or probabilities."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        x = rng.standard_normal(xshape).astype(dtype)
        n = xshape[0]
        if kind == "cls":
            y = rng.integers(0, classes, n)
        elif kind == "spatial":
            y = rng.integers(0, classes, (n, 4))
        elif kind == "reg":
            y = rng.standard_normal((n, classes)).astype(dtype)
        elif kind == "bin":
            y = (rng.random((n, classes)) > 0.5).astype(dtype)
        else:                                              # "prob": rows of class probabilities, all > 0
            e = np.exp(rng.standard_normal((n, classes)))
            y = (e / e.sum(1, keepdims=True)).astype(dtype)
        out.append((x, y))
    return out


def _run(build, make_loss, make_opt, batches, *, eager, replay="auto", events=None, wrap=None):
    cr.manual_seed(0)
    model = build()
    loss_fn = make_loss()
    opt = make_opt(model.parameters())
    step = None if eager else TrainStep(model, loss_fn, opt, replay=replay)
    run = SimpleNamespace(model=model, opt=opt, loss_fn=loss_fn, step=step, losses=[], outputs=[])
    for i, (xb, yb) in enumerate(batches):
        if events and i in events:
            events[i](run)
        x, y = cr.tensor(xb), cr.tensor(yb)
        if wrap is not None:
            x, y = wrap(run, x, y)
        loss, out = one_step(step, model, loss_fn, opt, x, y)
        run.losses.append(loss.data.copy())
        run.outputs.append(out.data.copy())
    return run


def _both(build, make_loss, make_opt, batches, replay="auto", **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        eager = _run(build, make_loss, make_opt, batches, eager=True, **kw)
        stepped = _run(build, make_loss, make_opt, batches, eager=False, replay=replay, **kw)
    assert_same_runs(eager, stepped, equal_nan=True)
    return eager, stepped


def _adam(params):
    return optim.Adam(params, lr=0.01)


def _sgd(params):
    return optim.SGD(params, lr=0.05, momentum=0.9)


def _mlp(act=nn.Tanh, n_in=5, out=3):
    return lambda: nn.Sequential(nn.Linear(n_in, 16), act(), nn.Linear(16, out))


# --------------------------------------------------------------------------------------------------
# 1. chainrule's own modules and losses (replay="auto"): replayed and bit-identical
# --------------------------------------------------------------------------------------------------

def _tied():
    m = nn.Sequential(nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, 5), nn.Linear(5, 3))
    m[2].weight = m[0].weight
    return m


def _frozen_bias():
    m = _mlp()()
    m[2].bias.requires_grad_(False)
    return m


_IMG = (8, 1, 28, 28)


def _log_probs():
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3), nn.LogSoftmax(1))


AUTO = {
    "leaky_relu": (_mlp(lambda: nn.LeakyReLU(0.2)), nn.CrossEntropyLoss, _sgd, (32, 5), {}),
    "softplus": (_mlp(lambda: nn.Softplus(2.0, 1.0)), nn.CrossEntropyLoss, _sgd, (32, 5), {}),
    "elu": (_mlp(nn.ELU), nn.CrossEntropyLoss, _sgd, (32, 5), {}),
    "gelu_tanh": (_mlp(lambda: nn.GELU("tanh")), nn.CrossEntropyLoss, _sgd, (32, 5), {}),
    "softmax": (_mlp(lambda: nn.Softmax(1)), nn.CrossEntropyLoss, _sgd, (32, 5), {}),
    "heaviside_sign": (lambda: nn.Sequential(nn.Linear(5, 8), nn.Concat(nn.Heaviside(), nn.Sign(), nn.Identity()),
                                             nn.Linear(24, 3)), nn.CrossEntropyLoss, _sgd, (32, 5), {}),
    "flatten_unflatten_images": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.Unflatten(1, (2, -1)),
                                                       nn.ReLU(), nn.Flatten(), nn.Linear(32, 10)),
                                 nn.CrossEntropyLoss, _adam, _IMG, {"classes": 10}),
    "dropout_p0_p1": (lambda: nn.Sequential(nn.Linear(5, 16), nn.Dropout(0.0), nn.ReLU(), nn.Concat(
        nn.Dropout(1.0), nn.Identity()), nn.Linear(32, 3)), nn.CrossEntropyLoss, _sgd, (32, 5), {}),
    "no_bias": (lambda: nn.Sequential(nn.Linear(5, 16, bias=False), nn.ReLU(), nn.Linear(16, 3, bias=False)),
                nn.CrossEntropyLoss, _adam, (32, 5), {}),
    "tied_weights": (_tied, nn.CrossEntropyLoss, _adam, (32, 5), {}),
    "frozen_bias": (_frozen_bias, nn.CrossEntropyLoss, _adam, (32, 5), {}),
    "batch_of_one": (_mlp(), nn.CrossEntropyLoss, _adam, (1, 5), {}),
    "l1_sum": (_mlp(), lambda: nn.L1Loss(reduction="sum"), _adam, (32, 5), {"kind": "reg"}),
    "smooth_l1_beta0": (_mlp(), lambda: nn.SmoothL1Loss(beta=0.0), _adam, (32, 5), {"kind": "reg"}),
    "bce_weight": (lambda: nn.Sequential(nn.Linear(5, 3), nn.Sigmoid()),
                   lambda: nn.BCELoss(weight=cr.tensor([1.0, 2.0, 0.5])), _adam, (32, 5), {"kind": "bin"}),
    "bce_logits_weights": (_mlp(), lambda: nn.BCEWithLogitsLoss(weight=cr.tensor([1.0, 2.0, 0.5]),
                                                                pos_weight=cr.tensor([3.0, 1.0, 0.2]),
                                                                reduction="sum"), _adam, (32, 5), {"kind": "bin"}),
    "ce_probabilities": (_mlp(), lambda: nn.CrossEntropyLoss(weight=cr.tensor([1.0, 2.0, 0.5]), label_smoothing=0.2),
                         _adam, (32, 5), {"kind": "prob"}),
    "ce_spatial_sum": (lambda: nn.Sequential(nn.Linear(5, 12), nn.Unflatten(1, (3, 4))),
                       lambda: nn.CrossEntropyLoss(label_smoothing=0.1, reduction="sum"), _adam, (32, 5),
                       {"kind": "spatial"}),
    "nll_weight_ignore_sum": (lambda: nn.Sequential(nn.Linear(5, 3), nn.LogSoftmax(1)),
                              lambda: nn.NLLLoss(weight=cr.tensor([1.0, 2.0, 0.5]), ignore_index=0, reduction="sum"),
                              _adam, (32, 5), {}),
    "kl_div_batchmean": (_log_probs, lambda: nn.KLDivLoss(reduction="batchmean"), _adam, (32, 5), {"kind": "prob"}),
    "rmsprop_centered_momentum": (_mlp(), nn.CrossEntropyLoss,
                                  lambda p: optim.RMSprop(p, lr=0.01, centered=True, momentum=0.9, weight_decay=1e-3),
                                  (32, 5), {}),
    "adagrad": (_mlp(), nn.CrossEntropyLoss, lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01, weight_decay=1e-3),
                (32, 5), {}),
    "adamw_amsgrad": (_mlp(), nn.CrossEntropyLoss, lambda p: optim.AdamW(p, lr=0.01, amsgrad=True), (32, 5), {}),
    "sgd_maximize_dampening": (_mlp(), nn.CrossEntropyLoss,
                               lambda p: optim.SGD(p, lr=0.01, momentum=0.5, dampening=0.1, maximize=True),
                               (32, 5), {}),
}


@pytest.mark.parametrize("case", list(AUTO))
def test_builtin_case_replays_bit_identically(case):
    build, make_loss, make_opt, xshape, data = AUTO[case]
    _eager, stepped = _both(build, make_loss, make_opt, _batches(STEPS, xshape, **data))
    assert stepped.step.problem is None
    assert stepped.step.replays == STEPS - 2


def test_kl_div_log_target_replays_bit_identically():
    batches = [(x, np.log(y)) for x, y in _batches(STEPS, (32, 5), "prob")]
    _eager, stepped = _both(lambda: nn.Sequential(nn.Linear(5, 3), nn.LogSoftmax(1)),
                            lambda: nn.KLDivLoss(reduction="sum", log_target=True), _adam, batches)
    assert stepped.step.replays == STEPS - 2


@pytest.mark.parametrize("loss", [nn.MSELoss, nn.CrossEntropyLoss])
def test_a_non_scalar_loss_raises_as_eagerly(loss):
    kind = "reg" if loss is nn.MSELoss else "cls"
    x, y = _batches(1, (8, 5), kind)[0]
    for replay in ("auto", True, False):
        cr.manual_seed(0)
        model = _mlp()()
        step = TrainStep(model, loss(reduction="none"), _sgd(model.parameters()), replay=replay)
        for _ in range(3):
            with pytest.raises(RuntimeError, match="scalar outputs"):
                step(cr.tensor(x), cr.tensor(y))
        assert step.replays == 0


# --------------------------------------------------------------------------------------------------
# 2. changes between calls
# --------------------------------------------------------------------------------------------------

def _one_cycle(run):
    if not hasattr(run, "sched"):
        run.sched = optim.lr_scheduler.OneCycleLR(run.opt, max_lr=0.1, total_steps=STEPS + 1)
    else:
        run.sched.step()


def _set_lr(run):
    for g in run.opt.param_groups:
        g["lr"] = 0.3


def _to_float64(run):
    run.model.to(cr.float64)
    run.loss_fn.to(cr.float64)


def _snapshot(run):
    run.snap = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.osnap = run.opt.state_dict()


def _load_assign(run):
    run.model.load_state_dict(run.snap, assign=True)
    run.opt.load_state_dict(run.osnap)


def _no_grad_eval(run):
    with cr.no_grad():
        run.model(cr.randn(7, 5))


def _explain(run):
    out = run.model(cr.randn(4, 5))
    cr.explain(F.cross_entropy(out, cr.randint(0, 3, (4,))), print_table=False)


def _dropout_model():
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))


EVENTS = {
    "one_cycle_every_step": ({i: _one_cycle for i in range(STEPS)}, STEPS - 2),
    "lr_set_in_param_groups": ({3: _set_lr, 5: _set_lr}, STEPS - 2),
    "to_float64": ({4: _to_float64}, STEPS - 4),
    "load_state_dict_assign_and_optimizer_state": ({2: _snapshot, 5: _load_assign}, STEPS - 2),
    "no_grad_forward_between_steps": ({i: _no_grad_eval for i in range(2, STEPS)}, STEPS - 2),
    "explain_between_steps": ({i: _explain for i in range(2, STEPS)}, STEPS - 2),
}


@pytest.mark.parametrize("case", list(EVENTS))
def test_changes_between_calls_keep_replay_bit_identical(case):
    events, replays = EVENTS[case]
    batches = _batches(STEPS, (32, 5))
    if case == "to_float64":
        batches = [(x.astype(np.float64) if i >= 4 else x, y) for i, (x, y) in enumerate(batches)]

    def make_loss():
        return nn.CrossEntropyLoss(weight=cr.tensor([1.0, 2.0, 0.5]))

    _eager, stepped = _both(_dropout_model, make_loss, _adam, batches, events=events)
    assert stepped.step.problem is None
    assert stepped.step.replays == replays


# --------------------------------------------------------------------------------------------------
# 3. models of your own (replay=True)
# --------------------------------------------------------------------------------------------------

class _Base(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(6, 8)
        self.b = nn.Linear(8, 3)
        self.W = nn.Parameter(cr.randn(8, 8) * 0.1)
        self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8)])
        self.heads = nn.ModuleDict({"act": nn.Tanh()})


INDEX = np.array([0, 2])                      # constants the code keeps: the same objects in every call
MASK = cr.tensor(np.arange(8) % 2 == 0)

FORWARDS = {
    "modulelist_moduledict": lambda s, x: s.b(s.blocks[1](s.heads["act"](s.blocks[0](s.a(x)))) + s.a(x)),
    "view_permute_reshape": lambda s, x: s.b(s.a(x).view(16, 2, 4).permute(0, 2, 1).reshape(16, 8)),
    "cat_stack_slices": lambda s, x: s.b(cr.cat([s.a(x)[:, :4], cr.stack([s.a(x)[:, 4], s.a(x)[:, 7]], 1),
                                                s.a(x)[:, INDEX]], 1)),
    "expand_where_const": lambda s, x: s.b(cr.where(MASK, s.a(x), s.a(x) * s.W[0].expand(16, 8))),
    "clamp_pow_exp_log": lambda s, x: s.b(cr.log(cr.exp(s.a(x).clamp(-2, 2)) + 1) ** 2),
    "matmul_einsum": lambda s, x: s.b(cr.einsum("ij,jk->ik", s.a(x), s.W) + s.a(x) @ s.W.T),
    "branch_on_shape_and_attribute": lambda s, x: s.b(s.a(x) * (2 if x.shape[0] > 4 and s.training else 1)),
    "normalise": lambda s, x: s.b((s.a(x) - s.a(x).mean(1, keepdim=True)) / (s.a(x).std(1, keepdim=True) + 1e-5)),
    "functional_dropout": lambda s, x: s.b(F.dropout(s.a(x), 0.3, s.training)),
}


@pytest.mark.parametrize("case", list(FORWARDS))
def test_static_custom_forward_replays_bit_identically(case):
    model_cls = type("Model", (_Base,), {"forward": FORWARDS[case]})
    _eager, stepped = _both(model_cls, nn.CrossEntropyLoss, _adam, _batches(STEPS, (16, 6)), replay=True)
    assert stepped.step.problem is None
    assert stepped.step.replays == STEPS - 2


REFUSED = {
    # constants made afresh in each call may hold values computed from the data: refused even when equal
    "constants_made_each_call": lambda s, x: s.b(s.a(x) + cr.zeros(16, 8) + cr.ones(8) * 0.5),
    "index_array_made_each_call": lambda s, x: s.b(s.a(x)[:, np.array([0, 1, 2, 3, 4, 5, 6, 7])]),
    "randn_noise": lambda s, x: s.b(s.a(x) + cr.randn_like(s.a(x)) * 0.1),
    "max_over_dim": lambda s, x: s.b(s.a(x) * s.a(x).max(1, keepdim=True)[0]),
    "detach_path": lambda s, x: s.b(s.a(x) + s.a(x).detach() * 0.5),
    "item_branch": lambda s, x: s.b(s.a(x) if s.a(x).sum().item() > 0 else -s.a(x)),
    "sort": lambda s, x: s.b(cr.sort(s.a(x), 1)[0]),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_data_dependent_custom_forward_is_refused_and_matches(case):
    model_cls = type("Model", (_Base,), {"forward": REFUSED[case]})
    _eager, stepped = _both(model_cls, nn.CrossEntropyLoss, _adam, _batches(STEPS, (16, 6)), replay=True)
    assert stepped.step.problem and stepped.step.replays == 0


# --------------------------------------------------------------------------------------------------
# 4. fit: replay (default) and replay=False agree, with callbacks, validation and resume
# --------------------------------------------------------------------------------------------------

class _Probe(Callback):
    def on_train_end(self, logs=None):
        self.replays = self.trainer.train_step().replays


def _fit(replay, callbacks=(), epochs=3, resume=None, nan_target=False):
    X, y = toy.spirals(120, classes=3, seed=0)
    Xv, yv = toy.spirals(30, classes=3, seed=1)
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
    opt = optim.Adam(model.parameters(), lr=0.05)
    loss_fn = nn.CrossEntropyLoss()
    if nan_target:                       # one sample whose loss is NaN: TerminateOnNaN stops and restores
        X = X.data.copy()
        X[77, 0] = np.nan
        X = cr.tensor(X)
    loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
    probe = _Probe()
    cr.manual_seed(1)
    kw = {} if replay is None else {"replay": replay}
    hist = fit(model, loss_fn, opt, loader, epochs=epochs, val_loader=DataLoader(TensorDataset(Xv, yv), batch_size=32),
               metrics=["accuracy"], callbacks=[probe, *callbacks], verbose=0, resume=resume, **kw)
    return model, hist, probe


def _history(h):
    return {k: v for k, v in h.history.items() if k not in ("time", "samples_per_sec")}, h.note


def _weights(model):
    return [p.data for p in model.state_dict().values()]


@pytest.mark.parametrize("what", ["early_stopping_restore", "checkpoint", "terminate_on_nan"])
def test_fit_with_callbacks_matches_replay_false(what, tmp_path):
    def callbacks():
        if what == "early_stopping_restore":
            return [EarlyStopping(monitor="val_loss", patience=0, min_delta=0.5, restore_best_weights=True)]
        if what == "checkpoint":
            return [ModelCheckpoint(tmp_path / f"ck{len(os.listdir(tmp_path))}")]
        return [TerminateOnNaN()]

    nan = what == "terminate_on_nan"
    ma, ha, pa = _fit(None, callbacks(), epochs=4, nan_target=nan)
    mb, hb, pb = _fit(False, callbacks(), epochs=4, nan_target=nan)
    assert pb.replays == 0
    if not nan:
        assert pa.replays > 0
    assert _history(ha) == _history(hb)
    assert all(np.array_equal(a, b) for a, b in zip(_weights(ma), _weights(mb)))


def test_fit_resumed_from_a_checkpoint_matches_replay_false_and_an_uninterrupted_run(tmp_path):
    results = []
    for replay in (None, False):
        d = tmp_path / f"r{replay}"
        _fit(replay, [ModelCheckpoint(d)], epochs=2)
        model, _, _ = _fit(replay, [ModelCheckpoint(d)], epochs=3, resume=d / "last.safetensors")
        results.append(_weights(model))
    full, _, _ = _fit(False, epochs=3)
    assert all(np.array_equal(a, b) for a, b in zip(results[0], results[1]))
    assert all(np.array_equal(a, b) for a, b in zip(results[0], _weights(full)))


# --------------------------------------------------------------------------------------------------
# 5. bugs: replay silently differs from the eager loop
# --------------------------------------------------------------------------------------------------

def _first_two_then(first, later, steps=STEPS):
    """Batches whose targets are ``first`` for the two recorded calls and ``later`` afterwards."""
    xs = [x for x, _ in _batches(steps, (8, 4), "reg")]
    return [(x, first if i < 2 else later) for i, x in enumerate(xs)]


@pytest.mark.parametrize("loss", [lambda: nn.HuberLoss(delta=10.0), lambda: nn.SmoothL1Loss(beta=10.0)])
def test_huber_and_smooth_l1_with_an_outlier_after_recording(loss):
    small = np.zeros((8, 3), np.float32)
    outlier = np.full((8, 3), 50.0, np.float32)          # |d| > delta: the linear branch
    _both(lambda: nn.Sequential(nn.Linear(4, 3)), loss, _sgd, _first_two_then(small, outlier))


def test_kl_div_with_a_zero_target_after_recording():
    p = np.full((8, 3), 1 / 3, np.float32)
    q = p.copy()
    q[0] = [0.0, 0.5, 0.5]
    batches = _first_two_then(p, q)
    _both(lambda: nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(1)), lambda: nn.KLDivLoss(reduction="batchmean"),
          _sgd, batches)


@pytest.mark.parametrize("how", ["data", "in_place", "load_state_dict"])
def test_ce_probability_targets_with_a_class_weight_changed_mid_run(how):
    new = np.array([5.0, 0.1, 0.1], np.float32)

    def reweight(run):
        w = run.loss_fn.weight
        if how == "data":
            w.data = new.copy()
        elif how == "in_place":
            w.data[...] = new
        else:
            run.loss_fn.load_state_dict({"weight": cr.tensor(new)})

    def make_loss():
        return nn.CrossEntropyLoss(weight=cr.tensor([1.0, 1.0, 1.0]))

    _both(_mlp(), make_loss, _sgd, _batches(STEPS, (32, 5), "prob"), events={4: reweight})


def test_an_input_computed_by_an_upstream_module_gets_its_gradient():
    def run(replay):
        cr.manual_seed(5)
        encoder = nn.Linear(5, 5)
        cr.manual_seed(0)
        head = _mlp()()
        step = TrainStep(head, nn.CrossEntropyLoss(), _sgd(head.parameters()), replay=replay)
        for xb, yb in _batches(STEPS, (32, 5)):
            step(encoder(cr.tensor(xb)), cr.tensor(yb))      # eagerly, loss.backward() reaches the encoder
        return encoder.weight.grad.data, step.replays

    eager, _ = run(False)
    replayed, n = run("auto")
    assert n == 0                  # an input with a graph of its own: that call runs eagerly
    assert np.array_equal(eager, replayed)


def test_recorded_with_x_is_y_then_called_with_different_tensors():
    def wrap(run, x, y):
        return (x, x) if len(run.losses) < 2 else (x, y)    # an autoencoder warm-up, then real targets

    _both(lambda: nn.Sequential(nn.Linear(4, 4)), nn.MSELoss, _sgd, _batches(STEPS, (8, 4), "reg", classes=4),
          wrap=wrap)


@pytest.mark.parametrize("how", ["index", "one_hot"])
def test_custom_loss_using_the_target_as_an_index_with_sorted_labels(how):
    def make_loss():
        if how == "index":
            return lambda out, y: -out.log_softmax(1)[cr.arange(out.shape[0]), y].mean()
        return lambda out, y: ((out.softmax(1) - F.one_hot(y, 3).float()) ** 2).mean()

    xs = [x for x, _ in _batches(STEPS, (16, 5))]
    batches = [(x, np.full(16, 0 if i < 4 else 1 + i % 2)) for i, x in enumerate(xs)]   # sorted by class
    _both(_mlp(), make_loss, _sgd, batches, replay=True)


def test_modules_made_inside_forward_or_the_loss_do_not_stop_replay():
    # nn.LeakyReLU(0.2)(h) and nn.CrossEntropyLoss()(o, y) build throwaway modules in every call: they are
    # module changes for the global counter, but the model and the loss themselves do not change.
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(5, 8), nn.Linear(8, 3)

        def forward(self, x):
            return self.b(nn.LeakyReLU(0.2)(self.a(x)))

    _eager, stepped = _both(Model, lambda: (lambda o, y: nn.CrossEntropyLoss()(o, y)), _sgd,
                            _batches(STEPS, (16, 5)), replay=True)
    assert stepped.step.problem is None and stepped.step.replays == STEPS - 2


def _inplace_model(kind):
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(5, 16), nn.Linear(16, 3)
            self.act = {"relu": nn.ReLU(inplace=True), "leaky": nn.LeakyReLU(0.1, inplace=True),
                        "elu": nn.ELU(inplace=True), "dropout": nn.Dropout(0.3, inplace=True)}.get(kind, nn.Tanh())

        def forward(self, x):
            h = self.a(x)
            if kind == "methods":
                h = h * 1.0
                h.add_(1).mul_(0.5)
                h.relu_()
            if kind == "setitem":
                h = h * 1.0
                h[:, 0] = 0.0          # an in-place write: refused, runs eagerly
            return self.b(self.act(h))

    return Model


@pytest.mark.parametrize("kind", ["relu", "leaky", "elu", "dropout", "methods"])
def test_in_place_ops_refuse_replay_and_match(kind):
    # nn.ReLU(inplace=True) and friends write into an array other values may share (views, detach(), the
    # caller's batch): replay is refused and the step runs eagerly (tests/test_train_step_inplace.py sweeps it)
    _eager, stepped = _both(_inplace_model(kind), nn.CrossEntropyLoss, _sgd, _batches(STEPS, (16, 5)),
                            replay=True)
    assert "in-place" in stepped.step.problem and stepped.step.replays == 0


@pytest.mark.parametrize("kind", ["relu", "dropout"])
def test_builtin_in_place_layers_run_eagerly_under_auto(kind):
    act = nn.ReLU(inplace=True) if kind == "relu" else nn.Dropout(0.2, inplace=True)
    _eager, stepped = _both(lambda: nn.Sequential(nn.Linear(5, 16), act, nn.Linear(16, 3)), nn.CrossEntropyLoss,
                            _sgd, _batches(STEPS, (16, 5)))
    assert "in-place" in stepped.step.problem and stepped.step.replays == 0


def test_setitem_on_a_computed_value_is_refused_and_matches():
    _eager, stepped = _both(_inplace_model("setitem"), nn.CrossEntropyLoss, _sgd, _batches(STEPS, (16, 5)),
                            replay=True)
    assert stepped.step.problem and stepped.step.replays == 0
