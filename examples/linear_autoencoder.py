"""A linear autoencoder x -> C x -> D C x trained by plain gradient descent reaches the SVD optimum.

By the Eckart-Young theorem no rank-m map beats the truncated SVD, so the smallest possible loss is
1/(2n) * (sum of the squared singular values left out).  Gradient descent gets there.

    python examples/linear_autoencoder.py [--fast]
"""

import argparse

import numpy as np

from chainrule.demos import eckart_young_loss, linear_autoencoder, mnist_subset

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--fast", action="store_true", help="500 digits at 14 x 14 pixels, 120 steps")
args = parser.parse_args()

if args.fast:
    X, labels = mnist_subset(500, downsample=2)     # 500 digits as 196-vectors in [0, 1]
else:
    X, labels = mnist_subset(1000)                  # 1000 digits as 784-vectors in [0, 1]
X = X - X.mean(axis=0)                     # centre: then the SVD gives the principal components
m = 10


def report(step, loss):
    if step % 50 == 0:
        print(f"step {step:3d}: L = {loss:.4f}")


optimum = eckart_young_loss(X, m)
result = linear_autoencoder(X, m, steps=120 if args.fast else 200, callback=report)
print(f"gradient descent: {result['losses'][-1]:.4f}   Eckart-Young optimum: {optimum:.4f}")

# D C approaches the orthogonal projector onto the top-m principal subspace
U = np.linalg.svd(X.T, full_matrices=False)[0][:, :m]
print("||DC - U U^T||_F =", round(float(np.linalg.norm(result["D"] @ result["C"] - U @ U.T)), 3))
