"""The benchmark programs still run and still compare like with like (a small subset of MNIST)."""

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

mlp_chainrule = pytest.importorskip("mlp_chainrule")
mlp_numpy = pytest.importorskip("mlp_numpy")


@pytest.mark.parametrize("batch", [32, 128])
def test_chainrule_and_hand_numpy_do_the_same_arithmetic(batch):
    # Same initial weights, same batches, same update rule: the weights after 40 steps agree to float32
    # rounding (the products may be summed in a different order), and so does the test accuracy.
    subset = 40 * batch
    _, p = mlp_numpy.train(batch, seed=0, subset=subset)
    import chainrule as cr
    import chainrule.nn.functional as F
    from common import load_mnist, train_order

    X, y = load_mnist("train")
    X, y = X[:subset], y[:subset]
    order = train_order(len(X), 0)
    model = mlp_chainrule.build_model(0)
    opt = cr.optim.SGD(model.parameters(), lr=mlp_chainrule.LR, momentum=mlp_chainrule.MOMENTUM)
    Xt, yt = cr.from_numpy(X), cr.from_numpy(y)
    for start in range(0, subset, batch):
        idx = order[start:start + batch]
        loss = F.cross_entropy(model(Xt[idx].float().div_(255)), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    ours = [m.weight.data for m in model if isinstance(m, cr.nn.Linear)]
    for w, w_hand in zip(ours, p.W):
        np.testing.assert_allclose(w, w_hand, rtol=0, atol=2e-5)


def test_trainstep_benchmark_matches_the_plain_loop_bit_for_bit():
    # mlp_chainrule_step replays the plain loop's step (TrainStep); 30 steps at batch 32 from the shared weights
    # must give exactly the plain loop's weights, and its epoch() must run (it raises if replay was refused).
    import chainrule as cr
    import chainrule.nn.functional as F
    from common import load_mnist, train_order

    from chainrule.train import TrainStep

    step_module = pytest.importorskip("mlp_chainrule_step")
    X, y = load_mnist("train")
    order = train_order(len(X), 0)
    Xt, yt = cr.from_numpy(X), cr.from_numpy(y)
    models = []
    for replay in (False, True):
        model = mlp_chainrule.build_model(0)
        opt = cr.optim.SGD(model.parameters(), lr=mlp_chainrule.LR, momentum=mlp_chainrule.MOMENTUM)
        step = TrainStep(model, F.cross_entropy, opt, replay=replay)
        for start in range(0, 30 * 32, 32):
            idx = order[start:start + 32]
            step(Xt[idx].float().div_(255), yt[idx])
        assert step.replays == (28 if replay else 0)
        models.append(model)
    for a, b in zip(*(m.parameters() for m in models)):
        assert np.array_equal(a.data, b.data)
    seconds, acc = step_module.epoch(64, seed=0, subset=64 * 20)
    assert seconds > 0 and 0.3 < acc <= 1.0


def test_interleaved_workers_take_turns_and_report_a_broken_competitor(tmp_path, monkeypatch):
    """The MLP harness keeps one worker process per competitor and alternates their timed epochs (starting
    with a different competitor each round); a competitor whose worker fails is an error row, the others
    still run; the reps are each worker's own epochs."""
    import common

    log = tmp_path / "calls.txt"
    for name, body in (("fake_a", "return 0.25, 0.5"), ("fake_b", "return 0.5, 0.75"),
                       ("fake_bad", "raise ValueError('broken competitor')")):
        (tmp_path / f"{name}.py").write_text(
            "import os\n"
            "def epoch(batch_size, seed=0, subset=None):\n"
            f"    with open({str(log)!r}, 'a') as f:\n"
            f"        f.write({name!r} + ' ' + str(batch_size) + ' ' + str(os.getpid()) + '\\n')\n"
            f"    {body}\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    out = common.interleaved_epochs({"a": "fake_a", "bad": "fake_bad", "b": "fake_b"}, batch_size=8, reps=2,
                                    warmup=1, threads=1)
    assert list(out) == ["a", "bad", "b"]
    assert "broken competitor" in out["bad"]["error"]
    assert out["a"]["times"] == [0.25, 0.25] and out["a"]["accuracy"] == [0.5, 0.5]
    assert out["b"]["times"] == [0.5, 0.5] and out["b"]["accuracy"] == [0.75, 0.75]
    assert out["a"]["peak_rss_mb"] > 0 and out["b"]["batch_size"] == 8
    calls = [line.split() for line in log.read_text().splitlines()]
    timed = [name for name, _, _ in calls[3:]]             # after each worker's warm-up epoch
    assert [name for name, _, _ in calls[:3]] == ["fake_a", "fake_bad", "fake_b"]
    assert timed == ["fake_a", "fake_b", "fake_b", "fake_a"]   # round 2 starts with the next competitor
    pids = {name: {pid for n, _, pid in calls if n == name} for name in ("fake_a", "fake_b")}
    assert all(len(p) == 1 for p in pids.values()) and pids["fake_a"] != pids["fake_b"]


def test_run_options_for_processes_and_order():
    """--processes N pools N sets of interleaved workers; it must be at least 1 and does not combine with
    --sequential (one competitor after another)."""
    import run

    args = run.parse_args(["--only", "mlp", "--processes", "3"])
    assert args.processes == 3 and not args.sequential
    assert run.parse_args(["--sequential"]).processes == 1
    for bad in (["--processes", "0"], ["--sequential", "--processes", "2"]):
        with pytest.raises(SystemExit):
            run.parse_args(bad)


def test_floor_times_every_part_of_a_step():
    """benchmarks/floor.py's worker runs the step's kernels (products in both layouts, elementwise work, the
    flat SGD update) and reports each part in µs."""
    floor = pytest.importorskip("floor")
    r = floor.floor_step(32, reps=5)
    assert r["batch"] == 32 and r["blas"]
    for part in ("gemm_us", "elementwise_us", "optimizer_us"):
        assert np.isfinite(r[part]) and 0 < r[part] < 1e6, (part, r[part])


def test_import_cost_times_imports_with_bytecode_caching_on(monkeypatch):
    """Machines that set PYTHONDONTWRITEBYTECODE would charge a checkout's import for compiling its sources every
    time; the import workers run without it, as a user's Python does, after an untimed first import."""
    import_cost = pytest.importorskip("import_cost")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert "PYTHONDONTWRITEBYTECODE" not in import_cost._env()
    r = import_cost.run("json", reps=1)
    assert r["module"] == "json" and r["reps"] == 1
    assert 0 < r["import_s"]["median"] < 10 and r["peak_rss_mb"]["median"] > 1 and r["modules_loaded"] > 1


@pytest.mark.parametrize("batch", [32, 64])
def test_fresh_buffers_step_is_the_hand_step_with_new_arrays(batch):
    """benchmarks/fresh_buffers.py's two variants do the same arithmetic (the weights agree bit for bit after every
    epoch) and each step's time is reported in µs; at batch 64 the forward products take the plain layout."""
    fresh_buffers = pytest.importorskip("fresh_buffers")
    r = fresh_buffers.compare(batch, tuned=False, epochs=2, subset=20 * batch)
    assert r["same_weights"] is True and r["blas"]
    for k in ("preallocated", "fresh"):
        assert 0 < r[k] < 1e6, (k, r[k])
    assert r["ratio"] == pytest.approx(r["fresh"] / r["preallocated"])
    # The weights really moved, so the comparison is not between two untouched copies.
    from common import init_weights
    p = fresh_buffers.mn.Params(0)
    fresh_buffers.fresh_step(p, *fresh_buffers.load_mnist("train"), np.arange(batch))
    assert not np.array_equal(p.W[0], init_weights(0)[0][0])
