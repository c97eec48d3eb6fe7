"""The engine: backward semantics, higher derivatives, graph freeing, in-place rules, anomaly detection."""

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import GraphFreedError


def quadratic(x):
    """The lectures' f(x) = x1^2 + x1 (1 - x2) + x2^2 - x2 x3 + x3^2 + x3."""
    x1, x2, x3 = x[0], x[1], x[2]
    return x1 ** 2 + x1 * (1 - x2) + x2 ** 2 - x2 * x3 + x3 ** 2 + x3


@pytest.mark.parametrize("point", [(-1.0, -1.0, -1.0), (0.3, 2.0, -5.0), (10.0, -7.5, 0.25)])
def test_hessian_of_lecture_quadratic_by_differentiating_the_gradient(point):
    x = cr.tensor(point, dtype=cr.float64, requires_grad=True)
    (g,) = cr.autograd.grad(quadratic(x), x, create_graph=True)
    rows = [cr.autograd.grad(g[i], x, retain_graph=True)[0].numpy() for i in range(3)]
    H = np.stack(rows)
    np.testing.assert_allclose(H, [[2, -1, 0], [-1, 2, -1], [0, -1, 2]], atol=1e-12)


def test_gradient_of_lecture_quadratic_vanishes_at_minus_ones():
    x = cr.tensor([-1.0, -1.0, -1.0], dtype=cr.float64, requires_grad=True)
    quadratic(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.0, 0.0], atol=1e-12)
    x2 = cr.tensor([0.0, 0.0, 0.0], dtype=cr.float64, requires_grad=True)
    quadratic(x2).backward()
    np.testing.assert_allclose(x2.grad.numpy(), [1.0, 0.0, 1.0])  # (2x1 + 1 - x2, -x1 + 2x2 - x3, -x2 + 2x3 + 1)


def test_backward_create_graph_then_second_backward():
    x = cr.tensor(2.0, dtype=cr.float64, requires_grad=True)
    y = x ** 4  # y' = 4x^3 = 32, y'' = 12x^2 = 48
    y.backward(create_graph=True)
    gx = x.grad
    assert float(gx) == 32.0 and gx.grad_fn is not None
    x.grad = None
    gx.backward()
    assert float(x.grad) == 48.0


def test_third_derivative():
    x = cr.tensor(0.5, dtype=cr.float64, requires_grad=True)
    y = x.sin() * x.exp()
    (d1,) = cr.autograd.grad(y, x, create_graph=True)
    (d2,) = cr.autograd.grad(d1, x, create_graph=True)
    (d3,) = cr.autograd.grad(d2, x)
    # (sin x e^x)''' = 2 e^x (cos x - sin x)
    assert abs(float(d3) - 2 * np.exp(0.5) * (np.cos(0.5) - np.sin(0.5))) < 1e-12


def test_long_chain_has_no_recursion_limit():
    x = cr.tensor(1.0, requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    y.backward()
    assert float(x.grad) == 1.0


def test_gradients_accumulate_and_fan_out_adds():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0, 5.0])
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 8.0])


def test_add_with_itself_does_not_alias_grad_buffers():
    a = cr.tensor([1.0, 2.0], requires_grad=True)
    b = cr.tensor([1.0, 2.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.data += 10  # must not change b.grad
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])


def test_second_backward_through_freed_graph_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(GraphFreedError, match="second time"):
        y.backward()


def test_retain_graph_allows_second_backward():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_nonscalar_backward_needs_gradient():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    with pytest.raises(RuntimeError, match="scalar outputs"):
        y.backward()
    y.backward(cr.tensor([1.0, -1.0]))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -2.0])
    with pytest.raises(RuntimeError, match="gradient has shape"):
        (x * 2.0).backward(cr.tensor([1.0, 2.0, 3.0]))


def test_no_grad_context_and_decorator_and_enable_grad():
    x = cr.tensor([1.0], requires_grad=True)
    with cr.no_grad():
        y = x * 2.0
        with cr.enable_grad():
            z = x * 2.0
    assert y.grad_fn is None and not y.requires_grad
    assert z.requires_grad

    @cr.no_grad()
    def f(t):
        return t * 3.0

    assert not f(x).requires_grad
    assert cr.is_grad_enabled()
    with cr.set_grad_enabled(False):
        assert not (x * 1.0).requires_grad
    assert cr.is_grad_enabled()


def test_detach_and_requires_grad_():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    d = (x * 2.0).detach()
    assert d.is_leaf and not d.requires_grad
    assert np.shares_memory(d.numpy(), (x * 1.0).detach().numpy()) is False
    w = cr.tensor([1.0]).requires_grad_()
    assert w.requires_grad and w.is_leaf
    with pytest.raises(RuntimeError, match="floating-point"):
        cr.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="floating-point"):
        cr.tensor([1, 2], requires_grad=True)


def test_inplace_on_leaf_requiring_grad_raises_and_is_fine_under_no_grad():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        w.add_(1.0)
    with pytest.raises(RuntimeError, match="leaf"):
        w.zero_()
    with cr.no_grad():
        w.sub_(cr.tensor([0.5, 0.5]))
        w.mul_(2.0)
    np.testing.assert_allclose(w.numpy(force=True), [1.0, 3.0])


def test_inplace_on_value_needed_by_backward_raises():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = y * y  # Mul saves y
    with cr.no_grad():
        y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        z.sum().backward()


def test_inplace_on_saved_output_raises():
    x = cr.tensor([0.1, 0.2], requires_grad=True)
    y = x.exp()  # Exp saves its output
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="in-place"):
        y.sum().backward()


def test_inplace_on_nonleaf_is_recorded_in_graph():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3.0
    y.add_(1.0)
    y.mul_(2.0)  # y = 2 (3x + 1)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(force=True), [8.0, 14.0])
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 6.0])


def test_setitem_on_nonleaf_routes_gradients():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = cr.tensor(10.0, requires_grad=True)
    y = x * 1.0
    y[1] = v * 2.0
    (y * cr.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 3.0])
    assert float(v.grad) == 4.0


def test_detect_anomaly_names_the_op():
    x = cr.tensor([0.0, 1.0], requires_grad=True)
    y = x.sqrt().sum()  # d sqrt / dx = inf at 0
    with cr.autograd.detect_anomaly(), np.errstate(divide="ignore"):
        with pytest.raises(RuntimeError, match="Sqrt.*Inf"):
            y.backward()
    cr.autograd.set_detect_anomaly(False)


def test_autograd_grad_options():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    u = cr.tensor([1.0], requires_grad=True)
    y = (x * x).sum()
    with pytest.raises(RuntimeError, match="not used"):
        cr.autograd.grad(y, [x, u], retain_graph=True)
    gx, gu = cr.autograd.grad(y, [x, u], allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(gx.numpy(), [2.0, 4.0])
    assert x.grad is None  # autograd.grad does not touch .grad


def test_grad_wrt_intermediate_tensor():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    y = (h * h).sum()
    (gh,) = cr.autograd.grad(y, h)
    np.testing.assert_allclose(gh.numpy(), [6.0, 12.0])


def test_retain_grad_on_nonleaf():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [6.0, 12.0])


def test_backward_inputs_argument():
    x = cr.tensor([1.0], requires_grad=True)
    w = cr.tensor([2.0], requires_grad=True)
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None and float(w.grad) == 1.0


def test_backward_on_tensor_without_grad_raises_clearly():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.tensor([1.0]).sum().backward()


def test_gradcheck_catches_a_wrong_backward_and_names_the_element():
    class BadSquare(cr.autograd.Function):
        def forward(self, x):
            return x * x

        def backward(self, g):
            return g * self.inputs[0] * 3.0  # wrong: should be 2x

    x = cr.tensor([0.5, -1.5], dtype=cr.float64, requires_grad=True)
    with pytest.raises(cr.autograd.GradcheckError, match=r"input 0 at index \(\d,\)"):
        cr.autograd.gradcheck(lambda t: BadSquare.apply(t), (x,))
    assert cr.autograd.gradcheck(lambda t: BadSquare.apply(t), (x,), raise_exception=False) is False
    assert issubclass(cr.autograd.GradcheckError, RuntimeError)
