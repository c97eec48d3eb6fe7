"""chainrule.nn against torch.nn, the way a port from PyTorch meets it: the same model built in both libraries
(torch's weights copied into chainrule's), then names, orders, flags, reprs, errors, values and gradients compared.

Tolerances: float32 values and gradients agree to rtol = atol = 1e-5, float64 to 1e-10; init statistics to 2 %.
"""

import copy
import inspect
import math
import pickle
import warnings
from collections import OrderedDict

import numpy as np
import pytest
import torch

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.autograd import gradcheck, gradgradcheck

tnn, TF = torch.nn, torch.nn.functional
DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=1e-5, atol=1e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}
TDT = {np.float32: torch.float32, np.float64: torch.float64}
LIBS = {"cr": (nn, cr), "torch": (tnn, torch)}


def close(a, b, dtype):
    a = a.detach().numpy() if isinstance(a, (cr.Tensor, torch.Tensor)) else np.asarray(a)
    b = b.detach().numpy() if isinstance(b, (cr.Tensor, torch.Tensor)) else np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    np.testing.assert_allclose(a, b, **TOL[dtype])


def copy_torch_weights(ours, theirs, dtype):
    """Cast both models to ``dtype`` and copy torch's parameters and buffers into chainrule's."""
    ours.to(dtype)
    theirs.to(TDT[dtype])
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()}, strict=True)


def forward_backward(ours, theirs, x, dtype, seed=0):
    """The same input through both models; compare the output, dL/dx and dL/dparam for a random upstream g."""
    copy_torch_weights(ours, theirs, dtype)
    xc = cr.tensor(x.astype(dtype), requires_grad=True)
    xt = torch.tensor(x.astype(dtype), requires_grad=True)
    yc, yt = ours(xc), theirs(xt)
    assert yc.dtype == np.dtype(dtype)
    close(yc, yt, dtype)
    g = np.random.default_rng(seed).standard_normal(tuple(yt.shape)).astype(dtype)
    yc.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    close(xc.grad, xt.grad, dtype)
    theirs_params = dict(theirs.named_parameters())
    assert [n for n, _ in ours.named_parameters()] == list(theirs_params)
    for name, p in ours.named_parameters():
        if theirs_params[name].grad is None:  # not used by forward
            assert p.grad is None, name
        else:
            close(p.grad, theirs_params[name].grad, dtype)


def outcome(fn, *args, **kwargs):
    """What ``fn(*args, **kwargs)`` does: ('ok', result) or ('raises', exception type name)."""
    try:
        return ("ok", fn(*args, **kwargs))
    except Exception as e:  # noqa: BLE001  (the type is what is compared)
        return ("raises", type(e).__name__)


def _block_parts(self, lib, T):
    """A nested model using every container, a shared layer, buffers (one non-persistent) and absent entries."""
    self.register_buffer("scratch", T.zeros(1), persistent=False)
    self.stem = lib.Linear(4, 6)
    self.register_buffer("running", T.ones(6))
    self.scale = lib.Parameter(T.ones(6))
    self.register_parameter("absent", None)
    self.layers = lib.ModuleList([lib.Linear(6, 6), lib.Tanh(), lib.Dropout(0.25)])
    self.heads = lib.ModuleDict({"b": lib.Linear(6, 2), "a": lib.Linear(6, 3)})
    self.tail = lib.Sequential(OrderedDict(fc=lib.Linear(5, 5), act=lib.LeakyReLU(0.2)))
    self.shared = self.layers[0]  # the same Linear under two names


def _block_forward(self, x, T):
    h = self.stem(x) * self.scale + self.running
    for layer in self.layers:
        h = layer(h)
    h = self.shared(h)
    return T.cat([self.heads["a"](h), self.heads["b"](h)], -1)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        _block_parts(self, nn, cr)

    def forward(self, x):
        return _block_forward(self, x, cr)


class TorchBlock(tnn.Module):  # the same model in torch (module level, so that pickle finds both classes)
    def __init__(self):
        super().__init__()
        _block_parts(self, tnn, torch)

    def forward(self, x):
        return _block_forward(self, x, torch)


def build(lib, T):
    return Block() if lib is nn else TorchBlock()


def kind(m):
    """A module's class name, Block for TorchBlock."""
    return type(m).__name__.replace("TorchBlock", "Block")


def same_repr(ours, theirs):
    return repr(ours) == repr(theirs).replace("TorchBlock", "Block")


def pair(fn):
    """The same construction in both libraries: fn(nn_module, tensor_module) for chainrule and torch."""
    return fn(nn, cr), fn(tnn, torch)


# ---------------------------------------------------------------------------------------------------
# nn.Module API
# ---------------------------------------------------------------------------------------------------
def test_names_orders_and_walks_of_a_nested_model_match_torch():
    """named_parameters/buffers/modules/children, state_dict keys, sharing and repr of one nested model."""
    ours, theirs = pair(build)

    def names(it):
        return [n for n, _ in it]

    assert names(ours.named_parameters()) == names(theirs.named_parameters())
    assert len(list(ours.parameters())) == len(list(theirs.parameters())) == 11  # the shared Linear once
    assert names(ours.named_parameters(remove_duplicate=False)) == \
        names(theirs.named_parameters(remove_duplicate=False))
    assert names(ours.named_parameters(prefix="m", recurse=False)) == \
        names(theirs.named_parameters(prefix="m", recurse=False)) == ["m.scale"]
    assert names(ours.named_buffers()) == names(theirs.named_buffers()) == ["scratch", "running"]
    assert list(ours.state_dict()) == list(theirs.state_dict())  # "scratch" is not persistent
    assert "scratch" not in ours.state_dict() and "shared.weight" in ours.state_dict()
    assert names(ours.named_modules()) == names(theirs.named_modules())
    assert names(ours.named_modules(prefix="root", remove_duplicate=False)) == \
        names(theirs.named_modules(prefix="root", remove_duplicate=False))
    assert names(ours.named_children()) == names(theirs.named_children())
    assert [kind(m) for m in ours.children()] == [kind(m) for m in theirs.children()]
    assert [kind(m) for m in ours.modules()] == [kind(m) for m in theirs.modules()]
    assert ours.get_parameter("heads.a.bias") is ours.heads["a"].bias
    assert ours.get_buffer("running") is ours.running and ours.get_submodule("tail.fc") is ours.tail.fc
    assert same_repr(ours, theirs)
    ours.eval(), theirs.eval()
    forward_backward(ours, theirs, np.random.default_rng(0).standard_normal((3, 4)), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_forward_backward_with_torch_weights(dtype):
    """A Sequential MLP with torch's weights copied in: output, dL/dx and every dL/dparam agree."""
    ours, theirs = pair(lambda L, T: L.Sequential(L.Flatten(), L.Linear(12, 16), L.ReLU(), L.Linear(16, 8), L.GELU(),
                                                  L.Dropout(0.3), L.Linear(8, 3), L.LogSoftmax(dim=1)))
    ours.eval(), theirs.eval()
    forward_backward(ours, theirs, np.random.default_rng(1).standard_normal((5, 3, 4)), dtype)


def test_load_state_dict_return_value_and_errors_match_torch():
    """load_state_dict: strict/non-strict results (and their repr), missing/unexpected/mis-shaped keys."""
    ours, theirs = pair(build)
    sd_c = {k: v.clone() for k, v in ours.state_dict().items()}
    sd_t = {k: v.clone() for k, v in theirs.state_dict().items()}
    rc, rt = ours.load_state_dict(sd_c), theirs.load_state_dict(sd_t)
    assert repr(rc) == repr(rt) == "<All keys matched successfully>" and str(rc) == str(rt)
    assert rc.missing_keys == rt.missing_keys == [] and tuple(rc) == tuple(rt)
    partial_c = {"stem.weight": sd_c["stem.weight"], "nope": cr.zeros(1), "scratch": cr.zeros(1)}
    partial_t = {"stem.weight": sd_t["stem.weight"], "nope": torch.zeros(1), "scratch": torch.zeros(1)}
    rc, rt = ours.load_state_dict(partial_c, strict=False), theirs.load_state_dict(partial_t, strict=False)
    assert rc.missing_keys == rt.missing_keys and rc.unexpected_keys == rt.unexpected_keys == ["nope", "scratch"]
    assert repr(rc) == repr(rt)
    for strict in (True, False):
        bad_c, bad_t = dict(sd_c), dict(sd_t)
        bad_c["stem.weight"], bad_t["stem.weight"] = cr.zeros(6, 5), torch.zeros(6, 5)
        with pytest.raises(RuntimeError, match=r"size mismatch for stem.weight: .*\(6, 5\).*\(6, 4\)"):
            ours.load_state_dict(bad_c, strict=strict)
        with pytest.raises(RuntimeError, match="size mismatch for stem.weight"):
            theirs.load_state_dict(bad_t, strict=strict)
    del sd_c["scale"], sd_t["scale"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "scale"'):
        ours.load_state_dict(sd_c)
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "scale"'):
        theirs.load_state_dict(sd_t)
    # a torch module's own parameters (they require grad) load too, as its state_dict does
    lin = nn.Linear(4, 6)
    assert lin.load_state_dict(dict(theirs.stem.named_parameters())).missing_keys == []
    np.testing.assert_array_equal(lin.weight.numpy(force=True), theirs.stem.weight.detach().numpy())


def test_train_eval_apply_zero_grad_and_requires_grad_match_torch():
    """train()/eval() reach every descendant; apply's order; zero_grad both ways; a frozen module."""
    ours, theirs = pair(build)
    for m in (ours, theirs):
        assert m.eval() is m
    assert [m.training for m in ours.modules()] == [m.training for m in theirs.modules()] == [False] * 12
    assert ours.layers.train() is ours.layers and theirs.layers.train() is theirs.layers  # a subtree only
    assert [m.training for m in ours.modules()] == [m.training for m in theirs.modules()]
    assert [m.training for m in ours.modules()].count(True) == 4  # layers and its 3 children
    assert outcome(lambda: ours.train(1)) == outcome(lambda: theirs.train(1)) == ("raises", "ValueError")
    seen_c, seen_t = [], []
    ours.apply(lambda m: seen_c.append(kind(m)))
    theirs.apply(lambda m: seen_t.append(kind(m)))
    assert seen_c == seen_t
    ours.train(), theirs.train()
    copy_torch_weights(ours, theirs, np.float32)
    x = np.random.default_rng(2).standard_normal((2, 4)).astype(np.float32)
    ours.layers[2].p = theirs.layers[2].p = 0.0  # no random masks: the two libraries draw differently
    ours(cr.tensor(x)).sum().backward()
    theirs(torch.tensor(x)).sum().backward()
    ours.zero_grad(set_to_none=False)
    theirs.zero_grad(set_to_none=False)
    assert [p.grad is None for p in ours.parameters()] == [p.grad is None for p in theirs.parameters()]
    assert all(not p.grad.numpy().any() for p in ours.parameters() if p.grad is not None)  # zeroed, kept
    ours.zero_grad(), theirs.zero_grad()
    assert all(p.grad is None for p in ours.parameters()) and all(p.grad is None for p in theirs.parameters())
    assert ours.requires_grad_(False) is ours
    theirs.requires_grad_(False)
    assert [p.requires_grad for p in ours.parameters()] == [p.requires_grad for p in theirs.parameters()]
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours(xc).sum().backward()
    theirs(xt).sum().backward()
    close(xc.grad, xt.grad, np.float32)  # the input still gets its gradient
    assert all(p.grad is None for p in ours.parameters())


def test_registration_rules_match_torch():
    """register_buffer/register_parameter/add_module/setattr/delattr: what is accepted, what raises which type."""
    for lib, T in LIBS.values():
        m = build(lib, T)
        results = [
            outcome(m.register_buffer, "stem", None),                 # name taken
            outcome(m.register_buffer, "b2", 3),                      # not a tensor
            outcome(m.register_parameter, "running", None),
            outcome(m.register_parameter, "w2", T.zeros(1)),          # a tensor, not a Parameter
            outcome(m.add_module, "a.b", lib.ReLU()),
            outcome(m.add_module, "", lib.ReLU()),
            outcome(m.add_module, "forward", lib.ReLU()),
            outcome(m.add_module, "x", 3),
            outcome(setattr, m, "scale", T.ones(6)),                  # a Parameter slot
            outcome(setattr, m, "stem", T.ones(6)),                   # a module slot
            outcome(delattr, m, "nothing"),
            outcome(getattr, m, "nothing"),
        ]
        assert [r[0] for r in results[:11]] == ["raises"] * 11
        if lib is nn:
            ours = results
        else:
            assert [r[1] for r in ours] == [r[1] for r in results]
    names = {}
    for key, (lib, T) in LIBS.items():
        m = build(lib, T)
        m.register_buffer("extra", T.zeros(2), persistent=False)
        m.register_buffer("running", T.zeros(6))       # re-registering an existing buffer is fine
        m.add_module("late", lib.Linear(2, 2))
        m.add_module("gap", None)
        m.new_param = lib.Parameter(T.ones(1))
        m.plain = T.ones(1)                            # a plain tensor attribute is not registered
        del m.heads, m.absent
        m.running = lib.Parameter(T.ones(6))           # a buffer becomes a parameter
        names[key] = ([n for n, _ in m.named_parameters()], list(m.state_dict()), [n for n, _ in m.named_buffers()],
                      [n for n, _ in m.named_children()], repr(m).replace("TorchBlock", "Block"))
    assert names["cr"] == names["torch"]


def test_sequential_indexing_slicing_and_mutation_match_torch():
    """len, iteration, seq[i], seq[-i], seq[a:b] (names kept), del, insert (incl. negative), pop, append, +=."""
    def make(lib):
        return lib.Sequential(lib.Linear(2, 3), lib.ReLU(), lib.Linear(3, 3), lib.Tanh(), lib.Linear(3, 1))

    def layout(seq):
        return [(k, type(v).__name__) for k, v in seq._modules.items()]

    ours, theirs = make(nn), make(tnn)
    assert len(ours) == len(theirs) == 5
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    assert type(ours[-1]).__name__ == "Linear" and ours[-1] is list(ours)[4]
    for sl in (slice(1, 4), slice(None, None, 2), slice(-2, None)):
        assert layout(ours[sl]) == layout(theirs[sl]) and isinstance(ours[sl], nn.Sequential)
    for idx in (5, -6):
        assert outcome(ours.__getitem__, idx) == outcome(theirs.__getitem__, idx) == ("raises", "IndexError")
    for idx in ("a", 1.5):
        assert outcome(ours.__getitem__, idx) == outcome(theirs.__getitem__, idx) == ("raises", "TypeError")
    steps = [
        lambda s, L: s.__delitem__(1),
        lambda s, L: s.insert(-1, L.Sigmoid()),   # before the last module, as list.insert
        lambda s, L: s.insert(0, L.ELU()),
        lambda s, L: s.insert(len(s), L.GELU()),
        lambda s, L: s.append(L.Identity()),
        lambda s, L: s.__setitem__(-2, L.Softplus()),
        lambda s, L: s.__delitem__(slice(1, 3)),
        lambda s, L: s.extend([L.ReLU()]),
    ]
    for step in steps:
        step(ours, nn), step(theirs, tnn)
        assert layout(ours) == layout(theirs)
    assert type(ours.pop(1)).__name__ == type(theirs.pop(1)).__name__ and layout(ours) == layout(theirs)
    alias_c, alias_t = ours, theirs
    ours += nn.Sequential(nn.Tanh())
    theirs += tnn.Sequential(tnn.Tanh())
    assert ours is alias_c and theirs is alias_t and layout(ours) == layout(theirs)  # += extends in place
    assert layout(ours + nn.Sequential(nn.ReLU())) == layout(theirs + tnn.Sequential(tnn.ReLU()))
    named_c = nn.Sequential(OrderedDict(a=nn.Linear(2, 2), b=nn.ReLU(), c=nn.Tanh()))
    named_t = tnn.Sequential(OrderedDict(a=tnn.Linear(2, 2), b=tnn.ReLU(), c=tnn.Tanh()))
    assert layout(named_c[1:]) == layout(named_t[1:]) == [("b", "ReLU"), ("c", "Tanh")]
    del named_c[0], named_t[0]
    named_c.append(nn.ReLU()), named_t.append(tnn.ReLU())
    assert layout(named_c) == layout(named_t)  # torch renumbers after del
    assert outcome(lambda: nn.Sequential(nn.ReLU(), lambda x: x)) == ("raises", "TypeError")


def test_module_list_and_module_dict_operations_match_torch():
    """ModuleList and ModuleDict: indexing, slicing, insert, pop, del, +, update, keys/items, repr."""
    def run(L):
        ml = L.ModuleList([L.Linear(2, 2), L.ReLU(), L.Linear(2, 2)])
        out = [len(ml), type(ml[-1]).__name__, [type(m).__name__ for m in ml[::2]], type(ml[1:]).__name__]
        ml.insert(1, L.Tanh())
        ml.append(L.Sigmoid())
        out.append(type(ml.pop(0)).__name__)
        del ml[-1]
        ml += [L.GELU()]
        out.append([(k, type(v).__name__) for k, v in ml._modules.items()])
        out.append([(k, type(v).__name__) for k, v in (ml + L.ModuleList([L.ELU()]))._modules.items()])
        out.append(repr(ml))
        out.append([outcome(lambda: ml[9])[1], outcome(lambda: ml.append(3))[1]])
        md = L.ModuleDict({"z": L.Linear(2, 1), "a": L.ReLU()})
        md.update([("m", L.Tanh())])
        md["b"] = L.Linear(1, 1)
        out.append((list(md.keys()), [type(v).__name__ for v in md.values()], "a" in md, len(md)))
        out.append(type(md.pop("a")).__name__)
        del md["z"]
        out.append((list(md), [k for k, _ in md.items()], list(md.state_dict()), repr(md)))
        md.clear()
        out.append((len(md), repr(md), bool(L.ModuleList()), bool(L.Sequential())))
        return out

    assert run(nn) == run(tnn)


def test_deepcopy_and_pickle_match_torch():
    """deepcopy and pickle: sharing kept, flags and buffers kept, values equal, and deepcopy drops .grad."""
    ours, theirs = pair(build)
    copy_torch_weights(ours, theirs, np.float32)
    ours.eval(), theirs.eval()
    ours.stem.weight.requires_grad_(False)
    theirs.stem.weight.requires_grad_(False)
    x = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32)
    ours(cr.tensor(x)).sum().backward()
    theirs(torch.tensor(x)).sum().backward()

    def summary(m):
        return (m.shared is m.layers[0], m.shared.weight is m.layers[0].weight, [p.training for p in m.modules()],
                [p.requires_grad for p in m.parameters()], [p.grad is None for p in m.parameters()],
                [n for n, _ in m.named_buffers()], list(m.state_dict()))

    for clone in (copy.deepcopy, lambda m: pickle.loads(pickle.dumps(m))):
        c, t = clone(ours), clone(theirs)
        assert summary(c) == summary(t)
        assert c.stem.weight is not ours.stem.weight and isinstance(c.stem.weight, nn.Parameter)
        close(c(cr.tensor(x)), t(torch.tensor(x)), np.float32)
    assert all(p.grad is None for p in copy.deepcopy(ours).parameters())  # as torch's Parameter.__deepcopy__


# ---------------------------------------------------------------------------------------------------
# layers and activations: forward and backward with torch's weights, edge shapes, defaults, reprs
# ---------------------------------------------------------------------------------------------------
LAYERS = [
    # name, construction (the same calls in both libraries), input shapes: batch of 1, leading dims, 0-size batch
    ("Linear", lambda L: L.Linear(5, 3), [(1, 5), (5,), (2, 3, 5), (0, 5)]),
    ("Linear_nobias", lambda L: L.Linear(5, 3, bias=False), [(1, 5), (2, 1, 4, 5), (0, 5)]),
    ("Linear_0_in", lambda L: L.Linear(0, 3), [(2, 0)]),
    ("Identity", lambda L: L.Identity(7, k=1), [(1, 2), (0, 2)]),
    ("Flatten", lambda L: L.Flatten(), [(1, 2, 3), (2, 3, 2, 2), (0, 2, 3), (4, 5)]),
    ("Flatten_0_-2", lambda L: L.Flatten(0, -2), [(2, 3, 4), (0, 3, 2)]),
    ("Flatten_0d", lambda L: L.Flatten(0), [()]),
    ("Unflatten", lambda L: L.Unflatten(1, (2, -1)), [(1, 6), (0, 6), (3, 6, 2)]),
    ("Unflatten_neg", lambda L: L.Unflatten(-1, [3, 2]), [(2, 6), (6,)]),
    ("Dropout_eval", lambda L: L.Dropout(0.4).eval(), [(1, 3), (0, 3)]),
    ("Dropout_p0", lambda L: L.Dropout(0.0), [(2, 3)]),
    ("Sigmoid", lambda L: L.Sigmoid(), [(1, 4), (0, 4), ()]),
    ("Tanh", lambda L: L.Tanh(), [(1, 4), (0, 4), ()]),
    ("ReLU", lambda L: L.ReLU(), [(1, 4), (0, 4), ()]),
    ("LeakyReLU", lambda L: L.LeakyReLU(), [(1, 4), (0, 4)]),
    ("LeakyReLU_neg", lambda L: L.LeakyReLU(-0.3), [(3, 4)]),
    ("Softplus", lambda L: L.Softplus(beta=2, threshold=1.5), [(1, 4), (0, 4), (2, 2, 3)]),
    ("ELU", lambda L: L.ELU(alpha=0.7), [(1, 4), (0, 4)]),
    ("GELU", lambda L: L.GELU(), [(1, 4), (0, 4)]),
    ("GELU_tanh", lambda L: L.GELU(approximate="tanh"), [(1, 4), (0, 4)]),
    ("Softmax", lambda L: L.Softmax(dim=-1), [(1, 4), (0, 4), (2, 3, 4), (4,)]),
    ("Softmax_0", lambda L: L.Softmax(dim=0), [(1, 4), (3,), ()]),
    ("LogSoftmax", lambda L: L.LogSoftmax(dim=1), [(1, 4), (0, 4), (2, 3, 4)]),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", LAYERS, ids=[c[0] for c in LAYERS])
def test_layers_forward_backward_on_edge_shapes_match_torch(case, dtype):
    """Every layer on batches of 1, extra leading dims, 0-size batches and 0-d inputs: values and gradients."""
    _, make, shapes = case
    for i, shape in enumerate(shapes):
        x = np.random.default_rng(i).standard_normal(shape) * 3
        forward_backward(make(nn), make(tnn), x, dtype, seed=i)


def test_constructor_defaults_attributes_and_extra_repr_match_torch():
    """Default arguments, the attribute names that hold them, extra_repr and repr of every layer."""
    attrs = {
        "Linear": ((3, 2), ["in_features", "out_features"]), "Identity": ((), []),
        "Flatten": ((), ["start_dim", "end_dim"]), "Unflatten": ((1, (2, 5)), ["dim", "unflattened_size"]),
        "Dropout": ((), ["p", "inplace", "training"]), "Sigmoid": ((), []), "Tanh": ((), []),
        "ReLU": ((), ["inplace"]), "LeakyReLU": ((), ["negative_slope", "inplace"]),
        "Softplus": ((), ["beta", "threshold"]), "ELU": ((), ["alpha", "inplace"]), "GELU": ((), ["approximate"]),
        "Softmax": ((), ["dim"]), "LogSoftmax": ((), ["dim"]), "Sequential": ((), []), "ModuleList": ((), []),
        "ModuleDict": ((), []),
    }
    for name, (args, fields) in attrs.items():
        ours, theirs = getattr(nn, name)(*args), getattr(tnn, name)(*args)
        assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields], name
        assert ours.extra_repr() == theirs.extra_repr() and repr(ours) == repr(theirs), name
        sig_c = [(p.name, p.default) for p in inspect.signature(type(ours).__init__).parameters.values()]
        sig_t = [(p.name, p.default) for p in inspect.signature(type(theirs).__init__).parameters.values()]
        assert sig_c == sig_t, name
    assert nn.Linear(3, 2, bias=False).bias is None and tnn.Linear(3, 2, bias=False).bias is None
    others = [(nn.Dropout(p=0.1, inplace=True), tnn.Dropout(p=0.1, inplace=True)),
              (nn.LeakyReLU(0.2, True), tnn.LeakyReLU(0.2, True)), (nn.ELU(2, inplace=True), tnn.ELU(2, inplace=True)),
              (nn.Unflatten(-1, [2, -1]), tnn.Unflatten(-1, [2, -1])), (nn.Flatten(0, 2), tnn.Flatten(0, 2)),
              (nn.Softplus(0.5, 4), tnn.Softplus(0.5, 4)), (nn.Linear(1, 1, bias=False), tnn.Linear(1, 1, bias=False))]
    for ours, theirs in others:
        assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_functional_forms_match_torch(dtype):
    """Every function of chainrule.nn.functional that torch has (losses aside): values and gradients."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((3, 4, 5)) * 3).astype(dtype)
    w, b = rng.standard_normal((2, 5)).astype(dtype), rng.standard_normal(2).astype(dtype)
    cases = [
        (lambda M, t: M.linear(t, _c(M, w), _c(M, b))), (lambda M, t: M.linear(t, _c(M, w))),
        (lambda M, t: M.linear(t[0, 0], _c(M, w), _c(M, b))),
        (lambda M, t: M.relu(t)), (lambda M, t: M.leaky_relu(t)), (lambda M, t: M.leaky_relu(t, 0.3)),
        (lambda M, t: M.sigmoid(t)), (lambda M, t: M.tanh(t)),
        (lambda M, t: M.softplus(t)), (lambda M, t: M.softplus(t, beta=0.5, threshold=2.0)),
        (lambda M, t: M.elu(t)), (lambda M, t: M.elu(t, alpha=1.5)),
        (lambda M, t: M.gelu(t)), (lambda M, t: M.gelu(t, approximate="tanh")),
        (lambda M, t: M.softmax(t, dim=1)), (lambda M, t: M.softmax(t, -1, dtype=_c(M, np.float64))),
        (lambda M, t: M.log_softmax(t, dim=0)), (lambda M, t: M.log_softmax(input=t, dim=2)),
        (lambda M, t: M.dropout(t, 0.5, training=False)), (lambda M, t: M.dropout(input=t, p=0.0)),
        (lambda M, t: M.pad(t, (1, 2))), (lambda M, t: M.pad(t, [0, 1, 2, 0], value=-1.5)),
        (lambda M, t: M.pad(t, (1, 1, 0, 0, 2, 1))),
    ]
    for i, fn in enumerate(cases):
        xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yc, yt = fn(F, xc), fn(TF, xt)
        close(yc, yt, dtype)
        g = np.random.default_rng(i).standard_normal(tuple(yt.shape)).astype(yc.dtype)
        yc.backward(cr.tensor(g))
        yt.backward(torch.tensor(g))
        close(xc.grad, xt.grad, dtype)
    for y in ([[0, 3], [2, 1]], [4], 2):
        close(F.one_hot(cr.tensor(y)), TF.one_hot(torch.tensor(y)), dtype)
        close(F.one_hot(cr.tensor(y), 6), TF.one_hot(torch.tensor(y), 6), dtype)
    empty = np.zeros(0, dtype=np.int64)
    close(F.one_hot(cr.tensor(empty), 3), TF.one_hot(torch.tensor(empty), 3), dtype)
    with pytest.raises(RuntimeError, match="empty"):
        F.one_hot(cr.tensor(empty))  # torch: "Can not infer total number of classes from empty tensor"
    with pytest.raises(RuntimeError):
        TF.one_hot(torch.tensor(empty))


def _c(M, a):
    """``a`` as the library's tensor (or dtype) for module ``M`` (F or torch.nn.functional)."""
    if isinstance(a, type):
        return cr.float64 if M is F else torch.float64
    return cr.tensor(a) if M is F else torch.tensor(a)


@pytest.mark.parametrize("name", ["ReLU", "LeakyReLU", "ELU", "Dropout"])
def test_inplace_flags_write_into_the_input_and_keep_the_gradient_like_torch(name):
    """inplace=True returns the input itself, overwritten, and backward through it gives torch's gradient."""
    args = {"ReLU": (True,), "LeakyReLU": (0.1, True), "ELU": (0.8, True), "Dropout": (0.0, True)}[name]
    x = np.array([-2.0, -0.5, 0.0, 0.5, 3.0])
    results = []
    for L, T in LIBS.values():
        leaf = T.tensor(x, requires_grad=True)
        h = leaf * 3
        y = getattr(L, name)(*args)(h)
        (y * T.tensor(x + 1)).sum().backward()
        results.append((y is h, h.tolist(), leaf.grad.tolist()))
        with pytest.raises(RuntimeError, match="in-place"):
            getattr(L, name)(*args)(T.tensor(x, requires_grad=True)) if name != "Dropout" else \
                L.Dropout(0.5, inplace=True)(T.tensor(x, requires_grad=True))
    assert results[0][0] and results[1][0]
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
    np.testing.assert_allclose(results[0][2], results[1][2], rtol=1e-12)
    if name == "ELU":  # its in-place node reads the output: first and second derivatives still right
        xd = cr.tensor([-2.0, -0.3, 0.4, 1.5], dtype=cr.float64, requires_grad=True)
        fn = lambda t: F.elu(t * 1.5, alpha=0.7, inplace=True) * t  # noqa: E731
        assert gradcheck(fn, (xd,)) and gradgradcheck(fn, (xd,))
    if name == "Dropout":  # and with p > 0 the mask is applied in place
        x32 = cr.ones(1000) * 1.0
        assert nn.Dropout(0.5, inplace=True)(x32) is x32 and 0.4 < float((x32.numpy() == 0).mean()) < 0.6


def test_softmax_without_dim_warns_and_picks_torchs_dim():
    """Softmax/LogSoftmax with dim=None: torch's deprecation warning and its implicit dim, for 0- to 4-d inputs."""
    for shape in [(), (4,), (2, 3), (2, 3, 4), (2, 3, 2, 2)]:
        x = np.random.default_rng(5).standard_normal(shape)
        for ours, theirs in [(nn.Softmax(), tnn.Softmax()), (nn.LogSoftmax(), tnn.LogSoftmax()),
                             (lambda t: F.softmax(t), lambda t: TF.softmax(t))]:
            with pytest.warns(UserWarning, match="Implicit dimension choice"):
                yc = ours(cr.tensor(x))
            with pytest.warns(UserWarning, match="Implicit dimension choice"):
                yt = theirs(torch.tensor(x))
            close(yc, yt, np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.Softmax(dim=1)(cr.ones(2, 3))


WRONG_INPUTS = {
    # construction, input shape, the exception type (both libraries), what chainrule's message must name
    "linear_features": (lambda L: L.Linear(3, 2), (4, 5), RuntimeError, r"\(4, 5\).*in_features 5 and 3"),
    "linear_0d": (lambda L: L.Linear(3, 2), (), RuntimeError, "0-d"),
    "flatten_1d": (lambda L: L.Flatten(), (3,), IndexError, r"dimension 1 .*shape \(3,\)"),
    "flatten_dim": (lambda L: L.Flatten(1, 5), (2, 3, 4), IndexError, r"dimension 5 .*shape \(2, 3, 4\)"),
    "flatten_order": (lambda L: L.Flatten(2, 1), (2, 3, 4), RuntimeError,
                      r"start_dim 2 comes after end_dim 1 .*\(2, 3, 4\)"),
    "unflatten_sizes": (lambda L: L.Unflatten(1, (3, 5)), (2, 10), RuntimeError, r"\(3, 5\).*\(2, 10\)"),
    "unflatten_infer": (lambda L: L.Unflatten(1, (3, -1)), (2, 10), RuntimeError, r"\(3, -1\).*\(2, 10\)"),
    "unflatten_two_-1": (lambda L: L.Unflatten(1, (-1, -1)), (2, 10), RuntimeError, "only one"),
    "unflatten_dim": (lambda L: L.Unflatten(2, (2, 5)), (2, 10), IndexError, r"dimension 2 .*shape \(2, 10\)"),
    "softmax_dim": (lambda L: L.Softmax(dim=2), (2, 3), IndexError, r"dimension 2 .*shape \(2, 3\)"),
    "log_softmax_dim": (lambda L: L.LogSoftmax(dim=-3), (2, 3), IndexError, r"dimension -3 .*shape \(2, 3\)"),
}


@pytest.mark.parametrize("case", WRONG_INPUTS)
def test_wrong_input_shapes_raise_clear_errors_where_torch_raises(case):
    """A wrong input shape raises in both libraries, and chainrule's message names the shapes involved."""
    make, shape, exc, msg = WRONG_INPUTS[case]
    with pytest.raises(exc):
        make(tnn)(torch.ones(shape))
    with pytest.raises(exc, match=msg):
        make(nn)(cr.ones(shape))


def test_wrong_dtypes_and_types_raise_clear_errors():
    """Linear on float64 input with float32 weights, or on a list, raises (torch raises too)."""
    with pytest.raises(RuntimeError):
        tnn.Linear(3, 2)(torch.ones(4, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="float64 differs from weight dtype float32"):
        nn.Linear(3, 2)(cr.ones(4, 3, dtype=cr.float64))
    with pytest.raises(TypeError):
        tnn.Linear(3, 2)([[1.0, 2.0, 3.0]])
    with pytest.raises(TypeError, match="linear: input must be a chainrule Tensor, got list"):
        nn.Linear(3, 2)([[1.0, 2.0, 3.0]])
    with pytest.raises(TypeError, match="tuple or list"):
        nn.Unflatten(1, 6)


def test_softmax_over_an_empty_dim_returns_an_empty_tensor_like_torch():
    """Softmax and LogSoftmax over a dimension of size 0 give an empty result, as torch."""
    assert tnn.Softmax(dim=1)(torch.ones(2, 0)).shape == (2, 0)
    assert nn.Softmax(dim=1)(cr.ones(2, 0)).shape == (2, 0)
    assert nn.LogSoftmax(dim=1)(cr.ones(2, 0)).shape == (2, 0)


@pytest.mark.parametrize("mode,widths", [("reflect", (2, 1)), ("replicate", (1, 2)), ("circular", (1, 1)),
                                         ("constant", (-1, 2)), ("reflect", (1, 2, 2, 1)), ("replicate", (2, 0, 1, 3)),
                                         ("circular", (0, 2, 1, 1)), ("constant", (1, -2, -1, 1))])
def test_pad_modes_and_negative_padding_match_torch(mode, widths):
    """F.pad with reflect/replicate/circular modes and with negative (cropping) widths, as torch: values and
    gradients (every copy of an element adds to its gradient)."""
    x = np.arange(12.0).reshape(1, 3, 4)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    yc, yt = F.pad(xc, widths, mode=mode), TF.pad(xt, widths, mode=mode)
    close(yc, yt, np.float64)
    w = np.random.default_rng(0).standard_normal(tuple(yt.shape))
    (yc * cr.tensor(w)).sum().backward()
    (yt * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(xc.grad.numpy(), xt.grad.numpy(), rtol=1e-12)


# ---------------------------------------------------------------------------------------------------
# nn.init
# ---------------------------------------------------------------------------------------------------
INIT_FUNCS = ["calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_", "eye_",
              "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "orthogonal_"]


def test_init_signatures_gains_and_fans_match_torch():
    """nn.init: the same argument names and defaults, calculate_gain's table and the fan_in/fan_out rule."""
    for name in INIT_FUNCS:
        sig_c = [(p.name, p.default) for p in inspect.signature(getattr(nn.init, name)).parameters.values()]
        sig_t = [(p.name, p.default) for p in inspect.signature(getattr(tnn.init, name)).parameters.values()]
        assert sig_c == sig_t, name
    for nonlinearity, param in [("linear", None), ("conv1d", None), ("conv_transpose3d", None), ("sigmoid", None),
                                ("tanh", None), ("relu", None), ("relu", 3.0), ("leaky_relu", None),
                                ("leaky_relu", 0), ("leaky_relu", 0.2), ("leaky_relu", -1.5), ("selu", None)]:
        assert nn.init.calculate_gain(nonlinearity, param) == tnn.init.calculate_gain(nonlinearity, param)
    for nonlinearity, param in [("leaky_relu", True), ("leaky_relu", "0.1"), ("gelu", None)]:
        assert outcome(nn.init.calculate_gain, nonlinearity, param) == \
            outcome(tnn.init.calculate_gain, nonlinearity, param) == ("raises", "ValueError")
    for shape in [(3, 4), (4, 3, 2), (6, 2, 3, 5), (1, 1)]:
        assert nn.init._calculate_fan_in_and_fan_out(cr.empty(*shape)) == \
            tnn.init._calculate_fan_in_and_fan_out(torch.empty(*shape))
    for shape in [(), (5,)]:
        for fn in ("xavier_uniform_", "kaiming_normal_", "orthogonal_"):
            assert outcome(getattr(nn.init, fn), cr.empty(shape)) == \
                outcome(getattr(tnn.init, fn), torch.empty(shape)) == ("raises", "ValueError")
    assert outcome(nn.init.kaiming_uniform_, cr.empty(3, 3), mode="fan_avg") == \
        outcome(tnn.init.kaiming_uniform_, torch.empty(3, 3), mode="fan_avg") == ("raises", "ValueError")


INIT_CASES = [
    # function, kwargs, the std from torch's formula, the bound (uniform) or None; shape (400, 150, 2): fans 300, 800
    ("uniform_", dict(a=-3.0, b=1.0), 4 / math.sqrt(12), 3.0),
    ("normal_", dict(mean=0.5, std=0.2), 0.2, None),
    ("xavier_uniform_", dict(gain=2.0), 2.0 * math.sqrt(2 / (300 + 800)), 2.0 * math.sqrt(6 / (300 + 800))),
    ("xavier_normal_", dict(gain=0.5), 0.5 * math.sqrt(2 / (300 + 800)), None),
    ("kaiming_uniform_", dict(), math.sqrt(2 / 300), math.sqrt(6 / 300)),  # a = 0: the ReLU gain
    ("kaiming_uniform_", dict(a=math.sqrt(5)), 1 / math.sqrt(300) / math.sqrt(3), 1 / math.sqrt(300)),
    ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 800), math.sqrt(6 / 800)),
    ("kaiming_normal_", dict(a=0.2), math.sqrt(2 / 1.04) / math.sqrt(300), None),
    ("kaiming_normal_", dict(mode="fan_out", nonlinearity="tanh"), 5 / 3 / math.sqrt(800), None),
    ("kaiming_normal_", dict(nonlinearity="selu"), 0.75 / math.sqrt(300), None),
    ("orthogonal_", dict(gain=3.0), 3.0 / math.sqrt(400), None),  # 300 orthonormal columns of length 400
]


@pytest.mark.parametrize("case", INIT_CASES, ids=[f"{c[0]}{c[1]}" for c in INIT_CASES])
def test_init_distributions_follow_torchs_formulas(case):
    """Empirical std (and the uniform bound) of a 120,000-value tensor: within 2 % of torch's formula and its draw."""
    name, kwargs, std, bound = case
    cr.manual_seed(0)
    torch.manual_seed(0)
    ours = getattr(nn.init, name)(cr.empty(400, 150, 2), **kwargs)
    theirs = getattr(tnn.init, name)(torch.empty(400, 150, 2), **kwargs).numpy()
    assert ours.dtype == cr.float32 and ours.shape == (400, 150, 2)
    values = ours.numpy()
    assert abs(values.std() / std - 1) < 0.02 and abs(values.std() / theirs.std() - 1) < 0.02
    if bound is not None:
        lo, hi = (kwargs["a"], kwargs["b"]) if name == "uniform_" else (-bound, bound)
        assert lo <= values.min() < lo + 0.01 * (hi - lo) and hi - 0.01 * (hi - lo) < values.max() <= hi


def test_trunc_normal_matches_torch_even_deep_in_a_tail():
    """trunc_normal_ with absolute bounds [a, b]: mean, std and range as torch's, also for [mean + 5 std, + 6 std]."""
    for mean, std, a, b in [(0.0, 1.0, -2.0, 2.0), (0.0, 0.02, -0.04, 0.04), (1.0, 2.0, 0.0, 10.0),
                            (0.0, 1.0, 5.0, 6.0), (0.0, 1.0, -9.0, -8.0)]:
        cr.manual_seed(1)
        torch.manual_seed(1)
        ours = nn.init.trunc_normal_(cr.empty(30_000, dtype=cr.float64), mean, std, a, b).numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns when the mean is more than 2 std from [a, b]
            theirs = tnn.init.trunc_normal_(torch.empty(30_000), mean, std, a, b).numpy()
        assert a <= ours.min() and ours.max() <= b
        assert abs(ours.mean() - theirs.mean()) < 0.04 * theirs.std() and abs(ours.std() / theirs.std() - 1) < 0.02


def test_linear_default_init_matches_torchs_bounds_and_std():
    """nn.Linear's default weights and bias: U(-1/sqrt(in), 1/sqrt(in)), the std of torch's within 2 %."""
    cr.manual_seed(2)
    torch.manual_seed(2)
    ours, theirs = nn.Linear(500, 4000), tnn.Linear(500, 4000)
    bound = 1 / math.sqrt(500)
    for name in ("weight", "bias"):
        c, t = getattr(ours, name).numpy(force=True), getattr(theirs, name).detach().numpy()
        assert c.shape == t.shape and c.dtype == t.dtype == np.float32
        assert np.abs(c).max() <= bound and abs(c.std() / t.std() - 1) < 0.02
        assert abs(c.std() / (bound / math.sqrt(3)) - 1) < 0.02  # U(-b, b) has std b / sqrt(3)
    assert ours.reset_parameters() is None


# ---------------------------------------------------------------------------------------------------
# losses (tests/test_losses.py checks the functional forms option by option; these are the modules)
# ---------------------------------------------------------------------------------------------------
LOSSES = ["MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss",
          "NLLLoss", "KLDivLoss"]
LOSS_ATTRS = ["reduction", "weight", "pos_weight", "ignore_index", "label_smoothing", "delta", "beta", "log_target"]


def test_loss_constructors_defaults_and_attributes_match_torch():
    """Every loss module: constructor argument names and defaults, the attributes they set, repr, state_dict."""
    for name in LOSSES:
        ours, theirs = getattr(nn, name), getattr(tnn, name)
        sig_c = [(p.name, p.default) for p in inspect.signature(ours.__init__).parameters.values()]
        sig_t = [(p.name, p.default) for p in inspect.signature(theirs.__init__).parameters.values()]
        assert sig_c == sig_t, name
        oc, ot = ours(), theirs()
        assert [getattr(oc, a, "-") for a in LOSS_ATTRS] == [getattr(ot, a, "-") for a in LOSS_ATTRS], name
        assert repr(oc) == repr(ot) and list(oc.state_dict()) == list(ot.state_dict()) == []
        for reduction in ("sum", "none"):
            assert ours(reduction=reduction).reduction == reduction
        bad_c = outcome(lambda o=ours: o(reduction="avg")(cr.ones(2, 2), cr.zeros(2, 2)))
        bad_t = outcome(lambda t=theirs: t(reduction="avg")(torch.ones(2, 2), torch.zeros(2, 2)))
        assert bad_c == bad_t == ("raises", "ValueError")


def _loss_case(name, dtype, rng, n=6, c=4):
    """(constructor kwargs for both libraries, input, target, whether the target is differentiable)."""
    x = (rng.standard_normal((n, c)) * 2).astype(dtype)
    w = rng.uniform(0.5, 2.0, c).astype(dtype)
    if name in ("CrossEntropyLoss", "NLLLoss"):
        t = rng.integers(0, c, n)
        t[0] = 1  # ignored below
        x = x if name == "CrossEntropyLoss" else x - np.log(np.exp(x).sum(1, keepdims=True))
        kw = dict(weight=w, ignore_index=1) | (dict(label_smoothing=0.15) if name == "CrossEntropyLoss" else {})
        return kw, x, t, False
    t = rng.uniform(0, 1, (n, c)).astype(dtype)
    if name == "BCELoss":
        return dict(weight=w), rng.uniform(0.05, 0.95, (n, c)).astype(dtype), t, True
    if name == "BCEWithLogitsLoss":
        return dict(weight=w, pos_weight=w[::-1].copy()), x, t, True
    if name == "KLDivLoss":
        return dict(log_target=True), np.log(rng.dirichlet(np.ones(c), n)).astype(dtype), np.log(t), True
    extra = {"HuberLoss": dict(delta=0.8), "SmoothL1Loss": dict(beta=0.6)}.get(name, {})
    return extra, x, t, True


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,reduction", [(n, r) for n in LOSSES for r in ("mean", "sum", "none", "batchmean")
                                            if r != "batchmean" or n == "KLDivLoss"])
def test_loss_modules_values_and_gradients_match_torch(name, reduction, dtype):
    """Every loss module with non-default options and every reduction: value, input and target gradients."""
    kw, x, t, target_grad = _loss_case(name, dtype, np.random.default_rng(len(name)))
    kc = {k: cr.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    kt = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    ours, theirs = getattr(nn, name)(reduction=reduction, **kc), getattr(tnn, name)(reduction=reduction, **kt)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    tc, tt = cr.tensor(t, requires_grad=target_grad), torch.tensor(t, requires_grad=target_grad)
    yc, yt = ours(xc, tc), theirs(xt, tt)
    close(yc, yt, dtype)
    g = np.random.default_rng(7).standard_normal(tuple(yt.shape)).astype(dtype)
    yc.backward(cr.tensor(g))
    yt.backward(torch.tensor(g))
    close(xc.grad, xt.grad, dtype)
    if target_grad:
        close(tc.grad, tt.grad, dtype)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules_on_an_empty_batch_match_torch(reduction):
    """A 0-size batch: 'mean' is NaN, 'sum' 0, 'none' empty, gradients empty, and no NumPy warnings."""
    for name in LOSSES:
        x = np.zeros((0, 3), dtype=np.float32)
        t = np.zeros(0, dtype=np.int64) if name in ("CrossEntropyLoss", "NLLLoss") else x
        xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            yc = getattr(nn, name)(reduction=reduction)(xc, cr.tensor(t))
            yc.sum().backward()
        yt = getattr(tnn, name)(reduction=reduction)(xt, torch.tensor(t))
        yt.sum().backward()
        np.testing.assert_array_equal(yc.numpy(force=True), yt.detach().numpy(), err_msg=name)
        assert xc.grad.shape == tuple(xt.grad.shape) == (0, 3)


def test_loss_deprecation_warnings_match_torch():
    """The legacy size_average/reduce flags and KLDivLoss(reduction='mean') warn as torch does."""
    for lib in (nn, tnn):
        with pytest.warns(UserWarning, match="size_average and reduce args will be deprecated.*'sum'"):
            assert lib.MSELoss(size_average=False).reduction == "sum"
        with pytest.warns(UserWarning, match="reduction='none'"):
            assert lib.CrossEntropyLoss(reduce=False).reduction == "none"
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        nn.KLDivLoss()(cr.zeros(2, 2), cr.ones(2, 2))
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        tnn.KLDivLoss()(torch.zeros(2, 2), torch.ones(2, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.KLDivLoss(reduction="batchmean")(cr.zeros(2, 2), cr.ones(2, 2))
        nn.MSELoss(reduction="sum")(cr.zeros(2), cr.ones(2))
