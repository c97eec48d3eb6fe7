"""Gradient descent on the lectures' 3-variable quadratic, then the second-derivative test.

f(x) = x1^2 + x1 (1 - x2) + x2^2 - x2 x3 + x3^2 + x3 has its minimum at (-1, -1, -1), where f = -1.

    python examples/gradient_descent.py
"""

import numpy as np

from chainrule.demos import gradient_descent, lecture_quadratic
from chainrule.func import classify_critical_point, hessian

result = gradient_descent(lecture_quadratic, x0=[0.0, 0.0, 0.0], lr=0.1, eps_f=1e-10, eps_grad=1e-6)
print(f"after {result['steps']} steps ({result['reason']}): x = {np.round(result['x'], 4)}, "
      f"f = {result['f']:.6f}")

H = hessian(lecture_quadratic, result["x"])     # [[2, -1, 0], [-1, 2, -1], [0, -1, 2]]
print(H)
kind = classify_critical_point(H)
print(f"eigenvalues {np.round(kind.eigenvalues, 3)} -> {kind}")   # 0.586, 2, 3.414 -> minimum
