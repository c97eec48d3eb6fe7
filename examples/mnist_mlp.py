"""Train a 784-128-10 MLP on MNIST with chainrule.train.fit; draw its first-layer weights and curves.

    python examples/mnist_mlp.py [--fast] [--out DIR]
"""

import argparse

import chainrule.demos as demos

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--out", default=".", help="folder for mnist_first_layer.png and mnist_history.png")
parser.add_argument("--fast", action="store_true", help="20,000 images, one epoch")
args = parser.parse_args()

result = demos.run("mnist-mlp", fast=args.fast, out_dir=args.out)
print(f"test accuracy: {result['test_accuracy']:.2%}")
