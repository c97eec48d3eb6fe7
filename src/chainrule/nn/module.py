"""``Module``: the base class of every layer and model (``torch.nn.Module``).

A module owns three kinds of named things, each kept in its own ordered dict:

* ``_parameters``: learnable ``Parameter`` tensors (returned by ``parameters()``, trained by optimizers);
* ``_buffers``: tensors that are state but not learned (running statistics, constant masks);
* ``_modules``: child modules, which own parameters of their own.

Plain attribute assignment fills them: ``self.fc = Linear(2, 3)`` registers a child,
``self.w = Parameter(...)`` a parameter.  Everything else (``parameters()``, ``state_dict()``,
``train()``, ``to()``, the nested ``repr``) is a walk over that tree.  Names are joined with dots,
exactly as torch does, so ``Sequential(Linear(4, 2))`` has the parameters ``0.weight`` and ``0.bias``
and checkpoints move between chainrule and torch unchanged.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from .. import _dtypes
from ..autograd.function import no_grad
from ..autograd.tensor import Tensor
from .parameter import Parameter


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """``load_state_dict``'s result, named and printed as torch's (``<All keys matched successfully>``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


# Counts every change to any module's attributes, parameters, buffers or children (train()/eval()
# included): a captured training step (``train.TrainStep``) is replayed only while it is unchanged.
_mutations = 0


def _changed() -> None:
    global _mutations
    _mutations += 1


class _Registry(OrderedDict):
    """A module's ``_parameters`` / ``_buffers`` / ``_modules``: an OrderedDict whose changes count as
    module changes (``_mutations``), however they are made (containers edit them directly)."""

    def __setitem__(self, key, value):
        _changed()
        super().__setitem__(key, value)

    def __delitem__(self, key):
        _changed()
        super().__delitem__(key)

    def pop(self, *args):
        _changed()
        return super().pop(*args)

    def popitem(self, last: bool = True):
        _changed()
        return super().popitem(last)

    def clear(self):
        _changed()
        super().clear()

    def setdefault(self, key, default=None):
        _changed()
        return super().setdefault(key, default)

    def move_to_end(self, key, last: bool = True):
        _changed()
        super().move_to_end(key, last)


def _quoted(keys) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def _addindent(text: str, spaces: int) -> str:
    """Indent every line but the first (how torch nests a child's repr inside its parent's)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


class Module:
    """Base class of layers and models: subclass it, register parts in ``__init__``, write ``forward``.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> class MLP(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.hidden = nn.Linear(2, 4)
    ...         self.out = nn.Linear(4, 1)
    ...     def forward(self, x):
    ...         return self.out(cr.tanh(self.hidden(x)))
    >>> [name for name, _ in MLP().named_parameters()]
    ['hidden.weight', 'hidden.bias', 'out.weight', 'out.bias']
    """

    training: bool

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments")
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = _Registry()
        d["_buffers"] = _Registry()
        d["_non_persistent_buffers"] = set()
        d["_modules"] = _Registry()

    # ---- the forward pass ----------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required "
                                  "\"forward\" function")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- registration --------------------------------------------------------------------------
    def _check_init(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__}.__init__)")

    @staticmethod
    def _check_name(name, kind: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{kind} name can't be empty or contain \".\", got {name!r}")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add a parameter (or ``None``, a declared-but-absent parameter such as ``bias=False``)."""
        self._check_init("parameters")
        self._check_name(name, "parameter")
        if hasattr(self, name) and name not in self._parameters:
            raise KeyError(f"attribute {name!r} already exists")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter {name!r} "
                            "(chainrule.nn.Parameter or None required)")
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a buffer: state saved in ``state_dict`` (unless ``persistent=False``) but not trained."""
        self._check_init("buffers")
        self._check_name(name, "buffer")
        if hasattr(self, name) and name not in self._buffers:
            raise KeyError(f"attribute {name!r} already exists")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer {name!r} "
                            "(chainrule.Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Add a child module under ``name`` (``self.name = module`` does the same)."""
        self._check_init("child modules")
        if not isinstance(module, Module) and module is not None:
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"attribute {name!r} already exists")
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value) -> None:
        d = self.__dict__
        if d.get(name, _changed) is not value:   # train() on a module already training changes nothing
            _changed()
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._check_init("parameters")
            self._forget(name)
            d["_parameters"][name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter {name!r} "
                                "(chainrule.nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._check_init("child modules")
            self._forget(name)
            d["_modules"][name] = value
        elif d.get("_modules") is not None and name in d["_modules"]:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module {name!r} "
                                "(chainrule.nn.Module or None expected)")
            d["_modules"][name] = None
        elif d.get("_buffers") is not None and name in d["_buffers"]:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer {name!r} "
                                "(chainrule.Tensor or None expected)")
            d["_buffers"][name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        """Remove ``name`` from wherever it is registered (before re-registering it elsewhere)."""
        d = self.__dict__
        d.pop(name, None)
        for key in ("_parameters", "_buffers", "_modules"):
            d[key].pop(name, None)
        d["_non_persistent_buffers"].discard(name)

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: registered parameters, buffers and children live in
        # their dicts, not in the instance __dict__.
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            store = d.get(key)
            if store is not None and name in store:
                return store[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        _changed()
        d = self.__dict__
        for key in ("_parameters", "_buffers", "_modules"):
            if name in d.get(key, ()):
                del d[key][name]
                d["_non_persistent_buffers"].discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def __setstate__(self, state):
        self.__dict__.update(state)

    # ---- walking the tree ----------------------------------------------------------------------
    def named_modules(self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True):
        """Yield (name, module) for this module and every descendant, depth first ('' is self)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            yield from child.named_modules(memo, prefix + ("." if prefix else "") + name, remove_duplicate)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        """Yield (name, child) for the direct children (each module once)."""
        seen = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        for _, child in self.named_children():
            yield child

    def _named_members(self, kind: str, prefix: str, recurse: bool, remove_duplicate: bool = True):
        seen = set()
        mods = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse \
            else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, t in getattr(mod, kind).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield mod_prefix + ("." if mod_prefix else "") + name, t

    def named_parameters(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        """Yield (dotted name, Parameter) pairs; a parameter shared by two layers appears once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True):
        """Yield the learnable parameters (what you hand to an optimizer)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True):
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> Module:
        """The descendant at a dotted path, e.g. ``model.get_submodule('encoder.0')``."""
        mod = self
        for part in target.split(".") if target else []:
            if part not in mod._modules or mod._modules[part] is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule {part!r} (path {target!r})")
            mod = mod._modules[part]
        return mod

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path, e.g. ``model.get_parameter('0.weight')``."""
        return self._get_member(target, "_parameters", "parameter")

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at a dotted path, e.g. ``model.get_buffer('norm.running_mean')``."""
        return self._get_member(target, "_buffers", "buffer")

    def _get_member(self, target: str, registry: str, kind: str):
        mod_path, _, name = target.rpartition(".")
        mod = self.get_submodule(mod_path)
        members = getattr(mod, registry)
        if name not in members:
            raise AttributeError(f"{type(mod).__name__} has no {kind} {name!r}")
        return members[name]

    def num_parameters(self, only_trainable: bool = False) -> int:
        """Total number of scalar weights (each shared parameter counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not only_trainable)

    def apply(self, fn) -> Module:
        """Call ``fn`` on every child (recursively) and then on self, e.g. to re-initialise weights."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients -------------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (Dropout drops) on this module and all descendants."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for child in self.children():
            child.train(mode)  # recursive calls, so a subclass may override train()
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)`` (Dropout becomes the identity)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: ``.grad = None`` (default, as torch), or fill them with zeros."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                if p.grad.grad_fn is not None:
                    p.grad = p.grad.detach()
                p.grad.data[...] = 0

    # ---- dtype ---------------------------------------------------------------------------------
    def to(self, *args, dtype=None, **kwargs) -> Module:
        """``to(dtype)``: cast floating-point parameters and buffers in place; devices are ignored.

        The Parameter objects stay the same (only their ``.data`` is replaced), so an optimizer
        created earlier still holds the right tensors.
        """
        for a in args:
            if isinstance(a, str) and a.startswith("cpu"):
                continue
            dtype = a
        if dtype is None:
            return self
        dt = _dtypes.as_dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"Module.to only accepts floating point dtypes, but got desired dtype={dt}")

        def cast(t):
            if t is not None and t.data.dtype.kind == "f" and t.data.dtype != dt:
                t.data = t.data.astype(dt)
                if t.grad is not None:
                    t.grad = Tensor._make(t.grad.data.astype(dt))
                t._version += 1

        for m in self.modules():
            for p in m._parameters.values():
                cast(p)
            for b in m._buffers.values():
                cast(b)
        return self

    def float(self) -> Module:
        return self.to(_dtypes.float32)

    def double(self) -> Module:
        return self.to(_dtypes.float64)

    def half(self) -> Module:
        return self.to(_dtypes.float16)

    def cpu(self) -> Module:
        return self

    # ---- checkpoints ---------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> OrderedDict:
        """An ordered dict ``dotted name -> Tensor`` of every parameter and persistent buffer.

        The tensors are detached but share memory with the model (as torch's): copy them
        (``{k: v.clone() ...}``) to keep a snapshot while training continues.
        """
        if destination is None:
            destination = OrderedDict()
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = b if keep_vars else b.detach()
        for name, child in self._modules.items():
            if child is not None:
                child.state_dict(destination, prefix + name + ".", keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy the values of ``state_dict`` into this model's parameters and buffers, in place.

        Everything is validated before anything is copied: with ``strict=True`` a missing or an
        unexpected key is an error, and a shape mismatch is always one; a single RuntimeError then
        lists every problem.  Values may be chainrule Tensors, NumPy arrays or anything
        ``np.asarray`` accepts (torch CPU tensors included); they are cast to the parameter's dtype.
        Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"expected a dict-like state_dict, got {type(state_dict).__name__}")
        own = self.state_dict(keep_vars=True)
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors, arrays = [], {}
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            if not isinstance(value, Tensor) and hasattr(value, "detach"):
                value = value.detach()  # a torch tensor that requires grad (e.g. from named_parameters())
            arr = value.data if isinstance(value, Tensor) else np.asarray(value)
            if arr.shape != target.data.shape:
                errors.append(f"size mismatch for {key}: copying a param with shape {tuple(arr.shape)} from "
                              f"checkpoint, the shape in current model is {tuple(target.data.shape)}.")
            else:
                arrays[key] = arr
        if strict:
            if unexpected:
                errors.insert(0, f"Unexpected key(s) in state_dict: {_quoted(unexpected)}.")
            if missing:
                errors.insert(0, f"Missing key(s) in state_dict: {_quoted(missing)}.")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        with no_grad():
            for key, arr in arrays.items():
                target = own[key]
                if assign:
                    target.data = np.array(arr, dtype=target.data.dtype)
                else:
                    np.copyto(target.data, arr, casting="unsafe")
                target._version += 1
        return _IncompatibleKeys(missing, unexpected)

    # ---- printing ------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's repr (override it, as torch)."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(child), 2) for name, child in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return self._get_name() + "(" + body + ")"
