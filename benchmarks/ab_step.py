"""chainrule's training step against the hand-written NumPy step, alternating in one process.

Both train the 784-256-256-10 MLP from the same weights on the same batches; each iteration runs one
hand-written step and then one chainrule step (the plain PyTorch-style loop of ``mlp_chainrule``), so
both see the same machine state.  Prints the median µs of each phase (chainrule / hand):

* gather: the batch, uint8 images to float32 / 255 (``Xt[idx].float().div_(255)`` / ``np.take`` + ``np.divide``);
* forward: the model;  loss: cross-entropy (chainrule) / its gradient (hand);
* backward: ``zero_grad`` + ``loss.backward()`` / the hand-written backward;  optimizer: the SGD step.

With ``--step`` the chainrule side is ``train.TrainStep`` replaying the step: its forward and loss are one
phase (reported as forward, loss 0), and backward is ``zero_grad`` + the replayed backward.

Run: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 python benchmarks/ab_step.py [--step] 32``
"""

from __future__ import annotations

import statistics
import sys
import time

import mlp_chainrule as mc
import mlp_numpy as mn
from common import load_mnist, train_order

import chainrule as cr
import chainrule.nn.functional as F
from chainrule.autograd.replay import Tape
from chainrule.train import TrainStep

PHASES = ("gather", "forward", "loss", "backward", "optimizer", "step")


def run(batch: int, steps: int = 600, warmup: int = 100, replay: bool = False) -> dict[str, tuple[float, float]]:
    X, y = load_mnist("train")
    order = train_order(len(X), 0)
    Xt, yt = cr.from_numpy(X), cr.from_numpy(y)
    p, buf = mn.Params(0), mn.Buffers(batch)
    model = mc.build_model(0)
    opt = cr.optim.SGD(model.parameters(), lr=mc.LR, momentum=mc.MOMENTUM)
    train_step = TrainStep(model, F.cross_entropy, opt)
    hand: dict[str, list[float]] = {k: [] for k in PHASES}
    ours: dict[str, list[float]] = {k: [] for k in PHASES}
    clock = time.perf_counter
    batches = len(X) // batch
    for i in range(steps):
        idx = order[(i % batches) * batch:(i % batches + 1) * batch]
        t = [clock()]
        yb = mn.gather(buf, X, y, idx)
        t.append(clock())
        mn.forward(p, buf)
        t.append(clock())
        mn.loss_grad(buf, yb)
        t.append(clock())
        mn.backward(p, buf)
        t.append(clock())
        p.sgd_step()
        t.append(clock())
        u = [clock()]
        xb, ybt = Xt[idx].float().div_(255), yt[idx]
        u.append(clock())
        tape = train_step._tapes.get((xb.data.shape, xb.data.dtype, False, ybt.data.shape, ybt.data.dtype, False))
        if replay and tape.__class__ is Tape:     # TrainStep's replay, phase by phase
            tape.forward((xb, ybt))
            u += [clock(), clock()]
            opt.zero_grad()
            tape.backward()
        elif replay:                              # the first steps: TrainStep records
            train_step(xb, ybt)
            u += [clock(), clock()]
        else:
            out = model(xb)
            u.append(clock())
            loss = F.cross_entropy(out, ybt)
            u.append(clock())
            opt.zero_grad()
            loss.backward()
        u.append(clock())
        if not replay or tape.__class__ is Tape:
            opt.step()
        u.append(clock())
        if i >= warmup:
            for k, (a, b) in enumerate(zip(t, t[1:])):
                hand[PHASES[k]].append(b - a)
            for k, (a, b) in enumerate(zip(u, u[1:])):
                ours[PHASES[k]].append(b - a)
            hand["step"].append(t[-1] - t[0])
            ours["step"].append(u[-1] - u[0])
    return {k: (statistics.median(ours[k]) * 1e6, statistics.median(hand[k]) * 1e6) for k in PHASES}


def main() -> None:
    args = sys.argv[1:]
    replay = "--step" in args
    batches = [int(b) for b in args if b != "--step"] or [32, 128]
    who = "chainrule TrainStep" if replay else "chainrule"
    print(f"BLAS threads: {cr.get_num_threads()}; µs per phase, {who} / hand NumPy (median)")
    print("| batch | " + " | ".join(PHASES) + " | ratio |")
    print("|---:|" + "---:|" * (len(PHASES) + 1))
    for b in batches:
        r = run(b, replay=replay)
        cells = " | ".join(f"{r[k][0]:.0f} / {r[k][1]:.0f}" for k in PHASES)
        print(f"| {b} | {cells} | {r['step'][0] / r['step'][1]:.2f} |")


if __name__ == "__main__":
    main()
