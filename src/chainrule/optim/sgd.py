"""Stochastic gradient descent, with optional momentum, Nesterov momentum and weight decay."""

from __future__ import annotations

import functools

import numpy as np

from .. import _malloc
from ..autograd.tensor import Tensor
from .optimizer import Optimizer, _as_float, _check_nonnegative, _torch_switches

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent (``torch.optim.SGD``).

    For each parameter ``p`` with gradient ``g``, at step ``t``::

        g = -g                       if maximize
        g = g + weight_decay * p     if weight_decay != 0     (L2 penalty)
        if momentum != 0:
            b = g                                 at t = 1 (no dampening on the first step)
            b = momentum * b + (1 - dampening) * g           afterwards
            g = g + momentum * b     if nesterov
            g = b                    otherwise
        p = p - lr * g

    The momentum buffer ``b`` is ``state[p]["momentum_buffer"]``.

    Parameters that lie back to back in memory (``nn.Linear``'s are made that way, see
    ``chainrule._malloc.param_empty``) get their momentum buffers laid out the same way, and with momentum
    the update runs over them as one flat array: the same numbers, in fewer NumPy calls (25 instead of 36 for
    the MNIST MLP; ~20 µs of a batch-32 step).

    Args:
        params: parameters or parameter groups (see ``Optimizer``).
        lr: learning rate.
        momentum: momentum factor (0 = plain SGD).
        dampening: scales the new gradient's contribution to the momentum buffer by
            ``1 - dampening``.
        weight_decay: L2 penalty coefficient.
        nesterov: use Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
        maximize: ascend the objective instead of descending it.
        foreach, differentiable, fused: torch's implementation switches, accepted and ignored
            (``differentiable=True`` is refused).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, maximize: bool = False, *,
                 foreach: bool | None = None, differentiable: bool = False, fused: bool | None = None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize,
                        **_torch_switches(foreach=foreach, differentiable=differentiable, fused=fused))
        super().__init__(params, defaults)
        self._views: dict = {}     # per parameter: the pieces of its update one by one (see _pieces)
        self._runs: dict = {}      # per group: its parameters in runs, updated together (see _plan)
        self._reserved: dict = {}  # parameter -> the view its first momentum buffer is to be (see _plan)
        self._factor_cache: dict = {}   # the factors of the last steps, as 0-d arrays (see _factors)

    def __getstate__(self):
        # The plans hold views of the parameters' and buffers' memory: a copy (copy.deepcopy, pickle) makes
        # its own from its own arrays.
        state = self.__dict__.copy()
        state.update(_views={}, _runs={}, _reserved={}, _factor_cache={})
        return state

    def _check_options(self, options):
        _check_nonnegative(options, "lr", "momentum", "weight_decay")
        if options["nesterov"] and (_as_float("momentum", options["momentum"]) <= 0
                                    or _as_float("dampening", options["dampening"]) != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening "
                             f"(got momentum={options['momentum']}, dampening={options['dampening']})")

    def _step_group(self, group):
        lr = float(group["lr"])
        momentum = float(group["momentum"])
        dampening = float(group["dampening"])
        weight_decay = float(group["weight_decay"])
        nesterov = bool(group["nesterov"])
        maximize = bool(group["maximize"])
        options = (lr, momentum, dampening, weight_decay, nesterov, maximize)
        flush = momentum != 0 and self._flush_due(momentum)
        if momentum == 0:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, options, flush)
            return
        # With momentum, the parameters that have a buffer are updated in runs planned once (``_plan``): one
        # parameter, or several back to back in memory as one array.
        runs, rest = self._plan(group)
        for run in runs:
            if not run.step(self, options, flush):
                for p in run.params:
                    if p.grad is not None:
                        self._update(p, options, flush)
        for p in rest:
            if p.grad is not None:
                self._update(p, options, flush)

    def _update(self, p, options, flush: bool) -> None:
        """Update one parameter that has a gradient, by the formula (any options)."""
        lr, momentum, dampening, weight_decay, nesterov, maximize = options
        mul, add = np.multiply, np.add
        param, g = p.data, p.grad.data
        if g.shape != param.shape:
            raise RuntimeError(f"a parameter of shape {param.shape} has a gradient of shape {g.shape}")
        if maximize or weight_decay != 0:
            g = self._effective_grad(param, g, weight_decay, maximize)
        m, neg_lr, keep = self._factors(param.dtype, momentum, -lr, 1.0 - dampening)
        if momentum == 0:
            for pc, gc, _, t in self._pieces(p, param, g, None):
                mul(gc, neg_lr, out=t)
                add(pc, t, out=pc)
            p._version += 1
            return
        state = self.state[p]
        buf_t = state.get("momentum_buffer")
        if buf_t is None:                       # first step: the buffer is the gradient
            view = self._reserved.pop(p, None)
            if view is not None and view.shape == param.shape and view.dtype == g.dtype:
                np.copyto(view, g)              # laid out as the parameters around it (see _plan)
                buf_t = Tensor._make(view)
            else:
                buf_t = self._new_state(param, "momentum_buffer", g, g.dtype)
            state["momentum_buffer"] = buf_t
            self._runs.clear()                  # the next step plans with this buffer
            first = True
        else:
            first = False
        for pc, gc, bc, t in self._pieces(p, param, g, buf_t.data):
            if not first:
                mul(bc, m, out=bc)
                if dampening == 0:
                    add(bc, gc, out=bc)
                else:
                    mul(gc, keep, out=t)
                    add(bc, t, out=bc)
            if nesterov:
                mul(bc, m, out=t)
                add(gc, t, out=t)               # g + momentum * buf
                mul(t, neg_lr, out=t)
            else:
                mul(bc, neg_lr, out=t)
            add(pc, t, out=pc)
        if flush and not first:
            self._flush_subnormals(buf_t.data, momentum)
        p._version += 1                         # updated in place (see _mark_updated)

    def _plan(self, group):
        """``(runs, rest)``: the group's parameters as ``_Run`` s, and those that cannot be in one (no momentum
        buffer yet, or an array that is not contiguous).

        Parameters back to back in memory (``_malloc.runs``) whose buffers lie back to back the same way make one
        run; any other parameter is a run of its own.  Before the first step, the buffers-to-be of parameters
        back to back are reserved as views of one zeroed array (``_reserved``; ``_update`` takes them).  The plan
        is kept until the group's list of parameters changes, a buffer is made (``_update``) or a run finds one
        of its parameters or buffers replaced (``_Run.step``).
        """
        params = group["params"]
        plan = self._runs.get(id(group))
        if plan is not None and plan[0] is group and plan[1] is params and plan[2] == len(params) and not plan[3][0]:
            return plan[4], plan[5]
        arrays = [p.data for p in params]
        bufs = [self.state.get(p, {}).get("momentum_buffer") for p in params]
        ends = dict(_malloc.runs(arrays))
        runs: list[_Run] = []
        rest = []
        stale = [False]                         # set by a run that finds something replaced
        i = 0
        while i < len(params):
            j = ends.get(i, i + 1)
            if all(b is None for b in bufs[i:j]):
                if j - i > 1 and not all(p in self._reserved for p in params[i:j]):
                    self._reserved.update(zip(params[i:j], self._flat_views(arrays[i:j])))
                rest += params[i:j]
            else:
                whole = (_Run.make(params[i:j], arrays[i:j], bufs[i:j], self, stale)
                         if all(b is not None for b in bufs[i:j]) else None)
                if whole is not None:
                    runs.append(whole)
                else:                           # each on its own
                    for k in range(i, j):
                        run = None if bufs[k] is None else _Run.make([params[k]], [arrays[k]], [bufs[k]], self, stale)
                        if run is None:
                            rest.append(params[k])
                        else:
                            runs.append(run)
            i = j
        self._runs[id(group)] = (group, params, len(params), stale, runs, rest)
        return runs, rest

    def _flat_views(self, arrays):
        """Views shaped as ``arrays`` (back to back in memory) of one zeroed array laid out as they are, half a
        page after them (as ``Optimizer._new_state`` places a buffer)."""
        offsets = _offsets(arrays)
        flat = _malloc.empty((offsets[-1] + arrays[-1].size,), arrays[0].dtype, like=arrays[0], shift=2048)
        flat[...] = 0
        return [flat[k:k + a.size].reshape(a.shape) for k, a in zip(offsets, arrays)]

    def _scratch_for(self, first, size: int):
        """The scratch of the runs' pieces, a quarter page after their buffers (placed for the first run asking)."""
        key = ("run", size, first.dtype)
        tmp = self._scratch.get(key)
        if tmp is None:
            # With it wherever malloc put it, the update took 15 µs longer in a batch-32 step of the MNIST MLP.
            tmp = self._scratch[key] = _malloc.empty((size,), first.dtype, like=first, shift=3072)
        return tmp

    def load_state_dict(self, state_dict) -> None:
        super().load_state_dict(state_dict)
        # The loaded buffers of parameters back to back in memory are laid out the same way, so that the next
        # steps update them together (``_plan``).
        self._runs.clear()
        self._reserved.clear()
        for group in self.param_groups:
            params = group["params"]
            arrays = [p.data for p in params]
            for i, j in _malloc.runs(arrays):
                bufs = [self.state.get(p, {}).get("momentum_buffer") for p in params[i:j]]
                loaded = [b.data for b in bufs if b is not None]
                if len(loaded) == j - i and all(b.shape == a.shape and b.dtype == a.dtype
                                                for b, a in zip(loaded, arrays[i:j])):
                    for p, b, view in zip(params[i:j], loaded, self._flat_views(arrays[i:j])):
                        np.copyto(view, b)
                        self.state[p]["momentum_buffer"] = Tensor._make(view)

    def _factors(self, dtype, *values):
        """``values`` as 0-d arrays of ``dtype``: the same numbers NumPy would make of the Python floats, without
        converting them again in every call (~0.3 µs a call); kept while they stay the same."""
        key = (dtype, values)
        arrays = self._factor_cache.get(key)
        if arrays is None:
            if len(self._factor_cache) > 16:     # a learning-rate schedule makes new ones every step
                self._factor_cache.clear()
            arrays = self._factor_cache[key] = tuple(np.array(v, dtype) for v in values)
        return arrays

    def _pieces(self, p, param, g, buf):
        """Matching views (param, grad, buffer, scratch) of at most ``CHUNK`` elements.

        The update's four passes run piece by piece, so a piece stays in cache between them:
        measured 15 % faster than whole-array passes on a 784x256 weight.  Arrays that are not
        C-contiguous are updated whole (their ``reshape(-1)`` would be a copy).  The views of the
        parameter, the buffer and the scratch are kept between steps (``p.data`` and the buffer stay
        the same arrays); the gradient, a new array after each backward, is cut up each time.
        """
        cached = self._views.get(p)
        if cached is None or cached[0] is not param or cached[1] is not buf:
            if param.size <= CHUNK:
                cached = (param, buf, None, self._buffer(param, "tmp"))
            elif not (param.flags.c_contiguous and (buf is None or buf.flags.c_contiguous)):
                return ((param, g, buf, self._buffer(param, "tmp")),)
            else:
                tmp = self._buffer(param, "chunk", shape=(CHUNK,))
                fp = param.reshape(-1)
                fb = None if buf is None else buf.reshape(-1)
                sls = _chunks(param.size)
                cached = (param, buf, sls, [
                    (fp[sl], None if fb is None else fb[sl], tmp[:sl.stop - sl.start]) for sl in sls])
            self._views[p] = cached
        sls = cached[2]
        if sls is None:
            return ((param, g, buf, cached[3]),)
        if not g.flags.c_contiguous:
            return ((param, g, buf, self._buffer(param, "tmp")),)
        fg = g.reshape(-1)
        return [(pc, fg[sl], bc, t) for sl, (pc, bc, t) in zip(sls, cached[3])]


class _Run:
    """Parameters back to back in memory (or one parameter) whose momentum buffers lie back to back the same
    way, updated together: ``buf = m * buf + g;  p = p + (-lr) * buf`` (Nesterov: ``p = p + (-lr) * (g + m *
    buf)``) over the two flat arrays, ``CHUNK``
    elements at a time so that a piece stays in cache between the passes, with the gradients (separate
    arrays) added piece by piece.  Padding between the parameters holds zeros in both flat arrays and stays
    zero (``0 * m + 0``; ``p + (-lr) * 0`` is ``p``)."""

    __slots__ = ("params", "checks", "flat_b", "schedule", "split", "factors", "effective", "stale")
    params: tuple           # the parameters, in memory order
    checks: list            # (parameter, its array, its state, buffer Tensor, buffer array) as planned
    flat_b: np.ndarray      # the buffers' flat array
    schedule: list          # per piece: (params, buffers, scratch, [(buffer piece, scratch piece, parameter k,
                            # slice of its flattened gradient, or None: the whole gradient, pieces in its shape)])
    split: tuple            # per parameter: cut into pieces (its gradient is flattened)
    factors: tuple          # (the options of the last step, their 0-d arrays)
    effective: list | None  # per piece: the effective gradient's flat array and its pieces (see _effective)
    stale: list             # [True] once a run of the plan found something replaced

    @classmethod
    def make(cls, params, arrays, bufs, opt, stale):
        """The run, or None if an array is not contiguous and writeable or the buffers are not laid out as the
        parameters are."""
        first, first_b = arrays[0], bufs[0].data
        owner = _malloc.root(first_b)
        for a, b in zip(arrays, bufs):
            if (b.data.shape != a.shape or b.data.dtype != a.dtype or not a.flags.c_contiguous
                    or not a.flags.writeable or not b.data.flags.c_contiguous or not b.data.flags.writeable
                    or b.data.ctypes.data - first_b.ctypes.data != a.ctypes.data - first.ctypes.data
                    or _malloc.root(b.data) is not owner):
                return None
        flat_p, flat_b = _malloc.span(first, arrays[-1]), _malloc.span(first_b, bufs[-1].data)
        if flat_p is None or flat_b is None or flat_b.size != flat_p.size:
            return None
        self = cls()
        self.params = tuple(params)
        self.checks = [(p, a, opt.state[p], b, b.data) for p, a, b in zip(params, arrays, bufs)]
        self.flat_b = flat_b
        self.stale = stale
        tmp = opt._scratch_for(first, min(CHUNK, flat_p.size))
        offsets = _offsets(arrays)
        self.schedule = []
        self.factors = (None, None)
        self.effective = None
        split = set()                               # the parameters cut into pieces (their gradients flattened)
        for c0 in range(0, flat_p.size, CHUNK):
            c1 = min(c0 + CHUNK, flat_p.size)
            adds = []
            for k, (o, a) in enumerate(zip(offsets, arrays)):
                lo, hi = max(o, c0), min(o + a.size, c1)
                if lo >= hi:
                    continue
                if hi - lo == a.size:               # the whole gradient, in its own shape
                    adds.append((flat_b[lo:hi].reshape(a.shape), tmp[lo - c0:hi - c0].reshape(a.shape), k, None))
                else:
                    adds.append((flat_b[lo:hi], tmp[lo - c0:hi - c0], k, slice(lo - o, hi - o)))
                    split.add(k)
            self.schedule.append((flat_p[c0:c1], flat_b[c0:c1], tmp[:c1 - c0], adds))
        self.split = tuple(k in split for k in range(len(arrays)))
        return self

    def step(self, opt, options, flush: bool) -> bool:
        """Update the run's parameters; False (nothing done) if one of them has no gradient, or holds another
        array or buffer than the run was made with (then the plan is made again)."""
        state_of = opt.state
        grads = []
        for (p, a, st, b, bd), split in zip(self.checks, self.split):
            grad = p.grad
            if grad is None:
                return False
            if p.data is not a or state_of.get(p) is not st or st.get("momentum_buffer") is not b or b.data is not bd:
                self.stale[0] = True
                return False
            g = grad.data
            if g.shape != a.shape:
                raise RuntimeError(f"a parameter of shape {a.shape} has a gradient of shape {g.shape}")
            grads.append(g.reshape(-1) if split else g)    # (a copy if g is not contiguous: the same numbers)
        key, factors = self.factors
        if key != options:
            lr, momentum, dampening, weight_decay = options[:4]
            self.factors = key, factors = options, opt._factors(self.flat_b.dtype, momentum, -lr, 1.0 - dampening,
                                                               weight_decay)
        _lr, momentum, dampening, weight_decay, nesterov, maximize = options
        if dampening == 0 and weight_decay == 0 and not maximize:
            self._momentum(grads, factors, nesterov)
        else:
            self._effective(grads, factors, dampening != 0, weight_decay != 0, nesterov, maximize)
        if flush:
            opt._flush_subnormals(self.flat_b, momentum)
        for p in self.params:
            p._version += 1                   # updated in place (see Optimizer._mark_updated)
        return True

    def _momentum(self, grads, factors, nesterov: bool) -> None:
        """buf = m * buf + g;  p = p + (-lr) * buf  (Nesterov: p = p + (-lr) * (g + m * buf))."""
        m, neg_lr = factors[:2]
        mul, add = np.multiply, np.add
        for pc, bc, t, adds in self.schedule:
            mul(bc, m, out=bc)
            for bb, _, k, sl in adds:
                add(bb, grads[k] if sl is None else grads[k][sl], out=bb)
            if nesterov:                      # t = g + m * buf (zero in the padding, as buf)
                mul(bc, m, out=t)
                for _, tt, k, sl in adds:
                    add(grads[k] if sl is None else grads[k][sl], tt, out=tt)
                mul(t, neg_lr, out=t)
            else:
                mul(bc, neg_lr, out=t)
            add(pc, t, out=pc)

    def _effective(self, grads, factors, damp: bool, decay: bool, nesterov: bool, maximize: bool) -> None:
        """The formula with the effective gradient e = wd * p -/+ g made first, in a flat array of the run's own
        (zero in the padding): buf = m * buf + (1 - dampening) * e;  p = p + (-lr) * (buf, or e + m * buf)."""
        m, neg_lr, keep, wd = factors
        mul, add, sub = np.multiply, np.add, np.subtract
        if self.effective is None:            # made at the first step that needs it (zeros: the padding stays 0)
            e = np.zeros(min(CHUNK, self.flat_b.size), self.flat_b.dtype)
            self.effective = []
            for pc, bc, _, adds in self.schedule:
                pieces = []
                for bb, _, _, _ in adds:      # at the buffer piece's place in its chunk
                    start = (bb.ctypes.data - bc.ctypes.data) // e.itemsize
                    pieces.append(e[start:start + bb.size].reshape(bb.shape))
                self.effective.append((e[:pc.size], pieces))
        for (pc, bc, t, adds), (ec, eps) in zip(self.schedule, self.effective):
            if decay:
                mul(pc, wd, out=ec)
            for (_, _, k, sl), ep in zip(adds, eps):
                gk = grads[k] if sl is None else grads[k][sl]
                if decay:
                    (sub if maximize else add)(ep, gk, out=ep)
                elif maximize:
                    np.negative(gk, out=ep)
                else:
                    np.copyto(ep, gk)
            mul(bc, m, out=bc)
            if damp:
                mul(ec, keep, out=t)
                add(bc, t, out=bc)
            else:
                add(bc, ec, out=bc)
            if nesterov:
                mul(bc, m, out=t)
                add(ec, t, out=t)
                mul(t, neg_lr, out=t)
            else:
                mul(bc, neg_lr, out=t)
            add(pc, t, out=pc)


def _offsets(arrays) -> list[int]:
    """Where each of ``arrays`` (back to back in memory) starts, in elements from the first's start."""
    start = arrays[0].ctypes.data
    return [(a.ctypes.data - start) // a.itemsize for a in arrays]


@functools.lru_cache(maxsize=64)
def _chunks(size: int) -> tuple[slice, ...]:
    return tuple(slice(i, min(i + CHUNK, size)) for i in range(0, size, CHUNK))


CHUNK = 65536  # elements per piece: four float32 pieces of 256 KiB fit in a core's L2 cache
