"""chainrule.nn: modules, layers, activations, init — torch parity, gradchecks, state_dict, training.

Tolerances: float32 outputs and gradients agree with torch to rtol = atol = 1e-5, float64 to 1e-10.
"""

import copy
import math
import pickle

import numpy as np
import pytest
import torch

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}
TDT = {np.float32: torch.float32, np.float64: torch.float64}


def to_torch_state(model):
    return {k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()}


def check_parity(ours, theirs, x, dtype, seed=0):
    """Same weights (copied through state_dict), same input: compare the output, dL/dx and dL/dparams."""
    ours.to(dtype)
    theirs.to(TDT[dtype])
    theirs.load_state_dict(to_torch_state(ours), strict=True)
    xc = cr.tensor(x.astype(dtype), requires_grad=True)
    xt = torch.tensor(x.astype(dtype), requires_grad=True)
    yc, yt = ours(xc), theirs(xt)
    np.testing.assert_allclose(yc.detach().numpy(), yt.detach().numpy(), **TOL[dtype])
    g = np.random.default_rng(seed).standard_normal(yt.shape).astype(dtype)
    yc.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), **TOL[dtype])
    theirs_params = dict(theirs.named_parameters())
    names = [n for n, _ in ours.named_parameters()]
    assert names == list(theirs_params)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), **TOL[dtype],
                                   err_msg=name)


# ---------------------------------------------------------------------------------------------------
# torch parity: layers and activations
# ---------------------------------------------------------------------------------------------------
class TorchConcat(torch.nn.Module):
    def __init__(self, *branches, dim=-1):
        super().__init__()
        for i, b in enumerate(branches):
            self.add_module(str(i), b)
        self.dim = dim

    def forward(self, x):
        return torch.cat([b(x) for b in self.children()], dim=self.dim)


LAYERS = [
    ("linear", lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), (4, 5)),
    ("linear_nobias", lambda: nn.Linear(5, 3, bias=False), lambda: torch.nn.Linear(5, 3, bias=False), (4, 5)),
    ("linear_3d", lambda: nn.Linear(5, 3), lambda: torch.nn.Linear(5, 3), (2, 4, 5)),
    ("mlp", lambda: nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)),
     lambda: torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8),
                                 torch.nn.ReLU(), torch.nn.Linear(8, 2)), (5, 6)),
    ("identity", lambda: nn.Identity(), lambda: torch.nn.Identity(), (3, 4)),
    ("flatten", lambda: nn.Sequential(nn.Flatten(), nn.Linear(12, 2)),
     lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2)), (2, 3, 2, 2)),
    ("flatten_0_2", lambda: nn.Flatten(0, 2), lambda: torch.nn.Flatten(0, 2), (2, 3, 2, 2)),
    ("unflatten", lambda: nn.Unflatten(1, (2, 5)), lambda: torch.nn.Unflatten(1, (2, 5)), (3, 10)),
    ("dropout_p0", lambda: nn.Dropout(0.0), lambda: torch.nn.Dropout(0.0), (3, 4)),
    ("concat", lambda: nn.Concat(nn.Linear(4, 3), nn.Sequential(nn.Linear(4, 2), nn.Sigmoid())),
     lambda: TorchConcat(torch.nn.Linear(4, 3),
                         torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Sigmoid())),
     (5, 4)),
    ("sigmoid", lambda: nn.Sigmoid(), lambda: torch.nn.Sigmoid(), (4, 6)),
    ("tanh", lambda: nn.Tanh(), lambda: torch.nn.Tanh(), (4, 6)),
    ("relu", lambda: nn.ReLU(), lambda: torch.nn.ReLU(), (4, 6)),
    ("leaky_relu", lambda: nn.LeakyReLU(), lambda: torch.nn.LeakyReLU(), (4, 6)),
    ("leaky_relu_0.2", lambda: nn.LeakyReLU(0.2), lambda: torch.nn.LeakyReLU(0.2), (4, 6)),
    ("softplus", lambda: nn.Softplus(), lambda: torch.nn.Softplus(), (4, 6)),
    ("softplus_b2_t1", lambda: nn.Softplus(beta=2.0, threshold=1.0), lambda: torch.nn.Softplus(2.0, 1.0),
     (4, 6)),
    ("elu", lambda: nn.ELU(), lambda: torch.nn.ELU(), (4, 6)),
    ("elu_0.5", lambda: nn.ELU(alpha=0.5), lambda: torch.nn.ELU(alpha=0.5), (4, 6)),
    ("gelu", lambda: nn.GELU(), lambda: torch.nn.GELU(), (4, 6)),
    ("gelu_tanh", lambda: nn.GELU("tanh"), lambda: torch.nn.GELU("tanh"), (4, 6)),
    ("softmax", lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1), (4, 6)),
    ("softmax_0", lambda: nn.Softmax(dim=0), lambda: torch.nn.Softmax(dim=0), (4, 6)),
    ("log_softmax", lambda: nn.LogSoftmax(dim=-1), lambda: torch.nn.LogSoftmax(dim=-1), (2, 4, 6)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_layers_match_torch(case, dtype):
    _, make_ours, make_theirs, shape = case
    cr.manual_seed(0)
    x = np.random.default_rng(1).standard_normal(shape) * 2
    check_parity(make_ours(), make_theirs(), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_in_eval_mode_matches_torch(dtype):
    ours = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5)).eval()
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Dropout(0.5)).eval()
    check_parity(ours, theirs, np.random.default_rng(2).standard_normal((6, 4)), dtype)


@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_layers_gradcheck_and_gradgradcheck(case):
    _, make_ours, _, shape = case
    cr.manual_seed(0)
    model = make_ours().double()
    x = cr.tensor(np.random.default_rng(3).standard_normal(shape), requires_grad=True)
    params = list(model.parameters())
    fn = lambda inp, *ps: model(inp)  # noqa: E731  (params are perturbed in place by gradcheck)
    assert gradcheck(fn, (x, *params))
    assert gradgradcheck(fn, (x, *params))


def test_functional_activations_match_torch():
    x = np.random.default_rng(4).standard_normal((3, 5)) * 3
    tf = torch.nn.functional
    pairs = [
        (F.relu, tf.relu), (F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh),
        (lambda t: F.leaky_relu(t, 0.1), lambda t: tf.leaky_relu(t, 0.1)),
        (lambda t: F.softplus(t, 0.5, 3.0), lambda t: tf.softplus(t, 0.5, 3.0)),
        (lambda t: F.elu(t, 2.0), lambda t: tf.elu(t, 2.0)),
        (lambda t: F.gelu(t, approximate="tanh"), lambda t: tf.gelu(t, approximate="tanh")),
        (lambda t: F.softmax(t, dim=0), lambda t: tf.softmax(t, dim=0)),
        (lambda t: F.log_softmax(t, dim=1), lambda t: tf.log_softmax(t, dim=1)),
        (lambda t: F.pad(t, (1, 2)), lambda t: tf.pad(t, (1, 2))),
        (lambda t: F.pad(t, (1, 0, 0, 2), value=3.0), lambda t: tf.pad(t, (1, 0, 0, 2), value=3.0)),
        (lambda t: F.dropout(t, 0.5, training=False), lambda t: tf.dropout(t, 0.5, training=False)),
    ]
    for ours, theirs in pairs:
        xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yc, yt = ours(xc), theirs(xt)
        np.testing.assert_allclose(yc.detach().numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
        yc.sum().backward()
        yt.sum().backward()
        np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    w = np.random.default_rng(5).standard_normal((2, 5))
    b = np.random.default_rng(6).standard_normal(2)
    ours = F.linear(cr.tensor(x), cr.tensor(w), cr.tensor(b)).numpy()
    np.testing.assert_allclose(ours, tf.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b)).numpy(),
                               rtol=1e-12)


def test_inplace_activation_flags():
    x = cr.tensor([-1.0, 2.0])
    y = nn.ReLU(inplace=True)(x)
    assert y is x and x.tolist() == [0.0, 2.0]
    x = cr.tensor([-1.0, 2.0])
    assert F.leaky_relu(x, 0.5, inplace=True) is x and x.tolist() == [-0.5, 2.0]


# ---------------------------------------------------------------------------------------------------
# threshold units
# ---------------------------------------------------------------------------------------------------
def test_heaviside_and_sign_outputs_and_zero_gradient():
    x = cr.tensor([-2.0, -0.5, 0.0, 0.5, 3.0], requires_grad=True)
    h = nn.Heaviside()(x)
    np.testing.assert_array_equal(h.detach().numpy(), torch.heaviside(torch.tensor(x.data),
                                                                      torch.tensor(0.0)).numpy())
    np.testing.assert_array_equal(nn.Heaviside(value=0.5)(x).detach().numpy(), [0, 0, 0.5, 1, 1])
    s = nn.Sign()(x)
    np.testing.assert_array_equal(s.detach().numpy(), [-1, -1, 0, 1, 1])
    assert h.requires_grad and s.requires_grad  # the graph is recorded...
    (h * 3 + s * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros(5))  # ...but no learning signal flows back
    assert h.dtype == cr.float32
    # a perceptron layer with a step activation gets exactly zero gradient on its weights
    layer = nn.Linear(3, 2)
    nn.Sequential(layer, nn.Heaviside())(cr.randn(4, 3)).sum().backward()
    assert np.all(layer.weight.grad.numpy() == 0) and np.all(layer.bias.grad.numpy() == 0)
    xd = cr.tensor([-1.0, 0.3, 2.0], dtype=cr.float64, requires_grad=True)
    assert gradcheck(lambda t: nn.Heaviside()(t) + nn.Sign()(t), (xd,))
    assert gradgradcheck(lambda t: nn.Heaviside()(t) * t, (xd,))
    assert repr(nn.Heaviside()) == "Heaviside()" and repr(nn.Sign()) == "Sign()"


# ---------------------------------------------------------------------------------------------------
# Parameter
# ---------------------------------------------------------------------------------------------------
def test_parameter_basics_and_repr_like_torch():
    p = nn.Parameter(cr.ones(2))
    assert isinstance(p, cr.Tensor) and p.requires_grad and p.is_leaf
    assert repr(p) == repr(torch.nn.Parameter(torch.ones(2))).replace("torch.", "chainrule.")
    p64 = nn.Parameter(cr.ones(2, 3, dtype=cr.float64))
    t64 = torch.nn.Parameter(torch.ones(2, 3, dtype=torch.float64))
    assert repr(p64) == repr(t64).replace("torch.", "chainrule.")
    assert not nn.Parameter(cr.ones(2), requires_grad=False).requires_grad
    base = cr.zeros(3)
    assert nn.Parameter(base).data is base.data  # shares memory, like torch
    with pytest.raises(RuntimeError):
        nn.Parameter(cr.tensor([1, 2]))  # integer tensors cannot require grad


def test_parameter_arithmetic_with_tensors_in_both_orders():
    w = nn.Parameter(cr.tensor([1.0, 2.0, 3.0]))
    x = cr.tensor([2.0, -1.0, 0.5], requires_grad=True)
    exprs = [
        lambda: x + w, lambda: w + x, lambda: x - w, lambda: w - x, lambda: x * w, lambda: w * x,
        lambda: x / w, lambda: w / x, lambda: x.abs() ** w, lambda: w ** 2, lambda: 2 ** w, lambda: 3 * w,
        lambda: x @ w, lambda: w @ x, lambda: 1 - w, lambda: 1 / w,
    ]
    xt = torch.tensor(x.data, requires_grad=True)
    wt = torch.nn.Parameter(torch.tensor(w.data))
    texprs = [
        lambda: xt + wt, lambda: wt + xt, lambda: xt - wt, lambda: wt - xt, lambda: xt * wt, lambda: wt * xt,
        lambda: xt / wt, lambda: wt / xt, lambda: xt.abs() ** wt, lambda: wt ** 2, lambda: 2 ** wt,
        lambda: 3 * wt, lambda: xt @ wt, lambda: wt @ xt, lambda: 1 - wt, lambda: 1 / wt,
    ]
    for e, te in zip(exprs, texprs, strict=True):
        x.grad = w.grad = None
        xt.grad = wt.grad = None
        out, tout = e(), te()
        assert type(out) is cr.Tensor
        np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-6)
        out.sum().backward()
        tout.sum().backward()
        np.testing.assert_allclose(w.grad.numpy(), wt.grad.numpy(), rtol=1e-6)
        if xt.grad is not None:
            np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6)


def test_parameter_copy_and_pickle():
    p = nn.Parameter(cr.tensor([1.0, 2.0]))
    q = copy.deepcopy(p)
    assert type(q) is nn.Parameter and q.requires_grad and q.data is not p.data
    r = pickle.loads(pickle.dumps(p))
    assert type(r) is nn.Parameter and r.tolist() == [1.0, 2.0]


# ---------------------------------------------------------------------------------------------------
# Module API
# ---------------------------------------------------------------------------------------------------
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.act = nn.Tanh()
        self.fc2 = nn.Linear(4, 2)
        self.scale = nn.Parameter(cr.ones(2))
        self.register_buffer("running", cr.zeros(2))
        self.register_buffer("tmp", cr.zeros(1), persistent=False)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(3, 4)
        self.act = torch.nn.Tanh()
        self.fc2 = torch.nn.Linear(4, 2)
        self.scale = torch.nn.Parameter(torch.ones(2))
        self.register_buffer("running", torch.zeros(2))
        self.register_buffer("tmp", torch.zeros(1), persistent=False)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) * self.scale


def test_custom_module_names_match_torch():
    ours, theirs = Net(), TorchNet()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()]
    assert [n for n, _ in ours.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in ours.named_parameters(prefix="model")] == \
        ["model." + n for n, _ in theirs.named_parameters()]
    assert len(list(ours.parameters())) == 5 and len(list(ours.buffers())) == 2
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters()) == 3 * 4 + 4 + 4 * 2 + 2 + 2
    assert repr(ours) == repr(theirs).replace("TorchNet", "Net")
    check_parity(ours, theirs, np.random.default_rng(0).standard_normal((5, 3)), np.float64)


def test_attribute_registration_rules():
    m = Net()
    assert m.fc1 is m._modules["fc1"] and m.running is m._buffers["running"]
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'nope'"):
        m.nope  # noqa: B018
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'scale'"):
        m.scale = cr.ones(2)
    m.running = cr.ones(2)  # a buffer can be replaced by a tensor
    assert m.state_dict()["running"].tolist() == [1.0, 1.0]
    m.fc2 = nn.Linear(4, 5)  # replacing a child
    assert m.fc2.out_features == 5
    m.extra = nn.Parameter(cr.zeros(1))
    assert "extra" in dict(m.named_parameters())
    del m.extra
    assert "extra" not in dict(m.named_parameters())
    del m.fc2
    assert "fc2" not in dict(m.named_children())
    m.scale = None
    assert "scale" not in m.state_dict()

    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()
    with pytest.raises(KeyError):
        nn.Module().register_buffer("a.b", cr.zeros(1))
    with pytest.raises(TypeError):
        nn.Module().register_parameter("w", cr.zeros(1))


def test_shared_parameters_are_listed_once():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]  # as torch


def test_train_eval_zero_grad_requires_grad():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.1)))
    assert all(m.training for m in model.modules())
    assert model.eval() is model and not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    model(cr.randn(3, 2)).sum().backward()
    assert model[0].weight.grad is not None
    model.zero_grad(set_to_none=False)
    assert np.all(model[0].weight.grad.numpy() == 0)
    model.zero_grad()
    assert model[0].weight.grad is None
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())
    assert model.num_parameters(only_trainable=True) == 0


def test_to_dtype_keeps_parameter_identity():
    model = Net()
    params = list(model.parameters())
    assert model.double() is model
    assert all(p.dtype == cr.float64 for p in model.parameters()) and model.running.dtype == cr.float64
    assert [id(p) for p in model.parameters()] == [id(p) for p in params]
    assert model(cr.randn(2, 3, dtype=cr.float64)).dtype == cr.float64
    model.float()
    assert all(p.dtype == cr.float32 for p in model.parameters())
    model.to("cpu")
    assert model.to(cr.float64).fc1.weight.dtype == cr.float64
    with pytest.raises(TypeError):
        model.to(cr.int64)


def test_apply_and_get_submodule():
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Linear(3, 3), nn.ReLU()))
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Linear", "ReLU", "Sequential", "Sequential"]  # children first, as torch

    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.ones_(m.weight)

    model.apply(init_weights)
    assert model.get_submodule("1.0").weight.detach().numpy().sum() == 9
    assert model.get_parameter("1.0.bias") is model[1][0].bias


def test_deepcopy_and_pickle_module():
    model = Net()
    clone = copy.deepcopy(model)
    x = cr.randn(2, 3)
    np.testing.assert_array_equal(clone(x).detach().numpy(), model(x).detach().numpy())
    assert clone.fc1.weight is not model.fc1.weight
    assert isinstance(clone.fc1.weight, nn.Parameter)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again(x).detach().numpy(), model(x).detach().numpy())


# ---------------------------------------------------------------------------------------------------
# containers
# ---------------------------------------------------------------------------------------------------
def test_sequential_container_operations():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c]
    assert list(sub.state_dict()) == ["2.weight", "2.bias"]  # slices keep the names, as torch
    with pytest.raises(IndexError):
        seq[3]  # noqa: B018
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and isinstance(seq[3], nn.Sigmoid)
    del seq[1]
    assert [type(m).__name__ for m in seq] == ["Linear", "Linear", "Sigmoid"]
    assert list(seq._modules) == ["0", "1", "2"]
    seq.insert(1, nn.Tanh())
    assert [type(m).__name__ for m in seq] == ["Linear", "Tanh", "Linear", "Sigmoid"]
    seq[1] = nn.ReLU()
    assert isinstance(seq[1], nn.ReLU)
    from collections import OrderedDict
    named = nn.Sequential(OrderedDict([("hidden", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["hidden.weight", "hidden.bias"]
    assert named.hidden is named[0]


def test_module_list_and_dict():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and list(layers.state_dict())[0] == "0.weight"
    layers.append(nn.ReLU())
    layers.extend([nn.Linear(2, 1)])
    assert len(layers) == 5 and isinstance(layers[-1], nn.Linear)
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    tl = torch.nn.ModuleList([torch.nn.Linear(2, 2) for _ in range(3)])
    tl.extend([torch.nn.ReLU(), torch.nn.Linear(2, 1)])
    assert repr(layers) == repr(tl)
    assert len(list(layers.parameters())) == 8
    heads = nn.ModuleDict({"cls": nn.Linear(4, 3), "reg": nn.Linear(4, 1)})
    assert "cls" in heads and list(heads.keys()) == ["cls", "reg"] and len(heads) == 2
    assert list(heads.state_dict()) == ["cls.weight", "cls.bias", "reg.weight", "reg.bias"]
    th = torch.nn.ModuleDict({"cls": torch.nn.Linear(4, 3), "reg": torch.nn.Linear(4, 1)})
    assert repr(heads) == repr(th)
    heads["extra"] = nn.ReLU()
    assert list(heads) == ["cls", "reg", "extra"]
    del heads["extra"]
    assert [k for k, _ in heads.items()] == ["cls", "reg"]


def test_concat_features_and_gradient_fan_in():
    cr.manual_seed(0)
    f1, f2 = nn.Linear(4, 3), nn.Linear(4, 5)
    cat = nn.Concat(f1, f2)
    x = cr.randn(6, 4, requires_grad=True)
    y = cat(x)
    assert y.shape == (6, 8)
    np.testing.assert_allclose(y.detach().numpy()[:, :3], f1(x).detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(y.detach().numpy()[:, 3:], f2(x).detach().numpy(), rtol=1e-6)
    y.sum().backward()
    # x fans out to both branches: its gradient is the sum of theirs
    expected = np.ones((6, 3)) @ f1.weight.numpy(force=True) + np.ones((6, 5)) @ f2.weight.numpy(force=True)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-5)
    assert list(cat.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    assert nn.Concat(nn.Identity(), nn.Identity(), dim=0)(cr.ones(2, 3)).shape == (4, 3)
    assert repr(nn.Concat(nn.Identity(), dim=0)) == "Concat(\n  dim=0\n  (0): Identity()\n)"


# ---------------------------------------------------------------------------------------------------
# repr
# ---------------------------------------------------------------------------------------------------
def test_repr_equals_torch_for_a_sequential_mlp():
    ours = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 128),
                         nn.LeakyReLU(0.1), nn.Linear(128, 10, bias=False), nn.LogSoftmax(dim=1))
    theirs = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                 torch.nn.Dropout(0.2), torch.nn.Linear(256, 128), torch.nn.LeakyReLU(0.1),
                                 torch.nn.Linear(128, 10, bias=False), torch.nn.LogSoftmax(dim=1))
    assert repr(ours) == repr(theirs)
    assert repr(nn.Sequential(nn.Linear(784, 256), nn.ReLU())) == (
        "Sequential(\n  (0): Linear(in_features=784, out_features=256, bias=True)\n  (1): ReLU()\n)")


def test_repr_equals_torch_for_every_module():
    pairs = [
        (nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), nn.Sigmoid()),
         torch.nn.Sequential(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Tanh()),
                             torch.nn.Sigmoid())),
        (nn.Softplus(), torch.nn.Softplus()),
        (nn.Softplus(beta=2.0, threshold=10.0), torch.nn.Softplus(2.0, 10.0)),
        (nn.ELU(), torch.nn.ELU()), (nn.ELU(0.5, inplace=True), torch.nn.ELU(0.5, inplace=True)),
        (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
        (nn.LeakyReLU(), torch.nn.LeakyReLU()), (nn.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
        (nn.Softmax(), torch.nn.Softmax()), (nn.Softmax(dim=-1), torch.nn.Softmax(dim=-1)),
        (nn.LogSoftmax(dim=1), torch.nn.LogSoftmax(dim=1)), (nn.Identity(), torch.nn.Identity()),
        (nn.Flatten(), torch.nn.Flatten()), (nn.Unflatten(1, (2, 5)), torch.nn.Unflatten(1, (2, 5))),
        (nn.Dropout(), torch.nn.Dropout()), (nn.Dropout(0.1), torch.nn.Dropout(0.1)),
        (nn.Linear(3, 2, bias=False), torch.nn.Linear(3, 2, bias=False)),
        (nn.ModuleList(), torch.nn.ModuleList()), (nn.Sequential(), torch.nn.Sequential()),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)


# ---------------------------------------------------------------------------------------------------
# state_dict
# ---------------------------------------------------------------------------------------------------
def make_pair():
    ours = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 10), torch.nn.ReLU(), torch.nn.Linear(10, 3))
    return ours, theirs


def test_state_dict_round_trip_to_and_from_torch():
    ours, theirs = make_pair()
    sd = ours.state_dict()
    assert list(sd) == list(theirs.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert all(type(v) is cr.Tensor and not v.requires_grad for v in sd.values())
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in sd.items()})
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(cr.tensor(x)).detach().numpy(), theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)
    # and back: torch -> numpy -> chainrule into a fresh model
    fresh, _ = make_pair()
    w_before = fresh[0].weight
    result = fresh.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert fresh[0].weight is w_before  # copied in place: optimizers keep working
    np.testing.assert_array_equal(fresh(cr.tensor(x)).detach().numpy(), ours(cr.tensor(x)).detach().numpy())
    # torch tensors are accepted directly too
    fresh2, _ = make_pair()
    fresh2.load_state_dict(theirs.state_dict())
    np.testing.assert_array_equal(fresh2[2].bias.numpy(force=True), ours[2].bias.numpy(force=True))


def test_state_dict_shares_memory_and_load_copies_values():
    ours, _ = make_pair()
    sd = ours.state_dict()
    assert sd["0.weight"].data is ours[0].weight.data  # like torch: detached views
    snapshot = {k: v.clone() for k, v in sd.items()}
    with cr.no_grad():
        ours[0].weight.data[...] = 0
    ours.load_state_dict(snapshot)
    np.testing.assert_array_equal(ours[0].weight.numpy(force=True), snapshot["0.weight"].numpy())
    ours.load_state_dict({k: v.numpy().astype(np.float64) for k, v in snapshot.items()})  # cast on copy
    assert ours[0].weight.dtype == cr.float32


def test_strict_load_state_dict_lists_every_problem_and_changes_nothing():
    ours, _ = make_pair()
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    bad = {k: v.clone() for k, v in before.items()}
    bad["0.weight"] = cr.zeros(10, 5)
    bad["0.bias"] = cr.zeros(10) + 7  # valid, must not be copied since the load fails
    del bad["2.bias"]
    bad["3.weight"] = cr.zeros(1)
    bad["extra"] = cr.zeros(1)
    with pytest.raises(RuntimeError) as err:
        ours.load_state_dict(bad)
    msg = str(err.value)
    assert "Error(s) in loading state_dict for Sequential" in msg
    assert 'Missing key(s) in state_dict: "2.bias".' in msg
    assert 'Unexpected key(s) in state_dict: "3.weight", "extra".' in msg
    assert ("size mismatch for 0.weight: copying a param with shape (10, 5) from checkpoint, "
            "the shape in current model is (10, 4)") in msg
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k].numpy())
    # strict=False: missing/unexpected are reported, not raised
    partial = {"0.weight": before["0.weight"], "foo": cr.zeros(1)}
    res = ours.load_state_dict(partial, strict=False)
    assert res.missing_keys == ["0.bias", "2.weight", "2.bias"] and res.unexpected_keys == ["foo"]
    assert res == (["0.bias", "2.weight", "2.bias"], ["foo"])
    # ...but a shape mismatch is always an error (as torch)
    with pytest.raises(RuntimeError, match="size mismatch for 0.bias"):
        ours.load_state_dict({"0.bias": cr.zeros(3)}, strict=False)


def test_buffers_in_state_dict():
    m = Net()
    sd = m.state_dict()
    assert "running" in sd and "tmp" not in sd  # non-persistent buffers are not saved
    sd = {k: v.clone() for k, v in sd.items()}
    sd["running"] = cr.tensor([3.0, 4.0])
    m.load_state_dict(sd)
    assert m.running.tolist() == [3.0, 4.0]


# ---------------------------------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------------------------------
def test_dropout_statistics_and_gradient():
    cr.manual_seed(0)
    p = 0.3
    drop = nn.Dropout(p)
    x = cr.ones(1000, 1000, requires_grad=True)
    y = drop(x)
    v = y.detach().numpy()
    zero_frac = float((v == 0).mean())
    assert abs(zero_frac - p) < 0.003  # std of the fraction is sqrt(p(1-p)/1e6) ~ 0.0005
    np.testing.assert_allclose(np.unique(v), [0.0, 1 / (1 - p)], rtol=1e-6)  # inverted dropout scale
    assert abs(float(v.mean()) - 1.0) < 0.01  # E[y] = x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), v)  # dL/dx = mask * 1/(1-p)
    assert y.dtype == cr.float32


def test_dropout_eval_identity_determinism_and_validation():
    x = cr.randn(50, 20)
    drop = nn.Dropout(0.5).eval()
    assert drop(x) is x
    drop.train()
    cr.manual_seed(42)
    a = drop(x).numpy()
    cr.manual_seed(42)
    b = drop(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, drop(x).numpy())
    assert np.all(nn.Dropout(1.0)(x).numpy() == 0)
    assert F.dropout(x, 0.5, training=False) is x
    g = cr.Generator(7)
    m1 = F.dropout(x, 0.5, generator=g).numpy()
    m2 = F.dropout(x, 0.5, generator=cr.Generator(7)).numpy()
    np.testing.assert_array_equal(m1, m2)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(bad)
        with pytest.raises(ValueError):
            F.dropout(x, bad)
    xd = cr.randn(4, 3, dtype=cr.float64, requires_grad=True)

    def f(t):
        cr.manual_seed(3)  # the same mask at every evaluation
        return F.dropout(t, 0.4)

    assert gradcheck(f, (xd,)) and gradgradcheck(f, (xd,))


# ---------------------------------------------------------------------------------------------------
# init
# ---------------------------------------------------------------------------------------------------
def test_linear_default_init_bounds_and_determinism():
    cr.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.numpy(force=True), lin.bias.numpy(force=True)
    assert w.shape == (300, 400) and b.shape == (300,) and w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound  # U(-b, b) has std b / sqrt(3)
    assert abs(w.mean()) < 0.01 * bound
    cr.manual_seed(0)
    again = nn.Linear(400, 300)
    np.testing.assert_array_equal(again.weight.numpy(force=True), w)
    assert not np.array_equal(nn.Linear(400, 300).weight.numpy(force=True), w)
    assert nn.Linear(3, 2, dtype=cr.float64).weight.dtype == cr.float64


def test_init_statistics():
    cr.manual_seed(1)
    t = cr.empty(500, 400)
    fan_in, fan_out = 400, 500
    init = nn.init
    assert init.uniform_(t, -2.0, 3.0) is t
    assert t.numpy().min() >= -2 and t.numpy().max() <= 3 and abs(t.numpy().mean() - 0.5) < 0.01
    init.normal_(t, 1.0, 2.0)
    assert abs(t.numpy().mean() - 1.0) < 0.01 and abs(t.numpy().std() - 2.0) < 0.01
    init.xavier_uniform_(t, gain=2.0)
    b = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(t.numpy()).max() <= b and abs(t.numpy().std() - b / math.sqrt(3)) < 0.01 * b
    init.xavier_normal_(t)
    assert abs(t.numpy().std() - math.sqrt(2 / (fan_in + fan_out))) < 0.002
    init.kaiming_uniform_(t, nonlinearity="relu")
    b = math.sqrt(2) * math.sqrt(3 / fan_in)
    assert np.abs(t.numpy()).max() <= b and abs(t.numpy().std() - b / math.sqrt(3)) < 0.01 * b
    init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu")
    assert abs(t.numpy().std() - math.sqrt(2 / fan_out)) < 0.002
    init.kaiming_normal_(t, a=0.2)
    assert abs(t.numpy().std() - math.sqrt(2 / (1 + 0.04)) / math.sqrt(fan_in)) < 0.002
    init.trunc_normal_(t, 0.0, 1.0, -1.0, 1.0)
    assert t.numpy().min() >= -1 and t.numpy().max() <= 1
    init.constant_(t, 0.25)
    assert np.all(t.numpy() == 0.25)
    init.zeros_(t)
    assert not t.numpy().any()
    init.ones_(t)
    assert np.all(t.numpy() == 1)
    e = init.eye_(cr.empty(3, 5))
    np.testing.assert_array_equal(e.numpy(), np.eye(3, 5))
    for shape in [(6, 4), (4, 6), (5, 2, 3)]:
        q = init.orthogonal_(cr.empty(*shape, dtype=cr.float64), gain=1.5).numpy().reshape(shape[0], -1)
        small = min(q.shape)
        gram = q @ q.T if q.shape[0] <= q.shape[1] else q.T @ q
        np.testing.assert_allclose(gram, 1.5 ** 2 * np.eye(small), atol=1e-10)
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(cr.empty(3))
    with pytest.raises(ValueError, match="Mode"):
        init.kaiming_uniform_(t, mode="fan_avg")


def test_init_on_parameters_records_no_graph_and_is_deterministic():
    lin = nn.Linear(3, 4)
    nn.init.xavier_uniform_(lin.weight)
    assert lin.weight.is_leaf and lin.weight.requires_grad and isinstance(lin.weight, nn.Parameter)
    cr.manual_seed(5)
    a = nn.init.normal_(cr.empty(10)).numpy().copy()
    cr.manual_seed(5)
    b = nn.init.normal_(cr.empty(10)).numpy().copy()
    np.testing.assert_array_equal(a, b)
    g1 = nn.init.kaiming_uniform_(cr.empty(4, 4), generator=cr.Generator(3)).numpy()
    g2 = nn.init.kaiming_uniform_(cr.empty(4, 4), generator=cr.Generator(3)).numpy()
    np.testing.assert_array_equal(g1, g2)


def test_calculate_gain_and_fans_match_torch():
    cases = [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None), ("relu", None),
             ("leaky_relu", None), ("leaky_relu", 0.2), ("leaky_relu", 3), ("selu", None)]
    for name, param in cases:
        assert nn.init.calculate_gain(name, param) == pytest.approx(torch.nn.init.calculate_gain(name, param),
                                                                   rel=1e-15)
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        nn.init.calculate_gain("swish")
    for shape in [(3, 4), (8, 3, 5, 5), (2, 6, 7)]:
        assert nn.init._calculate_fan_in_and_fan_out(cr.empty(*shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))


# ---------------------------------------------------------------------------------------------------
# training sanity: XOR
# ---------------------------------------------------------------------------------------------------
XOR_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_Y = [[0.0], [1.0], [1.0], [0.0]]


def train_xor(model, steps=2000, lr=0.5):
    """Full-batch plain SGD on BCE-with-logits; returns (final loss, accuracy on the 4 points)."""
    x, y = cr.tensor(XOR_X), cr.tensor(XOR_Y)
    for _ in range(steps):
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        model.zero_grad()
        loss.backward()
        with cr.no_grad():
            for p in model.parameters():
                p.data -= lr * p.grad.data
    with cr.no_grad():
        pred = model(x).numpy() > 0
    return loss.item(), float((pred == (y.numpy() > 0.5)).mean())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_is_learned_by_a_hidden_layer(seed):
    cr.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    loss, acc = train_xor(model)
    assert acc == 1.0
    assert loss < 0.05


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_xor_is_not_learned_by_a_single_linear_layer(seed):
    cr.manual_seed(seed)
    loss, acc = train_xor(nn.Linear(2, 1))
    assert acc <= 0.75  # no line separates XOR: at most 3 of the 4 points
    assert loss > 0.69  # the best a linear model can do is predict 1/2 everywhere: log 2 = 0.693


@pytest.mark.parametrize("rows", [1, 32, 48, 49, 128])
@pytest.mark.parametrize("fan_in,fan_out", [(784, 256), (255, 256), (256, 255), (300, 300)])
def test_linear_small_batch_product_rule_matches_float64(rows, fan_in, fan_out):
    # Linear computes x W^T as (W x^T)^T for <= 48 rows and weights of >= 256 x 256 (faster in OpenBLAS):
    # either way the values and gradients are the product's, to float32 rounding.
    rng = np.random.default_rng(rows + fan_in)
    x = rng.standard_normal((rows, fan_in)).astype(np.float32)
    w = rng.standard_normal((fan_out, fan_in)).astype(np.float32)
    b = rng.standard_normal(fan_out).astype(np.float32)
    g = rng.standard_normal((rows, fan_out)).astype(np.float32)
    xt, wt, bt = (cr.tensor(a, requires_grad=True) for a in (x, w, b))
    y = cr.nn.functional.linear(xt, wt, bt)
    assert y.data.flags.c_contiguous and y.dtype == cr.float32
    x64, w64, g64 = x.astype(np.float64), w.astype(np.float64), g.astype(np.float64)
    np.testing.assert_allclose(y.detach().numpy(), x64 @ w64.T + b, rtol=1e-5, atol=1e-4)
    y.backward(cr.tensor(g))
    np.testing.assert_allclose(xt.grad.numpy(), g64 @ w64, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(wt.grad.numpy(), g64.T @ x64, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(bt.grad.numpy(), g64.sum(0), rtol=1e-5, atol=1e-4)
