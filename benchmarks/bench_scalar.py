"""Benchmark: chainrule.scalar against a plain micrograd-style closure engine.

Workload (identical for both engines): a 2-16-16-1 tanh MLP (linear output), 100
training points, one epoch of per-sample SGD.  For each point: zero the gradients,
forward, squared-error loss, backward, update every parameter.  Both models start
from the same weights and see the same data; the benchmark checks that they reach
the same summed loss and the same final weights before timing anything.

Run:  python benchmarks/bench_scalar.py          (prints median/min/max and the ratio)
Use:  from bench_scalar import run; run(reps=5)  (returns the medians as a dict)
"""

from __future__ import annotations

import gc
import math
import os
import random
import statistics
import sys
import time

try:
    import chainrule.scalar as cs
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
    import chainrule.scalar as cs


# ----------------------------------------------------------------------------------
# The competitor: micrograd (github.com/karpathy/micrograd), engine.py + nn.py, with
# the tanh gate from the "spelled-out intro" lecture.  One closure per node.
# ----------------------------------------------------------------------------------


class MgValue:
    """stores a single scalar value and its gradient"""

    def __init__(self, data, _children=(), _op=""):
        self.data = data
        self.grad = 0
        # internal variables used for autograd graph construction
        self._backward = lambda: None
        self._prev = set(_children)
        self._op = _op  # the op that produced this node, for graphviz / debugging / etc

    def __add__(self, other):
        other = other if isinstance(other, MgValue) else MgValue(other)
        out = MgValue(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, MgValue) else MgValue(other)
        out = MgValue(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, other):
        assert isinstance(other, (int, float)), "only supporting int/float powers for now"
        out = MgValue(self.data**other, (self,), f"**{other}")

        def _backward():
            self.grad += (other * self.data ** (other - 1)) * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        t = (math.exp(2 * self.data) - 1) / (math.exp(2 * self.data) + 1)
        out = MgValue(t, (self,), "tanh")

        def _backward():
            self.grad += (1 - t**2) * out.grad

        out._backward = _backward
        return out

    def backward(self):
        # topological order all of the children in the graph
        topo = []
        visited = set()

        def build_topo(v):
            if v not in visited:
                visited.add(v)
                for child in v._prev:
                    build_topo(child)
                topo.append(v)

        build_topo(self)
        # go one variable at a time and apply the chain rule to get its gradient
        self.grad = 1
        for v in reversed(topo):
            v._backward()

    def __neg__(self):  # -self
        return self * -1

    def __radd__(self, other):  # other + self
        return self + other

    def __sub__(self, other):  # self - other
        return self + (-other)

    def __rsub__(self, other):  # other - self
        return other + (-self)

    def __rmul__(self, other):  # other * self
        return self * other


class MgModule:
    def zero_grad(self):
        for p in self.parameters():
            p.grad = 0

    def parameters(self):
        return []


class MgNeuron(MgModule):
    def __init__(self, nin, nonlin=True):
        self.w = [MgValue(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = MgValue(0)
        self.nonlin = nonlin

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.tanh() if self.nonlin else act

    def parameters(self):
        return self.w + [self.b]


class MgLayer(MgModule):
    def __init__(self, nin, nout, **kwargs):
        self.neurons = [MgNeuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x):
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self):
        return [p for n in self.neurons for p in n.parameters()]


class MgMLP(MgModule):
    def __init__(self, nin, nouts):
        sz = [nin] + nouts
        self.layers = [MgLayer(sz[i], sz[i + 1], nonlin=i != len(nouts) - 1) for i in range(len(nouts))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def load_weights(self, weights):
        for layer, (W, b) in zip(self.layers, weights):
            for n, row, bi in zip(layer.neurons, W, b):
                for w, v in zip(n.w, row):
                    w.data = v
                n.b.data = bi


# ----------------------------------------------------------------------------------
# The workload
# ----------------------------------------------------------------------------------

SIZES = [16, 16, 1]
N_POINTS = 100
LR = 0.01


def make_data(n=N_POINTS, seed=0):
    """n points in [-1, 1]^2 with a smooth nonlinear target."""
    rng = random.Random(seed)
    X = [[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(n)]
    Y = [x0 * x1 + 0.5 * x0 for x0, x1 in X]
    return X, Y


def train_epoch(model, X, Y, lr=LR):
    """One epoch of per-sample SGD; the same code drives both engines.  Returns the summed loss."""
    params = model.parameters()
    total = 0.0
    for x, y in zip(X, Y):
        model.zero_grad()
        out = model(x)
        loss = (out - y) ** 2
        loss.backward()
        for p in params:
            p.data -= lr * p.grad
        total += loss.data
    return total


def make_models(seed=0):
    """A chainrule MLP and a micrograd MLP holding identical weights."""
    ours = cs.MLP(2, SIZES, rng=random.Random(seed))
    theirs = MgMLP(2, SIZES)
    theirs.load_weights(ours.export_weights())
    return ours, theirs


def check_agreement(tol=1e-9):
    """Both engines must compute the same thing: same loss, same updated weights."""
    X, Y = make_data()
    ours, theirs = make_models()
    loss_ours = train_epoch(ours, X, Y)
    loss_theirs = train_epoch(theirs, X, Y)
    if abs(loss_ours - loss_theirs) > tol * max(1.0, abs(loss_theirs)):
        raise AssertionError(f"losses differ: chainrule {loss_ours!r} vs micrograd {loss_theirs!r}")
    for p, q in zip(ours.parameters(), theirs.parameters()):
        if abs(p.data - q.data) > tol:
            raise AssertionError(f"weights differ after one epoch: {p.data!r} vs {q.data!r}")
    return loss_ours


def _time_epoch(engine, X, Y):
    ours, theirs = make_models()
    model = ours if engine == "chainrule" else theirs
    gc.collect()
    t0 = time.perf_counter()
    train_epoch(model, X, Y)
    return time.perf_counter() - t0


def run(reps=5, verbose=False):
    """Time one training epoch with each engine, ``reps`` times after a warm-up.

    Returns a dict with the median seconds per epoch of each engine, their ratio and
    the (identical) epoch loss.  Repetitions alternate between the engines so that
    drifts in machine speed hit both alike.
    """
    loss = check_agreement()
    X, Y = make_data()
    times = {"chainrule": [], "micrograd": []}
    for engine in times:  # warm-up
        _time_epoch(engine, X, Y)
    for _ in range(reps):
        for engine in times:
            times[engine].append(_time_epoch(engine, X, Y))
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "chainrule_median_s": med["chainrule"],
        "micrograd_median_s": med["micrograd"],
        "speedup": med["micrograd"] / med["chainrule"],
        "epoch_loss": loss,
    }
    if verbose:
        print(f"workload: MLP(2, {SIZES}), {N_POINTS} points, 1 epoch per-sample SGD; "
              f"{reps} reps after warm-up; Python {sys.version.split()[0]}")
        print(f"both engines agree: epoch loss = {loss:.12f}")
        for k, v in times.items():
            print(f"  {k:10s} median {statistics.median(v) * 1e3:8.2f} ms   "
                  f"min {min(v) * 1e3:8.2f} ms   max {max(v) * 1e3:8.2f} ms")
        print(f"  speedup (micrograd median / chainrule median): {result['speedup']:.2f}x")
    return result


if __name__ == "__main__":
    run(reps=int(sys.argv[1]) if len(sys.argv) > 1 else 7, verbose=True)
