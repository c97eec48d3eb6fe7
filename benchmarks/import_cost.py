"""Import cost: wall time and memory of ``import <module>`` in a fresh interpreter.

For each module, REPS fresh processes each run::

    t0 = perf_counter(); import <module>; t = perf_counter() - t0
    print(t, peak RSS)

and the parent times the whole process too (interpreter start-up included).
One more process runs with ``python -X importtime`` and reports the
cumulative time of the module's own top-level line.  The baseline is the bare
interpreter (``python -c pass``): ``run(None)`` or ``run("")``.

The workers import from ``src/`` (PYTHONPATH), so ``run("chainrule")`` works
from a checkout without installing it.  Every module is timed as a user's machine
imports it, from its bytecode cache: numpy and torch come with theirs (pip compiles
them at install time), and for a checkout the untimed first import writes it.  That
is why the workers run without ``PYTHONDONTWRITEBYTECODE``: some machines here set
it, and then every import of a checkout compiles its sources again (~50 ms of
``import chainrule``).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

from common import child_env, summarize

REPS = 5

# Peak RSS: VmHWM where /proc exists (ru_maxrss on Linux keeps the peak of the
# forked parent image from before exec), else ru_maxrss.
_CHILD = (
    "import time, resource, sys\n"
    "t0 = time.perf_counter()\n"
    "{stmt}\n"
    "t = time.perf_counter() - t0\n"
    "try:\n"
    "    rss = [int(l.split()[1]) / 1024 for l in open('/proc/self/status')"
    " if l.startswith('VmHWM:')][0]\n"
    "except Exception:\n"
    "    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    rss = rss / 1048576 if sys.platform == 'darwin' else rss / 1024\n"
    "print('@@IMPORT@@', t, rss, len(sys.modules))\n"
)


def _env() -> dict[str, str]:
    """The workers' environment: the harness's, with bytecode caching as Python's default (on)."""
    env = child_env(None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _one(module: str | None) -> tuple[float, float, float, int]:
    stmt = f"import {module}" if module else "pass"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD.format(stmt=stmt)],
                          env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    for line in proc.stdout.splitlines():
        if line.startswith("@@IMPORT@@"):
            _, t, rss, nmods = line.split()
            return float(t), wall, float(rss), int(nmods)
    raise RuntimeError(f"import {module} failed:\n{proc.stderr[-3000:]}")


def _importtime(module: str) -> float | None:
    """Cumulative µs -X importtime reports for ``module``'s own top-level import."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                          env=_env(), capture_output=True, text=True)
    best = None
    for line in proc.stderr.splitlines():
        # "import time:      self [us] |  cumulative | imported package"
        parts = line.split("|")
        if len(parts) == 3 and parts[2].strip() == module:
            try:
                best = int(parts[1])
            except ValueError:
                pass
    return best / 1e6 if best is not None else None


def run(module_name: str | None = None, reps: int = REPS) -> dict:
    """Median/min/max import seconds, process seconds and peak RSS (MiB) over ``reps`` fresh processes."""
    module = module_name or None
    _one(module)                 # untimed: warms the disk cache and writes a missing bytecode cache
    samples = [_one(module) for _ in range(reps)]
    imp, wall, rss, nmods = zip(*samples, strict=True)
    return {
        "module": module or "(bare python -c pass)",
        "import_s": summarize(list(imp)),
        "process_s": summarize(list(wall)),
        "peak_rss_mb": summarize(list(rss)),
        "modules_loaded": statistics.median(nmods),
        "importtime_cumulative_s": _importtime(module) if module else None,
        "reps": reps,
    }


if __name__ == "__main__":
    for m in sys.argv[1:] or [None, "numpy", "torch"]:
        print(json.dumps(run(m)))
