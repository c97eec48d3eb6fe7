"""chainrule.train.TrainStep and chainrule.autograd.replay: a replayed step is the eager step, bit for bit.

Every test trains two copies of a model from the same seed on the same batches, one with the plain loop
(``zero_grad(); loss_fn(model(x), y).backward(); step()``) and one with ``TrainStep``, and compares every
parameter, every optimizer state array, every loss and every model output with ``np.array_equal``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.autograd.replay import record
from chainrule.data import DataLoader, TensorDataset, toy
from chainrule.nn import functional as F
from chainrule.train import Callback, TrainStep, fit
from train_step_helpers import assert_same_runs, eager_step

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _batches(steps, n_in, out=3, sizes=(32,), dtype=np.float32, seed=1, regression=False, ignore=None):
    """A different random batch for each step: (x, y) ndarrays (class indices, or regression targets)."""
    rng = np.random.default_rng(seed)
    batches = []
    for i in range(steps):
        b = sizes[i % len(sizes)]
        x = rng.standard_normal((b, n_in)).astype(dtype)
        if regression:
            y = rng.standard_normal((b, out)).astype(dtype)
        else:
            y = rng.integers(0, out, b)
            if ignore is not None:
                y[rng.random(b) < 0.25] = ignore
        batches.append((x, y))
    return batches


def _train(build, make_loss, make_opt, batches, *, eager, replay="auto", seed=0, events=None):
    """Train a model made by ``build()`` after ``cr.manual_seed(seed)``, eagerly or with a TrainStep.

    ``events``: {step index: fn(model, opt)} run before that step (in both kinds of run alike).
    """
    cr.manual_seed(seed)
    model = build()
    loss_fn = make_loss()
    opt = make_opt(model.parameters())
    initial = [p.data.copy() for p in model.parameters()]
    step = None if eager else TrainStep(model, loss_fn, opt, replay=replay)
    losses, outputs, replays = [], [], []
    for i, (xb, yb) in enumerate(batches):
        if events and i in events:
            events[i](model, opt)
        x, y = cr.tensor(xb), cr.tensor(yb)
        if step is None:
            loss, out = eager_step(model, loss_fn, opt, x, y)
            out = out.detach()
        else:
            loss = step(x, y)
            out = step.output
            replays.append(step.replays)
            assert loss.grad_fn is None and out.grad_fn is None     # returned without a graph
        losses.append(loss.data.copy())
        outputs.append(out.data.copy())
    return SimpleNamespace(model=model, opt=opt, step=step, losses=losses, outputs=outputs, replays=replays,
                           initial=initial)


def _assert_same(a, b):
    """Runs ``a`` and ``b`` agree bit for bit (``assert_same_runs``), and they did train."""
    arrays = assert_same_runs(a, b)
    assert arrays > 0, "the optimizer kept no state arrays: nothing was compared"
    # and the runs did train: every trainable parameter moved, and the losses are not all equal
    moved = [not np.array_equal(p.data, p0) for p, p0 in zip(a.model.parameters(), a.initial)]
    assert any(moved)
    assert len({float(v) for v in a.losses}) > 1


def _both(build, make_loss, make_opt, batches, replay="auto", seed=0, events=None):
    eager = _train(build, make_loss, make_opt, batches, eager=True, seed=seed, events=events)
    stepped = _train(build, make_loss, make_opt, batches, eager=False, replay=replay, seed=seed, events=events)
    _assert_same(eager, stepped)
    return eager, stepped


def _sgd(params):
    return optim.SGD(params, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)


def _adam(params):
    return optim.Adam(params, lr=0.01)


def _mlp():
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3))


STEPS = 24


# --------------------------------------------------------------------------------------------------
# 1. bit-identity with the eager loop
# --------------------------------------------------------------------------------------------------

def _concat_model():
    return nn.Sequential(nn.Concat(nn.Linear(5, 8), nn.Sequential(nn.Linear(5, 6), nn.Tanh()), nn.Identity()),
                         nn.ReLU(), nn.Linear(8 + 6 + 5, 3))


def _shared_model():
    shared = nn.Linear(8, 8)       # the same layer twice: its weights' gradients accumulate from two nodes
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), shared, nn.Tanh(), shared, nn.ReLU(), nn.Linear(8, 3))


def _dropout_model():
    return nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 3))


def _smooth_model():
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.Sigmoid(), nn.Linear(16, 16), nn.GELU(),
                         nn.Linear(16, 2))


def _four_classes():
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 4))


def _log_softmax_model():
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 3), nn.LogSoftmax(dim=1))


def _ce_ignore_out_of_range():
    # ignore_index outside 0..C-1: about a quarter of the targets are -1
    return nn.CrossEntropyLoss(weight=cr.tensor([0.5, 2.0, 1.0]), ignore_index=-1, label_smoothing=0.1)


def _ce_ignore_a_class():
    # ignore_index a class: every target 1 is ignored
    return nn.CrossEntropyLoss(weight=cr.tensor([0.5, 2.0, 1.0, 3.0]), ignore_index=1, label_smoothing=0.1)


CASES = {
    "mlp-ce-sgd-nesterov": (_mlp, nn.CrossEntropyLoss, _sgd, {}),
    "dropout": (_dropout_model, nn.CrossEntropyLoss, _sgd, {}),
    "adam-mse-tanh-sigmoid-gelu": (_smooth_model, nn.MSELoss, _adam, {"regression": True, "out": 2}),
    "ce-smoothing-weight-ignore": (_mlp, _ce_ignore_out_of_range, _sgd, {"ignore": -1}),
    "ce-ignore-index-in-range": (_four_classes, _ce_ignore_a_class, _adam, {"out": 4}),
    "logsoftmax-nll": (_log_softmax_model, nn.NLLLoss, _adam, {}),
    "concat": (_concat_model, nn.CrossEntropyLoss, _sgd, {}),
    "shared-layer": (_shared_model, nn.CrossEntropyLoss, _adam, {}),
    "float64": (lambda: _mlp().to(cr.float64), nn.CrossEntropyLoss, _adam, {"dtype": np.float64}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_replayed_steps_are_bit_identical_to_the_eager_loop(case):
    build, make_loss, make_opt, data = CASES[case]
    batches = _batches(STEPS, 5, **data)
    _eager, stepped = _both(build, make_loss, make_opt, batches)
    assert stepped.step.problem is None
    assert stepped.step.replays == STEPS - 2
    assert stepped.replays[:3] == [0, 0, 1]     # two recorded calls, then replays


def test_float64_model_keeps_float64_under_replay():
    build, make_loss, make_opt, data = CASES["float64"]
    stepped = _train(build, make_loss, make_opt, _batches(6, 5, **data), eager=False)
    assert stepped.step.replays == 4
    assert all(p.data.dtype == np.float64 for p in stepped.model.parameters())
    assert stepped.losses[-1].dtype == np.float64 and stepped.outputs[-1].dtype == np.float64


def test_functional_cross_entropy_with_smoothing_weight_and_ignore_index_replays_with_replay_true():
    w = cr.tensor([0.5, 2.0, 1.0])

    def make_loss():
        return lambda out, y: F.cross_entropy(out, y, weight=w, ignore_index=-1, label_smoothing=0.1)

    batches = _batches(STEPS, 5, ignore=-1)
    assert all((y == -1).any() for _, y in batches)       # every batch has ignored targets
    _eager, stepped = _both(_mlp, make_loss, _sgd, batches, replay=True)
    assert stepped.step.problem is None
    assert stepped.step.replays == STEPS - 2


def test_dropout_masks_differ_between_steps_under_replay():
    # replay draws a fresh mask at each step (as eager does), it does not reuse the recorded one
    build, make_loss, make_opt, _ = CASES["dropout"]
    x, y = _batches(1, 5)[0]
    cr.manual_seed(0)
    model = build()
    step = TrainStep(model, make_loss(), optim.SGD(model.parameters(), lr=0.0))
    outs = []
    for _ in range(4):
        step(cr.tensor(x), cr.tensor(y))
        outs.append(step.output.data.copy())
    assert step.replays == 2
    assert not np.array_equal(outs[2], outs[3])          # lr=0: only the masks differ


# --------------------------------------------------------------------------------------------------
# 2. a partial last batch
# --------------------------------------------------------------------------------------------------

def test_alternating_batch_sizes_replay_both_shapes():
    batches = _batches(STEPS, 5, sizes=(32, 8))
    _eager, stepped = _both(_mlp, nn.CrossEntropyLoss, _sgd, batches)
    assert stepped.step.problem is None
    assert stepped.step.replays == STEPS - 4
    assert stepped.replays[:5] == [0, 0, 0, 0, 1]


# --------------------------------------------------------------------------------------------------
# 3. guards: a change to the model makes the next calls record again
# --------------------------------------------------------------------------------------------------

def _increments(replays):
    """1 where a call was replayed, 0 where it ran eagerly."""
    return [b - a for a, b in zip([0] + replays[:-1], replays)]


def test_eval_and_train_make_the_step_record_again_unless_the_model_is_back_as_recorded():
    def build():
        return nn.Sequential(nn.Linear(5, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 3))

    events = {8: lambda m, o: m.eval(),                        # dropout off: a replayed mask would show
              12: lambda m, o: m.train(),                      # back to training, but logged in eval mode
              18: lambda m, o: (m.eval(), m.train()),          # a validation pass: the logs still hold
              21: lambda m, o: setattr(m[2], "p", 0.25)}       # a real change
    _eager, stepped = _both(build, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5), events=events)
    assert stepped.step.problem is None
    expected = [0, 0] + [1] * 6 + [0, 0, 1, 1] + [0, 0] + [1] * 4 + [1] * 3 + [0, 0, 1]
    assert _increments(stepped.replays) == expected


def test_freezing_a_layer_mid_run():
    frozen = {}

    def freeze(model, opt):
        for p in model[0].parameters():
            p.requires_grad_(False)
        frozen[id(model)] = [p.data.copy() for p in model[0].parameters()]

    events = {10: freeze}
    eager, stepped = _both(_mlp, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5), events=events)
    assert stepped.step.problem is None
    assert _increments(stepped.replays)[8:14] == [1, 1, 0, 0, 1, 1]
    for run in (eager, stepped):
        for p, before in zip(run.model[0].parameters(), frozen[id(run.model)]):
            assert not p.requires_grad and p.grad is None
            assert np.array_equal(p.data, before)
        assert not np.array_equal(run.model[2].weight.data, run.initial[2])


def test_unfreezing_a_layer_mid_run():
    def build():
        model = _mlp()
        model[0].requires_grad_(False)
        return model

    def unfreeze(model, opt):
        model[0].requires_grad_(True)

    eager, stepped = _both(build, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5), events={10: unfreeze})
    assert stepped.step.problem is None
    assert _increments(stepped.replays)[8:14] == [1, 1, 0, 0, 1, 1]
    for run in (eager, stepped):
        assert not np.array_equal(run.model[0].weight.data, run.initial[0])


def test_an_input_that_requires_grad_gets_the_eager_gradient():
    def run(replay):
        cr.manual_seed(0)
        model = _mlp()
        step = TrainStep(model, nn.CrossEntropyLoss(), _sgd(model.parameters()), replay=replay)
        grads = []
        for xb, yb in _batches(6, 5):
            x = cr.tensor(xb, requires_grad=True)
            step(x, cr.tensor(yb))
            grads.append(x.grad.data.copy())
        return grads, step.replays

    replayed, n = run("auto")
    eager, n_eager = run(False)
    assert n == 4 and n_eager == 0
    assert all(np.array_equal(a, b) for a, b in zip(replayed, eager))


@pytest.mark.parametrize("how", ["append", "insert"])
def test_adding_a_layer_mid_run(how):
    def grow(model, opt):
        cr.manual_seed(123)                       # the new layer's weights: the same in both runs
        layer = nn.Linear(3, 3) if how == "append" else nn.Linear(16, 16)
        if how == "append":
            model.append(layer)
        else:
            model.insert(2, layer)               # Linear(5,16), ReLU, [Linear(16,16)], Linear(16,3)
        opt.add_param_group({"params": list(layer.parameters())})

    _eager, stepped = _both(_mlp, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5), events={10: grow})
    assert stepped.step.problem is None
    assert len(stepped.model) == 4
    assert _increments(stepped.replays)[8:14] == [1, 1, 0, 0, 1, 1]
    assert stepped.step.replays == STEPS - 4


def test_replacing_a_parameter_array_in_place_and_by_assignment_is_seen():
    # parameters are read at every replay: writing new values into p.data (or a new array) is seen
    def edit(model, opt):
        model[0].weight.data[...] = 0.01
        model[2].bias.data = np.full(3, 0.5, dtype=np.float32)

    _eager, stepped = _both(_mlp, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5), events={10: edit})
    assert stepped.step.replays == STEPS - 2


@pytest.mark.parametrize("how", ["data", "load_state_dict"])
def test_assigning_a_new_class_weight_array_to_the_loss_is_seen(how):
    new = np.array([3.0, 0.25, 1.0], dtype=np.float32)

    def reweight(model, opt):
        crit = loss_fns[-1]
        if how == "data":
            crit.weight.data = new.copy()
        else:
            crit.load_state_dict({"weight": cr.tensor(new)}, assign=True)

    loss_fns = []

    def make_loss():
        loss_fns.append(nn.CrossEntropyLoss(weight=cr.tensor([1.0, 1.0, 1.0])))
        return loss_fns[-1]

    _both(_mlp, make_loss, _sgd, _batches(STEPS, 5), events={10: reweight})


@pytest.mark.parametrize("loss_name", ["bce", "bce_logits", "mse_weighted"])
def test_a_new_array_for_a_weight_of_the_other_losses_is_seen(loss_name):
    # Loss weights are read from their Tensor in every replayed forward (never baked into the log).
    weights = []

    def make_loss():
        w = cr.tensor(np.linspace(0.5, 1.5, 3 if loss_name != "mse_weighted" else 96, dtype=np.float32))
        if loss_name == "mse_weighted":
            w = w.reshape(32, 3)                   # elementwise weights, the targets' shape
        weights.append(w)
        if loss_name == "bce":
            return lambda out, y: F.binary_cross_entropy(cr.sigmoid(out), y, weight=w)
        if loss_name == "bce_logits":
            return lambda out, y: F.binary_cross_entropy_with_logits(out, y, weight=w, pos_weight=w)
        return lambda out, y: F.mse_loss(out, y, weight=w)

    def reweight(model, opt):
        weights[-1].data = np.resize(np.array([3.0, 0.25, 1.0], dtype=np.float32), weights[-1].shape)

    batches = [(x, (y > 0).astype(np.float32)) for x, y in _batches(STEPS, 5, regression=True)]
    _eager, stepped = _both(_mlp, make_loss, _sgd, batches, replay=True, events={10: reweight})
    assert stepped.step.replays == STEPS - 2, stepped.step.problem


def test_a_computed_tensor_passed_as_a_loss_parameter_is_refused():
    # pos_weight computed in the loss (w * 2) is a recorded value handed to an op as a parameter, not as an
    # input: a replay could not refresh it, so the step runs eagerly.
    w = cr.tensor([0.5, 1.0, 1.5])

    def make_loss():
        return lambda out, y: F.binary_cross_entropy_with_logits(out, y, pos_weight=w * 2) + (out * w).sum() * 0

    batches = [(x, (y > 0).astype(np.float32)) for x, y in _batches(STEPS, 5, regression=True)]
    _eager, stepped = _both(_mlp, make_loss, _sgd, batches, replay=True)
    assert stepped.step.replays == 0
    assert "parameter" in stepped.step.problem


def test_writing_a_new_class_weight_into_the_loss_in_place_is_seen():
    def reweight(model, opt):
        loss_fns[-1].weight.data[...] = [3.0, 0.25, 1.0]

    loss_fns = []

    def make_loss():
        loss_fns.append(nn.CrossEntropyLoss(weight=cr.tensor([1.0, 1.0, 1.0])))
        return loss_fns[-1]

    _eager, stepped = _both(_mlp, make_loss, _sgd, _batches(STEPS, 5), events={10: reweight})
    assert stepped.step.replays == STEPS - 2


# --------------------------------------------------------------------------------------------------
# 4. replay="auto" runs only chainrule's own modules and losses
# --------------------------------------------------------------------------------------------------

class Static(nn.Module):
    """A model of our own with a static forward."""

    def __init__(self):
        super().__init__()
        self.a = nn.Linear(5, 16)
        self.b = nn.Linear(16, 3)

    def forward(self, x):
        return self.b(cr.relu(self.a(x)))


def test_auto_refuses_a_custom_module():
    _eager, stepped = _both(Static, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5))
    assert isinstance(stepped.step.problem, str) and stepped.step.problem
    assert stepped.step.replays == 0


def test_auto_refuses_a_custom_module_nested_in_a_sequential():
    def build():
        return nn.Sequential(Static(), nn.ReLU(), nn.Linear(3, 3))

    _eager, stepped = _both(build, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5))
    assert stepped.step.problem
    assert stepped.step.replays == 0


def test_auto_refuses_a_lambda_loss():
    def make_loss():
        return lambda out, y: F.cross_entropy(out, y)

    _eager, stepped = _both(_mlp, make_loss, _sgd, _batches(STEPS, 5))
    assert isinstance(stepped.step.problem, str) and stepped.step.problem
    assert stepped.step.replays == 0


def test_builtin_functional_loss_is_replayed_with_auto():
    _eager, stepped = _both(_mlp, lambda: F.cross_entropy, _sgd, _batches(STEPS, 5))
    assert stepped.step.problem is None
    assert stepped.step.replays == STEPS - 2


def test_replay_true_replays_a_static_custom_module():
    _eager, stepped = _both(Static, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5), replay=True)
    assert stepped.step.problem is None
    assert stepped.step.replays == STEPS - 2


class IndexesAndCastsItsInput(Static):
    """Rows picked by an index array the module keeps, and casts: ops that skip ``Function.apply`` for
    tensors without a graph outside a recording (``ops.getitem``, ``ops.cast``) must be logged inside one."""

    ROWS = np.array([3, 0, 1, 2, 4, 6, 5, 7])

    def forward(self, x):
        x = x.double()[self.ROWS].float()
        return self.b(cr.relu(self.a(x)))


def test_replay_true_replays_indexing_and_casts_of_the_input():
    _eager, stepped = _both(IndexesAndCastsItsInput, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5, sizes=(8,)),
                            replay=True)
    assert stepped.step.problem is None
    assert stepped.step.replays == STEPS - 2


# --------------------------------------------------------------------------------------------------
# 5. replay=True still refuses what a log cannot stand for
# --------------------------------------------------------------------------------------------------

class ScaledByData(Static):
    def forward(self, x):
        return self.b(cr.relu(self.a(x * float(x.data.mean()))))


class StoresAttribute(Static):
    def forward(self, x):
        h = cr.relu(self.a(x))
        self.last = h
        return self.b(h)


class InPlace(Static):
    def forward(self, x):
        x.mul_(2)                      # the caller's batch changes: a side effect a replay would not repeat
        return self.b(cr.relu(self.a(x)))


class NumpyMask(Static):
    def forward(self, x):
        mask = cr.from_numpy((x.numpy() > 0).astype(np.float32))
        return self.b(cr.relu(self.a(x * mask)))


@pytest.mark.parametrize("cls, words", [
    (ScaledByData, "constants"),
    (StoresAttribute, "attributes"),
    (InPlace, "in-place"),
    (NumpyMask, "constants"),
])
def test_replay_true_refuses_what_a_log_cannot_stand_for(cls, words):
    _eager, stepped = _both(cls, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5), replay=True)
    problem = stepped.step.problem
    assert isinstance(problem, str) and words in problem
    assert stepped.step.replays == 0


def test_a_dead_value_turns_replay_off():
    class Dead(Static):
        def forward(self, x):
            h = self.a(x)
            _unused = h.sum()             # reaches no output: kept for a side effect?
            return self.b(cr.relu(h))

    _eager, stepped = _both(Dead, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5), replay=True)
    assert "reaches no output" in stepped.step.problem
    assert stepped.step.replays == 0


def test_reset_turns_replay_back_on():
    cr.manual_seed(0)
    model = _mlp()
    step = TrainStep(model, lambda out, y: F.cross_entropy(out, y), _sgd(model.parameters()))
    batches = _batches(6, 5)
    step(cr.tensor(batches[0][0]), cr.tensor(batches[0][1]))
    assert step.problem
    step.replay = True
    step.reset()
    assert step.problem is None
    for xb, yb in batches:
        step(cr.tensor(xb), cr.tensor(yb))
    assert step.problem is None and step.replays == 4


# --------------------------------------------------------------------------------------------------
# 6. replay=False, invalid values
# --------------------------------------------------------------------------------------------------

def test_replay_false_never_replays():
    _eager, stepped = _both(_mlp, nn.CrossEntropyLoss, _sgd, _batches(STEPS, 5), replay=False)
    assert stepped.step.replays == 0
    assert stepped.step.problem is None


@pytest.mark.parametrize("bad", ["yes", 1.5, None, "Auto"])
def test_invalid_replay_value_raises(bad):
    model = _mlp()
    with pytest.raises(ValueError, match="replay"):
        TrainStep(model, nn.CrossEntropyLoss(), _sgd(model.parameters()), replay=bad)


def test_anomaly_mode_runs_eagerly():
    cr.manual_seed(0)
    model = _mlp()
    step = TrainStep(model, nn.CrossEntropyLoss(), _sgd(model.parameters()))
    batches = _batches(6, 5)
    with cr.autograd.detect_anomaly():
        for xb, yb in batches:
            step(cr.tensor(xb), cr.tensor(yb))
    assert step.replays == 0
    for xb, yb in batches:
        step(cr.tensor(xb), cr.tensor(yb))
    assert step.replays == 4


# --------------------------------------------------------------------------------------------------
# 7. the tape itself
# --------------------------------------------------------------------------------------------------

def _tape_fn(w):
    def f(x, b):
        h = cr.tanh(x @ w)                  # x: (5, 4) leaf, w: (4, 3) parameter
        z = h * b + h * h - h               # h used 4 times (fan-out), b: (3,) broadcast
        loss = (z * w.sum(0)).mean() + (w * w).sum() * 0.5    # w used three times
        return loss, z
    return f


def test_tape_code_is_the_straight_line_replay_and_backward_frees_the_nodes():
    """A tape replays as generated straight-line Python (``tape.code``, one block per op); after backward
    no node of the replayed forward (nor what it saved) is kept alive."""
    import weakref
    rng = np.random.default_rng(3)
    w = nn.Parameter(cr.tensor(rng.standard_normal((4, 3)).astype(np.float32)))
    x = cr.tensor(rng.standard_normal((5, 4)).astype(np.float32), requires_grad=True)
    b = cr.tensor(rng.standard_normal(3).astype(np.float32))
    _, tape = record(_tape_fn(w), (x, b))
    code = tape.code
    assert code.startswith("def forward(v0, v1):") and "\ndef backward(nodes, inputs, seed):" in code
    assert code.count("= new(C") == len(tape.entries)              # each op's Function, in order
    assert code.count(".backward_np(") + code.count(".backward_via_tensors(") == len(tape._plan)
    tape.forward((x, b))
    refs = [weakref.ref(node) for node in tape._state[0]]
    assert refs and all(r() is not None for r in refs)
    tape.backward()
    assert all(r() is None for r in refs)
    assert x.grad is not None and w.grad is not None


def test_an_error_in_a_replayed_step_names_the_op_and_shows_the_replay_line():
    """A bad batch met during replay raises the op's own error, and the traceback shows the generated line."""
    import traceback
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    step = TrainStep(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1))
    x = cr.tensor(np.random.default_rng(0).random((4, 8)).astype(np.float32))
    for _ in range(3):
        step(x, cr.tensor(np.arange(4) % 3))
    assert step.replays == 1
    assert step.tape is not None and step.tape.code.startswith("def forward(v0, v1):")
    with pytest.raises(IndexError, match="target value 7 is out of range for 3 classes") as info:
        step(x, cr.tensor([0, 1, 2, 7]))
    text = "".join(traceback.format_exception(info.value))
    assert "<replay " in text and ".forward(v" in text


def test_tape_replay_matches_eager_forward_and_backward():
    rng = np.random.default_rng(7)
    w = nn.Parameter(cr.tensor(rng.standard_normal((4, 3)).astype(np.float32)))
    f = _tape_fn(w)
    x0 = cr.tensor(rng.standard_normal((5, 4)).astype(np.float32), requires_grad=True)
    b0 = cr.tensor(rng.standard_normal(3).astype(np.float32))
    (loss0, z0), tape = record(f, (x0, b0))
    assert tape.problem is None
    loss0.backward()                                       # the recorded call is an ordinary eager call

    x_np = rng.standard_normal((5, 4)).astype(np.float32)
    b_np = rng.standard_normal(3).astype(np.float32)
    # eager on the new inputs
    w.grad = None
    xe = cr.tensor(x_np, requires_grad=True)
    loss_e, z_e = f(xe, cr.tensor(b_np))
    loss_e.backward()
    gw_e = w.grad.data.copy()
    # replay on the same new inputs
    w.grad = None
    xr = cr.tensor(x_np, requires_grad=True)
    loss_r, z_r = tape.forward((xr, cr.tensor(b_np)))
    assert loss_r.grad_fn is None and z_r.grad_fn is None
    tape.backward()
    assert np.array_equal(loss_r.data, loss_e.data)
    assert not np.array_equal(loss_r.data, loss0.data)    # computed on the new inputs, not the recorded ones
    assert np.array_equal(z_r.data, z_e.data)
    assert np.array_equal(xr.grad.data, xe.grad.data)
    assert np.array_equal(w.grad.data, gw_e)

    # a second replay accumulates into .grad as a second eager backward would
    xe2 = cr.tensor(x_np, requires_grad=True)
    loss_e2, _ = f(xe2, cr.tensor(b_np))
    w.grad = None
    loss_e2.backward()
    loss_e2b, _ = f(xe2, cr.tensor(b_np))
    loss_e2b.backward()
    twice_e = w.grad.data.copy()
    w.grad = None
    xr2 = cr.tensor(x_np, requires_grad=True)
    tape.forward((xr2, cr.tensor(b_np)))
    tape.backward()
    tape.forward((xr2, cr.tensor(b_np)))
    tape.backward()
    assert np.array_equal(w.grad.data, twice_e)
    assert np.array_equal(xr2.grad.data, xe2.grad.data)


def test_tape_backward_needs_a_forward():
    w = nn.Parameter(cr.ones(4, 3))
    (_loss, _z), tape = record(_tape_fn(w), (cr.ones(5, 4, requires_grad=True), cr.ones(3)))
    with pytest.raises(RuntimeError, match="no forward"):
        tape.backward()
    tape.forward((cr.ones(5, 4, requires_grad=True), cr.ones(3)))
    tape.backward()
    with pytest.raises(RuntimeError, match="no forward"):      # the forward's values were freed
        tape.backward()


def test_tape_reports_an_in_place_op_and_a_foreign_constant():
    def inplace(x):
        x.mul_(2)                      # on an input of the call
        return (x * 2).sum()

    x = cr.ones(3)
    _, tape = record(inplace, (x,))
    assert tape.problem and "in-place" in tape.problem

    def on_a_result(x):
        h = x * 2
        h.add_(1)                      # on a value the call computed: its array may be shared (views, detach)
        return h.sum()

    x = cr.ones(3, requires_grad=True)
    _, tape = record(on_a_result, (x,))
    assert tape.problem and "in-place" in tape.problem

    def unrecorded(x):
        # a tensor made by an operation before recording started, and used in the recorded call
        return (x * outside).sum()

    outside = cr.ones(3, requires_grad=True) * 2
    _, tape = record(unrecorded, (x,))
    assert tape.problem and "not recorded" in tape.problem


def test_records_cannot_nest():
    x = cr.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="nest"):
        record(lambda t: record(lambda u: (u * 2).sum(), (t,))[0], (x,))
    _, tape = record(lambda t: (t * 2).sum(), (x,))      # and recording still works afterwards
    assert tape.problem is None


# --------------------------------------------------------------------------------------------------
# 8. fit
# --------------------------------------------------------------------------------------------------

class _Replays(Callback):
    def on_train_end(self, logs=None):
        self.replays = self.trainer.train_step().replays
        self.problem = self.trainer.train_step().problem


def _fit(replay, validate=False):
    X, y = toy.spirals(300, classes=3, seed=0)
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 3))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(X[:64], y[:64]), batch_size=32) if validate else None
    probe = _Replays()
    cr.manual_seed(1)
    kwargs = {} if replay is None else {"replay": replay}
    history = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=3, val_loader=val, verbose=0, callbacks=[probe],
                  **kwargs)
    return model, history, probe


def test_fit_with_validation_keeps_replaying_across_epochs():
    """Validation switches the model to eval() and back to train() every epoch; the logs still describe the
    model afterwards, so the step does not record again: as many replays as without validation, and the same
    weights as fit without replay."""
    model_v, hist_v, probe_v = _fit(None, validate=True)
    _model, _hist, probe = _fit(None)
    model_e, hist_e, _probe_e = _fit(False, validate=True)
    assert probe_v.problem is None and probe_v.replays == probe.replays == 3 * 19 - 4   # 2 recordings per shape
    for a, b in zip(model_v.parameters(), model_e.parameters()):
        assert np.array_equal(a.data, b.data)
    assert hist_v.history["val_loss"] == hist_e.history["val_loss"]


def test_fit_with_replay_is_bit_identical_to_fit_without():
    model_a, hist_a, probe_a = _fit(None)
    model_b, hist_b, probe_b = _fit(False)
    assert probe_a.replays > 0 and probe_a.problem is None
    assert probe_b.replays == 0
    sa, sb = model_a.state_dict(), model_b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert np.array_equal(sa[k].data, sb[k].data), k
    assert hist_a.history["loss"] == hist_b.history["loss"]
    assert hist_a.history["accuracy"] == hist_b.history["accuracy"]
    assert len(hist_a.history["loss"]) == 3
    assert hist_a.history["loss"][-1] < hist_a.history["loss"][0]


# --------------------------------------------------------------------------------------------------
# 9. errors still surface under replay
# --------------------------------------------------------------------------------------------------

def test_out_of_range_target_raises_under_replay_as_eagerly():
    batches = _batches(8, 5)
    bad_x = batches[5][0]
    bad_y = batches[5][1].copy()
    bad_y[3] = 99

    cr.manual_seed(0)
    model = _mlp()
    with pytest.raises(IndexError, match="out of range") as eager_err:
        F.cross_entropy(model(cr.tensor(bad_x)), cr.tensor(bad_y))

    def run(replay):
        cr.manual_seed(0)
        model = _mlp()
        step = TrainStep(model, nn.CrossEntropyLoss(), _sgd(model.parameters()), replay=replay)
        losses = []
        for i, (xb, yb) in enumerate(batches):
            if i == 5:
                before = [p.data.copy() for p in model.parameters()]
                with pytest.raises(IndexError, match="out of range") as err:
                    step(cr.tensor(bad_x), cr.tensor(bad_y))
                assert str(err.value) == str(eager_err.value)
                assert all(np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))
            losses.append(step(cr.tensor(xb), cr.tensor(yb)).data.copy())
        return model, step, losses

    model_r, step_r, losses_r = run("auto")
    model_e, step_e, losses_e = run(False)
    assert step_r.replays == 6 and step_r.problem is None     # the failed call did not count, replay goes on
    assert step_e.replays == 0
    assert all(np.array_equal(a, b) for a, b in zip(losses_r, losses_e))
    for p, q in zip(model_r.parameters(), model_e.parameters()):
        assert np.array_equal(p.data, q.data)


def test_shape_mismatch_under_replay_records_and_raises():
    # a batch of another shape is a new key: it runs eagerly, and its errors are the eager ones
    cr.manual_seed(0)
    model = _mlp()
    step = TrainStep(model, nn.CrossEntropyLoss(), _sgd(model.parameters()))
    for xb, yb in _batches(4, 5):
        step(cr.tensor(xb), cr.tensor(yb))
    assert step.replays == 2
    with pytest.raises(ValueError, match="batch size"):
        step(cr.randn(32, 5), cr.randint(0, 3, (31,)))
