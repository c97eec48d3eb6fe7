"""The table of differentiable ops: one line per op drives every gradient test in test_ops.py.

Each entry: (name, chainrule function, torch function or None, list of input-shape tuples, domain).
The functions take the same positional tensors; the domain says how inputs are drawn:
'any' (standard normal), 'pos' (in [0.5, 2]), 'unit' (in (-0.9, 0.9)), 'distinct' (well separated,
so max/min/sort have no near-ties that would break finite differences), 'zeros' (standard normal with
some entries exactly 0, for ops such as cumprod whose gradient needs care there).

Adding an op to chainrule = adding one line here.
"""

import numpy as np

import chainrule as cr

try:
    import torch
except ImportError:  # parity tests skip; gradchecks still run
    torch = None

T = torch  # short alias in lambdas


def _t(name):
    return (lambda *a, **k: getattr(torch, name)(*a, **k)) if torch else None


S = [(), (3,), (2, 3)]  # shapes for elementwise ops: 0-d, vector, matrix
B = [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3)), ((), (2, 3)), ((4,), ())]  # binary, broadcasting

OPS = [
    # arithmetic, with broadcasting
    ("add", lambda a, b: a + b, lambda a, b: a + b, B, "any"),
    ("sub", lambda a, b: a - b, lambda a, b: a - b, B, "any"),
    ("mul", lambda a, b: a * b, lambda a, b: a * b, B, "any"),
    ("div", lambda a, b: a / b, lambda a, b: a / b, B, "pos"),
    ("pow", lambda a, b: a ** b, lambda a, b: a ** b, B, "pos"),
    ("add_scalar", lambda a: a + 2.5, lambda a: a + 2.5, [(s,) for s in S], "any"),
    ("radd_scalar", lambda a: 2.5 + a, lambda a: 2.5 + a, [(s,) for s in S], "any"),
    ("sub_scalar", lambda a: a - 1.5, lambda a: a - 1.5, [(s,) for s in S], "any"),
    ("rsub_scalar", lambda a: 1.5 - a, lambda a: 1.5 - a, [(s,) for s in S], "any"),
    ("mul_scalar", lambda a: a * -3.0, lambda a: a * -3.0, [(s,) for s in S], "any"),
    ("div_scalar", lambda a: a / 4.0, lambda a: a / 4.0, [(s,) for s in S], "any"),
    ("rdiv_scalar", lambda a: 2.0 / a, lambda a: 2.0 / a, [(s,) for s in S], "pos"),
    ("pow_scalar", lambda a: a ** 3, lambda a: a ** 3, [(s,) for s in S], "any"),
    ("pow_half", lambda a: a ** 0.5, lambda a: a ** 0.5, [(s,) for s in S], "pos"),
    ("square", lambda a: a ** 2, lambda a: a ** 2, [(s,) for s in S], "any"),
    ("rpow_scalar", lambda a: 2.0 ** a, lambda a: 2.0 ** a, [(s,) for s in S], "any"),
    ("neg", lambda a: -a, lambda a: -a, [(s,) for s in S], "any"),
    ("remainder", lambda a, b: a % b, lambda a, b: a % b, B, "pos"),
    ("fmod", lambda a, b: a.fmod(b), lambda a, b: a.fmod(b), B, "pos"),
    ("nan_to_num", lambda a: a.nan_to_num(), lambda a: a.nan_to_num(), [(s,) for s in S], "any"),
    ("abs", cr.abs, _t("abs"), [(s,) for s in S], "any"),
    ("exp", cr.exp, _t("exp"), [(s,) for s in S], "any"),
    ("log", cr.log, _t("log"), [(s,) for s in S], "pos"),
    ("log1p", cr.log1p, _t("log1p"), [(s,) for s in S], "pos"),
    ("sqrt", cr.sqrt, _t("sqrt"), [(s,) for s in S], "pos"),
    ("sin", cr.sin, _t("sin"), [(s,) for s in S], "any"),
    ("cos", cr.cos, _t("cos"), [(s,) for s in S], "any"),
    ("tan", cr.tan, _t("tan"), [(s,) for s in S], "unit"),
    ("atan", cr.atan, _t("atan"), [(s,) for s in S], "any"),
    ("erf", cr.erf, _t("erf"), [(s,) for s in S], "any"),
    ("maximum", cr.maximum, _t("maximum"), B, "distinct"),
    ("minimum", cr.minimum, _t("minimum"), B, "distinct"),
    ("clamp", lambda a: cr.clamp(a, -0.5, 0.7), lambda a: torch.clamp(a, -0.5, 0.7), [(s,) for s in S], "distinct"),
    ("clamp_min", lambda a: a.clamp(min=0.1), lambda a: a.clamp(min=0.1), [((5,),)], "distinct"),
    ("where", lambda a, b: cr.where(a > 0, a, b), lambda a, b: torch.where(a > 0, a, b), B[:3], "any"),
    ("matmul_2d", cr.matmul, _t("matmul"), [((2, 3), (3, 4))], "any"),
    ("matmul_1d_1d", cr.matmul, _t("matmul"), [((3,), (3,))], "any"),
    ("matmul_1d_2d", cr.matmul, _t("matmul"), [((3,), (3, 4))], "any"),
    ("matmul_2d_1d", cr.matmul, _t("matmul"), [((2, 3), (3,))], "any"),
    ("matmul_batched", cr.matmul, _t("matmul"), [((2, 2, 3), (2, 3, 4)), ((2, 2, 3), (3, 4)),
                                                 ((3,), (2, 3, 4)), ((2, 2, 3), (3,))], "any"),
    ("einsum_mm", lambda a, b: cr.einsum("ij,jk->ik", a, b), lambda a, b: torch.einsum("ij,jk->ik", a, b),
     [((2, 3), (3, 4))], "any"),
    ("einsum_ellipsis", lambda a, b: cr.einsum("...ij,...jk->...ik", a, b),
     lambda a, b: torch.einsum("...ij,...jk->...ik", a, b), [((2, 2, 3), (3, 4)), ((2, 3), (2, 3, 2))], "any"),
    ("einsum_implicit", lambda a, b: cr.einsum("ij,kj", a, b), lambda a, b: torch.einsum("ij,kj", a, b),
     [((2, 3), (4, 3))], "any"),
    ("einsum_diag_sum", lambda a, b: cr.einsum("iij,jk->k", a, b), lambda a, b: torch.einsum("iij,jk->k", a, b),
     [((3, 3, 2), (2, 4))], "any"),
    ("einsum_bcast", lambda a, b: cr.einsum("ij,ij->i", a, b), lambda a, b: torch.einsum("ij,ij->i", a, b),
     [((2, 1), (2, 3))], "any"),
    ("linear", lambda x, w, b: cr.autograd.ops.linear(x, w, b),
     lambda x, w, b: torch.nn.functional.linear(x, w, b), [((4, 3), (2, 3), (2,)), ((2, 4, 3), (2, 3), (2,))], "any"),
    # reductions
    ("sum", lambda a: a.sum(), lambda a: a.sum(), [(s,) for s in S], "any"),
    ("sum_dim", lambda a: a.sum(dim=1), lambda a: a.sum(dim=1), [((2, 3),), ((2, 3, 4),)], "any"),
    ("sum_dims_keep", lambda a: a.sum(dim=(0, 2), keepdim=True), lambda a: a.sum(dim=(0, 2), keepdim=True),
     [((2, 3, 4),)], "any"),
    ("mean", lambda a: a.mean(), lambda a: a.mean(), [(s,) for s in S], "any"),
    ("mean_dim", lambda a: a.mean(dim=-1, keepdim=True), lambda a: a.mean(dim=-1, keepdim=True),
     [((2, 3),)], "any"),
    ("var", lambda a: a.var(), lambda a: a.var(), [((5,),), ((2, 3),)], "any"),
    ("var_dim", lambda a: a.var(dim=0, unbiased=False), lambda a: a.var(dim=0, unbiased=False),
     [((4, 3),)], "any"),
    ("std", lambda a: a.std(dim=1), lambda a: a.std(dim=1), [((2, 5),)], "any"),
    ("max_all", lambda a: a.max(), lambda a: a.max(), [((2, 3),)], "distinct"),
    ("max_dim", lambda a: a.max(dim=1)[0], lambda a: a.max(dim=1)[0], [((2, 3),), ((2, 3, 4),)], "distinct"),
    ("min_dim_keep", lambda a: a.min(dim=0, keepdim=True).values, lambda a: a.min(dim=0, keepdim=True).values,
     [((3, 2),)], "distinct"),
    ("amax", lambda a: a.amax(dim=(0, 1)), lambda a: a.amax(dim=(0, 1)), [((2, 3, 2),)], "distinct"),
    ("amin", lambda a: a.amin(dim=-1), lambda a: a.amin(dim=-1), [((2, 3),)], "distinct"),
    ("logsumexp", lambda a: a.logsumexp(dim=1), lambda a: a.logsumexp(dim=1), [((2, 3),), ((2, 3, 2),)], "any"),
    ("prod", lambda a: a.prod(), lambda a: a.prod(), [((4,),), ((2, 3),)], "any"),
    ("prod_dim", lambda a: a.prod(dim=1), lambda a: a.prod(dim=1), [((2, 3),)], "any"),
    ("norm", lambda a: a.norm(), lambda a: a.norm(), [((3,),), ((2, 3),)], "any"),
    ("norm_dim", lambda a: a.norm(dim=1), lambda a: a.norm(dim=1), [((2, 3),)], "any"),
    ("norm_p1", lambda a: a.norm(p=1), lambda a: a.norm(p=1), [((4,),)], "any"),
    ("norm_p3", lambda a: a.norm(p=3, dim=0), lambda a: a.norm(p=3, dim=0), [((4, 2),)], "any"),
    ("cumsum", lambda a: a.cumsum(dim=1), lambda a: a.cumsum(dim=1), [((2, 4),)], "any"),
    ("cumprod", lambda a: a.cumprod(dim=1), lambda a: a.cumprod(dim=1), [((2, 4),), ((2, 3, 2),)], "any"),
    ("cumprod_zeros", lambda a: cr.cumprod(a, 0), lambda a: torch.cumprod(a, 0), [((4, 3),), ((5,),)], "zeros"),
    ("median_all", lambda a: a.median(), lambda a: a.median(), [((5,),), ((2, 3),)], "distinct"),
    ("median_dim", lambda a: a.median(dim=1)[0], lambda a: a.median(dim=1)[0], [((2, 4),), ((2, 3, 2),)],
     "distinct"),
    ("median_dim_keep", lambda a: a.median(dim=0, keepdim=True).values,
     lambda a: a.median(dim=0, keepdim=True).values, [((5, 2),)], "distinct"),
    ("kthvalue", lambda a: a.kthvalue(3).values, lambda a: a.kthvalue(3).values, [((2, 4),), ((4,),)], "distinct"),
    ("kthvalue_dim_keep", lambda a: cr.kthvalue(a, 2, dim=0, keepdim=True)[0],
     lambda a: torch.kthvalue(a, 2, dim=0, keepdim=True)[0], [((3, 2),)], "distinct"),
    # shape and indexing
    ("reshape", lambda a: a.reshape(3, 2), lambda a: a.reshape(3, 2), [((2, 3),)], "any"),
    ("view_infer", lambda a: a.view(-1), lambda a: a.view(-1), [((2, 3),)], "any"),
    ("flatten", lambda a: a.flatten(1), lambda a: a.flatten(1), [((2, 3, 2),)], "any"),
    ("transpose", lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [((2, 3, 4),)], "any"),
    ("permute", lambda a: a.permute(2, 0, 1), lambda a: a.permute(2, 0, 1), [((2, 3, 4),)], "any"),
    ("T", lambda a: a.T, lambda a: a.T, [((2, 3),)], "any"),
    ("squeeze", lambda a: a.squeeze(1), lambda a: a.squeeze(1), [((2, 1, 3),)], "any"),
    ("unsqueeze", lambda a: a.unsqueeze(-1), lambda a: a.unsqueeze(-1), [((2, 3),)], "any"),
    ("expand", lambda a: a.expand(4, 3), lambda a: a.expand(4, 3), [((1, 3),)], "any"),
    ("broadcast_to", lambda a: cr.broadcast_to(a, (2, 4, 3)), lambda a: torch.broadcast_to(a, (2, 4, 3)),
     [((4, 1),)], "any"),
    ("getitem_int", lambda a: a[1], lambda a: a[1], [((3, 2),)], "any"),
    ("getitem_slice", lambda a: a[:, 1:3], lambda a: a[:, 1:3], [((2, 4),)], "any"),
    ("getitem_none_ellipsis", lambda a: a[None, ..., 0], lambda a: a[None, ..., 0], [((2, 3),)], "any"),
    ("getitem_intarray_repeat", lambda a: a[np.array([0, 2, 0, 0])], lambda a: a[torch.tensor([0, 2, 0, 0])],
     [((3, 2),)], "any"),
    ("getitem_pairs", lambda a: a[np.array([0, 1, 1]), np.array([2, 0, 2])],
     lambda a: a[torch.tensor([0, 1, 1]), torch.tensor([2, 0, 2])], [((2, 3),)], "any"),
    ("getitem_mask", lambda a: a[a > 0], lambda a: a[a > 0], [((3, 4),)], "any"),
    ("cat", lambda a, b: cr.cat([a, b], dim=1), lambda a, b: torch.cat([a, b], dim=1), [((2, 3), (2, 2))], "any"),
    ("stack", lambda a, b: cr.stack([a, b], dim=1), lambda a, b: torch.stack([a, b], dim=1),
     [((2, 3), (2, 3))], "any"),
    ("split", lambda a: a.split(2, dim=1)[1] * 2.0, lambda a: a.split(2, dim=1)[1] * 2.0, [((2, 5),)], "any"),
    ("chunk", lambda a: a.chunk(3, dim=0)[2], lambda a: a.chunk(3, dim=0)[2], [((6, 2),)], "any"),
    ("pad", lambda a: cr.pad(a, (1, 2, 0, 1), value=0.5),
     lambda a: torch.nn.functional.pad(a, (1, 2, 0, 1), value=0.5), [((2, 3),)], "any"),
    ("pad_crop", lambda a: cr.pad(a, (-1, 2, 1, -1)),
     lambda a: torch.nn.functional.pad(a, (-1, 2, 1, -1)), [((3, 4),)], "any"),
    ("pad_reflect", lambda a: cr.pad(a, (2, 1, 1, 1), mode="reflect"),
     lambda a: torch.nn.functional.pad(a, (2, 1, 1, 1), mode="reflect"), [((1, 3, 4),)], "any"),
    ("pad_replicate", lambda a: cr.pad(a, (1, 2), mode="replicate"),
     lambda a: torch.nn.functional.pad(a, (1, 2), mode="replicate"), [((2, 3),)], "any"),
    ("pad_circular", lambda a: cr.pad(a, (2, 1), mode="circular"),
     lambda a: torch.nn.functional.pad(a, (2, 1), mode="circular"), [((1, 2, 3),)], "any"),
    ("gather", lambda a: cr.gather(a, 1, cr.tensor([[0, 0], [2, 1]])),
     lambda a: torch.gather(a, 1, torch.tensor([[0, 0], [2, 1]])), [((2, 3),)], "any"),
    ("flip", lambda a: a.flip(0), lambda a: a.flip(0), [((3, 2),)], "any"),
    # activations
    ("sigmoid", cr.sigmoid, _t("sigmoid"), [(s,) for s in S], "any"),
    ("tanh", cr.tanh, _t("tanh"), [(s,) for s in S], "any"),
    ("relu", cr.relu, _t("relu"), [(s,) for s in S], "distinct"),
    ("leaky_relu", lambda a: cr.leaky_relu(a, 0.1), lambda a: torch.nn.functional.leaky_relu(a, 0.1),
     [(s,) for s in S], "distinct"),
    ("softplus", cr.softplus, lambda a: torch.nn.functional.softplus(a), [(s,) for s in S], "any"),
    ("softplus_beta", lambda a: cr.softplus(a, beta=2.0, threshold=1.0),
     lambda a: torch.nn.functional.softplus(a, beta=2.0, threshold=1.0), [((6,),)], "distinct"),
    ("elu", cr.elu, lambda a: torch.nn.functional.elu(a), [(s,) for s in S], "distinct"),
    ("gelu", cr.gelu, lambda a: torch.nn.functional.gelu(a), [(s,) for s in S], "any"),
    ("gelu_tanh", lambda a: cr.gelu(a, approximate="tanh"),
     lambda a: torch.nn.functional.gelu(a, approximate="tanh"), [(s,) for s in S], "any"),
    ("softmax", lambda a: cr.softmax(a, dim=-1), lambda a: torch.softmax(a, dim=-1), [((3,),), ((2, 3),)], "any"),
    ("softmax_dim0", lambda a: cr.softmax(a, dim=0), lambda a: torch.softmax(a, dim=0), [((2, 3),)], "any"),
    ("log_softmax", lambda a: cr.log_softmax(a, dim=1), lambda a: torch.log_softmax(a, dim=1),
     [((2, 3),), ((2, 3, 2),)], "any"),
    # composites (a graph with fan-out)
    ("fanout", lambda a: a * a.sin() + a.exp() * a, lambda a: a * a.sin() + a.exp() * a, [((3,),)], "any"),
]


def make_inputs(shapes, domain, rng):
    arrays = []
    for shape in shapes:
        if domain == "pos":
            a = rng.uniform(0.5, 2.0, shape)
        elif domain == "unit":
            a = rng.uniform(-0.9, 0.9, shape)
        elif domain == "distinct":
            n = int(np.prod(shape)) if shape else 1
            a = (rng.permutation(n) - n / 2 + rng.uniform(0.1, 0.3, n)).reshape(shape) * 0.37 + 0.013
        elif domain == "zeros":  # standard normal with exact zeros (several on some lines)
            i = np.arange(int(np.prod(shape)) if shape else 1)
            a = np.where((i % 4 == 1) | (i % 7 == 3), 0.0, rng.standard_normal(i.size)).reshape(shape)
        else:
            a = rng.standard_normal(shape)
        arrays.append(np.asarray(a, dtype=np.float64))
    if domain == "distinct" and len(arrays) == 2:  # keep a and b apart elementwise too
        arrays[1] = arrays[1] + 0.05
    return arrays
