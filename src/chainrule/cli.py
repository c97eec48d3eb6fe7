"""The ``chainrule`` command line: ``train``, ``evaluate``, ``predict`` and ``demo``.

::

    chainrule train                        # the default MLP on MNIST: >= 98 % test accuracy in < 1 min
    chainrule train --dataset fashion-mnist --data-dir DIR     # DIR holds the four .gz files
    chainrule train --hidden 800,800 --dropout 0.2 --epochs 20 --output big.safetensors   # 98.7 %
    chainrule evaluate chainrule-mnist.safetensors         # test loss, accuracy, per-class accuracy
    chainrule predict chainrule-mnist.safetensors digit.png    # or an index into the test set: 17
    chainrule demo NAME                    # the lecture demos (chainrule.demos)

The model file is a plain safetensors state dict (it loads in PyTorch with
``safetensors.torch.load_file``); its metadata records the architecture (input size, hidden sizes,
activation, dropout, classes) and the dataset, so ``evaluate`` and ``predict`` can rebuild the model.

Every mistake -- a bad option, a missing file, a file that is not a model -- is reported as one line
on stderr with exit status 2; there are no tracebacks for user errors.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
from typing import Any, NoReturn

from . import __version__

# --------------------------------------------------------------------------------------------------
# the default recipe
# --------------------------------------------------------------------------------------------------

#: ``chainrule train`` with no options. Measured on a 2-core machine: see the README.
DEFAULTS: dict[str, Any] = {
    "dataset": "mnist",
    "hidden": [512, 256],
    "activation": "relu",
    "dropout": 0.0,
    "optimizer": "sgd",
    "lr": None,             # per optimizer, below
    "momentum": 0.9,
    "weight_decay": None,   # 0.01 for adamw (torch's default), else 0
    "schedule": "onecycle",
    "batch_size": 128,
    "epochs": 10,
    "seed": 0,
    "limit": None,          # hidden option: train and test on the first N images only (for tests)
}

#: The default (peak) learning rate of each optimizer.
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3, "adamw": 1e-3, "rmsprop": 1e-3, "adagrad": 1e-2}

ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu")
OPTIMIZERS = tuple(DEFAULT_LR)
SCHEDULES = ("onecycle", "cosine", "constant")
DATASETS = ("mnist", "fashion-mnist")

#: The keys of the metadata the model file carries.
ARCH_KEY = "chainrule.arch"
TRAINING_KEY = "chainrule.training"


class UsageError(Exception):
    """A user mistake: printed as one line on stderr, exit status 2."""


# --------------------------------------------------------------------------------------------------
# argument parsing with one-line errors
# --------------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse, but errors are a single line: ``chainrule train: error: ... (see --help)``."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be a positive integer, got {text!r}")
        return value
    return parse


def _float_in(name: str, low: float, high: float | None = None, low_inclusive: bool = False,
              high_inclusive: bool = False):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, got {text!r}") from None
        ok = math.isfinite(value) and (value >= low if low_inclusive else value > low)
        if high is not None:
            ok = ok and (value <= high if high_inclusive else value < high)
        if not ok:
            lo = f"{'>=' if low_inclusive else '>'} {low:g}"
            hi = "" if high is None else f" and {'<=' if high_inclusive else '<'} {high:g}"
            raise argparse.ArgumentTypeError(f"{name} must be {lo}{hi}, got {text!r}")
        return value
    return parse


def parse_hidden(text: str) -> list[int]:
    """``"512,256"`` -> ``[512, 256]``; ``""`` or ``"none"`` -> ``[]`` (no hidden layer).

    >>> parse_hidden("512, 256")
    [512, 256]
    """
    text = text.strip()
    if text.lower() in ("", "none", "0"):
        return []
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise argparse.ArgumentTypeError(
                f"--hidden must be comma-separated positive layer sizes such as 512,256, got {text!r}")
        sizes.append(int(part))
    return sizes


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="chainrule", description="chainrule: backpropagation you can read.")
    p.add_argument("--version", action="version", version=f"chainrule {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    t = sub.add_parser("train", help="train an MLP on MNIST or Fashion-MNIST",
                       description="Train a multi-layer perceptron on MNIST (the default: >= 98% test "
                                   "accuracy in well under a minute on 2 cores) or Fashion-MNIST, and save "
                                   "it as a safetensors file.")
    t.add_argument("--dataset", choices=DATASETS, default=None, help="the dataset (default: mnist)")
    t.add_argument("--data-dir", metavar="DIR", default=None,
                   help="folder holding the dataset's four .gz files (default: MNIST ships with chainrule; "
                        "Fashion-MNIST is looked for in ~/.cache/chainrule/fashion-mnist)")
    t.add_argument("--hidden", type=parse_hidden, default=None, metavar="SIZES",
                   help="hidden layer sizes, comma-separated (default: 512,256; 'none' for a linear model)")
    t.add_argument("--activation", choices=ACTIVATIONS, default=None,
                   help="hidden activation (default: relu)")
    t.add_argument("--dropout", type=_float_in("--dropout", 0.0, 1.0, low_inclusive=True), default=None,
                   metavar="P", help="dropout probability after each hidden layer (default: 0)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, default=None, help="the optimizer (default: sgd, "
                   "with Nesterov momentum)")
    t.add_argument("--lr", type=_float_in("--lr", 0.0), default=None,
                   help="(peak) learning rate (default: 0.1 for sgd, 1e-3 for adam/adamw/rmsprop, 1e-2 "
                        "for adagrad)")
    t.add_argument("--momentum", type=_float_in("--momentum", 0.0, 1.0, low_inclusive=True), default=None,
                   help="momentum for sgd and rmsprop (default: 0.9 for sgd, 0 for rmsprop)")
    t.add_argument("--weight-decay", type=_float_in("--weight-decay", 0.0, low_inclusive=True), default=None,
                   metavar="WD", help="L2 penalty, decoupled for adamw (default: 0.01 for adamw, else 0)")
    t.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="learning-rate schedule, stepped every batch (default: onecycle)")
    t.add_argument("--batch-size", type=_positive_int("--batch-size"), default=None, metavar="N",
                   help="samples per batch (default: 128)")
    t.add_argument("--epochs", type=_positive_int("--epochs"), default=None, metavar="N",
                   help="passes over the training set (default: 10)")
    t.add_argument("--seed", type=int, default=None, help="random seed: same seed, same weights (default: 0)")
    t.add_argument("--output", "-o", metavar="FILE", default=None,
                   help="where to write the model (default: chainrule-<dataset>.safetensors)")
    t.add_argument("--checkpoint-dir", metavar="DIR", default=None,
                   help="write last.safetensors (after every epoch) and best.safetensors here")
    t.add_argument("--resume", metavar="CHECKPOINT", default=None,
                   help="continue the run saved in this checkpoint (e.g. DIR/last.safetensors); it ends "
                        "with the same weights, bit for bit, as an uninterrupted run with the same --threads")
    t.add_argument("--threads", type=_positive_int("--threads"), default=None, metavar="N",
                   help="BLAS threads (default: 1, which is robust when other programs share the cores; "
                        "2 is ~20%% faster on an idle 2-core machine)")
    t.add_argument("--quiet", "-q", action="store_true", help="no progress output, only the final summary")
    t.add_argument("--limit", type=_positive_int("--limit"), default=None, help=argparse.SUPPRESS)

    e = sub.add_parser("evaluate", help="test loss, accuracy and per-class accuracy of a saved model",
                       description="Evaluate a model written by 'chainrule train' on its dataset's test set.")
    e.add_argument("model", metavar="MODEL", help="a .safetensors file written by 'chainrule train'")
    e.add_argument("--data-dir", metavar="DIR", default=None, help="folder holding the dataset's .gz files")
    e.add_argument("--batch-size", type=_positive_int("--batch-size"), default=1000, metavar="N",
                   help="samples per batch (default: 1000)")
    e.add_argument("--limit", type=_positive_int("--limit"), default=None, help=argparse.SUPPRESS)

    pr = sub.add_parser("predict", help="classify one image with a saved model",
                        description="Classify an image: a PNG file (needs Pillow: pip install "
                                    "'chainrule[image]') or an index into the test set.")
    pr.add_argument("model", metavar="MODEL", help="a .safetensors file written by 'chainrule train'")
    pr.add_argument("image", metavar="IMAGE", help="a PNG file, or an integer index into the test set")
    pr.add_argument("--data-dir", metavar="DIR", default=None, help="folder holding the dataset's .gz files")
    pr.add_argument("--top", type=_positive_int("--top"), default=3, metavar="K",
                    help="how many classes to list (default: 3)")

    d = sub.add_parser("demo", help="run a lecture demo (chainrule.demos)",
                       description="Run one of the lecture demos from chainrule.demos: it prints its "
                                   "numbers and writes its figures (PNG, needs the plot extra).",
                       epilog="demos: and-gate, deep-linear, gradient-descent, linear-autoencoder, "
                              "mnist-mlp, saddle-point, sigmoid-gate, universal-approximation, xor")
    d.add_argument("name", metavar="NAME", help="the demo's name (see below)")
    d.add_argument("--fast", action="store_true", help="a quick, smaller version")
    d.add_argument("--out-dir", default=".", metavar="DIR", help="where to write the figures (default: .)")
    return p


# --------------------------------------------------------------------------------------------------
# models and data
# --------------------------------------------------------------------------------------------------

def build_mlp(input_size: int, hidden: list[int], output_size: int, activation: str = "relu",
              dropout: float = 0.0):
    """``Linear -> activation [-> Dropout]`` per hidden layer, then a ``Linear`` to the classes.

    The layers are an ``nn.Sequential``, so the weights are named ``0.weight``, ``0.bias``, ... as
    in a PyTorch ``nn.Sequential`` built the same way.

    >>> build_mlp(784, [256], 10)
    Sequential(
      (0): Linear(in_features=784, out_features=256, bias=True)
      (1): ReLU()
      (2): Linear(in_features=256, out_features=10, bias=True)
    )
    """
    from . import nn

    make = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "elu": nn.ELU,
            "leaky_relu": nn.LeakyReLU}[activation]
    layers = []
    size = input_size
    for width in hidden:
        layers += [nn.Linear(size, width), make()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        size = width
    layers.append(nn.Linear(size, output_size))
    return nn.Sequential(*layers)


def _dataset_class(name: str):
    from .data import MNIST, FashionMNIST

    return {"mnist": MNIST, "fashion-mnist": FashionMNIST}[name]


def load_dataset(name: str, train: bool, data_dir: str | None, limit: int | None = None):
    """The (flattened) train or test split, the first ``limit`` samples if given."""
    from .data import Subset
    from .data.datasets import DatasetIntegrityError, DatasetNotFoundError

    cls = _dataset_class(name)
    if data_dir is not None and not os.path.isdir(data_dir):
        raise UsageError(f"--data-dir {data_dir}: no such folder")
    try:
        ds = cls(root=data_dir, train=train, flatten=True, download=data_dir is None and name != "mnist")
    except DatasetNotFoundError as e:
        first = str(e).splitlines()[0]
        raise UsageError(f"{first} Pass --data-dir FOLDER holding the four .gz files") from None
    except DatasetIntegrityError as e:
        raise UsageError(str(e).splitlines()[0]) from None
    if limit is not None and limit < len(ds):
        ds = Subset(ds, list(range(limit)))
    return ds


def _classes(name: str) -> list[str]:
    return list(_dataset_class(name).classes)


# --------------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------------

_CONFIG_KEYS = ("dataset", "hidden", "activation", "dropout", "optimizer", "lr", "momentum", "weight_decay",
                "schedule", "batch_size", "epochs", "seed", "limit")


def _resolve_config(args, saved: dict | None) -> dict[str, Any]:
    """The run's configuration: the defaults (or a resumed checkpoint's), overridden by the options given.

    A resumed run keeps its configuration; an option that contradicts it is an error.
    """
    given = {k: getattr(args, k) for k in _CONFIG_KEYS if getattr(args, k) is not None}
    if saved is not None:
        config = dict(saved)
        for key, value in given.items():
            if config.get(key) != value:
                flag = "--" + key.replace("_", "-")
                raise UsageError(f"{flag} {_show(value)} differs from the resumed run's "
                                 f"{_show(config.get(key))}; "
                                 "a resumed run keeps its settings (leave the option out)")
        return config
    config = dict(DEFAULTS)
    config.update(given)
    if config["lr"] is None:
        config["lr"] = DEFAULT_LR[config["optimizer"]]
    if "momentum" not in given and config["optimizer"] == "rmsprop":
        config["momentum"] = 0.0
    if config["weight_decay"] is None:
        config["weight_decay"] = 0.01 if config["optimizer"] == "adamw" else 0.0
    return config


def _show(value) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    return str(value)


def _make_optimizer(config: dict, params):
    from . import optim

    name, lr, wd, mom = config["optimizer"], config["lr"], config["weight_decay"], config["momentum"]
    if name == "sgd":
        return optim.SGD(params, lr=lr, momentum=mom, nesterov=mom > 0, weight_decay=wd)
    if name == "adam":
        return optim.Adam(params, lr=lr, weight_decay=wd)
    if name == "adamw":
        return optim.AdamW(params, lr=lr, weight_decay=wd)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr, momentum=mom, weight_decay=wd)
    return optim.Adagrad(params, lr=lr, weight_decay=wd)


def _make_scheduler(config: dict, optimizer, steps_per_epoch: int):
    """The per-batch learning-rate schedule (None for 'constant')."""
    from .optim import lr_scheduler

    total = config["epochs"] * steps_per_epoch
    if config["schedule"] == "onecycle":
        # Momentum is left alone (cycle_momentum=False): --momentum means what it says.
        return lr_scheduler.OneCycleLR(optimizer, max_lr=config["lr"], total_steps=total,
                                       cycle_momentum=False)
    if config["schedule"] == "cosine":
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return None


_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def blas_threads(n: int | None):
    """Run the body with NumPy's BLAS limited to ``n`` threads, then put the old count back.

    ``n=None`` means 1, unless a ``*_NUM_THREADS`` environment variable already decides. Why one
    thread by default: for this MLP a second BLAS thread makes an idle 2-core machine only about
    20 % faster, but when another program is busy on one of the cores the two threads keep waiting
    for each other and an epoch can take ten times longer.

    Uses threadpoolctl if installed, else OpenBLAS's own ``*_set_num_threads`` through ctypes.
    """
    if n is None:
        if any(os.environ.get(v) for v in _THREAD_VARS):
            yield
            return
        n = 1
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if threadpool_limits is not None:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
        return
    functions = _openblas_thread_functions()
    if not functions:
        print(f"chainrule: warning: could not set the BLAS thread count to {n} (install threadpoolctl, or "
              f"set OPENBLAS_NUM_THREADS={n})", file=sys.stderr)
        yield
        return
    previous = [get() for get, _ in functions]
    for _, set_ in functions:
        set_(n)
    try:
        yield
    finally:
        for (_, set_), count in zip(functions, previous, strict=True):
            set_(count)


def _openblas_thread_functions() -> list:
    """``(get, set)`` thread-count functions of every OpenBLAS this process has loaded (Linux)."""
    import ctypes

    import numpy  # noqa: F401  (its BLAS must be loaded to be found)

    try:
        with open("/proc/self/maps", encoding="utf-8") as f:
            libraries = sorted({line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line})
    except OSError:
        return []
    found = []
    for path in libraries:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("openblas", ""), ("scipy_openblas", "64_"), ("openblas", "64_"),
                               ("scipy_openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype = ctypes.c_int
                found.append((get, lambda k, f=set_: f(ctypes.c_int(k))))
                break
    return found


def _model_metadata(config: dict, input_size: int, classes: list[str], data_dir: str | None,
                    extra: dict | None = None) -> dict:
    """The model file's metadata: the architecture (to rebuild the model), the dataset and where
    it was read from (so ``evaluate`` and ``predict`` find it again), and a training summary."""
    arch = {"type": "mlp", "input_size": input_size, "hidden": config["hidden"],
            "activation": config["activation"], "dropout": config["dropout"], "output_size": len(classes),
            "dataset": config["dataset"], "classes": classes,
            "data_dir": None if data_dir is None else os.path.abspath(data_dir)}
    meta = {ARCH_KEY: json.dumps(arch)}
    if extra is not None:
        meta[TRAINING_KEY] = json.dumps(extra)
    return meta


def cmd_train(args) -> int:
    """``chainrule train``: check the options and files first, then train (see ``_train``)."""
    start = time.perf_counter()
    from .io import read_checkpoint

    saved_config = None
    if args.resume is not None:
        _check_file(args.resume)
        saved_config = read_checkpoint(args.resume)["extra"].get("config")
        if saved_config is None:
            raise UsageError(f"{args.resume}: this checkpoint was not written by 'chainrule train' "
                             "(no configuration in it)")
    config = _resolve_config(args, saved_config)
    output = args.output or f"chainrule-{config['dataset']}.safetensors"
    folder = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(folder):
        raise UsageError(f"--output {output}: the folder {folder} does not exist")
    if os.path.isdir(output):
        raise UsageError(f"--output {output}: is a folder; give a file name such as {output}/model.safetensors")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--output {output}: the folder {folder} is not writable")
    if args.checkpoint_dir is not None and os.path.exists(args.checkpoint_dir) \
            and not os.path.isdir(args.checkpoint_dir):
        raise UsageError(f"--checkpoint-dir {args.checkpoint_dir}: exists and is not a folder")
    with blas_threads(args.threads):
        return _train(args, config, output, start)


def _train(args, config: dict, output: str, start: float) -> int:
    """The body of ``chainrule train`` (run with the BLAS thread count set)."""
    import chainrule as cr

    from . import nn
    from .data import DataLoader
    from .io import save
    from .train import Callback, ModelCheckpoint, ProgressBar, evaluate, fit

    cr.manual_seed(config["seed"])
    train_set = load_dataset(config["dataset"], True, args.data_dir, config["limit"])
    test_set = load_dataset(config["dataset"], False, args.data_dir, config["limit"])
    classes = _classes(config["dataset"])
    train_loader = DataLoader(train_set, batch_size=config["batch_size"], shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    model = build_mlp(784, config["hidden"], len(classes), config["activation"], config["dropout"])
    optimizer = _make_optimizer(config, model.parameters())
    scheduler = _make_scheduler(config, optimizer, len(train_loader))
    loss_fn = nn.CrossEntropyLoss()

    verbose = 0 if args.quiet else 1
    callbacks: list[Callback] = [ProgressBar(verbose, val_label="test")] if verbose else []
    checkpoint_dir = args.checkpoint_dir
    if checkpoint_dir is None and args.resume is not None:
        checkpoint_dir = os.path.dirname(os.path.abspath(args.resume))
    if checkpoint_dir is not None:
        arch_meta = _model_metadata(config, 784, classes, args.data_dir)
        arch = json.loads(arch_meta[ARCH_KEY])
        callbacks.append(ModelCheckpoint(checkpoint_dir, monitor="val_loss",
                                         extra=lambda: {"config": config, "arch": arch}))
    if verbose:
        n_params = model.num_parameters()
        print(f"Training {_describe(config)} ({n_params:,} weights) on {config['dataset']}: "
              f"{len(train_set):,} training and {len(test_set):,} test images")
    history = fit(model, loss_fn, optimizer, train_loader, epochs=config["epochs"], val_loader=test_loader,
                  callbacks=callbacks, scheduler=scheduler, verbose=verbose, resume=args.resume)
    if history.note and history.note.startswith("Interrupted"):
        if not verbose:
            print(history.note, file=sys.stderr)
        if checkpoint_dir is not None:
            print(f"Resume with: chainrule train --resume {os.path.join(checkpoint_dir, 'last.safetensors')}",
                  file=sys.stderr)
        return 130

    if len(history) and history.epoch[-1] == config["epochs"] - 1:      # the last epoch's test results
        result = {"loss": history.history["val_loss"][-1], "accuracy": history.history["val_accuracy"][-1]}
    else:
        result = evaluate(model, test_loader, loss_fn)
    wall = time.perf_counter() - start
    summary = {"test_loss": result["loss"], "test_accuracy": result["accuracy"], "epochs": len(history),
               "wall_seconds": round(wall, 2), "config": config, "chainrule_version": __version__}
    try:
        save(model.state_dict(), output, metadata=_model_metadata(config, 784, classes, args.data_dir, summary))
    except OSError as e:            # disk full, folder removed or made read-only while training
        raise UsageError(f"--output {output}: cannot write the model ({e.strerror or e}); nothing was "
                         "written" + (f" (the checkpoints in {checkpoint_dir} are intact)"
                                      if checkpoint_dir is not None else "")) from None
    print(f"Test accuracy {result['accuracy']:.2%}, test loss {result['loss']:.4f} "
          f"after {len(history)} epochs; total wall time {wall:.1f} s")
    print(f"Saved the model to {output}")
    return 0


def _describe(config: dict) -> str:
    sizes = "-".join(str(s) for s in [784, *config["hidden"], 10])
    drop = f", dropout {config['dropout']:g}" if config["dropout"] else ""
    return (f"MLP {sizes} ({config['activation']}{drop}), {config['optimizer']} lr {config['lr']:g} "
            f"{config['schedule']}, batch {config['batch_size']}, {config['epochs']} epochs")


# --------------------------------------------------------------------------------------------------
# evaluate / predict
# --------------------------------------------------------------------------------------------------

def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such file")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a folder, not a model file")


def _check_arch(path: str, arch: Any) -> None:
    """The recorded architecture must describe an MLP that ``evaluate`` and ``predict`` can run."""
    def bad(problem: str) -> NoReturn:
        raise UsageError(f"{path}: the architecture in its metadata is invalid: {problem}")

    if not isinstance(arch, dict):
        bad(f"expected a JSON object, got {type(arch).__name__}")
    missing = [k for k in ("input_size", "hidden", "output_size") if k not in arch]
    if missing:
        bad(f"it lacks {', '.join(missing)}")
    dataset = arch.get("dataset", "mnist")
    if dataset not in DATASETS:
        bad(f"unknown dataset {dataset!r} (known: {', '.join(DATASETS)})")
    if arch["input_size"] != 784:
        bad(f"input_size is {arch['input_size']!r}, but {dataset} images have 784 pixels")
    n_classes = len(_classes(dataset))
    if arch["output_size"] != n_classes:
        bad(f"output_size is {arch['output_size']!r}, but {dataset} has {n_classes} classes")
    hidden = arch["hidden"]
    if not isinstance(hidden, list) or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0
                                               for h in hidden):
        bad(f"hidden must be a list of positive layer sizes, got {hidden!r}")
    if arch.get("activation", "relu") not in ACTIVATIONS:
        bad(f"unknown activation {arch.get('activation')!r} (known: {', '.join(ACTIVATIONS)})")
    dropout = arch.get("dropout", 0.0)
    if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout < 1:
        bad(f"dropout must be a number in [0, 1), got {dropout!r}")
    classes = arch.get("classes")
    if classes is not None and (not isinstance(classes, list) or len(classes) != n_classes
                                or not all(isinstance(c, str) for c in classes)):
        bad(f"classes must be a list of {n_classes} names, got {classes!r}")


def load_model(path: str):
    """Rebuild the model saved by ``chainrule train`` at ``path``: returns ``(model, arch)``."""
    from .io import load
    from .serialization import read_metadata

    _check_file(path)
    meta = read_metadata(path)
    if ARCH_KEY not in meta:
        if meta.get("format", "").startswith("chainrule.checkpoint"):
            # a ModelCheckpoint file: its extra holds the architecture
            from .io import read_checkpoint

            ck = read_checkpoint(path)
            arch = ck["extra"].get("arch")
            if arch is None:
                raise UsageError(f"{path}: this checkpoint records no architecture")
            state = ck["model"]
        else:
            raise UsageError(f"{path}: not a model written by 'chainrule train' (its metadata has no "
                             f"{ARCH_KEY!r} entry describing the architecture)")
    else:
        try:
            arch = json.loads(meta[ARCH_KEY])
        except json.JSONDecodeError:
            raise UsageError(f"{path}: the {ARCH_KEY!r} metadata is not valid JSON") from None
        state = load(path)
    _check_arch(path, arch)
    try:
        model = build_mlp(int(arch["input_size"]), [int(h) for h in arch["hidden"]], int(arch["output_size"]),
                          arch.get("activation", "relu"), float(arch.get("dropout", 0.0)))
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{path}: the architecture in its metadata is incomplete ({e})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise UsageError(f"{path}: the weights do not match the recorded architecture: "
                         + " ".join(str(e).split())) from None
    model.eval()
    return model, arch


def cmd_evaluate(args) -> int:
    import numpy as np

    from . import nn
    from .data import DataLoader
    from .train import predict

    model, arch = load_model(args.model)
    dataset = arch.get("dataset", "mnist")
    test_set = load_dataset(dataset, False, _data_dir(args, arch), args.limit)
    loader = DataLoader(test_set, batch_size=args.batch_size)
    logits = predict(model, loader)
    targets = np.concatenate([y.data for _, y in loader])
    loss = float(nn.CrossEntropyLoss()(logits, _tensor(targets)).item())
    pred = logits.data.argmax(axis=1)
    classes = arch.get("classes") or [str(i) for i in range(int(arch["output_size"]))]
    print(f"{args.model}: {_describe_arch(arch)}")
    accuracy = float(np.mean(pred == targets))
    print(f"Test set ({dataset}, {len(targets):,} images): loss {loss:.4f}, accuracy {accuracy:.2%}")
    print("Per-class accuracy:")
    width = max(len(c) for c in classes)
    for k, name in enumerate(classes):
        mask = targets == k
        n = int(mask.sum())
        acc = f"{np.mean(pred[mask] == k):7.2%}" if n else "    n/a"
        print(f"  {name:<{width}}  {acc}  ({n} images)")
    return 0


def _data_dir(args, arch: dict) -> str | None:
    """--data-dir, else the folder the model was trained from (if it still exists)."""
    if args.data_dir is not None:
        return args.data_dir
    saved = arch.get("data_dir")
    return saved if isinstance(saved, str) and os.path.isdir(saved) else None


def _tensor(array):
    from .autograd.factories import from_numpy

    return from_numpy(array)


def _describe_arch(arch: dict) -> str:
    sizes = "-".join(str(s) for s in [arch["input_size"], *arch["hidden"], arch["output_size"]])
    drop = f", dropout {arch['dropout']:g}" if arch.get("dropout") else ""
    return f"MLP {sizes} ({arch.get('activation', 'relu')}{drop})"


def read_image(path: str):
    """A PNG (or any format Pillow reads) as a (784,) float32 vector in [0, 1], MNIST style.

    The image is converted to grayscale and resized to 28 x 28. MNIST digits are light on a dark
    background; an image with a light background (dark ink on white paper) is inverted.
    Returns ``(vector, notes)``.
    """
    import numpy as np

    try:
        from PIL import Image
    except ImportError:
        raise UsageError("reading images needs Pillow: pip install 'chainrule[image]' (or pass an integer "
                         "index into the test set instead of a file)") from None
    try:
        img: Image.Image
        with Image.open(path) as img:
            img = img.convert("L")
            notes = []
            if img.size != (28, 28):
                notes.append(f"resized from {img.size[0]}x{img.size[1]} to 28x28")
                # Image.Resampling needs Pillow >= 9.1; Pillow >= 10 sets the old names dynamically
                img = img.resize((28, 28), Image.BILINEAR)  # type: ignore[attr-defined,unused-ignore]
            pixels = np.asarray(img, dtype=np.float32) / np.float32(255)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise UsageError(f"{path}: cannot read the image ({e})") from None
    if pixels.mean() > 0.5:
        pixels = 1.0 - pixels
        notes.append("inverted (dark ink on a light background)")
    return pixels.reshape(-1), notes


def cmd_predict(args) -> int:
    import numpy as np

    from .autograd import no_grad
    from .autograd.ops import softmax

    model, arch = load_model(args.model)
    classes = arch.get("classes") or [str(i) for i in range(int(arch["output_size"]))]
    dataset = arch.get("dataset", "mnist")
    truth = None
    text = args.image.strip()
    if text.lstrip("-").isdigit() and not os.path.exists(text):
        test_set = load_dataset(dataset, False, _data_dir(args, arch))
        index = int(text)
        if not -len(test_set) <= index < len(test_set):
            raise UsageError(f"index {index} is out of range: the {dataset} test set has "
                             f"{len(test_set)} images "
                             f"(0..{len(test_set) - 1})")
        x, truth = test_set[index]
        vector = x.data
        source = f"test image #{index % len(test_set)} of {dataset}"
    else:
        _check_file(args.image)
        vector, notes = read_image(args.image)
        source = args.image + (f" ({'; '.join(notes)})" if notes else "")
    with no_grad():
        probs = softmax(model(_tensor(vector.reshape(1, -1).astype(np.float32))), dim=1).data[0]
    order = np.argsort(-probs, kind="stable")
    best = int(order[0])
    print(f"Image: {source}")
    if truth is not None:
        print(f"True class: {classes[truth]}")
    print(f"Predicted: {classes[best]} ({probs[best]:.2%})")
    top = ", ".join(f"{classes[int(k)]} {probs[int(k)]:.2%}" for k in order[:args.top])
    print(f"Top {min(args.top, len(classes))}: {top}")
    return 0


# --------------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------------

def cmd_demo(args) -> int:
    import importlib

    try:
        demos = importlib.import_module("chainrule.demos")
    except ModuleNotFoundError as e:
        if e.name not in ("chainrule.demos", "chainrule"):
            raise
        raise UsageError("the demos are not available in this installation (the module chainrule.demos "
                         "is missing)") from None
    try:
        result = demos.run(args.name, fast=args.fast, out_dir=args.out_dir)
    except (LookupError, ValueError) as e:           # an unknown demo name
        message = e.args[0] if e.args else str(e)
        raise UsageError(f"demo {args.name!r}: {message}") from None
    return result if isinstance(result, int) else 0


# --------------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------------

_COMMANDS = {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand in the error: "chainrule train: error: ... (see 'chainrule train --help')"
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        sub = subparsers[0].choices.get(args.command) if subparsers and args.command else None
        (sub or parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 0
    prog = f"chainrule {args.command}"
    try:
        return _COMMANDS[args.command](args)
    except UsageError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except FileNotFoundError as e:
        print(f"{prog}: error: {e.filename or e}: no such file", file=sys.stderr)
        return 2
    except OSError as e:                # permission denied, disk full, ...: name the file and the reason
        where = f"{e.filename}: " if e.filename else ""
        print(f"{prog}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except ValueError as e:             # SafetensorsError, CheckpointError: one line naming the file
        from .serialization import SafetensorsError

        if isinstance(e, SafetensorsError) or type(e).__name__ == "CheckpointError":
            print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr)
            return 2
        raise
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
