"""f(x, y) = x^2 - y^2: gradient descent on the ridge y = 0 walks into the saddle and stays there.

A tiny nudge off the ridge grows by (1 + 2 lr) per step, and momentum makes the escape faster.

    python examples/saddle_point.py [--out DIR]     # writes saddle_point.png (needs matplotlib)
"""

import argparse

import chainrule.demos as demos

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", default=".", help="folder for the figure")
args = parser.parse_args()

result = demos.run("saddle-point", out_dir=args.out)
print("stuck at", result["stuck_end"], "| escaped to", [round(v, 2) for v in result["momentum_end"]],
      "| Hessian eigenvalues", result["eigenvalues"], "->", result["kind"])
