"""Save and load weights and training checkpoints as safetensors files (never pickles).

Two levels
----------
* :func:`save` / :func:`load` store a *state dict* -- ``{name: tensor}``, what ``model.state_dict()``
  returns -- as one safetensors file, like ``torch.save(model.state_dict(), path)``::

      cr.save(model.state_dict(), "mlp.safetensors")
      model.load_state_dict(cr.load("mlp.safetensors"))

  The file is an ordinary safetensors file: ``safetensors.torch.load_file("mlp.safetensors")`` reads
  it in PyTorch (an ``nn.Sequential`` of the same layers takes it with ``load_state_dict``), and files
  PyTorch writes with ``safetensors.torch.save_file`` load here.

* :func:`save_checkpoint` / :func:`load_checkpoint` store *everything needed to resume training* --
  model, optimizer and scheduler state, epoch and step counters, the random number generators -- in
  one file, so that a run stopped after epoch 5 and resumed ends with exactly the same weights,
  bit for bit, as a run that was never interrupted::

      from chainrule.io import save_checkpoint, load_checkpoint
      save_checkpoint("last.safetensors", model, opt, sched, epoch=5, loader=train_loader)
      ...                                    # later, in a fresh process:
      info = load_checkpoint("last.safetensors", model, opt, sched, loader=train_loader)
      start_epoch = info["epoch"]            # 5: five epochs are done, continue with the sixth

Why safetensors and not pickle
------------------------------
``torch.save`` writes a pickle, and unpickling a file can run any code its author chose: loading a
downloaded checkpoint is running a downloaded program. A safetensors file is a JSON header plus raw
bytes, so :func:`load` only parses JSON and copies numbers. Everything that is not an array (epoch,
learning rates, RNG state, ...) goes into the header's ``__metadata__`` as JSON text.

Safety of writes
----------------
Every file is written to a temporary file in the same folder, flushed, ``fsync``-ed and renamed over
the target (``os.replace``), so a crash or Ctrl-C in the middle of a save leaves the previous file
intact -- never a half-written one (see :func:`chainrule.serialization.atomic_open`).

Checkpoint layout
-----------------
Arrays::

    model.<name>               every entry of model.state_dict()
    optim.state.<i>.<name>     the optimizer's per-parameter arrays (momentum buffers, Adam moments)

``__metadata__`` (all values are strings; the structured ones are JSON)::

    format             "chainrule.checkpoint/1"
    chainrule_version  the version that wrote the file
    epoch, step        completed epochs and optimizer steps, as decimal text
    optimizer          JSON: class name, param groups, scalar state (see optim.flatten_state_dict)
    scheduler          JSON: class name and state_dict(), when a scheduler was saved
    rng                JSON: the global generator's state, and the DataLoader generator's if any
    extra              JSON: anything else you passed as ``extra=`` (history, configuration, ...)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, Union

import numpy as np

from .autograd import Tensor
from .serialization import SafetensorsError, atomic_open, load_arrays, read_metadata, save_arrays

__all__ = [
    "save", "load", "load_metadata", "save_checkpoint", "load_checkpoint", "read_checkpoint",
    "CheckpointError", "SafetensorsError", "atomic_open", "CHECKPOINT_FORMAT",
]

PathLike = Union[str, "os.PathLike[str]"]

#: The ``format`` entry of a checkpoint's metadata.
CHECKPOINT_FORMAT = "chainrule.checkpoint/1"

_MODEL_PREFIX = "model."
_OPTIM_PREFIX = "optim."


class CheckpointError(ValueError):
    """A file is not a usable chainrule checkpoint; the message starts with the file's path."""


# --------------------------------------------------------------------------------------------------
# state dicts
# --------------------------------------------------------------------------------------------------

def _as_array(value: Any, name: str) -> np.ndarray:
    """A Tensor, ndarray, NumPy scalar, Python number or torch tensor -> ndarray (no copy if possible)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (bool, int, float, np.generic)):
        return np.asarray(value)
    if hasattr(value, "detach") and hasattr(value, "numpy"):        # a torch.Tensor
        return value.detach().cpu().numpy()
    raise TypeError(f"save: the value of {name!r} is a {type(value).__name__}; a state dict holds tensors "
                    "(chainrule or torch), NumPy arrays or numbers. To save a training run, "
                    "use chainrule.io.save_checkpoint")


def _flatten(obj: Mapping, prefix: str, out: dict[str, np.ndarray]) -> None:
    """Nested dicts -> one flat dict with dotted keys ({'fc': {'weight': w}} -> {'fc.weight': w})."""
    for key, value in obj.items():
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise TypeError(f"save: state dict keys must be str (or int), got {key!r}")
        name = prefix + str(key)
        if isinstance(value, Mapping):
            _flatten(value, name + ".", out)
            continue
        if name in out:
            raise ValueError(f"save: the key {name!r} occurs twice after flattening nested dicts with '.'")
        out[name] = _as_array(value, name)


def save(obj: Mapping, path: PathLike, metadata: Mapping[str, str] | None = None) -> None:
    """Save a state dict (``{name: Tensor | ndarray}``) to ``path`` as a safetensors file, atomically.

    Nested dicts are flattened with dots (``{"enc": {"w": t}}`` is stored as ``"enc.w"``); numbers
    become 0-d arrays. ``metadata`` is optional ``str -> str`` information kept in the file's header
    (read it back with :func:`load_metadata`). The file loads in PyTorch with
    ``safetensors.torch.load_file``.

    >>> import chainrule as cr, tempfile, os
    >>> from chainrule import nn
    >>> model = nn.Linear(3, 2)
    >>> path = os.path.join(tempfile.mkdtemp(), "linear.safetensors")
    >>> cr.save(model.state_dict(), path)
    >>> sd = cr.load(path)
    >>> sorted(sd), tuple(sd["weight"].shape)
    (['bias', 'weight'], (2, 3))
    >>> _ = model.load_state_dict(sd)
    """
    if hasattr(obj, "state_dict") and hasattr(obj, "parameters"):
        raise TypeError("save: got a Module; chainrule saves state dicts, not whole models (which would "
                        "need a pickle): use cr.save(model.state_dict(), path)")
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a dict of name -> tensor (a state dict), got {type(obj).__name__}")
    arrays: dict[str, np.ndarray] = {}
    _flatten(obj, "", arrays)
    save_arrays(arrays, path, dict(metadata) if metadata is not None else None)


def load(path: PathLike, map_location: Any = None, *, weights_only: bool = True) -> dict[str, Tensor]:
    """Load a safetensors file as a dict ``{name: Tensor}`` (new arrays, not tied to the file).

    ``map_location`` and ``weights_only`` are accepted so that code written for ``torch.load``
    runs unchanged; chainrule only has a CPU, and only ever loads weights. Loading parses JSON and
    copies bytes -- it cannot run code from the file. A missing file raises ``FileNotFoundError``;
    a truncated file or one that is not safetensors (a ``torch.save`` pickle, say) raises
    :class:`~chainrule.serialization.SafetensorsError` with a one-line message naming the file.

    Keys stay flat (``"0.weight"``), which is what ``Module.load_state_dict`` expects.
    """
    arrays, _ = load_arrays(path)
    return {name: Tensor._make(a) for name, a in arrays.items()}


def load_metadata(path: PathLike) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (``{}`` if none), without reading its tensors."""
    return read_metadata(path)


# --------------------------------------------------------------------------------------------------
# JSON for the metadata
# --------------------------------------------------------------------------------------------------

def _to_json(value: Any, where: str) -> Any:
    """Plain JSON values for the metadata. Tuples are tagged so they come back as tuples."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value            # json writes inf/nan as Infinity/NaN and reads them back
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (Tensor, np.ndarray)):
        a = value.data if isinstance(value, Tensor) else value
        if a.size == 1 and a.ndim == 0:
            return a.item()
        return {"__array__": a.tolist(), "dtype": str(a.dtype)}
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v, where) for v in value]}
    if isinstance(value, list):
        return [_to_json(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _to_json(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise TypeError(f"save_checkpoint: {where} is a {type(value).__name__}, which cannot be stored as "
                    "JSON metadata (use numbers, strings, lists, dicts or arrays)")


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_from_json(v) for v in value["__tuple__"])
        if set(value) == {"__array__", "dtype"}:
            return np.array(value["__array__"], dtype=value["dtype"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def _dumps(value: Any, where: str) -> str:
    return json.dumps(_to_json(value, where), separators=(",", ":"))


# --------------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------------

def _loader_generator(loader: Any):
    """The ``chainrule.Generator`` a DataLoader shuffles with, if it has its own (else None)."""
    if loader is None:
        return None
    gen = getattr(loader, "generator", None)
    if gen is None:
        gen = getattr(getattr(loader, "sampler", None), "generator", None)
    return gen


def _scheduler_state(scheduler: Any) -> dict[str, Any]:
    # (LambdaLR saves None for plain-function lambdas and restores around them, as torch.)
    return {"class": type(scheduler).__name__, "state": scheduler.state_dict()}


def save_checkpoint(path: PathLike, model, optimizer=None, scheduler=None, *, epoch: int = 0,
                    step: int | None = None, extra: Mapping[str, Any] | None = None, loader=None,
                    rng: bool = True) -> None:
    """Write a complete, resumable training checkpoint to ``path`` (one safetensors file), atomically.

    Args:
        path: the file to write (conventionally ``*.safetensors``); replaced all at once.
        model: the ``nn.Module`` (its ``state_dict()`` is saved under ``model.``).
        optimizer: its state (momentum buffers, Adam moments, step counts, param groups).
        scheduler: a learning-rate scheduler; its ``state_dict()`` is saved as JSON.
        epoch: the number of *completed* epochs (resume with ``range(info["epoch"], epochs)``).
        step: the number of optimizer steps so far (default: taken from nothing, saved as 0).
        extra: any JSON-able dict (configuration, history, ...) returned by ``load_checkpoint``.
        loader: the training DataLoader; if it shuffles with its own ``generator``, that state
            is saved too (the global generator's always is, unless ``rng=False``).

    Example::

        for epoch in range(start, epochs):
            train_one_epoch(model, opt, loader)
            save_checkpoint("last.safetensors", model, opt, epoch=epoch + 1, loader=loader)
    """
    from . import __version__
    from .random import default_generator

    arrays: dict[str, np.ndarray] = {}
    for name, value in model.state_dict().items():
        arrays[_MODEL_PREFIX + name] = _as_array(value, name)
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "chainrule_version": __version__,
        "epoch": str(int(epoch)),
        "step": str(int(step or 0)),
    }
    if optimizer is not None:
        from .optim.optimizer import flatten_state_dict

        opt_arrays, opt_meta = flatten_state_dict(optimizer.state_dict())
        for name, a in opt_arrays.items():
            arrays[_OPTIM_PREFIX + name] = a
        opt_meta = dict(opt_meta, **{"class": type(optimizer).__name__})
        # The optimizer's private step clock decides when it flushes near-subnormal momentum to
        # zero; restoring it keeps a resumed run identical to an uninterrupted one.
        if hasattr(optimizer, "_step_calls"):
            opt_meta["step_calls"] = int(optimizer._step_calls)
        metadata["optimizer"] = _dumps(opt_meta, "the optimizer state")
    if scheduler is not None:
        metadata["scheduler"] = _dumps(_scheduler_state(scheduler), "the scheduler state")
    if rng:
        state = {"global": default_generator.get_state()}
        gen = _loader_generator(loader)
        if gen is not None and gen is not default_generator:
            state["loader"] = gen.get_state()
        metadata["rng"] = _dumps(state, "the RNG state")
    if extra:
        metadata["extra"] = _dumps(dict(extra), "extra")
    save_arrays(arrays, path, metadata)


def read_checkpoint(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint without applying it: a dict with ``model`` (state dict of Tensors),
    ``optimizer`` (a ``state_dict()`` or None), ``scheduler`` (dict or None), ``rng``, ``epoch``,
    ``step``, ``extra`` and ``metadata`` (the raw header strings).

    Raises :class:`CheckpointError` (one line, naming the file) if the file is a valid safetensors
    file but not a chainrule checkpoint -- e.g. plain weights written by :func:`save`.
    """
    display = os.fspath(path)
    arrays, metadata = load_arrays(path)
    fmt = metadata.get("format")
    if fmt != CHECKPOINT_FORMAT:
        hint = "it holds plain weights: load them with cr.load()" if fmt is None or not fmt.startswith(
            "chainrule.checkpoint") else f"unsupported checkpoint format {fmt!r}"
        raise CheckpointError(f"{display}: not a chainrule training checkpoint ({hint})")

    def parse(key: str) -> Any:
        if key not in metadata:
            return None
        try:
            return _from_json(json.loads(metadata[key]))
        except (json.JSONDecodeError, TypeError, ValueError) as e:
            raise CheckpointError(f"{display}: the checkpoint's {key!r} metadata is not valid JSON ({e})") \
                from None

    def integer(key: str) -> int:
        try:
            return int(metadata.get(key, "0"))
        except ValueError:
            raise CheckpointError(f"{display}: the checkpoint's {key!r} is not an integer: "
                                  f"{metadata[key]!r}") from None

    model_sd = {k[len(_MODEL_PREFIX):]: Tensor._make(a) for k, a in arrays.items()
                if k.startswith(_MODEL_PREFIX)}
    optim_arrays = {k[len(_OPTIM_PREFIX):]: a for k, a in arrays.items() if k.startswith(_OPTIM_PREFIX)}
    others = [k for k in arrays if not k.startswith((_MODEL_PREFIX, _OPTIM_PREFIX))]
    if others:
        raise CheckpointError(f"{display}: unexpected tensor {others[0]!r} in a checkpoint (names start "
                              f"with {_MODEL_PREFIX!r} or {_OPTIM_PREFIX!r})")
    opt_meta = parse("optimizer")
    optimizer_sd = None
    if opt_meta is not None:
        from .optim.optimizer import unflatten_state_dict

        try:
            optimizer_sd = unflatten_state_dict(optim_arrays, opt_meta)
        except (ValueError, KeyError, TypeError) as e:
            raise CheckpointError(f"{display}: the optimizer state is damaged ({e})") from None
    return {
        "model": model_sd,
        "optimizer": optimizer_sd,
        "optimizer_class": (opt_meta or {}).get("class"),
        "optimizer_step_calls": (opt_meta or {}).get("step_calls"),
        "scheduler": parse("scheduler"),
        "rng": parse("rng"),
        "epoch": integer("epoch"),
        "step": integer("step"),
        "extra": parse("extra") or {},
        "metadata": metadata,
    }


def load_checkpoint(path: PathLike, model=None, optimizer=None, scheduler=None, *, loader=None,
                    restore_rng: bool = True, strict: bool = True) -> dict[str, Any]:
    """Restore a checkpoint written by :func:`save_checkpoint`, in place, and return its info.

    Loads the weights into ``model``, the state into ``optimizer`` and ``scheduler`` (each only if
    given; asking for one the file does not hold is an error), and -- unless ``restore_rng=False`` --
    sets chainrule's global generator (and ``loader``'s own generator, if it has one) to the saved
    state, so the next epoch shuffles and drops out exactly as the uninterrupted run would have.

    Returns a dict with ``epoch`` (completed epochs), ``step`` (optimizer steps), ``extra`` (what
    was passed to ``save_checkpoint``), ``metadata`` (raw header) and ``path``.

    Every problem -- a missing file aside (``FileNotFoundError``) -- is a one-line ``ValueError``
    that starts with the path: :class:`SafetensorsError` for a truncated or foreign file,
    :class:`CheckpointError` for a safetensors file that is not a checkpoint or does not fit.

    >>> import chainrule as cr, tempfile, os
    >>> from chainrule import nn, optim
    >>> from chainrule.io import save_checkpoint, load_checkpoint
    >>> model = nn.Linear(2, 1); opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> path = os.path.join(tempfile.mkdtemp(), "last.safetensors")
    >>> save_checkpoint(path, model, opt, epoch=3, step=30, extra={"note": "hello"})
    >>> info = load_checkpoint(path, model, opt)
    >>> info["epoch"], info["step"], info["extra"]["note"]
    (3, 30, 'hello')
    """
    from .random import default_generator

    display = os.fspath(path)
    ck = read_checkpoint(path)

    def fail(message: str):
        raise CheckpointError(f"{display}: {message}")

    if optimizer is not None and ck["optimizer"] is None:
        fail("the checkpoint holds no optimizer state (it was saved without optimizer=)")
    if optimizer is not None and ck["optimizer_class"] not in (None, type(optimizer).__name__):
        fail(f"the checkpoint holds {ck['optimizer_class']} state, but the optimizer is "
             f"{type(optimizer).__name__}")
    if scheduler is not None and ck["scheduler"] is None:
        fail("the checkpoint holds no scheduler state (it was saved without scheduler=)")
    if scheduler is not None and ck["scheduler"].get("class") != type(scheduler).__name__:
        fail(f"the checkpoint holds {ck['scheduler'].get('class')} state, but the scheduler is "
             f"{type(scheduler).__name__}")

    if model is not None:
        try:
            model.load_state_dict(ck["model"], strict=strict)
        except RuntimeError as e:
            fail("the weights do not fit the model: " + " ".join(str(e).split()))
    if optimizer is not None:
        try:
            optimizer.load_state_dict(ck["optimizer"])
        except (ValueError, KeyError, TypeError) as e:
            fail(f"the optimizer state does not fit the optimizer: {e}")
        if ck["optimizer_step_calls"] is not None and hasattr(optimizer, "_step_calls"):
            optimizer._step_calls = int(ck["optimizer_step_calls"])
    if scheduler is not None:
        scheduler.load_state_dict(dict(ck["scheduler"]["state"]))
    if restore_rng and ck["rng"]:
        default_generator.set_state(ck["rng"]["global"])
        gen = _loader_generator(loader)
        if gen is not None and gen is not default_generator and "loader" in ck["rng"]:
            gen.set_state(ck["rng"]["loader"])
    return {"epoch": ck["epoch"], "step": ck["step"], "extra": ck["extra"], "metadata": ck["metadata"],
            "path": display}
