"""chainrule's benchmark suite: the one entry point.

Run it as the guide says, so OpenBLAS picks its own kernel::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run.py --quick
    python benchmarks/run.py --only mlp --competitors numpy,torch --threads 2 --reps 3

Benchmarks (``--only``, default all):

* ``mlp``: one training epoch of a 784-256-256-10 ReLU MLP on MNIST (SGD,
  lr 0.1, momentum 0.9) at batch 32, 128 and 1024, with 2 threads and with 1,
  for every competitor in ``COMPETITORS``.  Each (competitor, threads, batch)
  runs in a fresh process: ``--warmup`` untimed epochs, then ``--reps`` timed.
  The competitors' processes stay up together and take turns, one timed epoch
  each per round (``--sequential``: one competitor's reps after another's);
  ``--processes N`` repeats that with N fresh sets of processes and pools the reps.
* ``ops``: per-op overhead of a 100-op elementwise chain on a (8,) tensor.
* ``scalar``: the same chain on scalars (0-d tensors, NumPy scalars, floats).
* ``import``: wall time and peak RSS of ``import numpy/torch/chainrule``.

Adding a competitor is one module plus one registry line:

* MLP: ``benchmarks/mlp_<name>.py`` with ``epoch(batch_size, seed, subset=None)
  -> (seconds, test_accuracy)`` (optionally ``extra_info() -> dict``), and
  ``COMPETITORS['<name>'] = 'mlp_<name>'``.  Start from the shared weights
  ``common.init_weights(seed)`` and visit images in ``common.train_order``.
* ops / scalar: a module with ``run(reps) -> {'rows': [...]}`` and/or
  ``run_scalar(reps)``, each row ``{'name': str, 'us_per_op': {'median',
  'min', 'max'}}`` (see ``ops_torch``), listed in ``OPS_COMPETITORS`` /
  ``SCALAR_COMPETITORS``.
* import: a module name in ``IMPORT_MODULES``.

Ratios in the MLP table are epoch time / the reference's epoch time at the
same batch size and thread count (so > 1 means slower than the reference).
The reference is chainrule when its worker is registered and present,
otherwise the hand-written NumPy MLP.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

# name -> module in benchmarks/ with epoch(batch_size, seed, subset=None)
COMPETITORS: dict[str, str] = {
    "chainrule": "mlp_chainrule",
    "chainrule-step": "mlp_chainrule_step",
    "numpy": "mlp_numpy",
    "torch": "mlp_torch",
    "sklearn": "mlp_sklearn",
}
# name -> module with run(reps) -> {"rows": [...]}
OPS_COMPETITORS: dict[str, str] = {"chainrule": "ops_chainrule", "torch": "ops_torch"}
# name -> module with run_scalar(reps) -> {"rows": [...]}
SCALAR_COMPETITORS: dict[str, str] = {"chainrule": "ops_chainrule", "torch": "ops_torch"}
IMPORT_MODULES: list[str] = ["numpy", "torch", "chainrule"]

BATCHES = (32, 128, 1024)
THREADS = (2, 1)
QUICK_SUBSET = 6000
BENCHES = ("mlp", "ops", "scalar", "micrograd", "import")


def module_present(module: str) -> bool:
    return (common.BENCH_DIR / f"{module}.py").exists()


def reference_name(names: list[str]) -> str | None:
    """chainrule when it is registered and its worker exists, else numpy."""
    for cand in ("chainrule", "numpy"):
        if cand in names and module_present(COMPETITORS[cand]):
            return cand
    return names[0] if names else None


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.2f}"


# ------------------------------------------------------------------ MLP

def run_mlp(args: argparse.Namespace, names: list[str]) -> list[dict[str, Any]]:
    results = []
    for threads in args.threads:
        for batch in args.batches:
            present = {}
            for name in names:
                module = COMPETITORS[name]
                if module_present(module):
                    present[name] = module
                else:
                    log(f"skip {name}: benchmarks/{module}.py not found")
            kwargs = dict(batch_size=batch, seed=args.seed, subset=args.subset, reps=args.reps,
                          warmup=args.warmup, redo_noisy=args.redo_noisy)
            if args.sequential:
                for name, module in present.items():
                    quiet = common.wait_for_quiet(args.max_wait) if args.max_wait > 0 else None
                    log(f"mlp {name:9s} threads={threads} batch={batch:5d} ...")
                    t0 = time.perf_counter()
                    try:
                        res = common.run_in_subprocess("common", "repeat_epoch", dict(module=module, **kwargs),
                                                       threads=threads)
                    except Exception as exc:  # keep going: one broken competitor is a row, not a crash
                        res = {"error": str(exc)}
                    results.append(_mlp_row(res, name, threads, batch, quiet, time.perf_counter() - t0))
                continue
            quiet = common.wait_for_quiet(args.max_wait) if args.max_wait > 0 else None
            t0 = time.perf_counter()
            pooled: dict[str, dict[str, Any]] = {}
            for p in range(args.processes):
                log(f"mlp threads={threads} batch={batch:5d}: {', '.join(present)}, reps alternating "
                    f"(processes {p + 1}/{args.processes}) ...")
                rows = common.interleaved_epochs(present, threads=threads, **kwargs,
                                                 on_rep=lambda name, t: log(f"  {name:14s} {t:.3f}s"))
                for name, res in rows.items():
                    _pool(pooled, name, res)
            for name, res in pooled.items():
                results.append(_mlp_row(res, name, threads, batch, quiet, time.perf_counter() - t0))
    return results


def _pool(pooled: dict[str, dict[str, Any]], name: str, res: dict[str, Any]) -> None:
    """Add one process's results for ``name`` to ``pooled``: reps are concatenated, the peak RSS is the
    largest, and ``process_medians`` keeps each process's median (their spread is the run's layout luck)."""
    if "times" in res:
        res["process_medians"] = [statistics.median(res["times"])]
    old = pooled.get(name)
    if old is None or "times" not in old:
        pooled[name] = res
        return
    if "times" not in res:
        return
    for key in ("times", "accuracy", "foreign_load", "all_times", "all_foreign_load", "process_medians"):
        old[key] = old[key] + res[key]
    old["peak_rss_mb"] = max(old["peak_rss_mb"], res["peak_rss_mb"])


def _mlp_row(res: dict[str, Any], name: str, threads: int, batch: int, quiet: float | None,
             wall_s: float) -> dict[str, Any]:
    res.update(name=name, threads=threads, batch_size=batch, load_before=quiet, wall_s=wall_s)
    if "times" in res:
        s = common.summarize(res["times"])
        log(f"  {name}: median {s['median']:.3f}s  (min {s['min']:.3f}, max {s['max']:.3f})"
            f"  acc {res['accuracy'][-1]:.4f}")
    else:
        log(f"  {name} FAILED: {str(res.get('error', '')).strip().splitlines()[-1:]}")
    return res


def mlp_table(results: list[dict[str, Any]], ref: str | None, n_train: int) -> str:
    ok = [r for r in results if "times" in r]
    ref_time = {(r["threads"], r["batch_size"]): statistics.median(r["times"])
                for r in ok if r["name"] == ref}
    per_process = any(len(r.get("process_medians", ())) > 1 for r in ok)
    lines = [
        f"### MLP 784-256-256-10, one epoch ({n_train:,} images), SGD lr 0.1 momentum 0.9",
        "",
        f"| competitor | threads | batch | epoch s (median) | min–max | × {ref} | test acc "
        "| other load | peak RSS MB |" + (" process medians |" if per_process else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---|" if per_process else ""),
    ]
    for r in results:
        if "times" not in r:
            lines.append(f"| {r['name']} | {r['threads']} | {r['batch_size']} | failed | | | | | |"
                         + (" |" if per_process else ""))
            continue
        s = common.summarize(r["times"])
        base = ref_time.get((r["threads"], r["batch_size"]))
        ratio = f"{s['median'] / base:.2f}" if base else "–"
        accs = sorted(set(round(a, 4) for a in r["accuracy"]))
        acc = "/".join(f"{a:.4f}" for a in accs)
        loads = [x for x in r.get("foreign_load", []) if x is not None]
        load = f"{100 * max(loads):.0f}%" if loads else "?"
        if loads and max(loads) > 0.10:
            load += " ⚠"
        lines.append(
            f"| {r['name']} | {r['threads']} | {r['batch_size']} | {fmt_s(s['median'])} | "
            f"{fmt_s(s['min'])}–{fmt_s(s['max'])} | {ratio} | {acc} | {load} | {r['peak_rss_mb']:.0f} |"
            + (f" {' / '.join(fmt_s(m) for m in r.get('process_medians', []))} |" if per_process else ""))
    lines += [
        "",
        f"× {ref}: median epoch time divided by {ref}'s at the same threads and batch (> 1 = slower).",
        "other load: the largest share of the CPUs that other processes used during a kept rep "
        "(⚠ above 10%: that row is disturbed; reps above 10% are redone up to --redo-noisy "
        "times and the quietest kept).",
    ]
    notes = sorted({f"{r['name']}: {k}={v}" for r in ok for k, v in r.get("extra", {}).items()
                    if k in ("visit_order", "shared_init", "flush_every")})
    if notes:
        lines.append("Notes: " + "; ".join(notes) + ".")
    return "\n".join(lines)


# ------------------------------------------------------------ ops / scalar

def run_rows(args: argparse.Namespace, registry: dict[str, str], func: str) -> list[dict[str, Any]]:
    out = []
    for name, module in registry.items():
        if not module_present(module):
            log(f"skip {name}: benchmarks/{module}.py not found")
            continue
        if args.max_wait > 0:
            common.wait_for_quiet(args.max_wait)
        log(f"{func} {name} ...")
        try:
            res = common.run_in_subprocess(module, func, {"reps": args.reps}, threads=1)
        except Exception as exc:
            log(f"  FAILED: {str(exc).strip().splitlines()[-1]}")
            res = {"error": str(exc), "rows": []}
        res["competitor"] = name
        out.append(res)
    return out


def rows_table(title: str, results: list[dict[str, Any]]) -> str:
    lines = [f"### {title}", "", "| what | µs per op (median) | min–max |", "|---|---:|---:|"]
    for res in results:
        for row in res.get("rows", []):
            s = row["us_per_op"]
            lines.append(f"| {row['name']} | {s['median']:.3f} | {s['min']:.3f}–{s['max']:.3f} |")
        if "error" in res:
            lines.append(f"| {res['competitor']} | failed | |")
    if results and results[0].get("ops"):
        lines += ["", "Chain: 100 ops cycling " + ", ".join(results[0]["ops"])
                  + "; 1 thread; each rep times many whole chains."]
    return "\n".join(lines)


# ------------------------------------------------------------------ micrograd

def run_micrograd(args: argparse.Namespace) -> dict[str, Any]:
    """The scalar engine against a micrograd-style closure engine (benchmarks/bench_scalar.py)."""
    if args.max_wait > 0:
        common.wait_for_quiet(args.max_wait)
    log("micrograd: chainrule.scalar vs closure engine ...")
    return common.run_in_subprocess("bench_scalar", "run", {"reps": args.reps}, threads=1)


def micrograd_table(res: dict[str, Any]) -> str:
    return "\n".join([
        "### Scalar engine: 2-16-16-1 MLP, 100 points, one epoch of per-sample SGD", "",
        "| engine | s per epoch (median) | ratio |", "|---|---:|---:|",
        f"| chainrule.scalar | {res['chainrule_median_s']:.4f} | 1.00 |",
        f"| micrograd-style closures | {res['micrograd_median_s']:.4f} | {res['speedup']:.2f}x slower |",
    ])


# ------------------------------------------------------------------ import

def run_import(args: argparse.Namespace) -> list[dict[str, Any]]:
    import importlib.util

    import import_cost

    reps = max(args.reps, 5) if not args.quick else args.reps
    out = [import_cost.run(None, reps)]
    src = str(common.BENCH_DIR.parent / "src")
    sys.path.insert(0, src)
    for mod in IMPORT_MODULES:
        if importlib.util.find_spec(mod) is None:
            log(f"skip import {mod}: not importable")
            continue
        log(f"import {mod} ...")
        try:
            out.append(import_cost.run(mod, reps))
        except Exception as exc:
            out.append({"module": mod, "error": str(exc)})
    sys.path.remove(src)
    return out


def import_table(results: list[dict[str, Any]]) -> str:
    lines = ["### Import cost (fresh process each time)", "",
             "| module | import ms (median) | min–max | process ms | peak RSS MB | RSS over bare python |",
             "|---|---:|---:|---:|---:|---:|"]
    bare = results[0]["peak_rss_mb"]["median"] if results and "peak_rss_mb" in results[0] else 0.0
    for r in results:
        if "error" in r:
            lines.append(f"| {r['module']} | failed | | | | |")
            continue
        i, p, m = r["import_s"], r["process_s"], r["peak_rss_mb"]
        lines.append(f"| {r['module']} | {1e3 * i['median']:.1f} | "
                     f"{1e3 * i['min']:.1f}–{1e3 * i['max']:.1f} | "
                     f"{1e3 * p['median']:.0f} | {m['median']:.1f} | {m['median'] - bare:+.1f} |")
    lines += ["", "import ms: perf_counter around the import statement; process ms: the whole "
              "`python -c` run, interpreter start-up included; peak RSS: VmHWM at exit."]
    return "\n".join(lines)


# ------------------------------------------------------------------ machine

def machine_header(info: dict[str, Any], blas: list[dict[str, Any]],
                   worker_blas: dict[str, str]) -> str:
    lines = [
        "## chainrule benchmarks",
        "",
        f"- CPU: {info['cpu']} ({info['cores']} cores), {info['platform']}",
        f"- Python {info['python']}, numpy {info['numpy']}, torch {info['torch']}, "
        f"scikit-learn {info['sklearn']}",
        f"- BLAS (threadpoolctl, numpy in the parent): {common.blas_summary(blas)}",
    ]
    for name, summary in sorted(worker_blas.items()):
        lines.append(f"- thread pools in the {name} worker: {summary}")
    if "openblas_overrides_in_parent_env" in info:
        lines.append(f"- NOTE: {info['openblas_overrides_in_parent_env']} set in this shell; "
                     "removed for the workers (run with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE`).")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help=f"short run: {QUICK_SUBSET:,}-image subset, 3 reps")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions (default 5; 3 with --quick)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed warm-up epochs per process")
    ap.add_argument("--only", default=",".join(BENCHES),
                    help="comma list of mlp, ops, scalar, micrograd, import (default: all)")
    ap.add_argument("--competitors", default=None,
                    help="comma list of MLP competitors (default: all registered)")
    ap.add_argument("--batches", default=",".join(map(str, BATCHES)))
    ap.add_argument("--threads", default=",".join(map(str, THREADS)))
    ap.add_argument("--subset", type=int, default=None,
                    help="train on the first N images (default all 60,000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-wait", type=float, default=30.0,
                    help="seconds to wait for other processes to go quiet before each "
                         "measurement (0: don't wait)")
    ap.add_argument("--redo-noisy", type=int, default=None,
                    help="extra reps allowed per measurement to replace reps during which "
                         "other processes used >10%% of the CPUs (default: --reps)")
    ap.add_argument("--processes", type=int, default=1,
                    help="MLP: run every competitor in this many fresh processes, one after another, and pool "
                         "their reps (--reps each): a process's speed depends on where its memory lands, "
                         "by up to ~8 %% here, so more processes give a steadier median")
    ap.add_argument("--sequential", action="store_true",
                    help="MLP: run each competitor's reps in one go, one competitor after the other (default: "
                         "every competitor's worker stays up and their reps alternate, so slow drifts of "
                         "the machine hit all of them alike)")
    ap.add_argument("--json", default=None, help="also write all results to this JSON file")
    args = ap.parse_args(argv)
    args.only = [b.strip() for b in args.only.split(",") if b.strip()]
    for b in args.only:
        if b not in BENCHES:
            ap.error(f"--only: unknown benchmark {b!r} (choose from {', '.join(BENCHES)})")
    args.batches = [int(b) for b in args.batches.split(",")]
    args.threads = [int(t) for t in args.threads.split(",")]
    if args.processes < 1:
        ap.error("--processes must be at least 1")
    if args.sequential and args.processes != 1:
        ap.error("--processes pools interleaved runs; it does not combine with --sequential")
    if args.reps is None:
        args.reps = 3 if args.quick else 5
    if args.redo_noisy is None:
        args.redo_noisy = args.reps
    if args.quick and args.subset is None:
        args.subset = QUICK_SUBSET
    if args.competitors is None:
        args.competitors = list(COMPETITORS)
    else:
        args.competitors = [c.strip() for c in args.competitors.split(",") if c.strip()]
        for c in args.competitors:
            if c not in COMPETITORS:
                ap.error(f"--competitors: unknown {c!r} (registered: {', '.join(COMPETITORS)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t_start = time.perf_counter()
    info = common.machine_info()
    blas = common.blas_info()
    report: dict[str, Any] = {"machine": info, "blas_parent": blas,
                              "args": {k: v for k, v in vars(args).items()}}
    sections: list[str] = []
    worker_blas: dict[str, str] = {}

    if "mlp" in args.only:
        names = args.competitors
        ref = reference_name(names)
        res = run_mlp(args, names)
        report["mlp"] = res
        report["mlp_reference"] = ref
        for r in res:
            if "blas" in r:
                worker_blas.setdefault(r["name"], common.blas_summary(r["blas"]))
        n_train = args.subset or 60000
        sections.append(mlp_table(res, ref, n_train))
    if "ops" in args.only:
        res = run_rows(args, OPS_COMPETITORS, "run")
        report["ops"] = res
        sections.append(rows_table("Per-op overhead, (8,) float32 tensor", res))
    if "scalar" in args.only:
        res = run_rows(args, SCALAR_COMPETITORS, "run_scalar")
        report["scalar"] = res
        sections.append(rows_table("Per-op overhead on scalars", res))
    if "micrograd" in args.only:
        res = run_micrograd(args)
        report["micrograd"] = res
        sections.append(micrograd_table(res))
    if "import" in args.only:
        res = run_import(args)
        report["import"] = res
        sections.append(import_table(res))

    report["total_wall_s"] = time.perf_counter() - t_start
    text = machine_header(info, blas, worker_blas) + "\n\n" + "\n\n".join(sections)
    text += f"\n\n_{args.reps} timed reps after {args.warmup} warm-up; total {report['total_wall_s']:.0f} s._"
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
