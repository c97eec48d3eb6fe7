"""The schedulers added after the first eight match torch.optim.lr_scheduler: signatures, LR and momentum
sequences, state dicts, fractional epochs and errors."""

from __future__ import annotations

import inspect
import math
import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import optim
from chainrule.optim import lr_scheduler as lrs

torch = pytest.importorskip("torch")
tlrs = torch.optim.lr_scheduler

NEW = ["ConstantLR", "PolynomialLR", "MultiplicativeLR", "SequentialLR", "ChainedScheduler",
       "CosineAnnealingWarmRestarts", "CyclicLR"]


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def make_opt(lib, groups=1, opt="SGD", **kwargs):
    """The same optimizer in chainrule (``lib=cr``) or torch: two parameters, in one group or two."""
    mod = optim if lib is cr else torch.optim
    ps = [lib.tensor(np.ones((2, 3)), requires_grad=True), lib.tensor(np.ones(4), requires_grad=True)]
    params = ps if groups == 1 else [{"params": ps[:1], "lr": 0.3}, {"params": ps[1:]}]
    defaults = {"lr": 0.1, **({"momentum": 0.9} if opt == "SGD" else {}), **kwargs}
    return getattr(mod, opt)(params, **defaults)


def positional(fn):
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [n for n, p in inspect.signature(fn).parameters.items() if p.kind in kinds]


@pytest.mark.parametrize("name", NEW)
def test_signature_matches_torch(name):
    """Same argument names, order and defaults as torch's constructor."""
    ours, theirs = inspect.signature(getattr(lrs, name)), inspect.signature(getattr(tlrs, name))
    assert list(ours.parameters) == list(theirs.parameters)
    for n, p in theirs.parameters.items():
        assert ours.parameters[n].default == p.default, n
    assert positional(getattr(lrs, name)) == positional(getattr(tlrs, name))
    assert name in lrs.__all__


# Each builder makes the scheduler from a module (chainrule's or torch's) and an optimizer.
CASES = {
    "Constant": lambda m, o: m.ConstantLR(o),
    "Constant-half4": lambda m, o: m.ConstantLR(o, factor=0.5, total_iters=4),
    "Polynomial": lambda m, o: m.PolynomialLR(o),
    "Polynomial-p2": lambda m, o: m.PolynomialLR(o, total_iters=30, power=2.0),
    "Multiplicative": lambda m, o: m.MultiplicativeLR(o, lr_lambda=lambda e: 0.95),
    "Multiplicative-e": lambda m, o: m.MultiplicativeLR(o, lambda e: 1.0 - 0.01 * (e % 7)),
    "Sequential-warmup-exp": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=5), m.ExponentialLR(o, gamma=0.9)], milestones=[5]),
    "Sequential-3": lambda m, o: m.SequentialLR(
        o, [m.ConstantLR(o, factor=0.5, total_iters=3), m.CosineAnnealingLR(o, T_max=10),
            m.StepLR(o, step_size=4, gamma=0.5)], [3, 20]),
    "Chained": lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.2, total_iters=6),
                                                 m.ExponentialLR(o, gamma=0.93)]),
    "Chained-poly-mult": lambda m, o: m.ChainedScheduler(
        [m.PolynomialLR(o, total_iters=25, power=0.5), m.MultiplicativeLR(o, lambda e: 0.99)], optimizer=o),
    "WarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5),
    "WarmRestarts-mult2": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.01),
    "Cyclic-triangular": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4),
    "Cyclic-triangular2": lambda m, o: m.CyclicLR(o, 0.01, [0.2, 0.1][:len(o.param_groups)], 3, 5,
                                                  mode="triangular2"),
    "Cyclic-exp_range": lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=5, mode="exp_range", gamma=0.97),
    "Cyclic-custom": lambda m, o: m.CyclicLR(o, 0.01, 0.1, 4, scale_fn=lambda x: 1 / (1 + x), scale_mode="iterations",
                                             cycle_momentum=False),
}


def assert_same(opt, sched, topt, tsched, k):
    for g, tg in zip(opt.param_groups, topt.param_groups, strict=True):
        np.testing.assert_allclose(g["lr"], tg["lr"], rtol=1e-12, atol=0, err_msg=f"lr at step {k}")
        if "momentum" in tg:
            np.testing.assert_allclose(g["momentum"], tg["momentum"], rtol=1e-12, err_msg=f"momentum, step {k}")
        if "betas" in tg:
            np.testing.assert_allclose(g["betas"], tg["betas"], rtol=1e-12, err_msg=f"betas at step {k}")
    np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=0)
    assert hasattr(sched, "last_epoch") == hasattr(tsched, "last_epoch")
    assert getattr(sched, "last_epoch", None) == getattr(tsched, "last_epoch", None)


@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("case", list(CASES))
def test_40_steps_match_torch(case, groups, opt_name):
    """lr (and cycled momentum/betas), get_last_lr and last_epoch equal torch's after each of 40 steps."""
    opt, topt = make_opt(cr, groups, opt_name), make_opt(torch, groups, opt_name)
    sched, tsched = CASES[case](lrs, opt), CASES[case](tlrs, topt)
    assert_same(opt, sched, topt, tsched, 0)
    for k in range(1, 41):
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
        assert_same(opt, sched, topt, tsched, k)


@pytest.mark.parametrize("case", list(CASES))
def test_state_dict_round_trip_resumes_the_schedule(case):
    """A scheduler loaded from another's state_dict after 17 steps continues with the same lrs."""
    opt, opt2 = make_opt(cr, 2), make_opt(cr, 2)
    sched, sched2 = CASES[case](lrs, opt), CASES[case](lrs, opt2)
    for _ in range(17):
        opt.step()
        sched.step()
    tsched = CASES[case](tlrs, make_opt(torch, 2))
    assert set(sched.state_dict()) == set(tsched.state_dict()) - {"_get_lr_called_within_step"}
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    for k in range(20):
        opt.step()
        opt2.step()
        sched.step()
        sched2.step()
        assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups], k
        assert sched2.get_last_lr() == sched.get_last_lr()


@pytest.mark.parametrize("T_0, T_mult", [(3, 1), (2, 2), (3, 3)])
def test_warm_restarts_fractional_epochs_match_torch(T_0, T_mult):
    """step(epoch + batch / n) anneals within epochs and restarts as torch does, last_epoch = floor(epoch)."""
    opt, topt = make_opt(cr, 2), make_opt(torch, 2)
    sched = lrs.CosineAnnealingWarmRestarts(opt, T_0, T_mult, eta_min=0.001)
    tsched = tlrs.CosineAnnealingWarmRestarts(topt, T_0, T_mult, eta_min=0.001)
    seen = set()
    for epoch in range(14):
        for batch in range(4):
            sched.step(epoch + batch / 4)
            tsched.step(epoch + batch / 4)
            assert_same(opt, sched, topt, tsched, epoch + batch / 4)
            seen.add(round(opt.param_groups[1]["lr"], 12))
    assert sched.last_epoch == 13 and len(seen) > 10
    with pytest.raises(ValueError, match="non-negative epoch"):
        sched.step(-1)


def test_cyclic_momentum_needs_an_optimizer_with_momentum():
    """cycle_momentum (default True) raises for Adagrad as torch does; False works and leaves no momentum."""
    for lib, mod in [(cr, lrs), (torch, tlrs)]:
        with pytest.raises(ValueError, match="momentum or beta1"):
            mod.CyclicLR(make_opt(lib, opt="Adagrad"), 0.01, 0.1)
    opt, topt = make_opt(cr, opt="Adagrad"), make_opt(torch, opt="Adagrad")
    sched, tsched = lrs.CyclicLR(opt, 0.01, 0.1, 2, cycle_momentum=False), tlrs.CyclicLR(topt, 0.01, 0.1, 2,
                                                                                         cycle_momentum=False)
    for k in range(6):
        sched.step()
        tsched.step()
        assert_same(opt, sched, topt, tsched, k)
    assert "momentum" not in opt.param_groups[0] and math.isclose(opt.param_groups[0]["lr"], 0.1)


@pytest.mark.parametrize("make", [
    lambda m, o: m.CyclicLR(o, 0.01, 0.1, mode="sawtooth"),
    lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=0),
    lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=0),
    lambda m, o: m.ConstantLR(o, factor=1.5),
    lambda m, o: m.SequentialLR(o, [m.ConstantLR(o), m.ExponentialLR(o, 0.9)], milestones=[2, 4]),
    lambda m, o: m.SequentialLR(o, [], milestones=[]),
    lambda m, o: m.ChainedScheduler([m.ConstantLR(o), m.ConstantLR(m.__dict__["_other"])]),
], ids=["cyclic-mode", "T_0", "T_mult", "factor", "milestones", "no-schedulers", "two-optimizers"])
def test_invalid_arguments_raise_value_error_as_in_torch(make):
    """Both libraries reject the same bad arguments with ValueError."""
    for lib, mod in [(cr, lrs), (torch, tlrs)]:
        mod._other = make_opt(lib)
        with pytest.raises(ValueError):
            make(mod, make_opt(lib))
        del mod._other
