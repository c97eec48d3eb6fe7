"""Property-based tests (hypothesis): mathematical laws of the autograd core and a few library invariants.

Where test_ops.py checks every op at a handful of fixed shapes, these tests draw the shapes, dims, indices
and values at random and check laws that must hold for all of them: broadcasting gradients are the
reduction of the upstream gradient, backward is linear and accumulates, shape ops have exact inverses,
reductions agree with NumPy, float32 stays float32, random graphs, losses and optimizers agree with torch,
files and seeds reproduce bit for bit.

Every test runs derandomized (the same examples on every run and machine), with no deadline and no
example database, so CI is deterministic. The explicit @example cases are the minimal reproducers of bugs
these properties found (std's gradient at zero variance, int / int and 0-d tensor dtype promotion, bool +
True, cross-entropy with every target ignored): fixed, and kept as regression cases.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule import func
from chainrule.autograd import gradcheck, gradgradcheck
from chainrule.serialization import load_arrays, save_arrays

try:
    import torch
except ImportError:  # the torch-parity property skips; everything else runs
    torch = None

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
FEW = settings(SETTINGS, max_examples=25)  # for the properties that run gradcheck or a file round trip

F64 = dict(rtol=1e-10, atol=1e-12)  # float64 against NumPy or torch
F32 = dict(rtol=1e-5, atol=1e-6)

# --------------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------------

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
seeds = st.integers(0, 2**32 - 1)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=4)


def finite(lo=-10.0, hi=10.0, width=64):
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=width)


def arrays(shape, lo=-10.0, hi=10.0, dtype=np.float64):
    """Arrays of bounded finite floats (hypothesis likes repeated values, zeros and the bounds)."""
    return hnp.arrays(dtype, shape, elements=finite(lo, hi, width=np.dtype(dtype).itemsize * 8))


def normal(seed, shape):
    """Well-spread float64 values (no ties, no repeats) for finite differences: from a drawn seed."""
    return np.random.default_rng(seed).standard_normal(shape)


def leaf(a):
    return cr.tensor(np.asarray(a, dtype=np.float64), dtype=cr.float64, requires_grad=True)


@st.composite
def shape_and_dims(draw, shape_strategy=nonscalar_shapes):
    """A shape and a reduction `dim`: None, one int (maybe negative), or a non-empty tuple of axes."""
    shape = draw(shape_strategy)
    nd = len(shape)
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-nd, nd - 1))
    axes = draw(st.lists(st.integers(0, nd - 1), min_size=1, max_size=nd, unique=True))
    return shape, tuple(axes)


@st.composite
def shape_and_int_dim(draw):
    shape = draw(nonscalar_shapes)
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


def np_axes(dim, ndim):
    if dim is None:
        return tuple(range(ndim))
    return (dim % ndim,) if isinstance(dim, int) else tuple(d % ndim for d in dim)


def np_sum_to(g, shape):
    """NumPy reference for undoing broadcasting: sum the leading axes, then the stretched size-1 axes."""
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True).reshape(shape)


def np_logsumexp(x, axis, keepdims):
    m = np.max(x, axis=axis, keepdims=True)
    r = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return r if keepdims else np.squeeze(r, axis=axis)


# --------------------------------------------------------------------------------------------------
# broadcasting and the engine
# --------------------------------------------------------------------------------------------------

# op, d(op)/da, d(op)/db on broadcast arrays
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: np.ones_like(a * b), lambda a, b: np.ones_like(a * b)),
    "sub": (lambda a, b: a - b, lambda a, b: np.ones_like(a * b), lambda a, b: -np.ones_like(a * b)),
    "mul": (lambda a, b: a * b, lambda a, b: b + 0 * a, lambda a, b: a + 0 * b),
    "div": (lambda a, b: a / b, lambda a, b: 1 / b + 0 * a, lambda a, b: -a / b**2),
}


@SETTINGS
@given(st.sampled_from(sorted(BINARY)), broadcast_pairs, seeds)
def test_broadcast_gradient_is_sum_to_of_upstream(op, bshapes, seed):
    """For broadcastable a, b: d<op(a, b), v>/da has a's shape and equals sum_to(v * d op/da, a.shape)."""
    (sa, sb), out_shape = bshapes.input_shapes, bshapes.result_shape
    rng = np.random.default_rng(seed)
    a_np, b_np = rng.uniform(-3, 3, sa), rng.uniform(0.5, 2, sb) * rng.choice([-1, 1], sb)
    v = rng.standard_normal(out_shape)
    f, da, db = BINARY[op]
    a, b = leaf(a_np), leaf(b_np)
    out = f(a, b)
    assert out.shape == out_shape
    np.testing.assert_allclose(out.data, f(a_np, b_np), **F64)
    out.backward(cr.tensor(v, dtype=cr.float64))
    assert a.grad.shape == sa and b.grad.shape == sb
    np.testing.assert_allclose(a.grad.data, np_sum_to(v * da(a_np, b_np), sa), **F64)
    np.testing.assert_allclose(b.grad.data, np_sum_to(v * db(a_np, b_np), sb), **F64)


@SETTINGS
@given(broadcast_pairs, seeds)
def test_broadcast_to_and_sum_to_are_adjoint(bshapes, seed):
    """<broadcast_to(x, S), y> = <x, sum_to(y, x.shape)>, and backward of broadcast_to is exactly cr.sum_to."""
    sx, out_shape = bshapes.input_shapes[0], bshapes.result_shape
    rng = np.random.default_rng(seed)
    x, y = leaf(rng.standard_normal(sx)), rng.standard_normal(out_shape)
    yt = cr.tensor(y, dtype=cr.float64)
    bx = cr.broadcast_to(x, out_shape)
    np.testing.assert_array_equal(bx.data, np.broadcast_to(x.data, out_shape))
    summed = cr.sum_to(yt, sx)
    assert summed.shape == sx
    np.testing.assert_allclose(summed.data, np_sum_to(y, sx), **F64)
    np.testing.assert_allclose(float((bx * yt).sum().item()), float((x * summed).sum().item()), **F64)
    bx.backward(yt)
    np.testing.assert_allclose(x.grad.data, summed.data, **F64)


def _f(x, y):
    return (x * x * y).sum() + (x.sin() * y.exp()).mean()


def _g(x, y):
    return (x / (1 + y * y)).reshape(-1).logsumexp(dim=0) + (x * y).tanh().sum()


@SETTINGS
@given(broadcast_pairs, seeds, finite(-3, 3), finite(-3, 3))
def test_backward_is_linear(bshapes, seed, alpha, beta):
    """grad(alpha f + beta g) = alpha grad f + beta grad g, for every input."""
    rng = np.random.default_rng(seed)
    xs = [leaf(rng.standard_normal(s)) for s in bshapes.input_shapes]
    gf = cr.autograd.grad(_f(*xs), xs)
    gg = cr.autograd.grad(_g(*xs), xs)
    gh = cr.autograd.grad(alpha * _f(*xs) + beta * _g(*xs), xs)
    for a, b, c in zip(gf, gg, gh):
        np.testing.assert_allclose(c.data, alpha * a.data + beta * b.data, rtol=1e-10, atol=1e-10)


@SETTINGS
@given(shapes, seeds)
def test_two_backward_calls_accumulate(shape, seed):
    """backward(v1, retain_graph=True); backward(v2) leaves .grad = J^T v1 + J^T v2 = J^T (v1 + v2)."""
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(shape))
    v1, v2 = (cr.tensor(rng.standard_normal(shape), dtype=cr.float64) for _ in range(2))
    y = x.sin() * x + x.exp()
    y.backward(v1, retain_graph=True)
    first = x.grad.data.copy()
    y.backward(v2)
    (once,) = cr.autograd.grad(x.sin() * x + x.exp(), x, grad_outputs=v1 + v2)
    expected = (v1.data + v2.data) * (np.cos(x.data) * x.data + np.sin(x.data) + np.exp(x.data))
    np.testing.assert_allclose(first, v1.data * (np.cos(x.data) * x.data + np.sin(x.data) + np.exp(x.data)), **F64)
    np.testing.assert_allclose(x.grad.data, expected, **F64)
    np.testing.assert_allclose(once.data, expected, **F64)


# --------------------------------------------------------------------------------------------------
# shape ops: exact inverses, gradients are the inverse map of the upstream gradient
# --------------------------------------------------------------------------------------------------


@st.composite
def reshape_pairs(draw):
    """A shape and another shape with the same number of elements (one side may be written as -1)."""
    shape = draw(shapes)
    n = int(np.prod(shape))
    factors, rest = [], n
    while rest > 1 and len(factors) < 3:
        divisors = [d for d in range(1, rest + 1) if rest % d == 0]
        d = draw(st.sampled_from(divisors))
        factors.append(d)
        rest //= d
    target = tuple(factors) + ((rest,) if rest > 1 else ())
    target = tuple(draw(st.permutations(target))) if target else ()
    if target and draw(st.booleans()):
        i = draw(st.integers(0, len(target) - 1))
        target = target[:i] + (-1,) + target[i + 1:]
    return shape, target


@SETTINGS
@given(reshape_pairs(), seeds)
def test_reshape_round_trip_and_gradient(pair, seed):
    """x.reshape(t).reshape(x.shape) == x bit for bit, and the gradient of reshape is the upstream reshaped back."""
    shape, target = pair
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(shape))
    y = x.reshape(target)
    np.testing.assert_array_equal(y.data, x.data.reshape(target))
    np.testing.assert_array_equal(y.reshape(shape).data, x.data)
    v = rng.standard_normal(y.shape)
    y.backward(cr.tensor(v, dtype=cr.float64))
    np.testing.assert_array_equal(x.grad.data, v.reshape(shape))


@st.composite
def shape_and_permutation(draw):
    shape = draw(shapes)
    return shape, tuple(draw(st.permutations(range(len(shape)))))


@SETTINGS
@given(shape_and_permutation(), seeds)
def test_permute_inverse_and_gradient(sp, seed):
    """x.permute(p).permute(argsort p) == x (transpose(i, j) twice too), and the gradient of permute(p) is the
    upstream permuted by argsort p."""
    shape, perm = sp
    inv = tuple(int(i) for i in np.argsort(perm))
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(shape))
    y = x.permute(*perm) if perm else x.permute(())
    np.testing.assert_array_equal(y.data, np.transpose(x.data, perm))
    np.testing.assert_array_equal(y.permute(inv).data, x.data)
    if x.ndim >= 2:  # transpose(i, j) is the permutation that swaps i and j
        i, j = perm[0], perm[-1]
        np.testing.assert_array_equal(x.transpose(i, j).data, np.swapaxes(x.data, i, j))
        np.testing.assert_array_equal(x.transpose(i, j).transpose(j, i).data, x.data)
    v = rng.standard_normal(y.shape)
    y.backward(cr.tensor(v, dtype=cr.float64))
    np.testing.assert_array_equal(x.grad.data, np.transpose(v, inv))


@st.composite
def shape_and_new_axis(draw):
    shape = draw(shapes)
    return shape, draw(st.integers(-len(shape) - 1, len(shape)))


@SETTINGS
@given(shape_and_new_axis(), seeds)
def test_unsqueeze_squeeze_round_trip(sd, seed):
    """x.unsqueeze(d) inserts a 1 where np.expand_dims does, squeeze(d) undoes it; the gradient keeps x's shape."""
    shape, d = sd
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(shape))
    y = x.unsqueeze(d)
    assert y.shape == np.expand_dims(x.data, d).shape
    np.testing.assert_array_equal(y.squeeze(d).data, x.data)
    v = rng.standard_normal(y.shape)
    (y * cr.tensor(v, dtype=cr.float64)).sum().backward()
    assert x.grad.shape == shape
    np.testing.assert_array_equal(x.grad.data, v.reshape(shape))


@st.composite
def gather_case(draw):
    shape = draw(nonscalar_shapes)
    n = shape[0]
    idx = draw(st.lists(st.integers(-n, n - 1), min_size=0, max_size=7))
    return shape, np.array(idx, dtype=np.int64), draw(st.booleans())


@SETTINGS
@given(gather_case(), seeds)
def test_integer_array_indexing_accumulates_repeats(case, seed):
    """x[idx] (ndarray or int64 tensor, negatives, repeats, empty) equals NumPy; its gradient is np.add.at."""
    shape, idx, as_tensor = case
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(shape))
    y = x[cr.tensor(idx) if as_tensor else idx]
    assert y.shape == x.data[idx].shape
    np.testing.assert_array_equal(y.data, x.data[idx])
    v = rng.standard_normal(y.shape)
    (y * cr.tensor(v, dtype=cr.float64)).sum().backward()
    expected = np.zeros(shape)
    np.add.at(expected, idx, v)
    np.testing.assert_allclose(x.grad.data, expected, **F64)


@st.composite
def basic_index_case(draw):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    return shape, draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))


@SETTINGS
@given(basic_index_case(), seeds)
def test_basic_indexing_matches_numpy_and_scatters_gradient(case, seed):
    """x[ints, slices (any step), None, ...] equals NumPy, and the gradient is the upstream written into zeros."""
    shape, index = case
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(shape))
    y = x[index]
    ref = x.data[index]
    assert y.shape == ref.shape
    np.testing.assert_array_equal(y.data, ref)
    v = rng.standard_normal(ref.shape)
    y.backward(cr.tensor(v, dtype=cr.float64))
    expected = np.zeros(shape)
    expected[index] = v  # basic indices never repeat an element
    np.testing.assert_array_equal(x.grad.data, expected)


@st.composite
def advanced_index_case(draw):
    shape = draw(nonscalar_shapes)
    result = hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3)
    return shape, draw(hnp.integer_array_indices(shape, result_shape=result)), draw(st.booleans())


@SETTINGS
@given(advanced_index_case(), seeds)
def test_several_integer_arrays_gather_and_accumulate(case, seed):
    """x[i0, i1, ...] with broadcast integer arrays (as arrays or int64 tensors) is NumPy's gather; the gradient
    adds every repeated position's upstream (np.add.at)."""
    shape, index, as_tensors = case
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(shape))
    y = x[tuple(cr.tensor(i) for i in index) if as_tensors else index]
    np.testing.assert_array_equal(y.data, x.data[index])
    v = rng.standard_normal(y.shape)
    y.backward(cr.tensor(v, dtype=cr.float64))
    expected = np.zeros(shape)
    np.add.at(expected, index, v)
    np.testing.assert_allclose(x.grad.data, expected, **F64)


@st.composite
def mask_case(draw):
    shape = draw(nonscalar_shapes)
    k = draw(st.integers(1, len(shape)))  # the mask covers the k leading dims
    return shape, draw(hnp.arrays(np.bool_, shape[:k]))


@SETTINGS
@given(mask_case(), seeds)
def test_boolean_mask_selects_and_scatters(case, seed):
    """x[mask] (mask over leading dims, as a bool tensor) equals NumPy; the gradient is the upstream at the mask."""
    shape, mask = case
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal(shape))
    y = x[cr.tensor(mask)]
    np.testing.assert_array_equal(y.data, x.data[mask])
    v = rng.standard_normal(y.shape)
    y.backward(cr.tensor(v, dtype=cr.float64))
    expected = np.zeros(shape)
    expected[mask] = v
    np.testing.assert_array_equal(x.grad.data, expected)


@st.composite
def cat_case(draw):
    shape = draw(nonscalar_shapes)
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    return shape, dim, sizes


@SETTINGS
@given(cat_case(), seeds)
def test_cat_split_and_stack_unbind_are_inverses(case, seed):
    """split(cat(xs, d), sizes, d) == xs and unbind(stack(xs, d), d) == xs; the gradient of cat splits the upstream."""
    shape, dim, sizes = case
    rng = np.random.default_rng(seed)
    axis = dim % len(shape)
    pieces = [leaf(rng.standard_normal(shape[:axis] + (k,) + shape[axis + 1:])) for k in sizes]
    c = cr.cat(pieces, dim=dim)
    np.testing.assert_array_equal(c.data, np.concatenate([p.data for p in pieces], axis=axis))
    for p, q in zip(pieces, c.split(sizes, dim=dim)):
        np.testing.assert_array_equal(q.data, p.data)
    v = rng.standard_normal(c.shape)
    c.backward(cr.tensor(v, dtype=cr.float64))
    for p, vp in zip(pieces, np.split(v, np.cumsum(sizes)[:-1], axis=axis)):
        np.testing.assert_array_equal(p.grad.data, vp)
    same = [leaf(rng.standard_normal(shape)) for _ in sizes]
    s = cr.stack(same, dim=dim)
    np.testing.assert_array_equal(s.data, np.stack([p.data for p in same], axis=dim))
    for p, q in zip(same, cr.unbind(s, dim=dim)):
        np.testing.assert_array_equal(q.data, p.data)


# --------------------------------------------------------------------------------------------------
# reductions
# --------------------------------------------------------------------------------------------------

REDUCTIONS = {
    # name: (chainrule, NumPy reference(x, axis, keepdims))
    "sum": (lambda x, d, k: x.sum(dim=d, keepdim=k), lambda x, a, k: np.sum(x, axis=a, keepdims=k)),
    "mean": (lambda x, d, k: x.mean(dim=d, keepdim=k), lambda x, a, k: np.mean(x, axis=a, keepdims=k)),
    "var": (lambda x, d, k: x.var(dim=d, keepdim=k), lambda x, a, k: np.var(x, axis=a, ddof=1, keepdims=k)),
    "var_biased": (lambda x, d, k: x.var(dim=d, unbiased=False, keepdim=k),
                   lambda x, a, k: np.var(x, axis=a, keepdims=k)),
    "std": (lambda x, d, k: x.std(dim=d, keepdim=k), lambda x, a, k: np.std(x, axis=a, ddof=1, keepdims=k)),
    "logsumexp": (lambda x, d, k: x.logsumexp(dim=d, keepdim=k), np_logsumexp),
    "amax": (lambda x, d, k: x.amax(dim=d, keepdim=k), lambda x, a, k: np.amax(x, axis=a, keepdims=k)),
    "amin": (lambda x, d, k: x.amin(dim=d, keepdim=k), lambda x, a, k: np.amin(x, axis=a, keepdims=k)),
}
NEEDS_TWO = {"var", "std"}  # the unbiased estimators divide by N - 1


def _reduced_count(shape, dim):
    return int(np.prod([shape[a] for a in np_axes(dim, len(shape))]))


@SETTINGS
@given(st.sampled_from(sorted(REDUCTIONS)), shape_and_dims(), st.booleans(), st.data())
def test_reductions_match_numpy(name, sd, keepdim, data):
    """sum/mean/var/std/logsumexp/amax/amin over random dims, keepdim or not, equal NumPy in float64."""
    shape, dim = sd
    assume(name not in NEEDS_TWO or _reduced_count(shape, dim) >= 2)
    x_np = data.draw(arrays(shape, -100, 100))
    ours = REDUCTIONS[name][0](cr.tensor(x_np, dtype=cr.float64), dim, keepdim)
    ref = REDUCTIONS[name][1](x_np, np_axes(dim, len(shape)), keepdim)
    assert ours.shape == np.shape(ref)
    assert ours.dtype == cr.float64
    np.testing.assert_allclose(ours.data, ref, rtol=1e-10, atol=1e-9)


@FEW
@given(st.sampled_from(sorted(REDUCTIONS)), shape_and_dims(), st.booleans(), seeds)
def test_reduction_gradients_pass_gradcheck(name, sd, keepdim, seed):
    """The same reductions' gradients match central finite differences (float64, well-spread values)."""
    shape, dim = sd
    assume(name not in NEEDS_TWO or _reduced_count(shape, dim) >= 2)
    x = leaf(normal(seed, shape))
    fn = REDUCTIONS[name][0]
    assert gradcheck(lambda t: fn(t, dim, keepdim), (x,), eps=1e-6, atol=1e-6, rtol=1e-4)


@SETTINGS
@given(shape_and_int_dim(), st.data())
def test_max_with_dim_returns_numpy_argmax_and_routes_gradient(sd, data):
    """x.max(dim) gives (np.max, np.argmax) with distinct values; its gradient is the upstream at the winners."""
    shape, dim = sd
    n = int(np.prod(shape))
    perm = data.draw(st.permutations(range(n)))
    x_np = (np.array(perm, dtype=np.float64) * 0.5 - 1.0).reshape(shape)  # distinct: no ties
    x = leaf(x_np)
    values, indices = x.max(dim=dim)
    np.testing.assert_array_equal(values.data, np.max(x_np, axis=dim))
    np.testing.assert_array_equal(indices.data, np.argmax(x_np, axis=dim))
    assert indices.dtype == cr.int64
    v = np.random.default_rng(n).standard_normal(values.shape)
    values.backward(cr.tensor(v, dtype=cr.float64))
    expected = np.zeros(shape)
    np.put_along_axis(expected, np.expand_dims(np.argmax(x_np, axis=dim), dim), np.expand_dims(v, dim), axis=dim)
    np.testing.assert_array_equal(x.grad.data, expected)


# ops with kinks or ties; torch's conventions at those points: relu'(0) = 0, |x|'(0) = 0, clamp passes the
# gradient at its bounds, maximum/minimum split ties 1/2 : 1/2, amax/amin share ties equally, max(dim) and the
# 2-norm at 0 give 0
KINKS = [
    ("relu", cr.relu, lambda t: torch.relu(t)),
    ("abs", cr.abs, lambda t: t.abs()),
    ("clamp", lambda x: x.clamp(-0.5, 0.5), lambda t: t.clamp(-0.5, 0.5)),
    ("leaky_relu", lambda x: cr.leaky_relu(x, 0.1), lambda t: torch.nn.functional.leaky_relu(t, 0.1)),
    ("elu", cr.elu, lambda t: torch.nn.functional.elu(t)),
    ("maximum", lambda x: cr.maximum(x, x.flip(-1)), lambda t: torch.maximum(t, t.flip(-1))),
    ("minimum", lambda x: cr.minimum(x, 0.5 * x.flip(-1)), lambda t: torch.minimum(t, 0.5 * t.flip(-1))),
    ("where", lambda x: cr.where(x > 0, x * x, -x), lambda t: torch.where(t > 0, t * t, -t)),
    ("amax", lambda x: x.amax(dim=-1), lambda t: t.amax(dim=-1)),
    ("amin_all", lambda x: x.amin(), lambda t: t.amin()),
    ("max_all", lambda x: x.max(), lambda t: t.max()),
    ("norm", lambda x: x.norm(dim=-1), lambda t: t.norm(dim=-1)),
    ("var", lambda x: x.var(dim=-1, unbiased=False), lambda t: t.var(dim=-1, unbiased=False)),
]
tie_values = st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0])  # many ties, zeros and exact clamp bounds


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@SETTINGS
@given(st.sampled_from(range(len(KINKS))), st.data())
def test_gradients_at_kinks_and_ties_follow_torch(i, data):
    """At kinks (0 for relu/abs, clamp bounds) and ties (max/min/amax/maximum) the gradient is torch's choice."""
    name, f, tf = KINKS[i]
    x_np = data.draw(hnp.arrays(np.float64, data.draw(nonscalar_shapes), elements=tie_values))
    v = np.random.default_rng(x_np.size).standard_normal(f(cr.tensor(x_np, dtype=cr.float64)).shape)
    x, t = leaf(x_np), torch.tensor(x_np, requires_grad=True)
    out, tout = f(x), tf(t)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), **F64)
    (out * cr.tensor(v, dtype=cr.float64)).sum().backward()
    (tout * torch.tensor(v)).sum().backward()
    np.testing.assert_allclose(x.grad.data, t.grad.numpy(), **F64, err_msg=f"{name} at {x_np}")


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@SETTINGS
@given(shape_and_int_dim(), st.integers(-20, 20).map(lambda k: k / 4), st.booleans())
@example(((2,), 0), 1.0, True)  # cr.tensor([1., 1.], requires_grad=True).std().backward() gave [nan, nan]
def test_std_gradient_of_a_constant_is_zero(sd, c, unbiased):
    """std of a constant along dim has gradient 0 (torch), not NaN.

    The constants are multiples of 1/4, whose mean is exact in both libraries: for other values the mean
    can be off by an ulp, the variance is then a tiny positive number and the gradient legitimately 1/n.
    """
    shape, dim = sd
    assume(not unbiased or shape[dim] >= 2)
    x, t = leaf(np.full(shape, c)), torch.full(shape, c, dtype=torch.float64, requires_grad=True)
    x.std(dim=dim, unbiased=unbiased).sum().backward()
    t.std(dim=dim, unbiased=unbiased).sum().backward()
    np.testing.assert_array_equal(x.grad.data, t.grad.numpy())
    assert not x.grad.data.any()


@SETTINGS
@given(shape_and_int_dim(), st.data())
def test_softmax_is_a_distribution_invariant_to_shifts(sd, data):
    """softmax(x, d) is in [0, 1], sums to 1 along d, and softmax(x + c) = softmax(x) for c constant along d;
    logsumexp(x + c) = logsumexp(x) + c."""
    shape, dim = sd
    x_np = data.draw(arrays(shape, -30, 30))
    c_np = data.draw(arrays(np.expand_dims(x_np, dim).shape[:dim % len(shape)] + (1,) + shape[dim % len(shape) + 1:],
                            -50, 50))
    x, c = cr.tensor(x_np, dtype=cr.float64), cr.tensor(c_np, dtype=cr.float64)
    p = cr.softmax(x, dim=dim)
    assert np.all(p.data >= 0) and np.all(p.data <= 1)
    np.testing.assert_allclose(p.data.sum(axis=dim), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cr.softmax(x + c, dim=dim).data, p.data, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(cr.logsumexp(x + c, dim=dim, keepdim=True).data,
                               cr.logsumexp(x, dim=dim, keepdim=True).data + c_np, rtol=1e-12, atol=1e-12)


@SETTINGS
@given(nonscalar_shapes, finite(1e3, 1e6), seeds, st.sampled_from([np.float32, np.float64]))
def test_log_softmax_is_stable_for_huge_logits(shape, scale, seed, dtype):
    """log_softmax of logits of magnitude up to 1e6 is finite, <= 0, equals x - logsumexp(x), and backward is finite."""
    x_np = (normal(seed, shape) * scale).astype(dtype)
    x = cr.tensor(x_np, requires_grad=True)
    y = cr.log_softmax(x, dim=-1)
    assert y.dtype == x.dtype
    assert np.all(np.isfinite(y.data)) and np.all(y.data <= 0)
    x64 = x_np.astype(np.float64)
    ref = x64 - np_logsumexp(x64, -1, True)
    tol = F64 if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(y.data, ref, **tol)
    np.testing.assert_allclose(np.exp(y.data.astype(np.float64)).sum(axis=-1), 1.0, rtol=0,
                               atol=1e-12 if dtype == np.float64 else 1e-5)
    (y * cr.tensor(normal(seed + 1, shape).astype(dtype))).sum().backward()
    assert np.all(np.isfinite(x.grad.data))


# --------------------------------------------------------------------------------------------------
# matmul
# --------------------------------------------------------------------------------------------------

matmul_shapes = hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=2, max_side=3)


@FEW
@given(matmul_shapes, seeds)
def test_matmul_matches_numpy_and_gradcheck(bshapes, seed):
    """a @ b for 1-D, 2-D and batched (broadcasting) shapes equals np.matmul, and its gradients pass gradcheck."""
    sa, sb = bshapes.input_shapes
    rng = np.random.default_rng(seed)
    a, b = leaf(rng.standard_normal(sa)), leaf(rng.standard_normal(sb))
    out = a @ b
    ref = np.matmul(a.data, b.data)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.data, ref, **F64)
    assert gradcheck(cr.matmul, (a, b), eps=1e-6, atol=1e-6, rtol=1e-4)


# --------------------------------------------------------------------------------------------------
# dtype rules
# --------------------------------------------------------------------------------------------------

UNARY32 = {
    "neg": lambda x: -x, "abs": cr.abs, "exp": cr.exp, "log": lambda x: cr.log(x.abs() + 1),
    "sqrt": lambda x: cr.sqrt(x.abs()), "sin": cr.sin, "tanh": cr.tanh, "sigmoid": cr.sigmoid,
    "relu": cr.relu, "gelu": cr.gelu, "softplus": cr.softplus, "pow": lambda x: x ** 2,
    "add_scalar": lambda x: x + 2.5, "rsub_scalar": lambda x: 1.5 - x, "mul_scalar": lambda x: 3 * x,
    "div_scalar": lambda x: x / 7.0, "rdiv_scalar": lambda x: 2.0 / (x.abs() + 1), "int_scalar": lambda x: x * 3,
    "np_scalar": lambda x: x * np.float64(0.5),
    "sum": lambda x: x.sum(), "mean": lambda x: x.mean(), "var": lambda x: x.var(unbiased=False),
    "std": lambda x: x.std(unbiased=False), "logsumexp": lambda x: x.logsumexp(dim=-1), "amax": lambda x: x.amax(),
    "norm": lambda x: x.norm(), "softmax": lambda x: cr.softmax(x, dim=-1),
    "log_softmax": lambda x: cr.log_softmax(x, dim=-1), "matmul": lambda x: x @ x.transpose(-1, -2),
    "clamp": lambda x: x.clamp(-0.5, 0.5), "maximum": lambda x: cr.maximum(x, x * 0.5),
    "where": lambda x: cr.where(x > 0, x, 0.0),
}


@SETTINGS
@given(st.sampled_from(sorted(UNARY32)), nonscalar_shapes, seeds)
def test_float32_stays_float32(name, shape, seed):
    """Elementwise ops, python/NumPy scalars and reductions on float32 give float32 values and float32 grads."""
    if name == "matmul" and len(shape) < 2:
        shape = shape + (2,)
    x = cr.tensor(normal(seed, shape).astype(np.float32), requires_grad=True)
    y = UNARY32[name](x)
    assert y.dtype == cr.float32, f"{name}: {y.dtype}"
    assert y.data.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == cr.float32, f"{name} backward: {x.grad.dtype}"


# operands for promotion: (kind, dtype, ndim) -> a chainrule and a torch value; python numbers have ndim None
OPERANDS = [(d, n) for d in ("float32", "float64", "int64", "bool") for n in (0, 1)] + \
    [("float", None), ("int", None), ("bool", None)]
PROMOTION_OPS = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
                 "div": lambda a, b: a / b, "pow": lambda a, b: a ** b}


def _operand(kind, ndim, lib):
    if ndim is None:
        return {"float": 1.5, "int": 3, "bool": True}[kind]
    data = np.array([True, False][: ndim + 1] if kind == "bool" else [1.5, 2.0][: ndim + 1]).astype(kind)
    data = data.reshape(()) if ndim == 0 else data
    return cr.from_numpy(data) if lib == "cr" else torch.from_numpy(data)


def _is_int(op):
    return op[0] in ("int64", "bool", "int")


def _dtypes_agree(name, a, b):
    op = PROMOTION_OPS[name]
    try:
        expected = str(op(_operand(*a, "torch"), _operand(*b, "torch")).dtype).replace("torch.", "")
    except (RuntimeError, NotImplementedError):
        return None  # torch refuses (bool subtraction, ...): nothing to compare
    return str(op(_operand(*a, "cr"), _operand(*b, "cr")).dtype), expected


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@SETTINGS
@given(st.sampled_from(sorted(PROMOTION_OPS)), st.sampled_from(OPERANDS), st.sampled_from(OPERANDS))
def test_binary_op_result_dtype_matches_torch(name, a, b):
    """Type promotion of + - * / ** between tensors (0-d and 1-d, every dtype) and python numbers is torch's."""
    assume(a[1] is not None or b[1] is not None)
    got = _dtypes_agree(name, a, b)
    assume(got is not None)
    assert got[0] == got[1], f"{a} {name} {b}: chainrule {got[0]}, torch {got[1]}"


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@SETTINGS
@given(st.sampled_from(["div", "pow"]), st.sampled_from([("int64", 0), ("int64", 1), ("bool", 1)]),
       st.sampled_from([("int64", 0), ("int64", 1), ("bool", 1)]))
@example("div", ("int64", 1), ("int64", 1))  # cr.tensor([1, 2]) / cr.tensor([4, 4]) is float64
def test_integer_tensor_division_and_power_dtype_match_torch(name, a, b):
    """int tensor / int tensor is float32 and int tensor ** int tensor is int64, as in torch."""
    got = _dtypes_agree(name, a, b)
    assume(got is not None)
    assert got[0] == got[1], f"{a} {name} {b}: chainrule {got[0]}, torch {got[1]}"


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@SETTINGS
@given(st.sampled_from(sorted(PROMOTION_OPS)), st.booleans())
@example("mul", False)  # cr.ones(3) * cr.tensor(np.float64(0.5)) is float64
def test_zero_dim_float64_tensor_does_not_upcast_float32(name, swap):
    """float32 tensor (op) 0-d float64 tensor stays float32, as in torch."""
    a, b = ("float32", 1), ("float64", 0)
    a, b = (b, a) if swap else (a, b)
    got = _dtypes_agree(name, a, b)
    assert got == ("float32", "float32"), f"{a} {name} {b}: chainrule, torch = {got}"


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@SETTINGS
@given(st.sampled_from(["add", "mul", "pow"]), st.sampled_from([0, 1]), st.booleans())
@example("add", 1, False)  # cr.tensor([True]) + True is tensor([2])
def test_bool_tensor_with_python_bool_stays_bool(name, ndim, swap):
    """bool tensor (op) True is a bool tensor, as in torch."""
    a, b = ("bool", ndim), ("bool", None)
    a, b = (b, a) if swap else (a, b)
    got = _dtypes_agree(name, a, b)
    assume(got is not None)
    assert got[0] == got[1], f"{a} {name} {b}: chainrule {got[0]}, torch {got[1]}"


# --------------------------------------------------------------------------------------------------
# composition against torch
# --------------------------------------------------------------------------------------------------

# (name, chainrule, torch): smooth maps R -> R that keep values bounded, so any chain stays finite
CHAIN_OPS = [
    ("sin", cr.sin, lambda t: t.sin()),
    ("cos", cr.cos, lambda t: t.cos()),
    ("tanh", cr.tanh, lambda t: t.tanh()),
    ("sigmoid", cr.sigmoid, lambda t: t.sigmoid()),
    ("atan", cr.atan, lambda t: t.atan()),
    ("erf", cr.erf, lambda t: t.erf()),
    ("gelu", cr.gelu, lambda t: torch.nn.functional.gelu(t)),
    ("softplus", cr.softplus, lambda t: torch.nn.functional.softplus(t)),
    ("gauss", lambda x: cr.exp(-x * x), lambda t: torch.exp(-t * t)),
    ("log1p_sq", lambda x: cr.log1p(x * x), lambda t: torch.log1p(t * t)),
    ("hypot1", lambda x: cr.sqrt(x * x + 1), lambda t: torch.sqrt(t * t + 1)),
    ("rational", lambda x: x / (1 + x * x), lambda t: t / (1 + t * t)),
    ("cube", lambda x: 0.3 * x ** 3 - x, lambda t: 0.3 * t ** 3 - t),
    ("pow_pos", lambda x: (x * x + 0.5) ** 0.75, lambda t: (t * t + 0.5) ** 0.75),
]
# how the chain's running value y is combined with the input x after each op
COMBINE = [
    ("then", lambda y, x: y),
    ("times_x", lambda y, x: y * x),
    ("plus_x", lambda y, x: y + x),
    ("minus_half_x", lambda y, x: y - 0.5 * x),
]


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(CHAIN_OPS) - 1), st.integers(0, len(COMBINE) - 1)),
                min_size=1, max_size=5),
       shapes, seeds, st.sampled_from(["sum", "mean", "logsumexp", "var"]))
def test_random_composition_matches_torch(chain, shape, seed, reduction):
    """A random chain of smooth elementwise ops and a final reduction: same value and gradient as torch (float64)."""
    assume(reduction != "var" or int(np.prod(shape)) >= 2)
    x_np = np.random.default_rng(seed).uniform(-2, 2, shape)
    x = leaf(x_np)
    t = torch.tensor(x_np, dtype=torch.float64, requires_grad=True)
    y, u = x, t
    for op_i, comb_i in chain:
        _, f, tf = CHAIN_OPS[op_i]
        _, comb = COMBINE[comb_i]
        y, u = comb(f(y), x), comb(tf(u), t)
    if reduction == "logsumexp":
        out, tout = y.reshape(-1).logsumexp(dim=0), u.reshape(-1).logsumexp(dim=0)
    else:
        out, tout = getattr(y, reduction)(), getattr(u, reduction)()
    np.testing.assert_allclose(out.item(), tout.item(), rtol=1e-10, atol=1e-12)
    out.backward()
    tout.backward()
    np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-9, atol=1e-12)


# how to combine two nodes of a random DAG: growth stays at most additive, so values stay finite
DAG_BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul_tanh", lambda a, b: a * b.tanh()),
    ("div_hypot", lambda a, b: a / (1 + b * b).sqrt()),
]


@st.composite
def dags(draw):
    """A random DAG over one input: each node applies a chain op to an earlier node, or combines two earlier
    nodes (so values fan out and are reused, and backward must accumulate along every path)."""
    steps = []
    for k in range(draw(st.integers(1, 8))):
        n_nodes = k + 1
        if draw(st.booleans()):
            steps.append(("unary", draw(st.integers(0, len(CHAIN_OPS) - 1)), draw(st.integers(0, n_nodes - 1))))
        else:
            steps.append(("binary", draw(st.integers(0, len(DAG_BINARY) - 1)),
                          draw(st.integers(0, n_nodes - 1)), draw(st.integers(0, n_nodes - 1))))
    return steps


def _run_dag(steps, x, lib):
    nodes = [x]
    for step in steps:
        if step[0] == "unary":
            _, f, tf = CHAIN_OPS[step[1]]
            nodes.append((f if lib == "cr" else tf)(nodes[step[2]]))
        else:
            nodes.append(DAG_BINARY[step[1]][1](nodes[step[2]], nodes[step[3]]))
    return nodes[-1]


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@FEW
@given(dags(), shapes, seeds)
def test_random_dag_first_and_second_derivatives_match_torch(steps, shape, seed):
    """A random DAG with fan-out: value, gradient, and Hessian-vector product (double backward) equal torch's."""
    rng = np.random.default_rng(seed)
    x_np, v, w = rng.uniform(-2, 2, shape), rng.standard_normal(shape), rng.standard_normal(shape)
    x, t = leaf(x_np), torch.tensor(x_np, requires_grad=True)
    y, u = _run_dag(steps, x, "cr"), _run_dag(steps, t, "torch")
    np.testing.assert_allclose(y.data, u.detach().numpy(), **F64)
    out, tout = (y * cr.tensor(v, dtype=cr.float64)).sum(), (u * torch.tensor(v)).sum()
    (g,) = cr.autograd.grad(out, x, create_graph=True)
    (tg,) = torch.autograd.grad(tout, t, create_graph=True)
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-9, atol=1e-12)
    # second order: a DAG that is linear in x has a gradient that no longer depends on x (no graph to follow)
    (hv,) = cr.autograd.grad((g * cr.tensor(w, dtype=cr.float64)).sum(), x, allow_unused=True) \
        if g.requires_grad else (None,)
    (thv,) = torch.autograd.grad((tg * torch.tensor(w)).sum(), t, allow_unused=True) if tg.requires_grad else (None,)
    hv = np.zeros(shape) if hv is None else hv.data
    thv = np.zeros(shape) if thv is None else thv.numpy()
    np.testing.assert_allclose(hv, thv, rtol=1e-8, atol=1e-10)


# --------------------------------------------------------------------------------------------------
# second order
# --------------------------------------------------------------------------------------------------


@FEW
@given(st.integers(1, 4), seeds)
def test_hessian_is_symmetric_and_agrees_with_hvp(n, seed):
    """For a smooth f: R^n -> R, func.hessian is symmetric, H v = func.hvp, and gradgradcheck passes."""
    rng = np.random.default_rng(seed)
    W = cr.tensor(rng.standard_normal((n, n)), dtype=cr.float64)
    b = cr.tensor(rng.standard_normal(n), dtype=cr.float64)

    def f(x):
        return ((W @ x + b).tanh() * x).sum() + (x * x * x).sum() * 0.1 + (x.sin() @ W @ x.cos())

    x = cr.tensor(rng.standard_normal(n), dtype=cr.float64)
    v = rng.standard_normal(n)
    H = func.hessian(f, x).data
    assert H.shape == (n, n)
    np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)
    _, hv = func.hvp(f, x, cr.tensor(v, dtype=cr.float64))
    np.testing.assert_allclose(hv.data, H @ v, rtol=1e-10, atol=1e-12)
    assert gradgradcheck(f, (leaf(x.data),), eps=1e-6, atol=1e-5, rtol=1e-4)


@FEW
@given(st.integers(1, 4), st.integers(1, 3), seeds)
def test_func_jacobian_vjp_and_jvp_agree(n, m, seed):
    """For f: R^n -> R^m, func.jacobian J has shape (m, n), func.vjp(u) = J^T u and func.jvp(v) = J v;
    J matches central finite differences."""
    rng = np.random.default_rng(seed)
    W = cr.tensor(rng.standard_normal((m, n)), dtype=cr.float64)

    def f(x):
        return (W @ x).tanh() * x.sum() + (W @ x.sin()) ** 2

    x_np, u, v = rng.standard_normal(n), rng.standard_normal(m), rng.standard_normal(n)
    x = cr.tensor(x_np, dtype=cr.float64)
    J = func.jacobian(f, x).data
    assert J.shape == (m, n)
    out, vjp_fn = func.vjp(f, x)
    (jtu,) = vjp_fn(cr.tensor(u, dtype=cr.float64))
    np.testing.assert_allclose(jtu.data, J.T @ u, rtol=1e-10, atol=1e-12)
    _, jv = func.jvp(f, (x,), (cr.tensor(v, dtype=cr.float64),))
    np.testing.assert_allclose(jv.data, J @ v, rtol=1e-10, atol=1e-12)
    eps = 1e-6
    numeric = np.stack([(f(cr.tensor(x_np + eps * e, dtype=cr.float64)).data
                         - f(cr.tensor(x_np - eps * e, dtype=cr.float64)).data) / (2 * eps) for e in np.eye(n)], 1)
    np.testing.assert_allclose(J, numeric, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------------------------------
# library invariants: files and seeds
# --------------------------------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9_]{0,5}(\.[a-z0-9_]{1,4}){0,2}", fullmatch=True)
stored_arrays = st.sampled_from([np.float32, np.float64, np.int64]).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))


def _assert_bitwise_equal(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()  # NaN payloads, -0.0 and subnormals included


@FEW
@given(st.dictionaries(names, stored_arrays, max_size=5),
       st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12), max_size=3), st.booleans())
def test_safetensors_round_trip_is_bit_exact(arrays_by_name, metadata, as_tensors):
    """save_arrays/load_arrays and cr.save/cr.load (of arrays or Tensors) return every float32/float64/int64
    array (0-d, empty, NaN payloads, inf, -0.0 included) bit for bit, and the metadata unchanged."""
    state = {k: cr.from_numpy(a) if as_tensors else a for k, a in arrays_by_name.items()}
    with tempfile.TemporaryDirectory() as d:
        path, sd_path = os.path.join(d, "a.safetensors"), os.path.join(d, "sd.safetensors")
        save_arrays(arrays_by_name, path, metadata)
        loaded, meta = load_arrays(path)
        cr.save(state, sd_path, metadata)
        tensors = cr.load(sd_path)
        assert cr.io.load_metadata(sd_path) == metadata
    assert meta == metadata
    assert set(loaded) == set(tensors) == set(arrays_by_name)
    for k, a in arrays_by_name.items():
        _assert_bitwise_equal(loaded[k], a)
        assert loaded[k].flags.c_contiguous and loaded[k].flags.writeable
        assert isinstance(tensors[k], cr.Tensor)
        _assert_bitwise_equal(tensors[k].data, a)


@pytest.fixture
def _restore_rng():
    state = cr.get_rng_state()
    yield
    cr.set_rng_state(state)


@settings(SETTINGS, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.integers(0, 2**63 - 1), shapes, st.sampled_from([cr.float32, cr.float64]))
def test_manual_seed_reproduces_random_streams(_restore_rng, seed, shape, dtype):
    """manual_seed(s) then randn/rand/randint/randperm gives identical numbers each time, and Generator(s) agrees."""
    def draw(gen=None):
        return (cr.randn(shape, generator=gen, dtype=dtype).data, cr.rand(*shape, generator=gen, dtype=dtype).data,
                cr.randint(0, 100, shape, generator=gen).data, cr.randperm(7, generator=gen).data)

    cr.manual_seed(seed)
    first = draw()
    cr.manual_seed(seed)
    second = draw()
    private = draw(cr.Generator(seed))
    for a, b, c in zip(first, second, private):
        _assert_bitwise_equal(a, b)
        _assert_bitwise_equal(a, c)
    assert first[0].dtype == dtype and first[0].shape == shape
    assert np.all((first[1] >= 0) & (first[1] < 1))
    assert sorted(first[3].tolist()) == list(range(7))


# --------------------------------------------------------------------------------------------------
# losses and optimizers against torch
# --------------------------------------------------------------------------------------------------


@st.composite
def cross_entropy_case(draw):
    n, c = draw(st.integers(1, 4)), draw(st.integers(2, 4))
    extra = draw(st.sampled_from([(), (2,), (1, 3)]))  # (N, C) or (N, C, d1, ...)
    return dict(n=n, c=c, extra=extra, seed=draw(seeds), reduction=draw(st.sampled_from(["mean", "sum", "none"])),
                label_smoothing=draw(st.sampled_from([0.0, 0.1, 0.5])), weighted=draw(st.booleans()),
                ignore=draw(st.booleans()), probs=draw(st.booleans()))


def _cross_entropy_both(case):
    rng = np.random.default_rng(case["seed"])
    n, c, extra = case["n"], case["c"], case["extra"]
    x_np = rng.standard_normal((n, c) + extra) * 3
    kw = dict(reduction=case["reduction"], label_smoothing=case["label_smoothing"])
    if case["probs"]:
        y = np.moveaxis(rng.dirichlet(np.ones(c), size=(n,) + extra), -1, 1)
        y_cr, y_t = cr.tensor(y, dtype=cr.float64), torch.tensor(y)
    else:
        y = rng.integers(0, c, (n,) + extra)
        if case["ignore"]:
            kw["ignore_index"] = int(y.flat[0])
        y_cr, y_t = cr.tensor(y), torch.tensor(y)
    w = rng.uniform(0.1, 2, c) if case["weighted"] else None
    x, t = leaf(x_np), torch.tensor(x_np, requires_grad=True)
    out = cr.nn.functional.cross_entropy(x, y_cr, weight=None if w is None else cr.tensor(w, dtype=cr.float64), **kw)
    tout = torch.nn.functional.cross_entropy(t, y_t, weight=None if w is None else torch.tensor(w), **kw)
    v = rng.standard_normal(out.shape)
    (out * cr.tensor(v, dtype=cr.float64)).sum().backward()
    (tout * torch.tensor(v)).sum().backward()
    return (out.data, x.grad.data), (tout.detach().numpy(), t.grad.numpy()), y, kw


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@SETTINGS
@given(cross_entropy_case())
def test_cross_entropy_matches_torch(case):
    """cross_entropy with class indices or probabilities, (N, C, d...) inputs, class weights, ignore_index,
    label smoothing and every reduction: same loss and gradient as torch (float64)."""
    (val, grad), (tval, tgrad), y, kw = _cross_entropy_both(case)
    np.testing.assert_allclose(val, tval, **F64)
    np.testing.assert_allclose(grad, tgrad, rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@SETTINGS
@given(cross_entropy_case().map(lambda c: {**c, "n": 1, "extra": (), "probs": False, "ignore": True,
                                           "reduction": "mean"}))
@example({"n": 1, "c": 2, "extra": (), "seed": 0, "reduction": "mean", "label_smoothing": 0.0, "weighted": False,
          "ignore": True, "probs": False})  # F.cross_entropy(x, cr.tensor([1]), ignore_index=1).backward(): NaN grad
def test_cross_entropy_with_every_target_ignored_has_zero_gradient(case):
    """All targets ignored: loss NaN (0/0) and gradient 0, as torch (an all-padding batch must not poison weights)."""
    (val, grad), (tval, tgrad), _, _ = _cross_entropy_both(case)
    assert np.isnan(val) and np.isnan(tval)
    np.testing.assert_array_equal(grad, tgrad)


OPTIMIZERS = {
    "SGD": dict(lr=finite(1e-3, 0.5), momentum=st.sampled_from([0.0, 0.5, 0.9]), dampening=st.sampled_from([0.0, 0.1]),
                nesterov=st.booleans(), weight_decay=st.sampled_from([0.0, 0.01]), maximize=st.booleans()),
    "Adam": dict(lr=finite(1e-3, 0.1), betas=st.tuples(st.sampled_from([0.0, 0.9]), st.sampled_from([0.9, 0.999])),
                 eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.sampled_from([0.0, 0.01]), amsgrad=st.booleans(),
                 maximize=st.booleans()),
    "AdamW": dict(lr=finite(1e-3, 0.1), betas=st.tuples(st.sampled_from([0.0, 0.9]), st.sampled_from([0.9, 0.999])),
                  eps=st.sampled_from([1e-8, 1e-3]), weight_decay=st.sampled_from([0.0, 0.1]), amsgrad=st.booleans(),
                  maximize=st.booleans()),
    "RMSprop": dict(lr=finite(1e-3, 0.1), alpha=st.sampled_from([0.9, 0.99]), eps=st.sampled_from([1e-8, 1e-3]),
                    weight_decay=st.sampled_from([0.0, 0.01]), momentum=st.sampled_from([0.0, 0.9]),
                    centered=st.booleans(), maximize=st.booleans()),
    "Adagrad": dict(lr=finite(1e-3, 0.5), lr_decay=st.sampled_from([0.0, 0.01]),
                    weight_decay=st.sampled_from([0.0, 0.01]), initial_accumulator_value=st.sampled_from([0.0, 0.1]),
                    eps=st.sampled_from([1e-10, 1e-3]), maximize=st.booleans()),
}


@st.composite
def optimizer_case(draw):
    name = draw(st.sampled_from(sorted(OPTIMIZERS)))
    kw = {k: draw(v) for k, v in OPTIMIZERS[name].items()}
    if name == "SGD" and (kw["momentum"] == 0 or kw["dampening"] != 0):
        kw["nesterov"] = False  # torch requires momentum > 0 and no dampening for Nesterov
    return name, kw


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@SETTINGS
@given(optimizer_case(), seeds, st.integers(1, 5))
def test_optimizers_follow_torch_update_rules(case, seed, steps):
    """SGD/Adam/AdamW/RMSprop/Adagrad with random hyperparameters take the same steps as torch.optim (float64)."""
    name, kw = case
    rng = np.random.default_rng(seed)
    w0, X = rng.standard_normal((3, 2)), rng.standard_normal((5, 3))
    p = cr.nn.Parameter(cr.tensor(w0, dtype=cr.float64))
    tp = torch.nn.Parameter(torch.tensor(w0))
    opt, topt = getattr(cr.optim, name)([p], **kw), getattr(torch.optim, name)([tp], **kw)
    for _ in range(steps):
        opt.zero_grad()
        ((cr.tensor(X) @ p).tanh() ** 2).sum().backward()
        opt.step()
        topt.zero_grad()
        ((torch.tensor(X) @ tp).tanh() ** 2).sum().backward()
        topt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=f"{name} {kw}")
