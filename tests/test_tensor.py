"""Tensor basics: dtype policy, factories, conversions, repr, errors, determinism."""

import numpy as np
import pytest

import chainrule as cr


def test_dtype_policy():
    assert cr.tensor(1.5).dtype == cr.float32
    assert cr.tensor([1.0, 2.0]).dtype == cr.float32
    assert cr.tensor([1, 2]).dtype == cr.int64
    assert cr.tensor([True, False]).dtype == cr.bool
    assert cr.tensor(np.array([1.0], dtype=np.float64)).dtype == cr.float64
    assert cr.tensor([1, 2], dtype=cr.float64).dtype == cr.float64
    assert cr.tensor([1.0], dtype=np.float64).dtype == cr.float64
    assert cr.tensor([1.0], dtype="float64").dtype == cr.float64


@pytest.mark.parametrize("op", [
    lambda x: x * 2.5, lambda x: x + 1, lambda x: x / 3, lambda x: 1.0 - x, lambda x: x ** 2,
    lambda x: x.exp(), lambda x: x.mean(), lambda x: x.var(), lambda x: x.softmax(-1), lambda x: x.sigmoid(),
    lambda x: x @ x, lambda x: x * np.float64(2.0), lambda x: x.norm(), lambda x: cr.gelu(x),
])
def test_no_silent_upcast_of_float32(op):
    x = cr.tensor([0.5, 1.5, 2.5], requires_grad=True)
    y = op(x)
    assert y.dtype == cr.float32
    y.sum().backward() if y.ndim else y.backward()
    assert x.grad.dtype == cr.float32


def test_int_tensor_float_ops_give_float32_like_torch():
    i = cr.tensor([1, 2, 3])
    assert (i / 2).dtype == cr.float32
    assert (i * 1.5).dtype == cr.float32
    assert i.exp().dtype == cr.float32
    assert (i + 1).dtype == cr.int64
    assert (i + cr.tensor([0.5, 0.5, 0.5])).dtype == cr.float32
    assert (cr.tensor([1.0], dtype=cr.float64) + cr.tensor([1.0])).dtype == cr.float64


def test_factories():
    assert cr.zeros(2, 3).shape == (2, 3) and cr.zeros((2, 3)).dtype == cr.float32
    assert cr.ones(4, dtype=cr.float64).dtype == cr.float64
    assert cr.full((2,), 7).dtype == cr.int64 and cr.full((2,), 7.0).dtype == cr.float32
    assert cr.arange(5).tolist() == [0, 1, 2, 3, 4] and cr.arange(5).dtype == cr.int64
    assert cr.arange(0, 1, 0.25).dtype == cr.float32
    np.testing.assert_allclose(cr.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1])
    assert cr.eye(3).numpy().trace() == 3
    assert cr.empty(2, 2).shape == (2, 2)
    x = cr.randn(3, 4, dtype=cr.float64)
    for f in (cr.zeros_like, cr.ones_like, cr.empty_like, cr.rand_like, cr.randn_like):
        y = f(x)
        assert y.shape == x.shape and y.dtype == cr.float64
    assert cr.full_like(x, 2.0).numpy().sum() == 24
    r = cr.randint(0, 10, (100,))
    assert r.dtype == cr.int64 and r.min().item() >= 0 and r.max().item() < 10
    assert cr.rand(2, requires_grad=True).requires_grad
    a = np.arange(3.0)
    assert np.shares_memory(cr.from_numpy(a).numpy(), a)
    assert not np.shares_memory(cr.tensor(a).numpy(), a)
    assert np.shares_memory(cr.as_tensor(a).numpy(), a)


def test_manual_seed_is_reproducible_bit_for_bit():
    cr.manual_seed(42)
    a = (cr.randn(5), cr.rand(3), cr.randint(0, 100, (4,)))
    cr.manual_seed(42)
    b = (cr.randn(5), cr.rand(3), cr.randint(0, 100, (4,)))
    for u, v in zip(a, b):
        assert u.numpy().tobytes() == v.numpy().tobytes()
    cr.manual_seed(43)
    assert cr.randn(5).numpy().tobytes() != a[0].numpy().tobytes()
    g = cr.Generator(7)
    state = g.get_state()
    first = cr.randn(3, generator=g)
    g.set_state(state)
    assert cr.randn(3, generator=g).tolist() == first.tolist()


def test_conversions_and_attributes():
    x = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert x.shape == (2, 2) and x.ndim == 2 and x.size() == (2, 2) and x.size(1) == 2
    assert x.numel() == 4 and len(x) == 2 and x.is_leaf and x.grad is None and x.grad_fn is None
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert np.asarray(x).shape == (2, 2)
    assert cr.tensor(3.5).item() == 3.5
    rows = list(x)
    assert len(rows) == 2 and rows[1].tolist() == [3.0, 4.0]
    with pytest.raises(RuntimeError, match="detach"):
        x.numpy()
    assert x.detach().numpy().sum() == 10
    with pytest.raises(ValueError, match="one-element"):
        x.item()
    assert x.float() is x and x.double().dtype == cr.float64 and x.long().dtype == cr.int64
    assert x.to(cr.float64).dtype == cr.float64


def test_repr_like_torch():
    assert repr(cr.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(cr.tensor([1, 2])) == "tensor([1, 2])"
    assert repr(cr.tensor([0.5, 1.25], requires_grad=True)) == "tensor([0.5000, 1.2500], requires_grad=True)"
    assert repr(cr.tensor([1.0], dtype=cr.float64)) == "tensor([1.], dtype=chainrule.float64)"
    y = cr.tensor([1.0], requires_grad=True) * 2.0
    assert "grad_fn=<MulScalarBackward>" in repr(y)


def test_shape_error_messages_name_op_and_shapes():
    a, b = cr.zeros(32, 784), cr.zeros(256, 784)
    with pytest.raises(RuntimeError, match=r"matmul: \(32, 784\) @ \(256, 784\): inner dimensions 784 and 256 differ"):
        a @ b
    with pytest.raises(RuntimeError, match=r"add: \(2, 3\) and \(4,\)"):
        cr.zeros(2, 3) + cr.zeros(4)
    with pytest.raises(RuntimeError, match="reshape"):
        cr.zeros(2, 3).reshape(4, 2)
    with pytest.raises(RuntimeError, match="cat"):
        cr.cat([cr.zeros(2, 3), cr.zeros(3, 2)], dim=0)
    with pytest.raises(IndexError, match="dimension out of range"):
        cr.zeros(2, 3).sum(dim=2)
    with pytest.raises(IndexError, match="shape"):
        cr.zeros(2, 3)[5]


@pytest.mark.parametrize("requires_grad", [False, True], ids=["no_graph", "graph"])
def test_indexing_by_an_array_with_and_without_a_graph(requires_grad):
    """``x[idx]`` with a NumPy index array (the batch gather, ``X[idx]``) skips GetItem's bookkeeping when
    there is no graph; both ways give NumPy's values and the same errors, naming the index and the shape."""
    a = np.arange(24, dtype=np.float64).reshape(6, 4)
    x = cr.tensor(a, requires_grad=requires_grad)
    for idx in (np.array([5, 0, 0, -1]), np.array([2], dtype=np.uint8), np.array([True, False] * 3),
                np.array(3), np.zeros(0, dtype=np.int64)):
        got = x[idx]
        np.testing.assert_array_equal(got.data, a[idx])
        assert got.requires_grad is requires_grad
    np.testing.assert_array_equal(cr.tensor(a[0])[np.array([3, 1])].data, a[0, [3, 1]])
    one = cr.tensor(a[0], requires_grad=requires_grad)[np.array(2)]       # a 0-d index picks one element
    assert one.data.__class__ is np.ndarray and one.shape == () and one.item() == a[0, 2]
    with pytest.raises(IndexError, match=r"invalid for a tensor of shape \(6, 4\): index 6 is out of bounds"):
        x[np.array([6, 0])]
    with pytest.raises(IndexError, match="must be long, int or bool"):
        x[np.array([0.0, 1.0])]
    with pytest.raises(IndexError, match=r"shape \(6, 4\)"):
        x[np.array([True, False])]


def test_log_softmax_and_softmax_stable_for_huge_logits():
    x = cr.tensor([[1e4, 0.0, -1e4], [5000.0, 5000.0, 0.0]], requires_grad=True)
    ls = cr.log_softmax(x, dim=1)
    assert np.all(np.isfinite(ls.detach().numpy()))
    np.testing.assert_allclose(ls.detach().numpy()[0], [0.0, -1e4, -2e4], rtol=1e-6)
    np.testing.assert_allclose(ls.detach().numpy()[1, :2], [-np.log(2)] * 2, rtol=1e-6)
    ls.sum().backward()
    assert np.all(np.isfinite(x.grad.numpy()))
    s = cr.softmax(x, dim=1).detach().numpy()
    np.testing.assert_allclose(s.sum(axis=1), [1.0, 1.0], rtol=1e-6)
    assert np.isfinite(cr.sigmoid(cr.tensor([-1e4, 1e4])).numpy()).all()
    np.testing.assert_allclose(cr.logsumexp(cr.tensor([1e4, 1e4]), dim=0).item(), 1e4 + np.log(2), rtol=1e-6)


def test_max_with_dim_returns_values_and_indices_and_routes_to_winner():
    x = cr.tensor([[1.0, 5.0, 5.0], [2.0, 0.0, 1.0]], requires_grad=True)
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 2.0] and indices.tolist() == [1, 0]
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]  # first winner, as torch
    y = cr.tensor([1.0, 3.0, 3.0], requires_grad=True)
    y.max().backward()  # full reduction: ties share the gradient, as torch
    assert y.grad.tolist() == [0.0, 0.5, 0.5]


def test_comparisons_and_nograd_ops():
    x = cr.tensor([1.0, -2.0, 3.0], requires_grad=True)
    assert (x > 0).dtype == cr.bool and (x > 0).tolist() == [True, False, True]
    assert x.argmax().item() == 2 and x.argmin().item() == 1
    assert x.sign().tolist() == [1.0, -1.0, 1.0]
    assert cr.isnan(cr.tensor([np.nan, 1.0])).tolist() == [True, False]
    assert cr.isfinite(cr.tensor([np.inf, 1.0])).tolist() == [False, True]


def test_numpy_array_on_the_left_gives_tensor():
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = np.array([2.0, 3.0], dtype=np.float32) * x
    assert isinstance(y, cr.Tensor) and y.requires_grad


def test_indexing_accumulates_repeated_indices():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[cr.tensor([0, 0, 2])].sum().backward()
    assert x.grad.tolist() == [2.0, 0.0, 1.0]


def test_split_chunk_stack_cat_roundtrip():
    x = cr.arange(12).reshape(3, 4).float()
    parts = x.split(1, dim=1)
    assert len(parts) == 4 and cr.cat(parts, dim=1).tolist() == x.tolist()
    assert len(x.chunk(2, dim=0)) == 2
    assert cr.stack([x, x]).shape == (2, 3, 4)


def test_bad_data_gets_clear_errors():
    with pytest.raises(ValueError, match="ragged"):
        cr.tensor([[1, 2], [3]])
    with pytest.raises(TypeError, match="cannot make a tensor"):
        cr.tensor("abc")
    with pytest.raises(TypeError, match="unknown dtype"):
        cr.zeros(2, dtype="foo")


def test_tensor_class_constructor_follows_torch_legacy_rules():
    # torch.Tensor(data) always gives the default float dtype; torch.Tensor(*sizes) gives that shape.
    t = cr.Tensor([1, 2, 3])
    assert t.dtype == cr.float32 and t.tolist() == [1.0, 2.0, 3.0]
    assert cr.Tensor(np.array([1, 2])).dtype == cr.float32
    assert cr.Tensor([True, False]).dtype == cr.float32
    assert cr.Tensor([0.5, 1.5]).dtype == cr.float32
    assert cr.Tensor(np.array([0.5, 1.5], dtype=np.float64)).dtype == cr.float64   # float64 stays (issue 3)
    assert cr.Tensor([[1, 2], [3, 4]]).requires_grad_().requires_grad
    z = cr.Tensor(2, 3)
    assert z.shape == (2, 3) and z.dtype == cr.float32 and not z.numpy().any()
    assert cr.Tensor().shape == (0,)
    assert cr.Tensor([1, 2], dtype=cr.float64).dtype == cr.float64       # chainrule extension
    assert cr.Tensor(cr.tensor([1, 2])).dtype == cr.float32
    with pytest.raises(TypeError, match="sequence"):
        cr.Tensor(2.5)
    with pytest.raises(TypeError, match="sizes as ints"):
        cr.Tensor(2, "a")
    # Parameters keep their data's dtype, as torch.nn.Parameter does.
    assert cr.nn.Parameter(cr.tensor([1.0], dtype=cr.float64)).dtype == cr.float64
    assert cr.nn.Parameter(np.zeros(2, dtype=np.float64)).dtype == cr.float64
