"""What the TrainStep tests share: the eager loop body they compare against, and the bit-for-bit comparison."""

from __future__ import annotations

import numpy as np

import chainrule as cr


def eager_step(model, loss_fn, opt, x, y):
    """The plain PyTorch loop body; returns (loss, output)."""
    opt.zero_grad()
    out = model(x)
    loss = loss_fn(out, y)
    loss.backward()
    opt.step()
    return loss, out


def one_step(step, model, loss_fn, opt, x, y):
    """A ``TrainStep`` call, or the eager loop body when ``step`` is None; returns (loss, output)."""
    if step is None:
        return eager_step(model, loss_fn, opt, x, y)
    return step(x, y), step.output


def assert_same_runs(a, b, *, equal_nan: bool = False) -> int:
    """Runs ``a`` and ``b`` (with ``losses``, ``outputs``, ``model``, ``opt``) agree bit for bit: losses, outputs,
    parameters and their gradients, buffers and optimizer state.  Returns how many state arrays were compared."""
    assert len(a.losses) == len(b.losses)
    for i, (la, lb) in enumerate(zip(a.losses, b.losses)):
        assert la.dtype == lb.dtype and np.array_equal(la, lb, equal_nan=equal_nan), f"loss of step {i}: {la} != {lb}"
    for i, (oa, ob) in enumerate(zip(a.outputs, b.outputs, strict=True)):
        assert oa.dtype == ob.dtype and np.array_equal(oa, ob, equal_nan=equal_nan), f"output of step {i}"
    pa, pb = dict(a.model.named_parameters()), dict(b.model.named_parameters())
    assert list(pa) == list(pb)
    for name in pa:
        p, q = pa[name], pb[name]
        assert p.data.dtype == q.data.dtype and np.array_equal(p.data, q.data), name
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None:
            assert np.array_equal(p.grad.data, q.grad.data), f"grad of {name}"
    for (name, u), v in zip(a.model.named_buffers(), b.model.buffers(), strict=True):
        assert np.array_equal(u.data, v.data), name
    qa = [p for group in a.opt.param_groups for p in group["params"]]
    qb = [p for group in b.opt.param_groups for p in group["params"]]
    assert len(qa) == len(qb)
    arrays = 0
    for i, (p, q) in enumerate(zip(qa, qb)):
        sa, sb = a.opt.state.get(p, {}), b.opt.state.get(q, {})
        assert sa.keys() == sb.keys(), i
        for key, va in sa.items():
            vb = sb[key]
            if isinstance(va, (cr.Tensor, np.ndarray)):
                assert type(va) is type(vb) and np.array_equal(getattr(va, "data", va), getattr(vb, "data", vb)), \
                    (i, key)
                arrays += 1
            else:
                assert va == vb, (i, key)
    return arrays
