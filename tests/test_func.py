"""chainrule.func: grad / value_and_grad / vjp / jvp / jacobian / hessian / hvp.

Checked three ways: against central finite differences, against torch.func /
torch.autograd.functional in float64 (to 1e-10), and on the lectures' worked examples
(an exact Hessian, its eigenvalues, and the second-derivative test).
"""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.func import (
    classify_critical_point,
    grad,
    hessian,
    hvp,
    jacobian,
    jvp,
    value_and_grad,
    vjp,
)

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit notices
tfunc = pytest.importorskip("torch.func")
TF = torch.autograd.functional

RNG = np.random.default_rng(0)
W1 = RNG.standard_normal((4, 3))
B1 = RNG.standard_normal(4)
W2 = RNG.standard_normal((2, 4))
A = RNG.standard_normal((3, 3))
X3 = np.array([0.3, -1.2, 0.7])
LABEL = 1  # the class of the cross-entropy example


def npy(t):
    """A chainrule or torch tensor as a float64 ndarray."""
    if isinstance(t, cr.Tensor):
        return np.asarray(t.data, dtype=np.float64)
    return t.detach().numpy().astype(np.float64)


# ---- test functions, written twice: lib = chainrule or torch ----------------------------------
def sin_x2(x, lib):
    """f(x) = sum_i sin(x_i) x_i^2."""
    return (lib.sin(x) * x * x).sum()


def mlp_loss(x, lib):
    """A 3-4-2 tanh MLP's squared error w.r.t. its input x (weights fixed)."""
    w1, b1, w2 = (lib.tensor(a, dtype=lib.float64) for a in (W1, B1, W2))
    h = lib.tanh(w1 @ x + b1)
    y = w2 @ h
    target = lib.tensor([0.5, -0.25], dtype=lib.float64)
    return ((y - target) ** 2).sum() * 0.5


def cross_entropy(z, lib):
    """Softmax cross-entropy of logits z for class LABEL: -log softmax(z)[LABEL]."""
    onehot = lib.tensor(np.eye(3)[LABEL], dtype=lib.float64)
    return -(onehot * lib.log_softmax(z, dim=0)).sum()


def vec_fn(x, lib):
    """A vector function R^3 -> R^3: tanh(A x) * exp(x)."""
    a = lib.tensor(A, dtype=lib.float64)
    return lib.tanh(a @ x) * lib.exp(x)


SCALAR_FNS = [sin_x2, mlp_loss, cross_entropy]


def cr_f(fn):
    return lambda x: fn(x, cr)


def torch_f(fn):
    return lambda x: fn(x, torch)


def fd_grad(f, x, eps=1e-6):
    """Central finite differences of a scalar function of a float64 array."""
    x = np.array(x, dtype=np.float64)
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (npy(f(cr.tensor(xp))) - npy(f(cr.tensor(xm)))) / (2 * eps)
    return g


def fd_jacobian(f, x, eps=1e-6):
    x = np.array(x, dtype=np.float64)
    y0 = npy(f(cr.tensor(x)))
    J = np.zeros(y0.shape + x.shape)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        J[(Ellipsis,) + i] = (npy(f(cr.tensor(xp))) - npy(f(cr.tensor(xm)))) / (2 * eps)
    return J


# ---- grad / value_and_grad ----------------------------------------------------------------------
@pytest.mark.parametrize("fn", SCALAR_FNS, ids=lambda f: f.__name__)
def test_grad_matches_finite_differences_and_torch(fn):
    g = grad(cr_f(fn))(X3)
    assert g.dtype == np.float64 and g.shape == (3,)
    np.testing.assert_allclose(npy(g), fd_grad(cr_f(fn), X3), rtol=1e-6, atol=1e-8)
    gt = tfunc.grad(torch_f(fn))(torch.tensor(X3))
    np.testing.assert_allclose(npy(g), npy(gt), rtol=1e-10, atol=1e-12)


def test_grad_closed_form_and_no_side_effects():
    x = cr.tensor(X3)  # float64 array -> float64 tensor, no requires_grad
    g = grad(cr_f(sin_x2))(x)
    expected = 2 * X3 * np.sin(X3) + X3**2 * np.cos(X3)
    np.testing.assert_allclose(npy(g), expected, rtol=1e-12)
    assert x.grad is None and not x.requires_grad  # the input was copied, not touched
    assert g.grad_fn is None and not g.requires_grad


def test_value_and_grad_argnums_and_aux():
    def f(x, y):
        loss = (x * y).sum() + (y * y).sum()
        return loss, {"prod": x * y}

    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    (value, aux), (gx, gy) = value_and_grad(f, argnums=(0, 1), has_aux=True)(x, y)
    assert value.item() == pytest.approx(1.0 * 3 + 2 * -1 + 9 + 1)
    np.testing.assert_allclose(npy(gx), y)
    np.testing.assert_allclose(npy(gy), x + 2 * y)
    np.testing.assert_allclose(npy(aux["prod"]), x * y)
    assert aux["prod"].grad_fn is None
    g1, aux1 = grad(f, argnums=1, has_aux=True)(x, y)
    np.testing.assert_allclose(npy(g1), x + 2 * y)
    # an argument f does not use gets a zero gradient (as torch.func)
    g_unused = grad(lambda a, b: (a * a).sum(), argnums=1)(cr.tensor(x), y)  # only argnums are converted
    np.testing.assert_array_equal(npy(g_unused), [0.0, 0.0])


def test_grad_nests_for_higher_derivatives():
    f = lambda x: x**4  # noqa: E731
    x = cr.tensor(2.0, dtype=cr.float64)
    assert grad(f)(x).item() == pytest.approx(4 * 8)
    assert grad(grad(f))(x).item() == pytest.approx(12 * 4)
    assert grad(grad(grad(f)))(x).item() == pytest.approx(24 * 2)


def test_grad_rejects_vector_output():
    with pytest.raises(ValueError, match="scalar"):
        grad(lambda x: x * 2)(X3)


def test_float32_input_stays_float32():
    g = grad(lambda x: (x * x).sum())(np.array([1.0, 2.0], dtype=np.float32))
    assert g.dtype == np.float32


# ---- vjp / jvp ----------------------------------------------------------------------------------
def test_vjp_is_J_transpose_v():
    v = np.array([1.0, -2.0, 0.5])
    out, vjp_fn = vjp(cr_f(vec_fn), X3)
    (g,) = vjp_fn(cr.tensor(v))
    (g2,) = vjp_fn(v)  # the graph is kept: vjp_fn can be called again
    J = fd_jacobian(cr_f(vec_fn), X3)
    np.testing.assert_allclose(npy(out), npy(vec_fn(cr.tensor(X3), cr)), rtol=1e-15)
    np.testing.assert_allclose(npy(g), J.T @ v, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(npy(g2), npy(g), rtol=0, atol=0)
    out_t, vjp_t = tfunc.vjp(torch_f(vec_fn), torch.tensor(X3))
    np.testing.assert_allclose(npy(g), npy(vjp_t(torch.tensor(v))[0]), rtol=1e-10, atol=1e-12)


def test_jvp_is_J_v_by_double_vjp():
    t = np.array([0.2, 1.0, -0.7])
    out, jv = jvp(cr_f(vec_fn), (X3,), (t,))
    J = fd_jacobian(cr_f(vec_fn), X3)
    np.testing.assert_allclose(npy(jv), J @ t, rtol=1e-6, atol=1e-8)
    _, jv_t = tfunc.jvp(torch_f(vec_fn), (torch.tensor(X3),), (torch.tensor(t),))
    np.testing.assert_allclose(npy(jv), npy(jv_t), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npy(out), npy(vec_fn(cr.tensor(X3), cr)))
    assert jv.grad_fn is None


@pytest.mark.parametrize("fn", SCALAR_FNS, ids=lambda f: f.__name__)
def test_jvp_of_scalar_function_is_directional_derivative(fn):
    t = np.array([1.0, 0.5, -2.0])
    _, d = jvp(cr_f(fn), X3, t)
    assert d.item() == pytest.approx(float(fd_grad(cr_f(fn), X3) @ t), rel=1e-6)
    _, d_t = tfunc.jvp(torch_f(fn), (torch.tensor(X3),), (torch.tensor(t),))
    assert d.item() == pytest.approx(d_t.item(), rel=1e-10, abs=1e-12)


def test_jvp_two_inputs():
    f = lambda x, y: x * y.sin()  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([0.5, -1.0])
    tx, ty = np.array([1.0, 0.0]), np.array([0.0, 3.0])
    _, jv = jvp(f, (x, y), (tx, ty))
    np.testing.assert_allclose(npy(jv), tx * np.sin(y) + x * np.cos(y) * ty, rtol=1e-12)


# ---- jacobian -----------------------------------------------------------------------------------
def test_jacobian_vector_function():
    J = jacobian(cr_f(vec_fn), X3)
    assert J.shape == (3, 3) and J.dtype == np.float64
    np.testing.assert_allclose(npy(J), fd_jacobian(cr_f(vec_fn), X3), rtol=1e-6, atol=1e-8)
    Jt = TF.jacobian(torch_f(vec_fn), torch.tensor(X3))
    np.testing.assert_allclose(npy(J), npy(Jt), rtol=1e-10, atol=1e-12)


def test_jacobian_shapes_follow_torch():
    X = RNG.standard_normal((2, 3))
    J = jacobian(lambda x: cr.softmax(x, dim=1), X)  # (2,3) -> (2,3): J is (2,3,2,3)
    Jt = TF.jacobian(lambda x: torch.softmax(x, dim=1), torch.tensor(X))
    assert J.shape == (2, 3, 2, 3) == tuple(Jt.shape)
    np.testing.assert_allclose(npy(J), npy(Jt), rtol=1e-10, atol=1e-12)
    # scalar output: shape == input shape (the gradient)
    g = jacobian(cr_f(sin_x2), X3)
    assert g.shape == (3,)
    # two inputs -> a tuple of Jacobians, one per input
    f2 = lambda x, y: x * y  # noqa: E731
    Jx, Jy = jacobian(f2, (np.array([1.0, 2.0]), np.array([3.0, 4.0])))
    np.testing.assert_allclose(npy(Jx), np.diag([3.0, 4.0]))
    np.testing.assert_allclose(npy(Jy), np.diag([1.0, 2.0]))


def test_jacobian_create_graph_is_differentiable():
    x = cr.tensor(X3, requires_grad=True)
    J = jacobian(lambda t: t * t * t, x, create_graph=True)  # diag(3 x^2)
    J.sum().backward()  # d/dx sum_i 3 x_i^2 = 6 x
    np.testing.assert_allclose(npy(x.grad), 6 * X3, rtol=1e-12)
    J0 = jacobian(lambda t: t * t * t, x)
    assert J0.grad_fn is None


# ---- hessian, hvp and the second-derivative test ------------------------------------------------
def lecture_f(x):
    """f(x) = x1^2 + x1 (1 - x2) + x2^2 - x2 x3 + x3^2 + x3."""
    x1, x2, x3 = x[0], x[1], x[2]
    return x1 * x1 + x1 * (1 - x2) + x2 * x2 - x2 * x3 + x3 * x3 + x3


H_LECTURE = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]])


@pytest.mark.parametrize("point", [[-1.0, -1.0, -1.0], [0.0, 0.0, 0.0], [3.5, -2.0, 10.0]])
def test_lecture_hessian_exact(point):
    H = hessian(lecture_f, np.array(point))
    assert H.shape == (3, 3) and H.dtype == np.float64
    np.testing.assert_allclose(npy(H), H_LECTURE, rtol=0, atol=1e-12)


def test_lecture_minimum():
    x_star = np.array([-1.0, -1.0, -1.0])
    g = grad(lecture_f)(x_star)
    np.testing.assert_allclose(npy(g), [0.0, 0.0, 0.0], atol=1e-12)  # a critical point
    kind = classify_critical_point(hessian(lecture_f, x_star))
    assert kind == "minimum"
    np.testing.assert_allclose(kind.eigenvalues, [2 - math.sqrt(2), 2.0, 2 + math.sqrt(2)], atol=1e-3)
    np.testing.assert_allclose(kind.eigenvalues, [0.586, 2.0, 3.414], atol=1e-3)


def test_saddle_maximum_degenerate():
    saddle = lambda p: p[0] * p[0] - p[1] * p[1]  # noqa: E731
    origin = np.zeros(2)
    np.testing.assert_allclose(npy(grad(saddle)(origin)), [0.0, 0.0])
    kind = classify_critical_point(hessian(saddle, origin))
    assert kind == "saddle"
    np.testing.assert_allclose(kind.eigenvalues, [-2.0, 2.0], atol=1e-12)
    assert (kind.eigenvalues > 0).sum() == 1 and (kind.eigenvalues < 0).sum() == 1
    assert classify_critical_point(hessian(lambda p: -(p * p).sum(), origin)) == "maximum"
    assert classify_critical_point(hessian(lambda p: p[0] ** 4 + p[1] ** 2, origin)) == "degenerate"
    assert classify_critical_point(cr.tensor([[1.0, 0.0], [0.0, 0.0]])) == "degenerate"
    assert classify_critical_point([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, -3.0]]) == "saddle"
    with pytest.raises(ValueError, match="symmetric"):
        classify_critical_point([[1.0, 2.0], [0.0, 1.0]])


@pytest.mark.parametrize("fn", SCALAR_FNS, ids=lambda f: f.__name__)
def test_hessian_matches_torch_and_finite_differences(fn):
    H = hessian(cr_f(fn), X3)
    Ht = TF.hessian(torch_f(fn), torch.tensor(X3))
    np.testing.assert_allclose(npy(H), npy(Ht), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(npy(H), npy(H).T, atol=1e-12)
    H_fd = fd_jacobian(lambda x: grad(cr_f(fn))(x), X3)  # finite differences of the gradient
    np.testing.assert_allclose(npy(H), H_fd, rtol=1e-5, atol=1e-7)


def test_hessian_of_two_inputs_is_nested_tuple():
    f = lambda x, y: (x * x * y).sum()  # noqa: E731
    x, y = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    H = hessian(f, (x, y))
    Ht = TF.hessian(f, (torch.tensor(x), torch.tensor(y)))
    for i in range(2):
        for j in range(2):
            np.testing.assert_allclose(npy(H[i][j]), npy(Ht[i][j]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn", SCALAR_FNS, ids=lambda f: f.__name__)
def test_hvp_double_backward(fn):
    v = np.array([0.3, -1.0, 2.0])
    value, hv = hvp(cr_f(fn), X3, v)
    H = hessian(cr_f(fn), X3)
    np.testing.assert_allclose(npy(hv), npy(H) @ v, rtol=1e-12, atol=1e-12)
    value_t, hv_t = TF.hvp(torch_f(fn), torch.tensor(X3), torch.tensor(v))
    assert value.item() == pytest.approx(value_t.item(), rel=1e-12)
    np.testing.assert_allclose(npy(hv), npy(hv_t), rtol=1e-10, atol=1e-12)
    assert hv.grad_fn is None and value.grad_fn is None


def test_lecture_hvp():
    v = np.array([1.0, 0.0, -1.0])
    value, hv = hvp(lecture_f, np.array([-1.0, -1.0, -1.0]), v)
    assert value.item() == pytest.approx(-1.0)  # 1 + (-1)(2) + 1 - 1 + 1 - 1
    np.testing.assert_allclose(npy(hv), H_LECTURE @ v, atol=1e-12)
