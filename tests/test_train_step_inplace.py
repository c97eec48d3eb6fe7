"""In-place operations under ``TrainStep`` / ``autograd.replay``: a replayed step equals the eager step, bit for bit,
or replaying is refused (``step.problem``) and the step runs eagerly.

Each case trains two copies of a model from the same seed on the same (new every step) batches, one with the plain
loop and one with ``TrainStep``, and compares losses, outputs, parameters, gradients and optimizer state with
``np.array_equal``.  The tape-level tests compare ``tape.forward`` / ``tape.backward`` on new inputs with an eager
forward and backward.  A first version replayed in-place ops on computed values; this sweep found writes it could
not follow (through views, ``detach()``, bypassing writes, wider dtypes), so every in-place write now refuses replay
and these cases check that the step then runs eagerly with the eager numbers.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.autograd.replay import record
from chainrule.nn import functional as F
from chainrule.train import TrainStep
from train_step_helpers import assert_same_runs, one_step

STEPS = 8

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _batches(steps=STEPS, xshape=(16, 5), kind="cls", classes=3, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        x = rng.standard_normal(xshape).astype(np.float32)
        if kind == "cls":
            y = rng.integers(0, classes, xshape[0])
        else:
            y = rng.standard_normal((xshape[0], classes)).astype(np.float32)
        out.append((x, y))
    return out


def _sgd(params):
    return optim.SGD(params, lr=0.05, momentum=0.9)


def _adam(params):
    return optim.Adam(params, lr=0.01)


def _run(build, make_loss, batches, *, eager, replay, make_opt=_sgd, events=None, same_batch=False):
    cr.manual_seed(0)
    model = build()
    loss_fn = make_loss()
    opt = make_opt(model.parameters())
    step = None if eager else TrainStep(model, loss_fn, opt, replay=replay)
    run = SimpleNamespace(model=model, opt=opt, step=step, losses=[], outputs=[], x=None)
    for i, (xb, yb) in enumerate(batches):
        if events and i in events:
            events[i](model)
        if same_batch and run.x is not None:
            x, y = run.x, run.y                  # the caller keeps training on one batch tensor
        else:
            x, y = cr.tensor(xb), cr.tensor(yb)
            run.x, run.y = x, y
        loss, out = one_step(step, model, loss_fn, opt, x, y)
        run.losses.append(loss.data.copy())
        run.outputs.append(out.data.copy())
    return run


def _same(a, b):
    assert_same_runs(a, b)
    # the caller's batch: an eager step that writes into it (through a view) must be matched too
    assert np.array_equal(a.x.data, b.x.data)


def _both(build, make_loss=nn.CrossEntropyLoss, *, replay="auto", xshape=(16, 5), kind="cls", steps=STEPS, **kw):
    batches = _batches(steps, xshape, kind)
    eager = _run(build, make_loss, batches, eager=True, replay=replay, **kw)
    stepped = _run(build, make_loss, batches, eager=False, replay=replay, **kw)
    _same(eager, stepped)
    return stepped.step


def _custom(forward, din=5, dh=16):
    """A model of our own (replay=True) whose forward is ``forward(self, x)``."""

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(din, dh), nn.Linear(dh, 3)
            self.scale = nn.Parameter(cr.ones(dh) * 0.5)
            self.p64 = nn.Parameter(cr.tensor(np.linspace(-1.0, 1.0, dh)))       # float64
            self.register_buffer("buf", cr.zeros(dh))

        def forward(self, x):
            return forward(self, x)

    return Model


def _refused(step):
    assert step.problem and step.replays == 0


# --------------------------------------------------------------------------------------------------
# 1. in-place ops on values the step computed: replayed, bit-identical
# --------------------------------------------------------------------------------------------------


def _chain(s, x):
    return s.b(s.a(x).add_(1).mul_(2).clamp_(-1, 1).relu_())


def _param_argument(s, x):
    h = s.a(x)
    h.add_(s.scale)                     # the argument requires grad too
    return s.b(h)


def _only_argument_requires_grad(s, x):
    m = x * 1.0                         # no grad
    m.add_(s.a.weight[0])               # becomes part of the graph through its argument
    return s.b(s.a(m))


def _fill_zero_copy_with_grad(s, x):
    h = s.a(x) * 1.0
    h.fill_(0.5)
    g = s.a(x) * 1.0
    g.zero_()
    k = s.a(x) * 1.0
    k.copy_(s.a(x) * 2)
    return s.b(h + g + k)


def _copy_from_grad_source(s, x):
    m = x * 1.0
    m.copy_(s.a(x)[:, :5])
    return s.b(s.a(m))


def _exp_then_use(s, x):
    h = s.a(x) * 0.1
    h.exp_()
    return s.b(h)


def _use_between_two_in_place_ops(s, x):
    h = s.a(x) * 1.0
    h.add_(1)
    y = h * 3                           # used after the first in-place op, before the second
    h.mul_(2)
    return s.b(h + y)


def _returned_and_in_placed(s, x):
    return s.b(s.a(x)).mul_(2).add_(1)


def _transpose_relu_transpose(s, x):
    return s.b(s.a(x).T.relu_().T)


def _double_of_input(s, x):
    return s.b(s.a(x.double().mul_(2).float()))      # a new tensor derived from the input


@pytest.mark.parametrize("forward", [_chain, _param_argument, _only_argument_requires_grad, _fill_zero_copy_with_grad,
                                     _copy_from_grad_source, _exp_then_use, _use_between_two_in_place_ops,
                                     _returned_and_in_placed, _transpose_relu_transpose, _double_of_input],
                         ids=lambda f: f.__name__.strip("_"))
def test_in_place_on_computed_values_refused(forward):
    _refused(_both(_custom(forward), replay=True))


def _loss_mul_output(o, y):
    return F.cross_entropy(o.mul_(2), y)


def _loss_relu_output(o, y):
    o.relu_()
    return F.mse_loss(o, y)


def _loss_in_place_on_loss(o, y):
    return F.mse_loss(o, y).mul_(3).add_(1)


def _loss_fill_loss(o, y):
    return F.mse_loss(o, y).fill_(1.0)


def _loss_clamp_copy(o, y):
    z = o * 1.0
    z.clamp_(-0.5, 0.5)
    return F.mse_loss(z, y) + F.mse_loss(o, y)


@pytest.mark.parametrize("loss", [_loss_mul_output, _loss_relu_output, _loss_in_place_on_loss, _loss_fill_loss,
                                  _loss_clamp_copy], ids=lambda f: f.__name__.strip("_"))
def test_in_place_on_the_model_output_or_loss_inside_the_loss_refused(loss):
    kind = "cls" if loss is _loss_mul_output else "reg"
    step = _both(lambda: nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 3)), lambda: loss,
                 replay=True, kind=kind)
    _refused(step)


# --------------------------------------------------------------------------------------------------
# 2. chainrule's in-place layers under replay="auto"
# --------------------------------------------------------------------------------------------------

L, ReLU, Drop = nn.Linear, nn.ReLU, nn.Dropout

SEQUENTIAL = {
    "relu-relu": lambda: nn.Sequential(L(5, 16), ReLU(inplace=True), ReLU(inplace=True), L(16, 3)),
    "leaky-elu": lambda: nn.Sequential(L(5, 16), nn.LeakyReLU(0.1, inplace=True), nn.ELU(inplace=True), L(16, 3)),
    "relu-then-relu_": lambda: nn.Sequential(L(5, 16), ReLU(), ReLU(inplace=True), L(16, 3)),
    "gelu-then-elu_": lambda: nn.Sequential(L(5, 16), nn.GELU(), nn.ELU(inplace=True), L(16, 3)),
    "softplus-then-dropout_": lambda: nn.Sequential(L(5, 16), nn.Softplus(), Drop(0.3, inplace=True), L(16, 3)),
    "dropout-relu": lambda: nn.Sequential(L(5, 16), Drop(0.3, inplace=True), ReLU(inplace=True), L(16, 3)),
    "relu-dropout": lambda: nn.Sequential(L(5, 16), ReLU(inplace=True), Drop(0.3, inplace=True), L(16, 3)),
    "dropout-dropout": lambda: nn.Sequential(L(5, 16), Drop(0.3, inplace=True), Drop(0.5, inplace=True), L(16, 3)),
    "deep": lambda: nn.Sequential(L(5, 16), ReLU(inplace=True), Drop(0.1, inplace=True), L(16, 16),
                                  nn.ELU(inplace=True), L(16, 3), nn.LeakyReLU(0.1, inplace=True)),
    "on-the-output": lambda: nn.Sequential(L(5, 3), Drop(0.3, inplace=True)),
    "unflatten-relu-flatten": lambda: nn.Sequential(L(5, 16), nn.Unflatten(1, (4, 4)), ReLU(inplace=True),
                                                    nn.Flatten(), L(16, 3)),
    # a value shared by two Concat branches, one of which writes into it (the other sees the new values)
    "concat-relu_-first": lambda: nn.Sequential(L(5, 16), nn.Concat(nn.Sequential(ReLU(inplace=True), L(16, 4)),
                                                                    L(16, 4)), L(8, 3)),
    "concat-identity-relu_": lambda: nn.Sequential(L(5, 16), nn.Concat(nn.Identity(), ReLU(inplace=True)), L(32, 3)),
    "concat-relu_-identity": lambda: nn.Sequential(L(5, 16), nn.Concat(ReLU(inplace=True), nn.Identity()), L(32, 3)),
    "concat-dropout_-identity": lambda: nn.Sequential(L(5, 16), nn.Concat(Drop(0.5, inplace=True), nn.Identity()),
                                                      L(32, 3)),
    "concat-two-in-place": lambda: nn.Sequential(L(5, 16), nn.Concat(nn.LeakyReLU(0.1, inplace=True),
                                                                     nn.ELU(inplace=True)), L(32, 3)),
}


@pytest.mark.parametrize("name", list(SEQUENTIAL))
def test_builtin_in_place_layers_run_eagerly_under_auto(name):
    _refused(_both(SEQUENTIAL[name]))


def test_in_place_layers_with_adam_and_alternating_batch_shapes():
    build = SEQUENTIAL["deep"]
    _refused(_both(build, make_opt=_adam))
    batches = _batches(12)
    batches = [(x[:10], y[:10]) if i % 2 else (x, y) for i, (x, y) in enumerate(batches)]
    eager = _run(build, nn.CrossEntropyLoss, batches, eager=True, replay="auto")
    stepped = _run(build, nn.CrossEntropyLoss, batches, eager=False, replay="auto")
    _same(eager, stepped)
    assert stepped.step.problem and stepped.step.replays == 0


def test_in_place_dropout_toggling_train_and_eval():
    def mode(train):
        return lambda m: m.train(train)

    events = {2: mode(False), 4: mode(True), 5: mode(False), 6: mode(True)}
    step = _both(SEQUENTIAL["dropout-relu"], steps=10, events=events)
    assert step.problem and step.replays == 0
    step = _both(lambda: nn.Sequential(L(5, 16), Drop(0.3, inplace=True), ReLU(inplace=True), L(16, 3)),
                 events={0: mode(False)})
    _refused(step)


@pytest.mark.parametrize("build", [
    lambda: nn.Sequential(L(5, 16), nn.ELU(inplace=True), nn.LeakyReLU(0.1, inplace=True), L(16, 3)),
    lambda: nn.Sequential(L(5, 16), nn.Tanh(), ReLU(inplace=True), L(16, 3)),
    lambda: nn.Sequential(L(5, 16), nn.Concat(L(16, 4), nn.Sequential(ReLU(inplace=True), L(16, 4))), L(8, 3)),
], ids=["elu_-then-leaky_", "tanh-then-relu_", "concat-saved-input-then-relu_"])
def test_in_place_on_a_saved_value_raises_in_both(build):
    # backward needs the overwritten value: the eager loop raises, and so does TrainStep (its first call is eager)
    x, y = cr.randn(16, 5), cr.randint(0, 3, (16,))
    cr.manual_seed(0)
    model = build()
    with pytest.raises(RuntimeError, match="in-place"):
        nn.CrossEntropyLoss()(model(x), y).backward()
    cr.manual_seed(0)
    model = build()
    step = TrainStep(model, nn.CrossEntropyLoss(), _sgd(model.parameters()))
    with pytest.raises(RuntimeError, match="in-place"):
        step(x, y)


# --------------------------------------------------------------------------------------------------
# 3. in-place ops replay cannot stand for: refused, and the eager step runs
# --------------------------------------------------------------------------------------------------


def _on_input(s, x):
    return s.b(s.a(x.mul_(2)))


def _on_float_of_float_input(s, x):
    return s.b(s.a(x.float().mul_(2)))        # x.float() of a float32 tensor is x itself


def _on_parameter_under_no_grad(s, x):
    with cr.no_grad():
        s.scale.mul_(1.0)
    return s.b(s.a(x) * s.scale)


def _on_buffer(s, x):
    s.buf.add_(1)
    return s.b(s.a(x) + s.buf)


def _on_detached(s, x):
    h = s.a(x)
    h.detach().add_(1)
    return s.b(h)


def _used_before_and_after(s, x):
    h = s.a(x)
    y = h * 2
    h.add_(1)
    return s.b(h + y)


def _setitem_with_grad(s, x):
    h = s.a(x) * 1.0
    h[:, 0] = 0.0                             # a fresh mask each call
    return s.b(h)


def _setitem_without_grad(s, x):
    m = x * 1.0
    m[:, 0] = 0.0
    return s.b(s.a(m))


def _uniform_without_grad(s, x):
    m = x * 1.0
    m.uniform_()
    return s.b(s.a(m + x))


def _view_of_input_unused(s, x):
    x[:, :2].mul_(2)
    return s.b(s.a(x))


@pytest.mark.parametrize("forward", [_on_input, _on_float_of_float_input, _on_parameter_under_no_grad, _on_buffer,
                                     _on_detached, _used_before_and_after, _setitem_with_grad, _setitem_without_grad,
                                     _uniform_without_grad, _view_of_input_unused],
                         ids=lambda f: f.__name__.strip("_"))
def test_in_place_ops_that_cannot_replay_are_refused(forward):
    _refused(_both(_custom(forward), replay=True))


@pytest.mark.parametrize("build", [
    lambda: nn.Sequential(ReLU(inplace=True), L(5, 3)),
    lambda: nn.Sequential(Drop(0.2, inplace=True), L(5, 3)),
    lambda: nn.Sequential(nn.Concat(ReLU(inplace=True), nn.Identity()), L(10, 3)),
], ids=["relu_", "dropout_", "concat"])
def test_in_place_layer_on_the_input_is_refused(build):
    _refused(_both(build))


# --------------------------------------------------------------------------------------------------
# 4. tape level: record, then forward/backward on new inputs, against an eager forward/backward
# --------------------------------------------------------------------------------------------------


def _tape_vs_eager(fn, params, n=3, shape=(4, 6)):
    """Record ``fn(x)`` (returning (loss, out)) on one input, replay on ``n`` others; compare with eager."""
    rng = np.random.default_rng(7)
    xs = [cr.tensor(rng.standard_normal(shape).astype(np.float32)) for _ in range(n + 1)]
    _, tape = record(fn, (cr.tensor(xs[0].data.copy()),))
    if tape.problem is not None:
        return tape
    for x in xs[1:]:
        for p in params:
            p.grad = None
        state = cr.random.get_rng_state()      # the same dropout masks for the eager run and the replay
        loss, out = fn(cr.tensor(x.data.copy()))
        loss.backward()
        want = [loss.data.copy(), out.data.copy()] + [p.grad.data.copy() for p in params]
        for p in params:
            p.grad = None
        cr.random.set_rng_state(state)
        rloss, rout = tape.forward((cr.tensor(x.data.copy()),))
        tape.backward()
        got = [rloss.data, rout.data] + [p.grad.data for p in params]
        for a, b in zip(want, got, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    return tape


def _tape_params():
    rng = np.random.default_rng(3)
    w = nn.Parameter(cr.tensor(rng.standard_normal((6, 8)).astype(np.float32)))
    v = nn.Parameter(cr.tensor(rng.standard_normal(8).astype(np.float32)))
    w64 = nn.Parameter(cr.tensor(rng.standard_normal(8)))
    return w, v, w64


def _tape_chain(w, v, w64):
    def fn(x):
        h = x @ w
        h.add_(v).mul_(2).clamp_(-1, 1)
        nn.ReLU(inplace=True)(h)
        out = h * v
        return (out * out).sum(), out
    return fn


def _tape_loss_side(w, v, w64):
    def fn(x):
        out = (x @ w) * v
        loss = F.mse_loss(out.relu_(), cr.zeros(1)).mul_(2)
        return loss, out
    return fn


def _tape_dropout_leaky(w, v, w64):
    def fn(x):
        h = F.dropout(x @ w, 0.3, True, inplace=True)
        h = F.leaky_relu(h, 0.2, inplace=True)
        return (h * v).sum(), h
    return fn


@pytest.mark.parametrize("make", [_tape_chain, _tape_loss_side, _tape_dropout_leaky],
                         ids=lambda f: f.__name__.strip("_"))
def test_tape_refuses_in_place_ops_on_computed_values(make):
    params = _tape_params()
    cr.manual_seed(0)
    tape = _tape_vs_eager(make(*params), params[:2])
    assert tape.problem and "in-place" in tape.problem


def test_tape_refuses_in_place_on_inputs_and_constants():
    w, v, _ = _tape_params()

    def on_input(x):
        x.relu_()
        out = x @ w
        return out.sum(), out

    def on_param(x):
        with cr.no_grad():
            v.mul_(1.0)
        out = (x @ w) * v
        return out.sum(), out

    for fn in (on_input, on_param):
        _, tape = record(fn, (cr.randn(4, 6),))
        assert tape.problem and "in-place" in tape.problem


# --------------------------------------------------------------------------------------------------
# 5. the silent mismatches this sweep found in the first version (now refused, or fixed in the engine)
# --------------------------------------------------------------------------------------------------


def _nograd_add_then_setitem(s, x):
    m = x * 1.0
    m.add_(1)
    m[:, 0] = 0.0
    return s.b(s.a(m))


def _nograd_add_then_fill(s, x):
    m = x * 1.0
    m.add_(1)
    m.fill_(0.5)
    return s.b(s.a(m) + s.a(x))


def _nograd_mul_then_zero(s, x):
    m = x * 1.0
    m.mul_(2)
    m.zero_()
    return s.b(s.a(m + x))


def _nograd_mul_then_copy(s, x):
    m = x * 1.0
    m.mul_(2)
    t = x * 3
    m.copy_(t)
    return s.b(s.a(m) + s.a(t))


def _nograd_setitem_then_add(s, x):
    m = x * 1.0
    m[:, 0] = 0.0                              # the bypassing write comes first: the later add_ hides it too
    m.add_(1)
    return s.b(s.a(m))


def _setitem_under_no_grad_then_relu_(s, x):
    h = s.a(x) * 1.0
    with cr.no_grad():
        h[:, 0] = 0.0
    h.relu_()
    return s.b(h)


def _grad_relu_then_uniform(s, x):
    h = s.a(x) * 1.0
    h.relu_()
    h.uniform_(-1, 1)
    return s.b(h + s.a(x))


def _view_of_intermediate_used_later(s, x):
    h = s.a(x)
    v = h[:, :3]
    v.mul_(2)                                  # writes into h
    return s.b(h) + v.sum()


def _view_between_two_in_place_ops(s, x):
    h = s.a(x) * 1.0
    h.add_(1)
    v = h.T                                    # a view; h's next in-place op shows through it in eager
    h.relu_()
    return s.b(v.T) + h.sum()


def _view_of_input(s, x):
    v = x[:, :2]
    v.mul_(2)                                  # writes into the caller's batch
    return s.b(s.a(x)) + v.sum()


def _view_of_parameter_under_no_grad(s, x):
    v = s.scale[:3]
    with cr.no_grad():
        v.mul_(1.01)                           # changes the parameter in eager only
    return s.b(s.a(x) * s.scale) + v.sum()


def _view_of_buffer(s, x):
    v = s.buf.reshape(4, 4)
    v.add_(0.01)                               # changes the buffer in eager only
    return s.b(s.a(x) + s.buf) + v.sum()


def _write_through_detach(s, x):
    h = s.a(x)
    h.detach()[:, 0] = 0.0
    return s.b(h)


def _float64_argument(s, x):
    h = s.a(x)
    h.add_(s.p64)
    return s.b(h)


def _float64_argument_no_grad(s, x):
    m = x * 1.0
    m.mul_(s.p64[:5])
    return s.b(s.a(m))


def _add_self(s, x):
    h = s.a(x)
    h.add_(h)
    return s.b(h)


@pytest.mark.parametrize("forward", [
    _nograd_add_then_setitem,
    _nograd_add_then_fill,
    _nograd_mul_then_zero,
    _nograd_mul_then_copy,
    _nograd_setitem_then_add,
    _setitem_under_no_grad_then_relu_,
    _grad_relu_then_uniform,
    _view_of_intermediate_used_later,
    _view_between_two_in_place_ops,
    _view_of_input,
    _view_of_parameter_under_no_grad,
    _view_of_buffer,
    _write_through_detach,
    _float64_argument,
    _float64_argument_no_grad,
    _add_self,
], ids=lambda f: f.__name__.strip("_"))
def test_in_place_writes_that_once_replayed_wrongly(forward):
    step = _both(_custom(forward), replay=True)
    assert step.problem is not None or step.replays == STEPS - 2


def _loss_target_copy_add_then_setitem(o, y):
    y2 = y * 1.0
    y2.add_(1)
    y2[:, 0] = 0.0
    return F.mse_loss(o, y2)


def test_loss_writes_a_target_copy_after_an_in_place_op():
    _both(lambda: nn.Sequential(L(5, 16), nn.Tanh(), L(16, 3)), lambda: _loss_target_copy_add_then_setitem,
          replay=True, kind="reg")


@pytest.mark.parametrize("branch", ["flatten", "unflatten"])
def test_concat_branch_writes_through_a_view_under_auto(branch):
    # chainrule's own modules only (replay="auto"): the first branch's in-place ReLU writes through a
    # Flatten/Unflatten view into the value the second branch reads; replay's second branch reads the old values
    if branch == "flatten":
        _both(lambda: nn.Sequential(nn.Concat(nn.Sequential(nn.Flatten(), ReLU(inplace=True)), nn.Flatten()),
                                    L(16, 3)), xshape=(16, 2, 4))
    else:
        _both(lambda: nn.Sequential(L(5, 16), nn.Concat(nn.Sequential(nn.Unflatten(1, (4, 4)), ReLU(inplace=True),
                                                                      nn.Flatten()), nn.Identity()), L(32, 3)))


@pytest.mark.parametrize("act,same_batch", [("relu", False), ("leaky", True), ("elu", True), ("dropout", True)])
def test_in_place_layer_after_flatten_writes_into_the_callers_batch(act, same_batch):
    # nn.Flatten() of a (N, 2, 4) batch is a view of it: the eager step writes into the caller's batch (as torch
    # does), the replayed step does not.  On new batches only the caller's tensor differs afterwards; training on
    # one batch tensor makes the losses and weights differ too
    layer = {"relu": ReLU(inplace=True), "leaky": nn.LeakyReLU(0.1, inplace=True), "elu": nn.ELU(inplace=True),
             "dropout": Drop(0.3, inplace=True)}[act]
    _both(lambda: nn.Sequential(nn.Flatten(), layer, L(8, 3)), xshape=(16, 2, 4), same_batch=same_batch)


def _tape_view_write(w, v, w64):
    def fn(x):
        h = x @ w
        g = h[:, :2]
        g.mul_(2)                              # writes into h
        out = h * v
        return out.sum() + g.sum(), out
    return fn


def _tape_rewritten_then_setitem(w, v, w64):
    def fn(x):
        m = x * 1.0
        m.add_(1)
        m[:, 0] = 0.0
        out = (m @ w) * v
        return out.sum(), out
    return fn


def _tape_detach_write(w, v, w64):
    def fn(x):
        h = x @ w
        h.detach()[:, 0] = 0.0
        out = h * v
        return out.sum(), out
    return fn


def _tape_dtype(w, v, w64):
    def fn(x):
        h = x @ w
        h.mul_(w64)
        out = h * v
        return out.sum(), out
    return fn


def _tape_self_add(w, v, w64):
    def fn(x):
        h = x @ w
        h.add_(h)
        out = h * v
        return (out * out).sum(), out
    return fn


@pytest.mark.parametrize("make", [
    _tape_view_write,
    _tape_rewritten_then_setitem,
    _tape_detach_write,
    _tape_dtype,
    _tape_self_add,
], ids=lambda f: f.__name__.strip("_"))
def test_tape_in_place_writes_that_once_replayed_wrongly(make):
    params = _tape_params()
    _tape_vs_eager(make(*params), params[:2])
