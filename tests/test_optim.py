"""Tests for chainrule.optim: parity with torch.optim, state dicts, schedulers, subnormal flushing."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import optim
from chainrule.optim import SGD, Adagrad, Adam, AdamW, RMSprop, flatten_state_dict, unflatten_state_dict
from chainrule.optim import lr_scheduler as lrs
from chainrule.optim.optimizer import FLUSH_MARGIN, flush_interval

SHAPES = [(4, 3), (5,), (2, 3, 2), ()]
TOL = {np.float32: 1e-6, np.float64: 1e-12}


def make_arrays(dtype, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def grad_sequence(steps, dtype, seed=1, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]


def cr_params(arrays):
    return [cr.tensor(a.copy(), requires_grad=True) for a in arrays]


def torch_params(arrays):
    return [torch.tensor(a.copy(), requires_grad=True) for a in arrays]


def set_grads(params, grads):
    for p, g in zip(params, grads, strict=True):
        p.grad = cr.tensor(g.copy()) if isinstance(p, cr.Tensor) else torch.tensor(g.copy())


def to_np(t):
    return t.data if isinstance(t, cr.Tensor) else t.detach().numpy()


OPTIMIZERS = {"SGD": (SGD, torch.optim.SGD), "Adam": (Adam, torch.optim.Adam),
              "AdamW": (AdamW, torch.optim.AdamW), "RMSprop": (RMSprop, torch.optim.RMSprop),
              "Adagrad": (Adagrad, torch.optim.Adagrad)}

CONFIGS = [
    ("SGD", {}),
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.1, "dampening": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01, "maximize": True}),
    ("SGD", {"lr": 0.05, "maximize": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "maximize": True}),
    ("Adam", {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05, "maximize": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.2}),
    ("AdamW", {"lr": 0.01, "maximize": True, "betas": (0.5, 0.9)}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.5, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "maximize": True, "alpha": 0.9, "eps": 1e-6}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.1}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1}),
    ("Adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "eps": 1e-6}),
    ("Adagrad", {"lr": 0.1, "maximize": True, "lr_decay": 0.01}),
]


def config_id(c):
    name, kw = c
    return name + "(" + ",".join(f"{k}={v}" for k, v in kw.items()) + ")"


# ---- parity with torch ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("config", CONFIGS, ids=config_id)
def test_parity_with_torch(config, dtype):
    name, kwargs = config
    ours_cls, torch_cls = OPTIMIZERS[name]
    arrays = make_arrays(dtype)
    ps, tps = cr_params(arrays), torch_params(arrays)
    opt, topt = ours_cls(ps, **kwargs), torch_cls(tps, foreach=False, **kwargs)
    tol = TOL[dtype]
    for step, grads in enumerate(grad_sequence(20, dtype)):
        set_grads(ps, grads)
        set_grads(tps, grads)
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(ps, tps, strict=True)):
            assert p.data.dtype == dtype
            np.testing.assert_allclose(p.data, to_np(tp), rtol=tol, atol=tol,
                                       err_msg=f"param {i} after step {step + 1}")
    # the per-parameter state has torch's names and values, and keeps the parameters' dtype
    for p, tp in zip(ps, tps, strict=True):
        ours, theirs = opt.state[p], topt.state[tp]
        assert list(ours) == list(theirs)
        for key, value in ours.items():
            if isinstance(value, cr.Tensor):
                assert value.data.dtype == dtype
                np.testing.assert_allclose(value.data, to_np(theirs[key]), rtol=tol, atol=tol)
            else:
                assert value == float(theirs[key])


@pytest.mark.parametrize("kwargs", [kw for name, kw in CONFIGS if name == "SGD"], ids=str)
def test_sgd_updates_large_parameters_piece_by_piece_as_torch(kwargs):
    """SGD updates parameters of more than 65,536 elements piece by piece, keeping the pieces' views between
    steps: the result is torch's, also when ``p.data`` is replaced between steps, when a gradient is not
    contiguous, and when the momentum buffer is replaced by ``load_state_dict``."""
    shapes = [(300, 250), (70000,), (10,)]
    arrays = make_arrays(np.float32, shapes=shapes)
    ps, tps = cr_params(arrays), torch_params(arrays)
    opt, topt = SGD(ps, **kwargs), torch.optim.SGD(tps, foreach=False, **kwargs)
    for step, grads in enumerate(grad_sequence(8, np.float32, shapes=shapes)):
        if step == 3:      # a new array for a parameter (same values)
            ps[0].data = ps[0].data.copy()
        if step == 5:      # a new momentum buffer: the state round-trips through a state dict
            opt.load_state_dict(opt.state_dict())
        set_grads(ps, grads)
        set_grads(tps, grads)
        if step == 4:      # a transposed (Fortran-ordered) gradient
            ps[0].grad = cr.from_numpy(np.asfortranarray(grads[0]))
            assert not ps[0].grad.data.flags.c_contiguous
        opt.step()
        topt.step()
        for i, (p, tp) in enumerate(zip(ps, tps, strict=True)):
            np.testing.assert_allclose(p.data, to_np(tp), rtol=1e-6, atol=1e-6,
                                       err_msg=f"param {i} after step {step + 1}")


def _sgd_by_the_formula(p, g, buf, lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
                        maximize=False):
    """One step of SGD's docstring formula in plain NumPy with Python floats; returns (p, buf)."""
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    if momentum:
        buf = g.copy() if buf is None else buf * momentum + (g if dampening == 0 else g * (1.0 - dampening))
        g = g + buf * momentum if nesterov else buf
    return p + g * -lr, buf


def _back_to_back(arrays):
    """Parameters holding copies of ``arrays`` that lie back to back in memory, as ``nn.Linear`` makes them."""
    from chainrule import _malloc
    ps = []
    for a in arrays:
        d = _malloc.param_empty(a.shape, a.dtype)
        d[...] = a
        ps.append(cr.nn.Parameter(d))
    assert _malloc.runs([p.data for p in ps]) == [(0, len(ps))]
    return ps


def _run_sizes(opt):
    runs, _singles = opt._plan(opt.param_groups[0])
    return sorted(len(r.params) for r in runs)


@pytest.mark.parametrize("layout", ["separate", "back_to_back"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=["f16", "f32", "f64"])
@pytest.mark.parametrize("kwargs", [kw for name, kw in CONFIGS if name == "SGD"], ids=str)
def test_sgd_is_its_formula_bit_for_bit(kwargs, dtype, layout):
    """SGD's in-place, piece-by-piece update (factors as 0-d arrays of the parameter's dtype, views kept
    between steps, parameters back to back in memory updated as one array) computes exactly the numbers of
    its formula written with Python floats, in every float dtype, also after what the kept views point to
    is replaced between steps: ``p.data`` of a small and of a large parameter, a momentum buffer (its Tensor
    or its array), the whole state (``load_state_dict``), the learning rate; with gradients that are not
    C-contiguous, and with a parameter that gets no gradient for a step."""
    shapes = [(300, 250), (7,), (), (5, 3), (40,)]
    arrays = make_arrays(dtype, shapes=shapes)
    ps = cr_params(arrays) if layout == "separate" else _back_to_back(arrays)
    fused = layout == "back_to_back" and kwargs.get("momentum")
    ref = [p.data.copy() for p in ps]
    bufs: list = [None] * len(ps)
    full = {"lr": 1e-3, **kwargs}
    opt = SGD(ps, **kwargs)
    one_by_one: list = []                                   # parameters updated on their own
    update = opt._update
    opt._update = lambda p, *args: (one_by_one.append(p), update(p, *args))
    for step, grads in enumerate(grad_sequence(10, dtype, shapes=shapes)):
        one_by_one.clear()
        if step == 3:
            ps[0].data, ps[2].data = ps[0].data.copy(), ps[2].data.copy()
        if step == 4 and opt.state:
            # new buffers with other values (halved), here and in the formula
            half = np.asarray(0.5, dtype)
            for i in (0, 1, 3):
                bufs[i] = bufs[i] * half
            opt.state[ps[0]]["momentum_buffer"] = cr.from_numpy(bufs[0].copy())
            opt.state[ps[1]]["momentum_buffer"].data = bufs[1].copy()
            opt.state[ps[3]]["momentum_buffer"].data[...] = bufs[3]
        if step == 5:
            opt.load_state_dict(opt.state_dict())
        if step == 6:
            opt.param_groups[0]["lr"] = full["lr"] = 3e-4
        set_grads(ps, grads)
        if step == 7:
            for i in (0, 3):
                ps[i].grad = cr.from_numpy(np.asfortranarray(grads[i]))
                assert not ps[i].grad.data.flags.c_contiguous
        if step == 8:
            ps[4].grad = None
        opt.step()
        if fused and step in (1, 3, 5):
            # all five updated as one array; then (5, 3) and (40,), still back to back after the others were
            # replaced, and again after loading (the loaded buffers laid out as the parameters)
            assert _run_sizes(opt) == ([5] if step == 1 else [1, 1, 1, 2]), step
        if fused and step in (2, 6):
            assert one_by_one == []
        if fused and step == 8:
            assert one_by_one == [ps[3]]                    # its neighbour got no gradient
        for i, g in enumerate(grads):
            if ps[i].grad is not None:
                ref[i], bufs[i] = _sgd_by_the_formula(ref[i], g, bufs[i], **full)
            assert ps[i].data.dtype == dtype
            np.testing.assert_array_equal(ps[i].data, ref[i], err_msg=f"param {i} after step {step + 1}")
            if bufs[i] is not None:
                np.testing.assert_array_equal(opt.state[ps[i]]["momentum_buffer"].data, bufs[i],
                                              err_msg=f"momentum buffer {i} after step {step + 1}")


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_param_groups_with_different_options_match_torch(name):
    ours_cls, torch_cls = OPTIMIZERS[name]
    arrays = make_arrays(np.float64)
    ps, tps = cr_params(arrays), torch_params(arrays)
    extra = {"SGD": {"momentum": 0.5}, "RMSprop": {"centered": True}, "Adam": {"amsgrad": True},
             "AdamW": {"weight_decay": 0.5}, "Adagrad": {"lr_decay": 0.2}}[name]

    def groups(p):
        return [{"params": p[:2], "lr": 0.03, **extra}, {"params": p[2:]}]

    opt, topt = ours_cls(groups(ps), lr=0.01), torch_cls(groups(tps), lr=0.01, foreach=False)
    assert [g["lr"] for g in opt.param_groups] == [0.03, 0.01]
    for grads in grad_sequence(15, np.float64):
        set_grads(ps, grads)
        set_grads(tps, grads)
        opt.step()
        topt.step()
    for p, tp in zip(ps, tps, strict=True):
        np.testing.assert_allclose(p.data, to_np(tp), rtol=1e-12, atol=1e-12)


def test_add_param_group_matches_torch():
    arrays = make_arrays(np.float64)
    ps, tps = cr_params(arrays), torch_params(arrays)
    opt = Adam(ps[:2], lr=0.01)
    topt = torch.optim.Adam(tps[:2], lr=0.01, foreach=False)
    for k, grads in enumerate(grad_sequence(12, np.float64)):
        if k == 5:
            opt.add_param_group({"params": ps[2:], "lr": 0.1, "betas": (0.5, 0.9)})
            topt.add_param_group({"params": tps[2:], "lr": 0.1, "betas": (0.5, 0.9)})
        set_grads(ps, grads)
        set_grads(tps, grads)
        opt.step()
        topt.step()
    assert opt.param_groups[1]["eps"] == 1e-8            # defaults fill the rest of the group
    for p, tp in zip(ps, tps, strict=True):
        np.testing.assert_allclose(p.data, to_np(tp), rtol=1e-12, atol=1e-12)


def test_params_without_grad_are_skipped():
    ps = cr_params(make_arrays(np.float32))
    before = [p.data.copy() for p in ps]
    opt = Adam(ps, lr=0.1)
    ps[0].grad = cr.ones_like(ps[0])
    opt.step()
    assert not np.array_equal(ps[0].data, before[0])
    for p, b in zip(ps[1:], before[1:], strict=True):
        np.testing.assert_array_equal(p.data, b)
        assert p not in opt.state
    sgd = SGD(ps, lr=0.1)                    # momentum 0: no state at all, as torch
    sgd.step()
    assert sgd.state_dict()["state"] == {}


def test_updates_in_place_keep_float32_and_bump_version():
    p = cr.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    array = p.data
    opt = Adam([p], lr=np.float64(0.1), betas=(np.float64(0.9), np.float64(0.999)))   # numpy scalars
    y = (p * p).sum()                                  # a graph that saved p's old value
    p.grad = cr.tensor(np.ones((3, 2), np.float32))
    version = p._version
    opt.step()
    assert p.data is array and p.data.dtype == np.float32
    assert all(v.data.dtype == np.float32 for v in opt.state[p].values() if isinstance(v, cr.Tensor))
    assert p._version > version
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


# ---- zero_grad and closures ---------------------------------------------------------------------------
def test_zero_grad_set_to_none():
    ps = cr_params(make_arrays(np.float32))
    opt = SGD(ps, lr=0.1)
    for p in ps:
        (p * 2.0).sum().backward()
    opt.zero_grad()
    assert all(p.grad is None for p in ps)


def test_zero_grad_in_place():
    ps = cr_params(make_arrays(np.float32))
    opt = SGD(ps, lr=0.1)
    for p in ps:
        (p * 2.0).sum().backward()
    arrays = [p.grad.data for p in ps]
    opt.zero_grad(set_to_none=False)
    for p, a in zip(ps, arrays, strict=True):
        assert p.grad.data is a                      # same buffer, zeroed in place
        np.testing.assert_array_equal(a, 0)
    ps[0].grad = None
    opt.zero_grad(set_to_none=False)                 # a missing grad stays missing
    assert ps[0].grad is None


def test_step_with_closure_matches_torch():
    rng = np.random.default_rng(3)
    x, y, w0 = rng.standard_normal((8, 3)), rng.standard_normal(8), rng.standard_normal(3)
    w = cr.tensor(w0.copy(), requires_grad=True)
    tw = torch.tensor(w0.copy(), requires_grad=True)
    opt = SGD([w], lr=0.05, momentum=0.9)
    topt = torch.optim.SGD([tw], lr=0.05, momentum=0.9)
    calls = []

    def closure():
        opt.zero_grad()
        loss = ((cr.tensor(x) @ w - cr.tensor(y)) ** 2).mean()
        loss.backward()
        calls.append(float(loss))
        return loss

    def tclosure():
        topt.zero_grad()
        loss = ((torch.tensor(x) @ tw - torch.tensor(y)) ** 2).mean()
        loss.backward()
        return loss

    for _ in range(10):
        with cr.no_grad():                          # the closure re-enables grad
            loss = opt.step(closure)
        tloss = topt.step(tclosure)
        assert float(loss) == pytest.approx(tloss.item(), rel=1e-12)
    assert len(calls) == 10 and calls[-1] < calls[0]
    np.testing.assert_allclose(w.data, to_np(tw), rtol=1e-12, atol=1e-12)
    assert opt.step() is None


# ---- validation --------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda p: SGD(p, lr=-0.1), "Invalid learning rate"),
    (lambda p: SGD(p, momentum=-0.5), "Invalid momentum"),
    (lambda p: SGD(p, weight_decay=-1e-4), "Invalid weight_decay"),
    (lambda p: SGD(p, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: SGD(p, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: Adam(p, lr=-1e-3), "Invalid learning rate"),
    (lambda p: Adam(p, betas=(1.0, 0.999)), "Invalid beta parameter at index 0"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), "Invalid beta parameter at index 1"),
    (lambda p: Adam(p, betas=(0.9,)), "betas must be a pair"),
    (lambda p: Adam(p, eps=-1.0), "Invalid epsilon"),
    (lambda p: AdamW(p, weight_decay=-0.01), "Invalid weight_decay"),
    (lambda p: RMSprop(p, alpha=-0.1), "Invalid alpha"),
    (lambda p: RMSprop(p, momentum=-0.1), "Invalid momentum"),
    (lambda p: Adagrad(p, lr_decay=-0.1), "Invalid lr_decay"),
    (lambda p: Adagrad(p, initial_accumulator_value=-1.0), "Invalid initial_accumulator_value"),
    (lambda p: SGD([{"params": p, "lr": -1.0}], lr=0.1), "Invalid learning rate"),
])
def test_bad_options_raise(make, match):
    with pytest.raises(ValueError, match=match):
        make(cr_params(make_arrays(np.float32)))


def test_bad_params_raise():
    p = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        SGD(iter([]), lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors"):
        SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="floating-point"):
        SGD([cr.tensor([1, 2])], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        SGD([p * 2.0], lr=0.1)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        SGD([np.ones(3)], lr=0.1)
    with pytest.raises(ValueError, match="duplicate"):
        SGD([p, p], lr=0.1)
    opt = SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [p]})
    with pytest.raises(TypeError, match="sets"):
        opt.add_param_group({"params": {cr.tensor([1.0], requires_grad=True)}})
    p.grad = cr.tensor([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="gradient of shape"):
        opt.step()


def test_named_parameters_are_accepted():
    a, b = cr_params(make_arrays(np.float32)[:2])
    opt = Adam([("layer.weight", a), ("layer.bias", b)], lr=0.1)
    assert all(x is y for x, y in zip(opt.param_groups[0]["params"], [a, b], strict=True))
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["layer.weight", "layer.bias"]


# ---- state dicts -------------------------------------------------------------------------------------
STATE_CONFIGS = [("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
                 ("SGD", {"lr": 0.05}),
                 ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.01}),
                 ("AdamW", {"lr": 0.01}),
                 ("RMSprop", {"lr": 0.01, "centered": True, "momentum": 0.9}),
                 ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.1})]


def _grouped(params, kwargs):
    return [{"params": params[:1], "lr": kwargs.get("lr", 0.01) * 2}, {"params": params[1:]}]


@pytest.mark.parametrize("via", ["dict", "flat"])
@pytest.mark.parametrize("config", STATE_CONFIGS, ids=config_id)
def test_state_dict_resume_is_bit_exact(config, via, tmp_path):
    name, kwargs = config
    cls = OPTIMIZERS[name][0]
    arrays, grads = make_arrays(np.float32), grad_sequence(20, np.float32)

    full = cr_params(arrays)                                   # uninterrupted run
    opt = cls(_grouped(full, kwargs), **kwargs)
    for g in grads:
        set_grads(full, g)
        opt.step()

    first = cr_params(arrays)                                  # 10 steps, then save
    opt1 = cls(_grouped(first, kwargs), **kwargs)
    for g in grads[:10]:
        set_grads(first, g)
        opt1.step()
    sd = opt1.state_dict()
    at_save = [p.data.copy() for p in first]
    saved = {k: {n: (v.data.copy() if isinstance(v, cr.Tensor) else v) for n, v in s.items()}
             for k, s in sd["state"].items()}
    set_grads(first, grads[10])
    opt1.step()                                                 # the saved dict is a copy
    for k, s in sd["state"].items():
        for n, v in s.items():
            np.testing.assert_array_equal(v.data if isinstance(v, cr.Tensor) else v, saved[k][n])

    if via == "flat":                                           # through a safetensors file
        from chainrule.serialization import load_arrays, save_arrays
        flat, meta = flatten_state_dict(sd)
        save_arrays(flat, tmp_path / "opt.safetensors", metadata={"optimizer": json.dumps(meta)})
        flat, metadata = load_arrays(tmp_path / "opt.safetensors")
        sd = unflatten_state_dict(flat, json.loads(metadata["optimizer"]))

    resumed = cr_params(at_save)                               # the parameters as saved
    opt2 = cls(_grouped(resumed, {"lr": 123.0}), **{**kwargs, "lr": 123.0})   # options come from sd
    opt2.load_state_dict(sd)
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]
    for g in grads[10:]:
        set_grads(resumed, g)
        opt2.step()
    for p, q in zip(full, resumed, strict=True):
        np.testing.assert_array_equal(p.data, q.data)
    for p, q in zip(full, resumed, strict=True):
        for key, v in opt.state[p].items():
            w = opt2.state[q][key]
            if isinstance(v, cr.Tensor):
                assert w.data.dtype == np.float32
                np.testing.assert_array_equal(v.data, w.data)
            else:
                assert v == w


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_state_dict_layout_matches_torch(name):
    ours_cls, torch_cls = OPTIMIZERS[name]
    kwargs = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    arrays = make_arrays(np.float32)
    ps, tps = cr_params(arrays), torch_params(arrays)
    opt = ours_cls([{"params": ps[:1], "lr": 0.5}, {"params": ps[1:]}], lr=0.1, **kwargs)
    topt = torch_cls([{"params": tps[:1], "lr": 0.5}, {"params": tps[1:]}], lr=0.1, **kwargs)
    for grads in grad_sequence(3, np.float32):
        set_grads(ps, grads)
        set_grads(tps, grads)
        opt.step()
        topt.step()
    sd, tsd = opt.state_dict(), topt.state_dict()
    assert list(sd) == ["state", "param_groups"]
    assert list(sd["state"]) == list(tsd["state"]) == [0, 1, 2, 3]
    for k in sd["state"]:
        assert list(sd["state"][k]) == list(tsd["state"][k])
    for g, tg in zip(sd["param_groups"], tsd["param_groups"], strict=True):
        assert g["params"] == tg["params"]
        assert set(g) <= set(tg)
        for key in g:
            assert g[key] == tg[key], key


def test_load_state_dict_errors():
    ps = cr_params(make_arrays(np.float32))
    opt = Adam(ps, lr=0.1)
    set_grads(ps, grad_sequence(1, np.float32)[0])
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="parameter groups"):
        Adam([{"params": ps[:2]}, {"params": ps[2:]}]).load_state_dict(sd)
    with pytest.raises(ValueError, match="has 4 parameters"):
        Adam(ps[:3]).load_state_dict(sd)
    other = cr_params(make_arrays(np.float32, shapes=[(2,), (5,), (2, 3, 2), ()]))
    with pytest.raises(ValueError, match="shape"):
        Adam(other).load_state_dict(sd)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        Adam(ps).load_state_dict({"state": {}})


def test_load_casts_state_to_param_dtype_and_accepts_tensor_step():
    ps = cr_params(make_arrays(np.float64))
    opt = Adam(ps, lr=0.1)
    set_grads(ps, grad_sequence(1, np.float64)[0])
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["step"] = cr.tensor(1.0)                 # torch keeps 'step' as a tensor
    ps32 = cr_params(make_arrays(np.float32))
    opt32 = Adam(ps32, lr=0.1)
    opt32.load_state_dict(sd)
    assert opt32.state[ps32[0]]["step"] == 1
    assert opt32.state[ps32[0]]["exp_avg"].data.dtype == np.float32


def test_flatten_unflatten_round_trip():
    ps = cr_params(make_arrays(np.float32))
    opt = Adam([{"params": ps[:2], "betas": (0.8, 0.99)}, {"params": ps[2:], "lr": 0.5}], amsgrad=True)
    sched = lrs.StepLR(opt, step_size=2)                     # adds 'initial_lr' to the groups
    for grads in grad_sequence(3, np.float32):
        set_grads(ps, grads)
        opt.step()
        sched.step()
    sd = opt.state_dict()
    arrays, meta = flatten_state_dict(sd)
    assert all(isinstance(a, np.ndarray) for a in arrays.values())
    assert "state.0.exp_avg" in arrays and "state.3.max_exp_avg_sq" in arrays
    assert arrays["state.1.exp_avg_sq"].dtype == np.float32
    meta = json.loads(json.dumps(meta))                      # plain JSON
    back = unflatten_state_dict(arrays, meta)
    assert back["param_groups"] == sd["param_groups"]
    assert isinstance(back["param_groups"][0]["betas"], tuple)
    assert list(back["state"]) == list(sd["state"])
    for k, s in sd["state"].items():
        assert list(back["state"][k]) == list(s) or set(back["state"][k]) == set(s)
        for n, v in s.items():
            w = back["state"][k][n]
            if isinstance(v, cr.Tensor):
                np.testing.assert_array_equal(v.data, w.data)
                assert v.data.dtype == w.data.dtype
            else:
                assert v == w and type(v) is type(w)
    with pytest.raises(ValueError, match="format"):
        unflatten_state_dict(arrays, {"param_groups": []})
    with pytest.raises(ValueError, match="unexpected array name"):
        unflatten_state_dict({"weight": np.zeros(2)}, meta)


# ---- subnormals --------------------------------------------------------------------------------------
def _subnormal_count(a):
    tiny = np.finfo(a.dtype).tiny
    return int(np.count_nonzero((a != 0) & (np.abs(a) < tiny)))


def test_flush_interval():
    assert flush_interval(0.9) == int(math.log(FLUSH_MARGIN / 2) / -math.log(0.9)) == 32
    for decay in (0.3, 0.5, 0.9, 0.99):     # a value above the margin stays normal until the next flush
        assert decay ** flush_interval(decay) * FLUSH_MARGIN >= 2.0
    assert flush_interval(0.0) == flush_interval(1.0) == flush_interval(0.999999)
    assert flush_interval(0.01) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name, kwargs, buffers", [
    ("SGD", {"lr": 0.01, "momentum": 0.9}, ["momentum_buffer"]),
    ("SGD", {"lr": 0.01, "momentum": 0.6, "dampening": 0.2}, ["momentum_buffer"]),
    ("Adam", {"lr": 0.01, "betas": (0.6, 0.9)}, ["exp_avg", "exp_avg_sq"]),
    ("RMSprop", {"lr": 0.01, "alpha": 0.6, "centered": True, "momentum": 0.7},
     ["square_avg", "grad_avg", "momentum_buffer"]),
])
def test_zero_gradients_leave_no_subnormals(name, kwargs, buffers, dtype):
    """Units fed zero gradients for 2,000 steps: torch's buffers end up subnormal (and stuck there),
    ours are flushed to 0 and never hold a subnormal; the parameters still agree with torch."""
    ours_cls, torch_cls = OPTIMIZERS[name]
    shape = (16, 20)
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(shape).astype(dtype)
    live = np.zeros(shape, bool)
    live[:, :5] = True                                        # 5 columns keep getting gradients
    p, tp = cr_params([w0])[0], torch_params([w0])[0]
    opt, topt = ours_cls([p], **kwargs), torch_cls([tp], foreach=False, **kwargs)
    for step in range(2000):
        g = rng.standard_normal(shape).astype(dtype)
        if step >= 10:
            g = np.where(live, g, 0).astype(dtype)
        set_grads([p], [g])
        set_grads([tp], [g])
        opt.step()
        topt.step()
        for b in buffers:
            assert _subnormal_count(opt.state[p][b].data) == 0, (b, step)
    if dtype == np.float32 or kwargs.get("momentum") != 0.9:   # float64 takes 6,700 steps at 0.9
        assert any(_subnormal_count(to_np(topt.state[tp][b])) for b in buffers)   # torch does have them
    # The dead units' parameters agree with torch to rounding; the live ones drift apart by a few
    # float32 roundings over 2,000 steps, as any two implementations would.
    tol, drift = TOL[dtype], (2e-5 if dtype == np.float32 else 1e-10)
    dead = ~live
    np.testing.assert_allclose(p.data[dead], to_np(tp)[dead], rtol=tol, atol=tol)
    np.testing.assert_allclose(p.data[live], to_np(tp)[live], rtol=drift, atol=drift)
    for b in buffers:
        ours, theirs = opt.state[p][b].data, to_np(topt.state[tp][b])
        assert np.all(np.abs(ours[dead] - theirs[dead]) < 1e-30)
        np.testing.assert_allclose(ours[live], theirs[live], rtol=drift, atol=drift)


def test_flush_zeroes_only_values_below_the_margin():
    p = cr.tensor(np.zeros(4, np.float32), requires_grad=True)
    opt = SGD([p], lr=0.1, momentum=0.9)
    tiny = float(np.finfo(np.float32).tiny)
    p.grad = cr.tensor(np.zeros(4, np.float32))
    opt.step()                                                # creates the buffer
    buf = opt.state[p]["momentum_buffer"].data
    small = [1.0, 2 * FLUSH_MARGIN * tiny, FLUSH_MARGIN * tiny / 2, -FLUSH_MARGIN * tiny / 2]
    buf[:] = small
    opt.step()                                                # clock 1: not a flushing step
    assert np.all(buf != 0)
    while (opt._step_calls + 0) % flush_interval(0.9):
        buf[:] = small
        opt.step()
    buf[:] = small
    opt.step()                                                # a flushing step
    np.testing.assert_array_equal(buf[2:], 0)
    assert buf[0] == np.float32(0.9) and buf[1] == np.float32(np.float32(small[1]) * np.float32(0.9))



@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("layout", ["pieces", "strided", "empty"])
def test_flush_in_pieces_zeroes_exactly_the_small_values(dtype, layout):
    """The flush works in FLUSH_CHUNK-sized pieces (a remainder included) or, for a non-contiguous buffer, on
    the whole array: exactly the values below the margin become 0; NaN, Inf and everything else are kept."""
    from chainrule.optim.optimizer import FLUSH_CHUNK

    tiny = float(np.finfo(dtype).tiny)
    rng = np.random.default_rng(0)
    n = {"pieces": 2 * FLUSH_CHUNK + 123, "strided": 2 * 3001, "empty": 0}[layout]
    pool = np.array([0.0, 1.0, -2.5, 1e-3, FLUSH_MARGIN * tiny, -FLUSH_MARGIN * tiny, FLUSH_MARGIN * tiny / 2,
                     -3 * tiny, tiny / 4, np.nan, np.inf, -np.inf], dtype=dtype)
    values = rng.choice(pool, n).astype(dtype)
    buf = values.copy()
    target = buf[::2] if layout == "strided" else buf
    expected = np.where(np.abs(target) < dtype(FLUSH_MARGIN * tiny), dtype(0), target)
    opt = SGD([cr.tensor(np.zeros(1, dtype), requires_grad=True)], lr=0.1, momentum=0.9)
    opt._flush_subnormals(target, 0.9)                       # step clock 0: a flushing step
    np.testing.assert_array_equal(target, expected)
    if layout == "strided":
        np.testing.assert_array_equal(buf[1::2], values[1::2])   # the values between are not touched
    assert layout == "empty" or np.any(expected == 0) and np.any(np.isnan(expected))


# ---- learning-rate schedulers ------------------------------------------------------------------------
def _pair(opt_name="SGD", groups=1, **kwargs):
    ours_cls, torch_cls = OPTIMIZERS[opt_name]
    arrays = make_arrays(np.float32)
    kwargs = {"lr": 0.1, **({"momentum": 0.9} if opt_name == "SGD" else {}), **kwargs}
    ps, tps = cr_params(arrays), torch_params(arrays)
    if groups == 2:
        ps = [{"params": ps[:2], "lr": 0.3}, {"params": ps[2:]}]
        tps = [{"params": tps[:2], "lr": 0.3}, {"params": tps[2:]}]
    return ours_cls(ps, **kwargs), torch_cls(tps, **kwargs)


def _assert_same_schedule(opt, sched, topt, tsched, steps, metrics=None, keys=("lr",)):
    def check(k):
        assert len(sched.get_last_lr()) == len(tsched.get_last_lr())
        for a, b in zip(sched.get_last_lr(), tsched.get_last_lr(), strict=True):
            assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), (k, a, b)
        for g, tg in zip(opt.param_groups, topt.param_groups, strict=True):
            for key in keys:
                a, b = np.ravel(g[key]), np.ravel(tg[key])
                np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=f"{key} at step {k}")
        assert sched.last_epoch == tsched.last_epoch

    check(0)
    for k in range(steps):
        opt.step()
        topt.step()
        if metrics is None:
            sched.step()
            tsched.step()
        else:
            sched.step(metrics[k])
            tsched.step(metrics[k])
        check(k + 1)


SCHEDULERS = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}),
    ("LinearLR", {}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 10}),
    ("LambdaLR", {"lr_lambda": lambda e: 1.0 / (1 + e) ** 0.5}),
]


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("name, kwargs", SCHEDULERS, ids=[n + str(i) for i, (n, _) in enumerate(SCHEDULERS)])
def test_scheduler_matches_torch(name, kwargs, groups):
    opt, topt = _pair(groups=groups)
    sched = getattr(lrs, name)(opt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    assert sched.base_lrs == tsched.base_lrs
    _assert_same_schedule(opt, sched, topt, tsched, 30)


ONE_CYCLE = [
    ("SGD", {"max_lr": 0.5, "total_steps": 30}),
    ("SGD", {"max_lr": 0.5, "epochs": 3, "steps_per_epoch": 10, "anneal_strategy": "linear"}),
    ("SGD", {"max_lr": 0.5, "total_steps": 30, "three_phase": True, "pct_start": 0.25}),
    ("SGD", {"max_lr": 0.5, "total_steps": 30, "cycle_momentum": False, "div_factor": 10.0}),
    ("Adam", {"max_lr": 0.01, "total_steps": 30, "base_momentum": 0.8, "max_momentum": 0.9}),
    ("AdamW", {"max_lr": 0.01, "total_steps": 30, "three_phase": True, "final_div_factor": 100.0}),
]


@pytest.mark.parametrize("opt_name, kwargs", ONE_CYCLE, ids=[f"{n}{i}" for i, (n, _) in enumerate(ONE_CYCLE)])
def test_one_cycle_matches_torch_including_momentum(opt_name, kwargs):
    opt, topt = _pair(opt_name, groups=2)
    sched = lrs.OneCycleLR(opt, **kwargs)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, **kwargs)
    key = "betas" if opt_name.startswith("Adam") else "momentum"
    seen = []
    sched.step = _recording(sched.step, lambda: seen.append(opt.param_groups[0][key]))
    _assert_same_schedule(opt, sched, topt, tsched, 29, keys=("lr", key))
    assert len(set(map(str, seen))) > (1 if kwargs.get("cycle_momentum", True) else 0)


def _recording(step, record):
    def wrapped(*args):
        step(*args)
        record()
    return wrapped


def test_one_cycle_per_group_max_lr_and_errors():
    opt, topt = _pair(groups=2)
    sched = lrs.OneCycleLR(opt, max_lr=[1.0, 0.1], total_steps=10)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=[1.0, 0.1], total_steps=10)
    _assert_same_schedule(opt, sched, topt, tsched, 9, keys=("lr", "momentum"))
    opt.step()
    sched.step()
    with pytest.raises(ValueError, match="Tried to step 11 times"):
        opt.step()
        sched.step()
    with pytest.raises(ValueError, match="total_steps OR"):
        lrs.OneCycleLR(_pair()[0], max_lr=0.1)
    with pytest.raises(ValueError, match="max_lr must have the same length"):
        lrs.OneCycleLR(_pair(groups=2)[0], max_lr=[0.1], total_steps=5)
    with pytest.raises(ValueError, match="anneal_strategy"):
        lrs.OneCycleLR(_pair()[0], max_lr=0.1, total_steps=5, anneal_strategy="exp")
    with pytest.raises(ValueError, match="momentum or beta1"):
        lrs.OneCycleLR(_pair("Adagrad")[0], max_lr=0.1, total_steps=5)


PLATEAU = [
    ({"patience": 2}, [1.0, 0.9, 0.95, 0.91, 0.92, 0.89, 0.9, 0.9, 0.9, 0.9, 0.5, 0.6, 0.7, 0.8, 0.9]),
    ({"mode": "max", "threshold_mode": "abs", "threshold": 0.05, "patience": 1, "cooldown": 2, "factor": 0.5},
     [0.1, 0.2, 0.22, 0.23, 0.24, 0.3, 0.31, 0.32, 0.33, 0.34, 0.35, 0.5, 0.5, 0.5, 0.5]),
    ({"patience": 0, "min_lr": [0.05, 0.001], "factor": 0.5},
     [1.0, 1.1, 1.2, 1.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4, 1.5]),
    ({"mode": "max", "patience": 1, "eps": 0.05}, [1.0] * 20),
]


@pytest.mark.parametrize("kwargs, metrics", PLATEAU)
def test_reduce_lr_on_plateau_matches_torch(kwargs, metrics):
    opt, topt = _pair(groups=2)
    sched = lrs.ReduceLROnPlateau(opt, **kwargs)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kwargs)
    metrics = metrics + metrics[::-1]
    _assert_same_schedule(opt, sched, topt, tsched, len(metrics), metrics=metrics)
    assert min(sched.get_last_lr()) < 0.1 or kwargs.get("eps") == 0.05


def test_reduce_lr_on_plateau_errors_and_tensor_metric():
    opt = _pair()[0]
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        lrs.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="unknown"):
        lrs.ReduceLROnPlateau(opt, mode="median")
    with pytest.raises(ValueError, match="unknown"):
        lrs.ReduceLROnPlateau(opt, threshold_mode="percent")
    sched = lrs.ReduceLROnPlateau(opt, patience=0)
    sched.step(cr.tensor(1.0))
    sched.step(cr.tensor(2.0))
    assert sched.get_last_lr() == [pytest.approx(0.01)]


def test_scheduler_state_dict_round_trip():
    opt = _pair()[0]
    sched = lrs.CosineAnnealingLR(opt, T_max=12, eta_min=0.001)
    for _ in range(5):
        opt.step()
        sched.step()
    sd, osd = sched.state_dict(), opt.state_dict()
    assert "optimizer" not in sd and sd["last_epoch"] == 5
    expected = []
    for _ in range(8):
        opt.step()
        sched.step()
        expected.append(sched.get_last_lr()[0])

    opt2 = _pair()[0]
    sched2 = lrs.CosineAnnealingLR(opt2, T_max=12, eta_min=0.001)
    sched2.load_state_dict(sd)
    opt2.load_state_dict(osd)
    got = []
    for _ in range(8):
        opt2.step()
        sched2.step()
        got.append(sched2.get_last_lr()[0])
    assert got == expected


def test_lambda_scheduler_state_dict_skips_functions():
    class Warmup:
        def __init__(self):
            self.n = 4

        def __call__(self, epoch):
            return min(1.0, (epoch + 1) / self.n)

    opt = _pair(groups=2)[0]
    sched = lrs.LambdaLR(opt, [lambda e: 0.5 ** e, Warmup()])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [None, {"n": 4}]
    sd["lr_lambdas"][1]["n"] = 8
    sched.load_state_dict(sd)
    assert sched.lr_lambdas[1].n == 8


def test_scheduler_warns_when_stepped_before_optimizer():
    opt = _pair()[0]
    sched = lrs.StepLR(opt, step_size=1)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()
    opt2 = _pair()[0]
    sched2 = lrs.StepLR(opt2, step_size=1)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


def test_scheduler_closed_form_epoch_argument():
    opt, topt = _pair()
    sched, tsched = lrs.StepLR(opt, step_size=2, gamma=0.5), torch.optim.lr_scheduler.StepLR(topt, 2, 0.5)
    opt.step()
    topt.step()
    with pytest.warns(UserWarning):
        sched.step(7)
    with pytest.warns(UserWarning):
        tsched.step(7)
    assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)


def test_scheduler_requires_an_optimizer():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        lrs.StepLR(object(), step_size=1)
    with pytest.raises(KeyError, match="initial_lr"):
        lrs.StepLR(_pair()[0], step_size=1, last_epoch=3)


# ---- with chainrule.nn ---------------------------------------------------------------------------------
def test_training_an_nn_linear_matches_torch():
    nn = pytest.importorskip("chainrule.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("chainrule.nn.Linear not available")
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((16, 4)).astype(np.float32), rng.standard_normal((16, 2)).astype(np.float32)
    tlayer = torch.nn.Linear(4, 2)
    layer = nn.Linear(4, 2)
    with cr.no_grad():
        layer.weight.data[...] = tlayer.weight.detach().numpy()
        layer.bias.data[...] = tlayer.bias.detach().numpy()
    opt = AdamW(layer.parameters(), lr=0.05)
    topt = torch.optim.AdamW(tlayer.parameters(), lr=0.05)
    sched = lrs.OneCycleLR(opt, max_lr=0.05, total_steps=25)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.05, total_steps=25)
    for _ in range(25):
        opt.zero_grad()
        loss = ((layer(cr.tensor(x)) - cr.tensor(y)) ** 2).mean()
        loss.backward()
        opt.step()
        sched.step() if sched.last_epoch < 24 else None
        topt.zero_grad()
        tloss = ((tlayer(torch.tensor(x)) - torch.tensor(y)) ** 2).mean()
        tloss.backward()
        topt.step()
        tsched.step() if tsched.last_epoch < 24 else None
    np.testing.assert_allclose(layer.weight.data, tlayer.weight.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(layer.bias.data, tlayer.bias.detach().numpy(), rtol=1e-5, atol=1e-5)


def test_public_names():
    for name in ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler"]:
        assert hasattr(optim, name)
    assert "momentum" in repr(SGD(cr_params(make_arrays(np.float32)), momentum=0.9))


# ---- memory placement ---------------------------------------------------------------------------------
def _page_offset(a):
    return a.ctypes.data % 4096


def test_parameters_and_optimizer_buffers_start_at_staggered_page_offsets():
    """Large parameters start at rotating offsets within a 4 KiB page, and each optimizer buffer a fixed
    number of quarter-pages after its parameter, so arrays streamed together never share a page offset
    (chainrule._malloc.empty); small arrays are allocated as usual."""
    from chainrule import _malloc
    layers = [cr.nn.Linear(784, 256), cr.nn.Linear(256, 256)]
    weights = [lin.weight.data for lin in layers]
    assert len({_page_offset(w) for w in weights}) == len(weights)
    for w in weights:
        assert w.flags.c_contiguous and w.flags.writeable and w.dtype == np.float32
    params = [p for lin in layers for p in lin.parameters()]
    for p in params:
        p.grad = cr.tensor(np.ones(p.shape, np.float32))
    sgd, adam = SGD(params, lr=0.1, momentum=0.9), Adam(params, amsgrad=True)
    sgd.step()
    adam.step()
    for w in (layers[0].weight, layers[1].weight):
        base = _page_offset(w.data)
        assert _page_offset(sgd.state[w]["momentum_buffer"].data) == (base + 2048) % 4096
        shifts = {(_page_offset(adam.state[w][k].data) - base) % 4096
                  for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")}
        assert shifts == {1024, 2048, 3072}
        np.testing.assert_array_equal(sgd.state[w]["momentum_buffer"].data, 1.0)   # the first step's gradient
    # a loaded state is placed the same way
    again = SGD(params, lr=0.1, momentum=0.9)
    again.load_state_dict(sgd.state_dict())
    w = layers[0].weight
    assert _page_offset(again.state[w]["momentum_buffer"].data) == (_page_offset(w.data) + 2048) % 4096
    small = _malloc.empty((10,), np.float32)
    assert small.base is None and small.shape == (10,)
    big = _malloc.empty((3, 5000), np.float64, like=weights[0], shift=512)
    assert big.shape == (3, 5000) and big.dtype == np.float64 and big.flags.c_contiguous
    assert _page_offset(big) == (_page_offset(weights[0]) + 512) % 4096


def test_small_parameters_lie_back_to_back_and_runs_find_them():
    """``nn.Linear`` carves parameters up to ``_malloc.ARENA_MAX`` bytes one after another, on 64-byte
    boundaries, from zeroed blocks; ``_malloc.runs`` finds ranges of arrays back to back (padding allowed only
    inside those blocks) and ``_malloc.span`` the flat array a range covers."""
    from chainrule import _malloc
    model = cr.nn.Sequential(cr.nn.Linear(30, 7), cr.nn.ReLU(), cr.nn.Linear(7, 3))
    arrays = [p.data for p in model.parameters()]
    assert _malloc.runs(arrays) == [(0, 4)]
    starts = [a.ctypes.data for a in arrays]
    assert all(s % 64 == 0 for s in starts)
    assert [b - a for a, b in zip(starts, starts[1:])] == [896, 64, 128]   # 840, 28 and 84 bytes, padded
    flat = _malloc.span(arrays[0], arrays[-1])
    assert flat.dtype == np.float32 and flat.size == (starts[-1] - starts[0]) // 4 + 3
    np.testing.assert_array_equal(flat[224:231], arrays[1])
    assert not flat[210:224].any() and not flat[231:240].any()      # the padding is zeros
    assert _malloc.runs(arrays[::-1]) == [] and _malloc.runs(arrays[:1]) == []
    # outside those blocks: back to back means no gap at all
    owner = np.zeros(100, np.float32)
    assert _malloc.runs([owner[0:10], owner[10:30].reshape(4, 5), owner[30:31]]) == [(0, 3)]
    assert _malloc.runs([owner[0:10], owner[12:20]]) == []
    assert _malloc.runs([owner[0:10], owner[10:20].view(np.int32)]) == []          # another dtype
    assert _malloc.runs([owner[0:10], owner[10:30].reshape(5, 4).T]) == []         # not contiguous
    assert _malloc.runs([owner[0:10], np.zeros(5, np.float32)]) == []              # another owner
    assert _malloc.span(owner[0:10], np.zeros(5, np.float32)) is None
    big = cr.nn.Linear(1024, 512).weight.data                        # 2 MiB: an array of its own
    assert _malloc.root(big).nbytes == big.nbytes + 4096            # (a page more, to stagger it)


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_sgd_with_its_parameters_trains_as_the_original(how):
    """A copy of parameters back to back and their SGD (mid-run, with update plans made) goes on exactly as
    the original: the plans are views of the original's memory and are not copied."""
    import copy
    import pickle
    model = cr.nn.Sequential(cr.nn.Linear(300, 250), cr.nn.ReLU(), cr.nn.Linear(250, 3))
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    grads = grad_sequence(6, np.float32, shapes=[p.shape for p in model.parameters()])

    def step(m, o, gs):
        set_grads(list(m.parameters()), gs)
        o.step()

    for gs in grads[:3]:
        step(model, opt, gs)
    twin = copy.deepcopy((model, opt)) if how == "deepcopy" else pickle.loads(pickle.dumps((model, opt)))
    for gs in grads[3:]:
        step(model, opt, gs)
        step(*twin, gs)
    for p, q in zip(model.parameters(), twin[0].parameters(), strict=True):
        assert not np.shares_memory(p.data, q.data)
        np.testing.assert_array_equal(p.data, q.data)
