"""Is this critical point a minimum?  Gradient and Hessian by automatic differentiation, checked by hand.

The lectures' recipe for minimising f(x1, x2, x3) = x1^2 + x1 (1 - x2) + x2^2 - x2 x3 + x3^2 + x3:
  1. solve grad f = 0      -> x* = (-1, -1, -1)
  2. compute the Hessian   -> H = [[2, -1, 0], [-1, 2, -1], [0, -1, 2]]
  3. eigenvalues of H all positive (2 + sqrt 2, 2, 2 - sqrt 2)  ->  x* is a minimum, f(x*) = -1.
Here autograd does steps 1-3: backward once for the gradient (keeping its graph, create_graph=True),
then backward through the gradient once per coordinate for the rows of the Hessian.

    python examples/hessian_check.py
"""

import numpy as np

import chainrule as cr
from chainrule.func import classify_critical_point, hessian


def f(x):
    x1, x2, x3 = x[0], x[1], x[2]
    return x1**2 + x1 * (1 - x2) + x2**2 - x2 * x3 + x3**2 + x3


# step 1: the gradient is linear here, grad f = H x + b, so one solve finds the critical point
x0 = cr.zeros(3, dtype=cr.float64, requires_grad=True)
(b,) = cr.autograd.grad(f(x0), x0)                       # grad f(0) = b = (1, 0, 1)
print("grad f(0, 0, 0) =", b.tolist())

# step 2: the Hessian, row by row: H[i] = d(grad_i f)/dx (second backward pass through the first)
x = cr.tensor([-1.0, -1.0, -1.0], dtype=cr.float64, requires_grad=True)
(g,) = cr.autograd.grad(f(x), x, create_graph=True)      # g is itself differentiable
print("grad f(-1, -1, -1) =", g.tolist(), "(a critical point)")
H = np.stack([cr.autograd.grad(g[i], x, retain_graph=True)[0].numpy() for i in range(3)])
print("Hessian:\n", H)

x_star = np.linalg.solve(H, -b.numpy())                  # H x + b = 0
print("solve H x = -b:", x_star, " f(x*) =", f(cr.tensor(x_star)).item())

# step 3: the second-derivative test
eig = np.linalg.eigvalsh(H)
print("eigenvalues:", eig.round(3), "(expected", np.round([2 - 2**0.5, 2, 2 + 2**0.5], 3), ")")
print("all positive -> minimum" if np.all(eig > 0) else "not a minimum")

# the same in one call each, with chainrule.func
print(classify_critical_point(hessian(f, x_star)))       # minimum
