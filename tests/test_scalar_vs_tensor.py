"""The scalar engine's MLP and the tensor MLP compute the same numbers on the same weights."""

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.scalar import MLP


@pytest.mark.parametrize("nonlin,act", [("tanh", nn.Tanh), ("relu", nn.ReLU), ("sigmoid", nn.Sigmoid)])
def test_value_mlp_matches_tensor_mlp_outputs_and_gradients(nonlin, act):
    vmlp = MLP(3, [4, 4, 1], nonlin=nonlin, rng=0)
    tmlp = nn.Sequential(nn.Linear(3, 4), act(), nn.Linear(4, 4), act(), nn.Linear(4, 1)).double()
    weights = vmlp.export_weights()  # [(W (out, in), b (out,)), ...] in torch's layout
    linears = [m for m in tmlp if isinstance(m, nn.Linear)]
    with cr.no_grad():
        for lin, (W, b) in zip(linears, weights):
            lin.weight.copy_(cr.tensor(np.asarray(W, dtype=np.float64)))
            lin.bias.copy_(cr.tensor(np.asarray(b, dtype=np.float64)))

    xs = np.random.default_rng(0).uniform(-1, 1, (5, 3))
    ys = np.random.default_rng(1).uniform(-1, 1, 5)
    # MSE over the 5 points, on both engines
    vloss = sum(((vmlp(list(x)) - y) ** 2 for x, y in zip(xs, ys)), start=0.0) * (1 / 5)
    vmlp.zero_grad()
    vloss.backward()
    tout = tmlp(cr.tensor(xs, dtype=cr.float64))
    tloss = ((tout.reshape(-1) - cr.tensor(ys, dtype=cr.float64)) ** 2).mean()
    tloss.backward()

    assert abs(vloss.data - tloss.item()) < 1e-12
    for x in xs[:2]:
        assert abs(vmlp(list(x)).data - tmlp(cr.tensor(x, dtype=cr.float64)).item()) < 1e-12
    for layer, lin in zip(vmlp.layers, linears):
        gW = np.array([[w.grad for w in n.w] for n in layer.neurons])
        gb = np.array([n.b.grad for n in layer.neurons])
        np.testing.assert_allclose(gW, lin.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gb, lin.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
