"""Shared helpers for chainrule's benchmark suite.

Nothing here imports chainrule: the competitors (hand-written NumPy, PyTorch,
scikit-learn) must be measurable on their own, and each one runs in its own
process (``run_in_subprocess``) so that thread pools and allocator state never
mix between libraries.

Run the suite as the guide says, with OpenBLAS left to pick its own kernel::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
MNIST_DIR = Path(__file__).resolve().parents[1] / "src/chainrule/data/mnist"

#: Layer sizes of the benchmark MLP: 784-256-256-10, ReLU between layers.
SIZES = (784, 256, 256, 10)

#: The environment variables that size the thread pools of OpenBLAS, MKL,
#: OpenMP (torch's intra-op pool), Apple Accelerate and numexpr.
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

#: Variables that pin OpenBLAS to a kernel or cache size other than the one it
#: detects; the guide says benchmarks run without them.
OPENBLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

RESULT_MARKER = "@@BENCH_RESULT@@"


# --------------------------------------------------------------------------- data

def _read_idx(path: Path) -> np.ndarray:
    """Read one gzipped IDX file (the MNIST format) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: expected {dims}, got {data.size} bytes")
    return data.reshape(dims)


_MNIST_CACHE: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def load_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Return MNIST ``split`` ('train' or 't10k'/'test') as (images, labels).

    images: uint8, shape (N, 784), C-contiguous; labels: int64, shape (N,).
    """
    prefix = {"train": "train", "test": "t10k", "t10k": "t10k"}[split]
    if prefix not in _MNIST_CACHE:
        images = _read_idx(MNIST_DIR / f"{prefix}-images-idx3-ubyte.gz")
        labels = _read_idx(MNIST_DIR / f"{prefix}-labels-idx1-ubyte.gz")
        images = np.ascontiguousarray(images.reshape(images.shape[0], -1))
        _MNIST_CACHE[prefix] = (images, labels.astype(np.int64))
    return _MNIST_CACHE[prefix]


def train_order(n: int, seed: int) -> np.ndarray:
    """The shuffled visiting order of the n training images, shared by all competitors."""
    return np.random.default_rng(seed).permutation(n)


# ----------------------------------------------------------------------- weights

def init_weights(seed: int, sizes: tuple[int, ...] = SIZES) -> list[tuple[np.ndarray, np.ndarray]]:
    """Initial MLP weights, identical for every competitor.

    Returns ``[(W1, b1), (W2, b2), (W3, b3)]`` in torch's layout (W: (out, in),
    b: (out,)), float32, drawn like ``torch.nn.Linear``'s default init:
    kaiming-uniform with a=sqrt(5), i.e. U(-1/sqrt(in), 1/sqrt(in)) for W, and
    the same bound for b.  Draw order: W1, b1, W2, b2, W3, b3 from
    ``np.random.default_rng(seed)``.
    """
    rng = np.random.default_rng(seed)
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, size=(fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, size=(fan_out,)).astype(np.float32)
        out.append((w, b))
    return out


# ----------------------------------------------------------------------- timing

def timeit(fn: Callable[[], Any], reps: int = 5, warmup: int = 1) -> list[float]:
    """Call ``fn`` ``warmup`` times untimed, then ``reps`` times; return seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def summarize(values: list[float]) -> dict[str, float]:
    """Median, min and max of a list of measurements."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


# ---------------------------------------------------------------------- machine

def blas_info() -> list[dict[str, Any]]:
    """Thread pools loaded in this process, as threadpoolctl reports them.

    One dict per library: user_api ('blas'/'openmp'), internal_api ('openblas',
    'mkl', 'openmp', ...), num_threads, version, and the kernel in use
    (OpenBLAS: 'architecture', MKL: 'corename'/'threading_layer').
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is in the [bench] extra
        return [{"internal_api": "unknown (pip install threadpoolctl)"}]
    keep = ("user_api", "internal_api", "num_threads", "version",
            "architecture", "corename", "threading_layer", "prefix")
    return [{k: v for k, v in d.items() if k in keep} for d in threadpool_info()]


def blas_summary(info: list[dict[str, Any]]) -> str:
    """One line such as 'openblas 0.3.29 SkylakeX x2; openmp x2'."""
    parts = []
    for d in info:
        name = d.get("internal_api", "?")
        kernel = d.get("architecture") or d.get("corename") or ""
        version = d.get("version") or ""
        bits = [name, version, kernel]
        parts.append(" ".join(b for b in bits if b) + f" x{d.get('num_threads', '?')}")
    return "; ".join(parts) if parts else "none loaded"


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB.

    ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, except on Linux, where
    ru_maxrss carries over the peak of the process image *before* exec (a
    worker forked from a 200 MB parent reports >= 200 MB); there the kernel's
    VmHWM from /proc/self/status is the peak of this image alone.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """CPU, core count and library versions of the parent process."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    # Versions from the installed metadata: importing torch here would load its
    # thread pools (and 200 MB) into the parent that launches the workers.
    from importlib import metadata

    for name, dist in (("torch", "torch"), ("sklearn", "scikit-learn"),
                       ("threadpoolctl", "threadpoolctl")):
        try:
            info[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            info[name] = None
    overrides = {k: os.environ[k] for k in OPENBLAS_OVERRIDES if k in os.environ}
    if overrides:
        info["openblas_overrides_in_parent_env"] = overrides
    return info


# ------------------------------------------------------------------- subprocess

def child_env(threads: int | None) -> dict[str, str]:
    """Environment for a worker: thread-count variables set, OpenBLAS overrides removed."""
    env = dict(os.environ)
    for k in OPENBLAS_OVERRIDES:
        env.pop(k, None)
    if threads is not None:
        for k in THREAD_VARS:
            env[k] = str(threads)
    src = str(BENCH_DIR.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(BENCH_DIR), src, env.get("PYTHONPATH", "")) if p)
    return env


_WORKER = (
    "import sys; sys.path.insert(0, {bench!r}); import common; "
    "common._worker({module!r}, {func!r}, {kwargs!r}, {threads!r})"
)


def apply_torch_threads(threads: int | None = None) -> None:
    """If torch is loaded, size its intra-op pool to ``threads`` (default: $OMP_NUM_THREADS)."""
    if threads is None:
        threads = int(os.environ["OMP_NUM_THREADS"]) if "OMP_NUM_THREADS" in os.environ else None
    if threads is not None and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _worker(module: str, func: str, kwargs_json: str, threads: int | None) -> None:
    """Body of a worker process: import ``module``, call ``func(**kwargs)``, print JSON."""
    import importlib

    mod = importlib.import_module(module)
    apply_torch_threads(threads)
    result = getattr(mod, func)(**json.loads(kwargs_json))
    print(RESULT_MARKER + json.dumps(result), flush=True)


def run_in_subprocess(module: str, func: str, kwargs: dict[str, Any] | None = None,
                      threads: int | None = None, timeout: float | None = None) -> Any:
    """Run ``benchmarks/<module>.py``'s ``func(**kwargs)`` in a fresh interpreter.

    The thread-count variables (OMP/OPENBLAS/MKL/...) are set to ``threads``
    before the interpreter starts, and a worker that imported torch also gets
    ``torch.set_num_threads(threads)``.  The function must return something
    JSON-serialisable; that value is returned here.
    """
    code = _WORKER.format(bench=str(BENCH_DIR), module=module, func=func,
                          kwargs=json.dumps(kwargs or {}), threads=threads)
    proc = subprocess.run([sys.executable, "-c", code], env=child_env(threads),
                          capture_output=True, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    raise RuntimeError(
        f"worker {module}.{func} failed (exit {proc.returncode}):\n"
        f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def _system_busy_seconds() -> float | None:
    """CPU-seconds all processes spent busy since boot (Linux /proc/stat), else None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)   # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class LoadProbe:
    """Measures how busy the *other* processes kept the CPUs while a block ran.

    ``foreign`` is (system busy CPU-seconds - this process's CPU-seconds) /
    (wall seconds * cores), clamped to [0, 1]: 0 on a quiet machine, 0.5 when
    something else kept one of two cores busy.  /proc/stat ticks are 10 ms,
    so short blocks read coarsely.  None where /proc/stat is missing.
    """

    def __enter__(self) -> "LoadProbe":
        self._sys = _system_busy_seconds()
        t = os.times()
        self._own = t.user + t.system
        self._wall = time.perf_counter()
        self.foreign: float | None = None
        return self

    def __exit__(self, *exc: Any) -> None:
        wall = time.perf_counter() - self._wall
        sys_now = _system_busy_seconds()
        t = os.times()
        if self._sys is None or sys_now is None or wall <= 0:
            return
        other = (sys_now - self._sys) - (t.user + t.system - self._own)
        self.foreign = min(1.0, max(0.0, other / (wall * (os.cpu_count() or 1))))


def foreign_load(seconds: float = 0.5) -> float | None:
    """Fraction of the machine other processes use right now (sampled over ``seconds``)."""
    with LoadProbe() as probe:
        time.sleep(seconds)
    return probe.foreign


def wait_for_quiet(max_wait: float, threshold: float = 0.10, sample: float = 0.5) -> float | None:
    """Wait (up to ``max_wait`` s) until other processes use < ``threshold`` of the CPUs.

    Returns the last sampled foreign load.  Benchmarks on a shared 2-core box
    are only meaningful when nothing else runs; this avoids starting a
    measurement in the middle of someone's test run, and the load is recorded
    either way.
    """
    deadline = time.perf_counter() + max_wait
    load = foreign_load(sample)
    while load is not None and load >= threshold and time.perf_counter() < deadline:
        load = foreign_load(sample)
    return load


def repeat_epoch(module: str, batch_size: int, seed: int = 0, subset: int | None = None,
                 reps: int = 5, warmup: int = 1, redo_noisy: int = 0,
                 noisy_above: float = 0.10) -> dict[str, Any]:
    """Worker entry for the MLP benchmark: ``warmup`` untimed epochs, then ``reps`` timed.

    ``module.epoch(batch_size, seed, subset)`` must return (seconds, test_accuracy),
    timing only the training loop (batch gather and scaling included; weight
    set-up and evaluation excluded).  An optional ``module.extra_info()`` dict
    is passed through (e.g. whether sklearn used the shared initial weights).

    On a shared machine a rep during which other processes used more than
    ``noisy_above`` of the CPUs is run again, at most ``redo_noisy`` extra
    times in all; ``times`` keeps the ``reps`` quietest reps, and every rep run
    is in ``all_times`` / ``all_foreign_load`` (``foreign_load`` is, per kept
    rep, the share of the CPUs other processes used).
    """
    import importlib

    mod = importlib.import_module(module)
    apply_torch_threads()
    for _ in range(warmup):
        mod.epoch(batch_size, seed, subset=subset)
    runs: list[tuple[float, float, float | None]] = []   # (seconds, accuracy, foreign load)
    while _wants_rep(runs, reps, redo_noisy, noisy_above):
        with LoadProbe() as probe:
            t, acc = mod.epoch(batch_size, seed, subset=subset)
        runs.append((t, acc, probe.foreign))
    return {"module": module, "batch_size": batch_size, "subset": subset,
            **_kept_reps(runs, reps, noisy_above), **_worker_info(mod)}


def _noisy(load: float | None, noisy_above: float) -> bool:
    return load is not None and load > noisy_above


def _wants_rep(runs: list, reps: int, redo_noisy: int, noisy_above: float) -> bool:
    """Whether to run another rep: fewer than ``reps`` quiet ones so far, and redos left."""
    quiet = sum(1 for r in runs if not _noisy(r[2], noisy_above))
    return quiet < reps and len(runs) < reps + max(0, redo_noisy)


def _kept_reps(runs: list, reps: int, noisy_above: float) -> dict[str, list]:
    """The ``reps`` quietest of ``runs`` ((seconds, accuracy, foreign load) each; quiet ones first, in run
    order), and every run, as the result lists of ``repeat_epoch``."""
    def rank(i: int) -> tuple[int, float, int]:
        load = runs[i][2]
        return (1, load, i) if _noisy(load, noisy_above) else (0, 0.0, i)

    kept = sorted(sorted(range(len(runs)), key=rank)[:reps])
    return {"times": [runs[i][0] for i in kept], "accuracy": [runs[i][1] for i in kept],
            "foreign_load": [runs[i][2] for i in kept], "all_times": [r[0] for r in runs],
            "all_foreign_load": [r[2] for r in runs]}


def _worker_info(mod) -> dict[str, Any]:
    """What a worker reports besides its times: peak RSS, the module's ``extra_info()``, BLAS pools, threads."""
    return {"peak_rss_mb": peak_rss_mb(), "extra": mod.extra_info() if hasattr(mod, "extra_info") else {},
            "blas": blas_info(), "threads_env": os.environ.get("OMP_NUM_THREADS")}



class EpochWorker:
    """One competitor's MLP worker, kept alive so that the reps of all competitors can alternate in time.

    The worker process imports ``module``, runs ``warmup`` untimed epochs, then runs one timed epoch
    (with a ``LoadProbe``) per ``epoch()`` call, until ``close()``.  Alternating the competitors' reps
    spreads slow drifts of the machine (other tenants of the host, its clock) over all of them instead
    of charging them to whichever ran at the time; each competitor still has a process, and thread
    pools, of its own.  A worker waiting for its next rep sleeps in a blocking read (no CPU).
    """

    def __init__(self, module: str, batch_size: int, seed: int, subset: int | None, warmup: int,
                 threads: int | None):
        args = json.dumps(dict(module=module, batch_size=batch_size, seed=seed, subset=subset,
                               warmup=warmup, threads=threads))
        code = (f"import sys; sys.path.insert(0, {str(BENCH_DIR)!r}); import common; "
                f"common._epoch_server({args!r})")
        self.module = module
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=child_env(threads), text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._read()                                  # "ready": imported and warmed up

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(RESULT_MARKER):
                return json.loads(line[len(RESULT_MARKER):])
        err = self.proc.stderr.read() if self.proc.stderr else ""
        raise RuntimeError(f"worker {self.module} failed (exit {self.proc.wait()}):\n{err[-4000:]}")

    def _send(self, command: str) -> Any:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def epoch(self) -> tuple[float, float, float | None]:
        """One timed epoch: (seconds, test accuracy, other processes' share of the CPUs meanwhile)."""
        t, acc, load = self._send("epoch")
        return t, acc, load

    def close(self) -> dict[str, Any]:
        """Stop the worker; returns its peak RSS, ``extra_info()`` and BLAS pools."""
        info = self._send("close")
        self.proc.wait()
        return info

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _epoch_server(args_json: str) -> None:
    """Body of an ``EpochWorker`` process (reads commands on stdin, answers on stdout)."""
    import importlib

    a = json.loads(args_json)
    mod = importlib.import_module(a["module"])
    apply_torch_threads(a["threads"])

    def run() -> tuple[float, float]:
        return mod.epoch(a["batch_size"], a["seed"], subset=a["subset"])

    for _ in range(a["warmup"]):
        run()
    print(RESULT_MARKER + json.dumps("ready"), flush=True)
    for line in sys.stdin:
        if line.strip() != "epoch":
            break
        with LoadProbe() as probe:
            t, acc = run()
        print(RESULT_MARKER + json.dumps([t, acc, probe.foreign]), flush=True)
    print(RESULT_MARKER + json.dumps(_worker_info(mod)), flush=True)


def interleaved_epochs(modules: dict[str, str], batch_size: int, seed: int = 0, subset: int | None = None,
                       reps: int = 5, warmup: int = 1, redo_noisy: int = 0, threads: int | None = None,
                       noisy_above: float = 0.10, on_rep: Callable[[str, float], None] | None = None
                       ) -> dict[str, dict[str, Any]]:
    """``repeat_epoch`` for several competitors at once, their reps alternating (see ``EpochWorker``).

    ``modules`` maps names to modules.  Workers start (and warm up) one after the other; then each round
    runs one epoch of every competitor that still needs a quiet rep, starting with a different one each
    round.  A rep during which other processes used more than ``noisy_above`` of the CPUs is run again,
    at most ``redo_noisy`` extra times per competitor.  Returns, per name, ``repeat_epoch``'s dict (or
    ``{"error": ...}`` for a competitor whose worker failed).
    """
    workers: dict[str, EpochWorker] = {}
    out: dict[str, dict[str, Any]] = {}
    runs: dict[str, list[tuple[float, float, float | None]]] = {}
    try:
        for name, module in modules.items():
            try:
                workers[name] = EpochWorker(module, batch_size, seed, subset, warmup, threads)
                runs[name] = []
            except Exception as exc:      # one broken competitor is a row, not a crash
                out[name] = {"error": str(exc)}

        def wanted(name: str) -> bool:
            return _wants_rep(runs[name], reps, redo_noisy, noisy_above)

        names = list(workers)
        round_no = 0
        while any(wanted(n) for n in names):
            for name in names[round_no % len(names):] + names[:round_no % len(names)]:
                if not wanted(name):
                    continue
                # The last worker's BLAS/OpenMP threads spin for a while after its epoch: let them settle.
                wait_for_quiet(5.0, sample=0.2)
                try:
                    runs[name].append(workers[name].epoch())
                except Exception as exc:
                    out[name] = {"error": str(exc)}
                    workers.pop(name).kill()
                    names.remove(name)
                    continue
                if on_rep is not None:
                    on_rep(name, runs[name][-1][0])
            round_no += 1
        for name in names:
            out[name] = {"module": modules[name], "batch_size": batch_size, "subset": subset,
                         **_kept_reps(runs[name], reps, noisy_above), **workers.pop(name).close()}
    finally:
        for w in workers.values():
            w.kill()
    return {name: out[name] for name in modules}

# ----------------------------------------------------------------- per-op chain
# Shared by ops_chainrule and ops_torch (kept here so the chainrule worker never imports torch).

CHAIN_LEN = 100
SHAPE = (8,)
OPS = ("mul scalar 1.0001", "add scalar 0.001", "tanh", "mul tensor c=0.999")
A, B, C = 1.0001, 0.001, 0.999


def us_per_op(fn, iters: int, reps: int, warmup: int = 1) -> dict[str, float]:
    """Time ``iters`` calls of ``fn`` (one chain each) ``reps`` times; µs per op."""
    for _ in range(warmup):
        for _ in range(iters):
            fn()
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(iters):
            fn()
        samples.append((time.perf_counter() - t0) / (iters * CHAIN_LEN) * 1e6)
    out = summarize(samples)
    out["samples"] = samples
    return out
