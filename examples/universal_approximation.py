"""Universal approximation in practice: one hidden tanh layer fits sin(x) better as it widens.

    python examples/universal_approximation.py [--fast] [--out DIR]
"""

import argparse
import math

import chainrule.demos as demos

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", default=".", help="folder for universal_approximation.png")
parser.add_argument("--fast", action="store_true", help="fewer widths and steps")
args = parser.parse_args()

result = demos.run("universal-approximation", fast=args.fast, out_dir=args.out)
for width, error in zip(result["widths"], result["errors"], strict=True):
    bar = "#" * max(1, round(-3 * math.log10(error)))      # longer bar = smaller error
    print(f"width {width:3d}: {error:.1e}  {bar}")
