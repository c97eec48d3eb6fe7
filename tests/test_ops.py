"""Every op in op_table.OPS: gradcheck (first and second order, float64), fast-path agreement, and torch parity."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import gradcheck, gradgradcheck

from op_table import OPS, make_inputs, torch

CASES = [pytest.param(name, f, tf, shapes, dom, id=f"{name}-{'x'.join(map(str, shapes))}")
         for name, f, tf, shape_list, dom in OPS for shapes in shape_list]


def _leaves(arrays):
    return [cr.tensor(a, dtype=cr.float64, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("name,f,tf,shapes,dom", CASES)
def test_gradcheck_first_order(name, f, tf, shapes, dom):
    xs = _leaves(make_inputs(shapes, dom, np.random.default_rng(0)))
    assert gradcheck(f, xs, eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name,f,tf,shapes,dom", CASES)
def test_gradcheck_second_order(name, f, tf, shapes, dom):
    xs = _leaves(make_inputs(shapes, dom, np.random.default_rng(1)))
    assert gradgradcheck(f, xs, eps=1e-6, atol=1e-4, rtol=1e-3)


@pytest.mark.parametrize("name,f,tf,shapes,dom", CASES)
def test_fast_path_matches_tensor_backward(name, f, tf, shapes, dom):
    """The optional ndarray backward (first order) equals the Tensor-level backward exactly enough."""
    arrays = make_inputs(shapes, dom, np.random.default_rng(2))
    xs = _leaves(arrays)
    out = f(*xs)
    v = cr.tensor(np.random.default_rng(3).standard_normal(out.shape), dtype=cr.float64)
    fast = cr.autograd.grad(out, xs, grad_outputs=v, retain_graph=True, allow_unused=True)
    slow = cr.autograd.grad(out, xs, grad_outputs=v, create_graph=True, allow_unused=True)
    for a, b in zip(fast, slow):
        if a is None:
            assert b is None
            continue
        assert a.shape == b.shape
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name,f,tf,shapes,dom", CASES)
def test_matches_torch(name, f, tf, shapes, dom, dtype):
    if tf is None:
        pytest.skip("torch has no such op")
    arrays = [a.astype(dtype) for a in make_inputs(shapes, dom, np.random.default_rng(4))]
    xs = [cr.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, tout = f(*xs), tf(*ts)
    assert out.shape == tuple(tout.shape), f"{name}: shape {out.shape} vs torch {tuple(tout.shape)}"
    assert str(out.dtype) == str(tout.dtype).replace("torch.", ""), f"{name}: dtype {out.dtype} vs {tout.dtype}"
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == "float64" else dict(rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), **tol)
    v = np.random.default_rng(5).standard_normal(out.shape).astype(dtype)
    (out * cr.tensor(v)).sum().backward()
    (tout * torch.tensor(v)).sum().backward()
    for x, t in zip(xs, ts):
        if t.grad is None:
            assert x.grad is None or not np.any(x.grad.data)
            continue
        assert x.grad is not None, f"{name}: missing gradient"
        assert x.grad.dtype == x.dtype
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), **tol)
