"""``TrainStep``: one step of the plain PyTorch training loop, recorded once and then replayed.

>>> import chainrule as cr
>>> from chainrule import nn, optim
>>> from chainrule.train import TrainStep
>>> _ = cr.manual_seed(0)
>>> model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
>>> step = TrainStep(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1))
>>> x, y = cr.randn(16, 4), cr.randint(0, 3, (16,))
>>> losses = [step(x, y).item() for _ in range(5)]
>>> losses[-1] < losses[0], step.replays
(True, 3)

``loss = step(x, y)`` does what the loop body does::

    optimizer.zero_grad()
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()

and gives the same weights, bit for bit (tested).  The first two calls for a batch shape run exactly that,
eagerly, while ``autograd.replay`` logs the operations of the forward pass; when both logs agree (same
operations, same constants, no in-place writes, no side effects), later calls
replay the log: the same ``forward`` and ``backward_np`` methods on the new batch, without the module calls,
argument checks, graph recording and engine bookkeeping around them.  The optimizer step runs as usual.
On the MNIST MLP that takes 50–115 µs off a ~900 µs step at batch 32, 5–12 % of an epoch
(``benchmarks/README.md``).

Replaying skips the Python code of the model and the loss, so it is only done where that code is known
to compute the same operations whatever the data: with the default ``replay="auto"``, when every module of
the model and the loss are chainrule's own (``nn.Linear``, ``nn.ReLU``, ``nn.CrossEntropyLoss``,
``F.cross_entropy``, ...).  A model or loss of your own, whose Python may print, count calls or branch,
runs eagerly unless you pass ``replay=True``.

A log is replayed only while it still describes the model: any change to a module (an attribute,
parameter, buffer or child assigned, ``train()``/``eval()``) makes the next calls record again, unless the
modules are back to holding exactly the objects the log was made with (``eval()`` for validation, then
``train()``); so does a parameter whose shape, dtype or ``requires_grad`` changed.  A model that changes its own
attributes in ``forward``, or computes something the log cannot stand for, runs eagerly for good
(``step.problem`` says why).  What no log can see is a branch taken in Python on the data's *values*
(``if x.sum() > 0: ...``) or a side effect that is not a tensor operation (printing, counting calls):
``replay=True`` is a promise that your model and loss have none, as ``torch.jit.trace`` and CUDA graph
capture ask of theirs.
"""

from __future__ import annotations

from typing import Any

from ..autograd import function as _fn
from ..autograd.replay import Tape, record
from ..autograd.tensor import Tensor
from ..nn import module as _module

__all__ = ["TrainStep"]


class _Pending:
    """The first log for a batch shape, waiting for a second to compare with."""

    __slots__ = ("tape",)

    def __init__(self, tape: Tape):
        self.tape = tape


class TrainStep:
    """``step(x, y)``: zero the gradients, compute ``loss_fn(model(x), y)``, backpropagate and take an
    optimizer step; returns the loss (without a graph).  See the module docstring.

    Args:
        model: an ``nn.Module`` (called as ``model(x)``).
        loss_fn: called as ``loss_fn(output, y)``; must return a scalar.
        optimizer: stepped once per call.
        replay: ``"auto"`` (default): record and replay when the model and loss are chainrule's own
            modules and functions; ``True``: also for your own (they must be static, see above);
            ``False``: always run eagerly.

    Attributes:
        output: the model's output of the last call (without a graph), e.g. for metrics.
        replays: how many calls were replayed.
        problem: why replaying was turned off (None while it is on).
        tape: the ``autograd.replay.Tape`` the last call replayed (None if it ran eagerly);
            ``print(step.tape.code)`` shows the straight-line Python the step runs.
    """

    def __init__(self, model, loss_fn, optimizer, *, replay: bool | str = "auto"):
        if replay not in (True, False, "auto"):
            raise ValueError(f"TrainStep: replay must be True, False or 'auto', got {replay!r}")
        self.model = model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.replay = replay
        self.output: Any = None   # a Tensor (or whatever the model returns) after the first call
        self.replays = 0
        self.problem: str | None = None
        self.tape: Tape | None = None
        self._tapes: dict = {}
        self._mutations = -1          # nn.module._mutations when the modules were last looked at
        self._recorded: list | None = None   # the modules' snapshot the tapes were recorded with

    def reset(self) -> None:
        """Forget the logs (the next calls record again) and turn replaying back on."""
        self._tapes.clear()
        self._recorded = None
        self.problem = None

    def __call__(self, x, y) -> Tensor:
        if (self.replay and self.problem is None and isinstance(x, Tensor) and isinstance(y, Tensor)
                and x.grad_fn is None and y.grad_fn is None and x is not y
                and _fn._grad_enabled and not _fn._anomaly):
            if _module._mutations != self._mutations:
                # Some module changed somewhere: keep the logs only if the model and the loss hold what they
                # held when the logs were made (eval() for a validation pass, then train() again).
                self._mutations = _module._mutations
                now = self._snapshot()
                if self._recorded is None or not _same_snapshot(now, self._recorded):
                    self._tapes.clear()
                    self._recorded = now
            key = (x.data.shape, x.data.dtype, x.requires_grad, y.data.shape, y.data.dtype, y.requires_grad)
            tape = self._tapes.get(key)
            if tape.__class__ is Tape and tape.valid():
                return self._replay(tape, x, y)
            self.tape = None
            return self._record(key, x, y)
        self.tape = None
        return self._step(*self._forward(x, y))

    def _forward(self, x, y):
        out = self.model(x)
        return self.loss_fn(out, y), out

    def _step(self, loss, out) -> Tensor:
        opt = self.optimizer
        opt.zero_grad()
        loss.backward()
        opt.step()
        self.output = out.detach() if isinstance(out, Tensor) else out
        return loss.detach()

    def _record(self, key, x, y) -> Tensor:
        if self.replay == "auto" and not _builtin(self.model, self.loss_fn):
            self.problem = ("replay='auto' replays chainrule's own modules and losses only; this model or "
                            "loss has Python code of its own (TrainStep(..., replay=True) if it is static)")
            return self._step(*self._forward(x, y))
        before = self._snapshot()
        (loss, out), tape = record(self._forward, (x, y))
        problem = tape.problem
        if not _same_snapshot(self._snapshot(), before):
            problem = "the model or the loss changed its own attributes in forward"
        elif problem is None and not (loss.requires_grad and loss.data.size == 1):
            problem = "the loss is not a scalar that requires grad"
        elif problem is None:
            first = self._tapes.get(key)
            if first.__class__ is _Pending:
                if first.tape.same_as(tape):
                    self._tapes[key] = tape
                else:
                    problem = ("two batches gave different operations or constants (the forward depends on "
                               "the data's values in Python)")
            else:
                self._tapes[key] = _Pending(tape)
        if problem is not None:
            self.problem = problem
            self._tapes.clear()
        # Modules the forward made for itself (``nn.ReLU()(h)``) count as changes; the snapshot showed
        # that the model and the loss did not change, so they do not invalidate the log.
        self._mutations = _module._mutations
        return self._step(loss, out)

    def _snapshot(self) -> list:
        """What each module of the model and the loss holds (attributes, parameters, buffers, children): the
        objects themselves, compared by identity (``_same_snapshot``; holding them means no id is reused)."""
        mods = list(self.model.modules()) if isinstance(self.model, _module.Module) else []
        if isinstance(self.loss_fn, _module.Module):
            mods += list(self.loss_fn.modules())
        return [(m, list(m.__dict__.items()),
                 [(k, v) for reg in (m._parameters, m._buffers, m._modules) for k, v in reg.items()])
                for m in mods]

    def _replay(self, tape: Tape, x: Tensor, y: Tensor) -> Tensor:
        self.tape = tape
        loss, out = tape.forward((x, y))
        opt = self.optimizer
        opt.zero_grad()
        tape.backward()
        opt.step()
        self.output = out
        self.replays += 1
        return loss


def _same_snapshot(a: list, b: list) -> bool:
    """Whether two ``TrainStep._snapshot`` lists hold the same modules with the same objects under the same names."""
    if len(a) != len(b):
        return False
    for (m, attrs, regs), (m2, attrs2, regs2) in zip(a, b):
        if m is not m2 or len(attrs) != len(attrs2) or len(regs) != len(regs2):
            return False
        for (k, v), (k2, v2) in zip(attrs + regs, attrs2 + regs2):
            if k != k2 or v is not v2:
                return False
    return True


def _builtin(model, loss_fn) -> bool:
    """Whether the model's modules and the loss are all chainrule's own classes and functions."""
    def ours(obj) -> bool:
        return (getattr(type(obj) if isinstance(obj, _module.Module) else obj, "__module__", None) or "") \
            .startswith("chainrule.")

    if not isinstance(model, _module.Module) or not all(ours(m) for m in model.modules()):
        return False
    if isinstance(loss_fn, _module.Module):
        return all(ours(m) for m in loss_fn.modules())
    return ours(loss_fn)
