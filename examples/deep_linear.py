"""The gradients of a two-layer linear network y = B A x, by hand and by autograd.

L = 1/2 sum_i ||y_i - B A x_i||^2, S_xx = sum_i x_i x_i^T, S_yx = sum_i y_i x_i^T:
    dL/dA = -B^T (S_yx - B A S_xx),    dL/dB = -(S_yx - B A S_xx) A^T

    python examples/deep_linear.py
"""

import numpy as np

import chainrule as cr
from chainrule.demos import deep_linear_gradients

rng = np.random.default_rng(0)
X, Y = rng.standard_normal((100, 5)), rng.standard_normal((100, 3))      # rows are samples
A = cr.tensor(rng.standard_normal((2, 5)), requires_grad=True)          # float64
B = cr.tensor(rng.standard_normal((3, 2)), requires_grad=True)

R = cr.tensor(Y) - cr.tensor(X) @ A.T @ B.T                              # rows (y_i - B A x_i)^T
(0.5 * (R * R).sum()).backward()

dA, dB = deep_linear_gradients(X, Y, A.detach().numpy(), B.detach().numpy())
print("max |autograd - closed form|:", np.abs(A.grad.numpy() - dA).max(), np.abs(B.grad.numpy() - dB).max())
