"""XOR: a linear classifier gets at most 3 of the 4 points; one hidden layer gets all 4.

    python examples/xor.py [--fast] [--out DIR]     # writes xor_boundary.png (needs matplotlib)
"""

import argparse

import chainrule.demos as demos

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", default=".", help="folder for the figure")
parser.add_argument("--fast", action="store_true", help="fewer training steps")
args = parser.parse_args()

result = demos.run("xor", fast=args.fast, out_dir=args.out)
print(f"linear model: {result['linear_best_accuracy']:.0%} at best; "
      f"one hidden layer: {result['hidden_accuracy']:.0%}")
