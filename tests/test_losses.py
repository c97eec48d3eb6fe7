"""Losses: values and gradients against torch for every reduction and option, gradchecks, validation.

Tolerances: float32 results agree with torch to rtol = atol = 1e-5, float64 to 1e-10.
"""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

torch.set_default_dtype(torch.float32)

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}
RED = ["mean", "sum", "none"]


def _np(a):
    if isinstance(a, torch.Tensor):
        return a.detach().numpy()
    return np.asarray(a.data if isinstance(a, cr.Tensor) else a)


def cw(w):
    """An optional constant as a chainrule tensor."""
    return None if w is None else cr.tensor(w)


def tw(w):
    """An optional constant as a torch tensor."""
    return None if w is None else torch.tensor(w)


def close(a, b, dtype):
    a, b = _np(a), _np(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, **TOL[dtype])


def compare(cr_fn, torch_fn, x, t, dtype, target_grad=False, seed=0):
    """Run both libraries on the same input/target; compare the loss and the gradients."""
    xc = cr.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    is_float_t = np.asarray(t).dtype.kind == "f"
    tc = cr.tensor(t, requires_grad=target_grad and is_float_t)
    tt = torch.tensor(t, requires_grad=target_grad and is_float_t)
    out_c, out_t = cr_fn(xc, tc), torch_fn(xt, tt)
    close(out_c, out_t, dtype)
    g = np.random.default_rng(seed).standard_normal(out_t.shape).astype(dtype)
    out_c.backward(cr.tensor(g))
    out_t.backward(torch.tensor(g))
    close(xc.grad, xt.grad, dtype)
    if target_grad and is_float_t:
        close(tc.grad, tt.grad, dtype)
    return out_c


def rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------------------------------
# cross-entropy with class indices
# ---------------------------------------------------------------------------------------------------
CE_SHAPES = [((8, 5), (8,)), ((4, 3, 2, 3), (4, 2, 3)), ((6,), ())]
CE_OPTIONS = [
    {},
    {"weight": True},
    {"ignore_index": 1},
    {"ignore_index": -100, "mark_ignored": True},
    {"label_smoothing": 0.2},
    {"weight": True, "label_smoothing": 0.1},
    {"weight": True, "ignore_index": 2, "label_smoothing": 0.3},
    {"weight": True, "ignore_index": -100, "mark_ignored": True, "label_smoothing": 0.25},
]


def _ce_case(xshape, tshape, opts, dtype, seed=0):
    r = rng(seed)
    C = xshape[1] if len(xshape) > 1 else xshape[0]
    x = (r.standard_normal(xshape) * 2).astype(dtype)
    t = r.integers(0, C, tshape).astype(np.int64)
    kw = {}
    if opts.get("weight"):
        kw["weight"] = r.uniform(0.2, 2.0, C).astype(dtype)
    if "ignore_index" in opts:
        kw["ignore_index"] = opts["ignore_index"]
        if opts.get("mark_ignored") and t.ndim:
            flat = t.reshape(-1)
            flat[::3] = opts["ignore_index"]
    if "label_smoothing" in opts:
        kw["label_smoothing"] = opts["label_smoothing"]
    return x, t, kw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("shapes", CE_SHAPES)
@pytest.mark.parametrize("opts", CE_OPTIONS)
def test_cross_entropy_indices_matches_torch(dtype, reduction, shapes, opts):
    x, t, kw = _ce_case(*shapes, opts, dtype)
    w = kw.pop("weight", None)
    compare(lambda a, b: F.cross_entropy(a, b, weight=cw(w), reduction=reduction, **kw),
            lambda a, b: TF.cross_entropy(a, b, weight=tw(w), reduction=reduction, **kw),
            x, t, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("opts", [{}, {"weight": True}, {"label_smoothing": 0.15},
                                  {"weight": True, "label_smoothing": 0.3}])
@pytest.mark.parametrize("xshape", [(7, 4), (3, 4, 5), (4,)])
def test_cross_entropy_probabilities_matches_torch(dtype, reduction, opts, xshape):
    r = rng(1)
    x = r.standard_normal(xshape).astype(dtype)
    dim = 0 if len(xshape) == 1 else 1
    t = r.uniform(0.0, 1.0, xshape).astype(dtype)
    t /= t.sum(axis=dim, keepdims=True)
    C = xshape[dim]
    w = r.uniform(0.5, 2.0, C).astype(dtype) if opts.get("weight") else None
    ls = opts.get("label_smoothing", 0.0)
    compare(lambda a, b: F.cross_entropy(a, b, weight=cw(w), reduction=reduction, label_smoothing=ls),
            lambda a, b: TF.cross_entropy(a, b, weight=tw(w), reduction=reduction, label_smoothing=ls),
            x, t, dtype, target_grad=True)


def test_cross_entropy_all_ignored_mean_is_nan_like_torch():
    x = rng().standard_normal((3, 4)).astype(np.float32)
    t = np.full(3, -100, dtype=np.int64)
    out = F.cross_entropy(cr.tensor(x), cr.tensor(t))
    ref = TF.cross_entropy(torch.tensor(x), torch.tensor(t))
    assert math.isnan(out.item()) and math.isnan(ref.item())
    assert F.cross_entropy(cr.tensor(x), cr.tensor(t), reduction="sum").item() == 0.0


def test_cross_entropy_huge_logits_are_stable():
    x = np.array([[1000.0, -1000.0, 0.0], [-5000.0, 5000.0, 4990.0]], dtype=np.float32)
    t = np.array([0, 2])
    compare(lambda a, b: F.cross_entropy(a, b), lambda a, b: TF.cross_entropy(a, b), x, t, np.float32)
    out = F.cross_entropy(cr.tensor(x), cr.tensor(t), reduction="none")
    np.testing.assert_allclose(out.numpy(), [0.0, 10.0], atol=1e-4)


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    r = rng(3)
    x = cr.tensor(r.standard_normal((5, 4)), dtype=cr.float64, requires_grad=True)
    y = np.array([0, 3, 1, 1, 2])
    F.cross_entropy(x, cr.tensor(y)).backward()
    p = np.exp(x.data) / np.exp(x.data).sum(1, keepdims=True)
    expected = (p - np.eye(4)[y]) / 5
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("opts", CE_OPTIONS)
@pytest.mark.parametrize("reduction", RED)
def test_cross_entropy_gradcheck_and_gradgradcheck(opts, reduction):
    x, t, kw = _ce_case((4, 3), (4,), opts, np.float64, seed=5)
    w = kw.pop("weight", None)
    xc = cr.tensor(x, requires_grad=True)

    def f(a):
        return F.cross_entropy(a, cr.tensor(t), weight=cw(w), reduction=reduction, **kw)

    assert gradcheck(f, (xc,))
    assert gradgradcheck(f, (xc,))


def test_cross_entropy_spatial_gradgradcheck():
    x, t, kw = _ce_case((2, 3, 2, 2), (2, 2, 2), {"weight": True, "label_smoothing": 0.2, "ignore_index": 1},
                        np.float64, seed=2)
    w = cr.tensor(kw.pop("weight"))
    xc = cr.tensor(x, requires_grad=True)
    f = lambda a: F.cross_entropy(a, cr.tensor(t), weight=w, **kw)  # noqa: E731
    assert gradcheck(f, (xc,)) and gradgradcheck(f, (xc,))


def test_cross_entropy_probabilities_gradcheck_target_too():
    r = rng(4)
    x = cr.tensor(r.standard_normal((3, 4)), requires_grad=True)
    t = cr.tensor(r.uniform(0.1, 1, (3, 4)), requires_grad=True)
    f = lambda a, b: F.cross_entropy(a, b, label_smoothing=0.1, weight=cr.tensor([1.0, 2.0, 0.5, 1.0],  # noqa: E731
                                                                                    dtype=cr.float64))
    assert gradcheck(f, (x, t)) and gradgradcheck(f, (x, t))


def test_fused_cross_entropy_fast_and_reference_backward_agree():
    """backward_np (first order) and the Tensor backward (create_graph) give the same gradient."""
    for opts in CE_OPTIONS:
        x, t, kw = _ce_case((6, 5), (6,), opts, np.float64, seed=9)
        w = kw.pop("weight", None)
        for reduction in RED:
            xc = cr.tensor(x, requires_grad=True)
            loss = F.cross_entropy(xc, cr.tensor(t), weight=None if w is None else cr.tensor(w),
                                   reduction=reduction, **kw)
            g = cr.tensor(rng(1).standard_normal(loss.shape))
            (fast,) = cr.autograd.grad(loss, xc, g, retain_graph=True)
            (ref,) = cr.autograd.grad(loss, xc, g, create_graph=True)
            np.testing.assert_allclose(fast.numpy(), ref.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------------
# NLL
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("shapes", CE_SHAPES)
@pytest.mark.parametrize("opts", [{}, {"weight": True}, {"ignore_index": 0},
                                  {"weight": True, "ignore_index": -100, "mark_ignored": True}])
def test_nll_loss_matches_torch(dtype, reduction, shapes, opts):
    x, t, kw = _ce_case(*shapes, opts, dtype)
    w = kw.pop("weight", None)
    compare(lambda a, b: F.nll_loss(a, b, weight=cw(w), reduction=reduction, **kw),
            lambda a, b: TF.nll_loss(a, b, weight=tw(w), reduction=reduction, **kw),
            x, t, dtype)


def test_nll_of_log_softmax_equals_cross_entropy():
    x, t, _ = _ce_case((10, 7), (10,), {}, np.float64)
    a = F.nll_loss(F.log_softmax(cr.tensor(x), dim=1), cr.tensor(t)).item()
    b = F.cross_entropy(cr.tensor(x), cr.tensor(t)).item()
    assert abs(a - b) < 1e-12


@pytest.mark.parametrize("reduction", RED)
def test_nll_gradcheck(reduction):
    x, t, kw = _ce_case((4, 3), (4,), {"weight": True, "ignore_index": 1}, np.float64, seed=1)
    w = cr.tensor(kw.pop("weight"))
    xc = cr.tensor(x, requires_grad=True)
    f = lambda a: F.nll_loss(a, cr.tensor(t), weight=w, reduction=reduction, **kw)  # noqa: E731
    assert gradcheck(f, (xc,)) and gradgradcheck(f, (xc,))


# ---------------------------------------------------------------------------------------------------
# binary cross-entropy
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_matches_torch(dtype, reduction, weighted):
    r = rng(2)
    x = r.uniform(0.02, 0.98, (6, 3)).astype(dtype)
    t = r.uniform(0, 1, (6, 3)).astype(dtype)
    w = r.uniform(0.5, 2, (3,)).astype(dtype) if weighted else None
    compare(lambda a, b: F.binary_cross_entropy(a, b, cw(w), reduction=reduction),
            lambda a, b: TF.binary_cross_entropy(a, b, tw(w), reduction=reduction),
            x, t, dtype, target_grad=True)


def test_bce_clamps_log_at_minus_100_like_torch():
    x = np.array([0.0, 1.0, 0.0, 1.0, 0.5], dtype=np.float32)
    t = np.array([1.0, 0.0, 0.0, 1.0, 1.0], dtype=np.float32)
    xc = cr.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    lc = F.binary_cross_entropy(xc, cr.tensor(t), reduction="none")
    lt = TF.binary_cross_entropy(xt, torch.tensor(t), reduction="none")
    np.testing.assert_allclose(lc.detach().numpy(), [100.0, 100.0, 0.0, 0.0, math.log(2)], rtol=1e-6)
    close(lc, lt, np.float32)
    lc.sum().backward()
    lt.sum().backward()
    assert np.all(np.isfinite(xc.grad.numpy()))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos_weighted", [False, True])
def test_bce_with_logits_matches_torch(dtype, reduction, weighted, pos_weighted):
    r = rng(3)
    x = (r.standard_normal((5, 4)) * 3).astype(dtype)
    t = r.uniform(0, 1, (5, 4)).astype(dtype)
    w = r.uniform(0.5, 2, (5, 1)).astype(dtype) if weighted else None
    pw = r.uniform(0.5, 3, (4,)).astype(dtype) if pos_weighted else None

    def c(a, b):
        return F.binary_cross_entropy_with_logits(a, b, cw(w), reduction=reduction, pos_weight=cw(pw))

    def tt(a, b):
        return TF.binary_cross_entropy_with_logits(a, b, tw(w), reduction=reduction, pos_weight=tw(pw))

    compare(c, tt, x, t, dtype, target_grad=True)


def test_bce_with_logits_is_stable_for_huge_logits():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=np.float32)
    t = np.array([1.0, 1.0, 0.5, 0.0, 0.0], dtype=np.float32)
    out = compare(lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction="none"),
                  lambda a, b: TF.binary_cross_entropy_with_logits(a, b, reduction="none"), x, t, np.float32)
    np.testing.assert_allclose(out.detach().numpy(), [1000.0, 50.0, math.log(2), 50.0, 1000.0], rtol=1e-6)


@pytest.mark.parametrize("reduction", RED)
def test_bce_gradchecks(reduction):
    r = rng(4)
    x = cr.tensor(r.uniform(0.1, 0.9, (3, 2)), requires_grad=True)
    z = cr.tensor(r.standard_normal((3, 2)), requires_grad=True)
    t = cr.tensor(r.uniform(0, 1, (3, 2)), requires_grad=True)
    w = cr.tensor(r.uniform(0.5, 2, (2,)))
    pw = cr.tensor(r.uniform(0.5, 2, (2,)))
    f = lambda a, b: F.binary_cross_entropy(a, b, w, reduction=reduction)  # noqa: E731
    g = lambda a, b: F.binary_cross_entropy_with_logits(a, b, w, reduction=reduction, pos_weight=pw)  # noqa: E731
    h = lambda a, b: F.binary_cross_entropy_with_logits(a, b, reduction=reduction)  # noqa: E731
    for fn, inp in ((f, x), (g, z), (h, z)):
        assert gradcheck(fn, (inp, t)) and gradgradcheck(fn, (inp, t))


def test_fused_binary_losses_fast_and_reference_backward_agree():
    r = rng(5)
    z = cr.tensor(r.standard_normal((4, 3)), requires_grad=True)
    p = cr.tensor(r.uniform(0.1, 0.9, (4, 3)), requires_grad=True)
    t = cr.tensor(r.uniform(0, 1, (4, 3)), requires_grad=True)
    pw = cr.tensor([2.0, 0.5, 1.0], dtype=cr.float64)
    for loss in (F.binary_cross_entropy_with_logits(z, t, pos_weight=pw), F.binary_cross_entropy(p, t),
                 F.mse_loss(z, t, reduction="sum")):
        inputs = [loss.grad_fn.inputs[0], t]
        fast = cr.autograd.grad(loss, inputs, retain_graph=True)
        ref = cr.autograd.grad(loss, inputs, create_graph=True)
        for a, b in zip(fast, ref, strict=True):
            np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------------------------------
# regression losses and KL divergence
# ---------------------------------------------------------------------------------------------------
REGRESSION = [
    ("mse", lambda r: dict(), F.mse_loss, TF.mse_loss),
    ("l1", lambda r: dict(), F.l1_loss, TF.l1_loss),
    ("huber", lambda r: dict(delta=1.0), F.huber_loss, TF.huber_loss),
    ("huber_d0.5", lambda r: dict(delta=0.5), F.huber_loss, TF.huber_loss),
    ("smooth_l1", lambda r: dict(beta=1.0), F.smooth_l1_loss, TF.smooth_l1_loss),
    ("smooth_l1_b0.3", lambda r: dict(beta=0.3), F.smooth_l1_loss, TF.smooth_l1_loss),
    ("smooth_l1_b0", lambda r: dict(beta=0.0), F.smooth_l1_loss, TF.smooth_l1_loss),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("case", REGRESSION, ids=[c[0] for c in REGRESSION])
def test_regression_losses_match_torch(dtype, reduction, case):
    _, kw, ours, theirs = case
    r = rng(6)
    x = (r.standard_normal((7, 3)) * 1.5).astype(dtype)
    t = r.standard_normal((7, 3)).astype(dtype)
    compare(lambda a, b: ours(a, b, reduction=reduction, **kw(r)),
            lambda a, b: theirs(a, b, reduction=reduction, **kw(r)), x, t, dtype, target_grad=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", RED)
@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "huber_loss"])
def test_regression_losses_with_elementwise_weight_match_torch(dtype, reduction, name):
    r = rng(7)
    x = r.standard_normal((5, 2)).astype(dtype)
    t = r.standard_normal((5, 2)).astype(dtype)
    w = r.uniform(0.1, 3.0, (5, 2)).astype(dtype)
    compare(lambda a, b: getattr(F, name)(a, b, reduction=reduction, weight=cr.tensor(w)),
            lambda a, b: getattr(TF, name)(a, b, reduction=reduction, weight=torch.tensor(w)), x, t, dtype,
            target_grad=True)


@pytest.mark.parametrize("case", REGRESSION, ids=[c[0] for c in REGRESSION])
@pytest.mark.parametrize("reduction", RED)
def test_regression_losses_gradchecks(case, reduction):
    _, kw, ours, _ = case
    r = rng(8)
    x = cr.tensor(r.standard_normal((3, 2)) * 2, requires_grad=True)
    t = cr.tensor(r.standard_normal((3, 2)), requires_grad=True)
    f = lambda a, b: ours(a, b, reduction=reduction, **kw(r))  # noqa: E731
    assert gradcheck(f, (x, t)) and gradgradcheck(f, (x, t))


def test_regression_loss_broadcast_warns_like_torch():
    x = cr.randn(4, 1, requires_grad=True)
    with pytest.warns(UserWarning, match="different to the input size"):
        out = F.mse_loss(x, cr.randn(4))
    assert out.shape == ()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.mse_loss(x, cr.randn(4, 1))  # same shape: silent


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", RED + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_matches_torch(dtype, reduction, log_target):
    r = rng(9)
    x = np.log(r.dirichlet(np.ones(5), size=4)).astype(dtype)
    q = r.dirichlet(np.ones(5), size=4).astype(dtype)
    t = np.log(q).astype(dtype) if log_target else q
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about reduction='mean'
        compare(lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target),
                lambda a, b: TF.kl_div(a, b, reduction=reduction, log_target=log_target), x, t, dtype,
                target_grad=True)


def test_kl_div_zero_target_contributes_zero_and_batchmean_is_true_kl():
    p = np.array([[0.5, 0.5, 0.0]])
    q = np.array([[0.25, 0.25, 0.5]])
    out = F.kl_div(cr.tensor(np.log(q)), cr.tensor(p), reduction="batchmean").item()
    assert abs(out - math.log(2)) < 1e-12  # KL(p || q) = sum p log(p / q) = log 2


@pytest.mark.parametrize("reduction", RED + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div_gradchecks(reduction, log_target):
    r = rng(10)
    x = cr.tensor(np.log(r.dirichlet(np.ones(3), size=2)), requires_grad=True)
    q = r.dirichlet(np.ones(3), size=2)
    t = cr.tensor(np.log(q) if log_target else q, requires_grad=True)
    f = lambda a, b: F.kl_div(a, b, reduction=reduction, log_target=log_target)  # noqa: E731
    assert gradcheck(f, (x, t)) and gradgradcheck(f, (x, t))


# ---------------------------------------------------------------------------------------------------
# modules
# ---------------------------------------------------------------------------------------------------
def test_loss_modules_match_functional_and_torch_modules():
    r = rng(11)
    x = r.standard_normal((6, 4)).astype(np.float32)
    y = r.integers(0, 4, 6)
    w = r.uniform(0.5, 2, 4).astype(np.float32)
    def reals():
        return r.standard_normal((6, 4)).astype(np.float32)

    ce = dict(ignore_index=2, label_smoothing=0.1, reduction="sum")
    pairs = [
        (nn.CrossEntropyLoss(weight=cr.tensor(w), **ce),
         torch.nn.CrossEntropyLoss(weight=torch.tensor(w), **ce), y),
        (nn.NLLLoss(weight=cr.tensor(w)), torch.nn.NLLLoss(weight=torch.tensor(w)), y),
        (nn.MSELoss(reduction="sum"), torch.nn.MSELoss(reduction="sum"), reals()),
        (nn.L1Loss(), torch.nn.L1Loss(), reals()),
        (nn.HuberLoss(delta=0.7), torch.nn.HuberLoss(delta=0.7), reals()),
        (nn.SmoothL1Loss(beta=0.5), torch.nn.SmoothL1Loss(beta=0.5), reals()),
        (nn.BCEWithLogitsLoss(pos_weight=cr.tensor(w)),
         torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w)), r.uniform(0, 1, (6, 4)).astype(np.float32)),
        (nn.KLDivLoss(reduction="batchmean", log_target=True),
         torch.nn.KLDivLoss(reduction="batchmean", log_target=True), reals()),
    ]
    for ours, theirs, t in pairs:
        compare(ours, theirs, x, t, np.float32)
        assert repr(ours) == repr(theirs)
    xs = r.uniform(0.1, 0.9, (6, 4)).astype(np.float32)
    compare(nn.BCELoss(weight=cr.tensor(w)), torch.nn.BCELoss(weight=torch.tensor(w)), xs,
            r.uniform(0, 1, (6, 4)).astype(np.float32), np.float32)


def test_loss_module_weight_is_a_buffer_in_state_dict_like_torch():
    w = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    ours = nn.CrossEntropyLoss(weight=cr.tensor(w))
    theirs = torch.nn.CrossEntropyLoss(weight=torch.tensor(w))
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    assert list(nn.BCEWithLogitsLoss(pos_weight=cr.tensor(w)).state_dict()) == \
        list(torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w)).state_dict())
    assert list(nn.CrossEntropyLoss().state_dict()) == []


def test_legacy_size_average_and_reduce_flags():
    x, t = cr.tensor([1.0, 2.0, 4.0]), cr.tensor([0.0, 0.0, 0.0])
    assert nn.MSELoss(size_average=False).reduction == "sum"
    assert nn.MSELoss(reduce=False).reduction == "none"
    assert F.mse_loss(x, t, size_average=False).item() == 21.0
    assert F.mse_loss(x, t, reduce=False).shape == (3,)


# ---------------------------------------------------------------------------------------------------
# validation at the boundary
# ---------------------------------------------------------------------------------------------------
def test_cross_entropy_errors_are_clear():
    x = cr.randn(64, 10)
    with pytest.raises(ValueError, match="cross_entropy: target has 32 entries but input has batch size 64"):
        F.cross_entropy(x, cr.randint(0, 10, (32,)))
    with pytest.raises(IndexError, match="target value 10 is out of range for 10 classes"):
        F.cross_entropy(x, cr.full((64,), 10))
    with pytest.raises(IndexError, match="target value -1 is out of range"):
        F.cross_entropy(x, cr.full((64,), -1))
    with pytest.raises(TypeError, match="must be integers"):
        F.cross_entropy(x, cr.zeros(64))
    with pytest.raises(TypeError, match="must be integers"):
        F.cross_entropy(x, cr.tensor([True] * 64))
    with pytest.raises(ValueError, match="expected target of shape"):
        F.cross_entropy(x, cr.zeros(64, 2, dtype=cr.int64))
    with pytest.raises(ValueError, match="weight should be a 1-D tensor of 10"):
        F.cross_entropy(x, cr.zeros(64, dtype=cr.int64), weight=cr.ones(9))
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, cr.zeros(64, dtype=cr.int64), label_smoothing=1.5)
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.cross_entropy(x, cr.zeros(64, dtype=cr.int64), reduction="avg")
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        nn.MSELoss(reduction="batchmean")
    with pytest.raises(TypeError, match="floating point"):
        F.cross_entropy(cr.zeros(3, 2, dtype=cr.int64), cr.zeros(3, dtype=cr.int64))
    # ignore_index outside [0, C) is allowed for the ignored entries
    F.cross_entropy(x, cr.full((64,), -100))


def test_binary_loss_errors():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(cr.tensor([1.5, 0.5]), cr.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="must be the same as input size"):
        F.binary_cross_entropy(cr.tensor([0.5, 0.5]), cr.tensor([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="must be the same as input size"):
        F.binary_cross_entropy_with_logits(cr.randn(4, 1), cr.randn(4))
    with pytest.raises(ValueError, match="same size"):
        F.mse_loss(cr.randn(3), cr.randn(3), weight=cr.ones(2))


def test_one_hot_matches_torch():
    y = np.array([[0, 2], [1, 4]])
    np.testing.assert_array_equal(F.one_hot(cr.tensor(y)).numpy(), TF.one_hot(torch.tensor(y)).numpy())
    np.testing.assert_array_equal(F.one_hot(cr.tensor(y), 6).numpy(), TF.one_hot(torch.tensor(y), 6).numpy())
    assert F.one_hot(cr.tensor(y)).dtype == cr.int64
    with pytest.raises(RuntimeError, match="too large"):
        F.one_hot(cr.tensor(y), 3)
    with pytest.raises(TypeError):
        F.one_hot(cr.tensor([0.0, 1.0]))
