"""chainrule.io: state dicts and training checkpoints as safetensors files.

Covers the round trip (dtypes, nesting, metadata), PyTorch interop through ``safetensors.torch``,
clear one-line errors for truncated and foreign files, atomic writes, and -- the point of
checkpoints -- that a run stopped half-way and resumed in fresh state ends with the same weights,
byte for byte, as a run that was never interrupted.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim, serialization
from chainrule.data import DataLoader, TensorDataset
from chainrule.io import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    load,
    load_checkpoint,
    load_metadata,
    read_checkpoint,
    save,
    save_checkpoint,
)
from chainrule.serialization import SafetensorsError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "src")


def _mlp(seed=0, dropout=0.0):
    cr.manual_seed(seed)
    layers = [nn.Linear(4, 16), nn.Tanh()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(16, 3))


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(sa[k].data.tobytes() == sb[k].data.tobytes() for k in sa)


# --------------------------------------------------------------------------------------------------
# save / load
# --------------------------------------------------------------------------------------------------

def test_round_trip_keeps_names_dtypes_and_values(tmp_path):
    rng = np.random.default_rng(0)
    sd = {
        "w": cr.from_numpy(rng.standard_normal((3, 4)).astype(np.float32)),
        "d": rng.standard_normal(5),                                   # float64 ndarray
        "i": cr.tensor([1, 2, 3]),                                     # int64
        "mask": np.array([True, False]),
        "scalar": cr.tensor(2.5),                                      # 0-d
        "empty": np.zeros((0, 3), dtype=np.float32),
        "h": np.arange(4, dtype=np.float16),
    }
    path = tmp_path / "sd.safetensors"
    save(sd, path)
    back = load(path)
    assert set(back) == set(sd)
    for k, v in sd.items():
        a = v.data if isinstance(v, cr.Tensor) else v
        assert isinstance(back[k], cr.Tensor)
        assert back[k].dtype == a.dtype and back[k].shape == a.shape
        np.testing.assert_array_equal(back[k].data, a)


def test_nested_dicts_are_flattened_with_dots(tmp_path):
    save({"enc": {"0": {"weight": np.ones(2, np.float32)}, "bias": np.zeros(1, np.float32)}, "step": 7},
         tmp_path / "n.safetensors")
    back = load(tmp_path / "n.safetensors")
    assert sorted(back) == ["enc.0.weight", "enc.bias", "step"]
    assert back["step"].item() == 7


def test_model_round_trip_and_metadata(tmp_path):
    model = _mlp(0)
    path = tmp_path / "m.safetensors"
    cr.save(model.state_dict(), path, metadata={"note": "hello"})          # the lazy cr.save
    other = _mlp(1)
    assert not _same_weights(model, other)
    other.load_state_dict(cr.load(path))
    assert _same_weights(model, other)
    assert load_metadata(path) == {"note": "hello"}


def test_save_rejects_non_state_dicts(tmp_path):
    with pytest.raises(TypeError, match="state_dict"):
        save(_mlp(), tmp_path / "x.safetensors")
    with pytest.raises(TypeError, match="'bad'"):
        save({"bad": "text"}, tmp_path / "x.safetensors")
    with pytest.raises(ValueError, match="twice"):
        save({"a.b": np.ones(1), "a": {"b": np.ones(1)}}, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


# --------------------------------------------------------------------------------------------------
# PyTorch interop through the safetensors package
# --------------------------------------------------------------------------------------------------

def test_files_load_in_torch_and_back(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    model = _mlp(0)
    path = tmp_path / "m.safetensors"
    save(model.state_dict(), path)

    # chainrule -> torch: the same nn.Sequential takes the file, and computes the same outputs
    tensors = st.load_file(str(path))
    tmodel = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    tmodel.load_state_dict(tensors)
    x = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    with torch.no_grad():
        expected = tmodel(torch.from_numpy(x)).numpy()
    with cr.no_grad():
        got = model(cr.from_numpy(x)).data
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)

    # torch -> chainrule, including dtypes chainrule has no own writer for (bfloat16)
    tpath = tmp_path / "t.safetensors"
    st.save_file({"a": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.tensor([1, 2]),
                  "c": torch.ones(3, dtype=torch.bfloat16)}, str(tpath), metadata={"format": "pt"})
    back = load(tpath)
    np.testing.assert_array_equal(back["a"].data, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert back["b"].dtype == np.int64 and back["c"].dtype == np.float32
    assert load_metadata(tpath) == {"format": "pt"}


def test_checkpoint_files_are_plain_safetensors_too(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    model = _mlp(0)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(cr.randn(2, 4)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "c.safetensors", model, opt, epoch=1)
    arrays = st.load_file(str(tmp_path / "c.safetensors"))
    assert "model.0.weight" in arrays and "optim.state.0.momentum_buffer" in arrays


# --------------------------------------------------------------------------------------------------
# bad files: one clear line naming the file
# --------------------------------------------------------------------------------------------------

def _one_line_naming(err: Exception, path) -> None:
    message = str(err)
    assert "\n" not in message
    assert str(path) in message


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "m.safetensors"
    save(_mlp().state_dict(), path)
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 40, 5, 0):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(SafetensorsError) as info:
            load(bad)
        _one_line_naming(info.value, bad)


def test_foreign_files_are_refused_without_unpickling(tmp_path):
    # A pickle that would create a file if it were ever unpickled.
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(SafetensorsError, match="pickle") as info:
        load(evil)
    _one_line_naming(info.value, evil)
    assert not marker.exists()

    text = tmp_path / "notes.safetensors"
    text.write_text("just some text, not tensors\n")
    with pytest.raises(SafetensorsError) as info:
        load(text)
    _one_line_naming(info.value, text)
    with pytest.raises(SafetensorsError):
        load_checkpoint(text, _mlp())
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.safetensors")


def test_torch_save_checkpoint_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, str(path))
    with pytest.raises(SafetensorsError, match="zip|pickle") as info:
        load(path)
    _one_line_naming(info.value, path)


# --------------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------------

def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save({"w": np.ones(3, np.float32)}, path)
    before = path.read_bytes()

    def explode(*args, **kwargs):
        raise KeyboardInterrupt        # e.g. Ctrl-C in the middle of writing the data

    monkeypatch.setattr(serialization, "_write_array", explode)
    with pytest.raises(KeyboardInterrupt):
        save({"w": np.zeros(3, np.float32)}, path)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, _mlp(), epoch=1)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.safetensors"]        # no temporary file left behind


# --------------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------------

def _train_steps(model, opt, sched, loader, epochs):
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        model.train()
        for x, y in loader:
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()
            sched.step()


def _toy_loader(generator=None):
    X = cr.from_numpy(np.random.default_rng(0).standard_normal((96, 4)).astype(np.float32))
    y = cr.from_numpy((np.arange(96) % 3).astype(np.int64))
    return DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True, generator=generator)


def test_checkpoint_restores_everything(tmp_path):
    model = _mlp(0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    loader = _toy_loader()
    _train_steps(model, opt, sched, loader, 1)
    cr.manual_seed(123)
    path = tmp_path / "ck.safetensors"
    save_checkpoint(path, model, opt, sched, epoch=1, step=6, extra={"config": {"hidden": [16]}, "t": (1, 2)})
    expected_rng = cr.rand(3).tolist()

    meta = load_metadata(path)
    assert meta["format"] == CHECKPOINT_FORMAT and meta["epoch"] == "1"

    model2 = _mlp(5)
    opt2 = optim.Adam(model2.parameters(), lr=0.5)
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=7, gamma=0.1)
    cr.manual_seed(999)
    info = load_checkpoint(path, model2, opt2, sched2)
    assert info["epoch"] == 1 and info["step"] == 6
    assert info["extra"] == {"config": {"hidden": [16]}, "t": (1, 2)}
    assert _same_weights(model, model2)
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    assert sched2.state_dict() == sched.state_dict()
    for p, p2 in zip(model.parameters(), model2.parameters(), strict=True):
        for key in ("exp_avg", "exp_avg_sq"):
            np.testing.assert_array_equal(opt.state[p][key].data, opt2.state[p2][key].data)
    assert cr.rand(3).tolist() == expected_rng            # the global generator was restored


def test_checkpoint_errors_are_one_line(tmp_path):
    model = _mlp(0)
    weights = tmp_path / "weights.safetensors"
    save(model.state_dict(), weights)
    with pytest.raises(CheckpointError, match="cr.load") as info:
        load_checkpoint(weights, model)
    _one_line_naming(info.value, weights)

    ck = tmp_path / "ck.safetensors"
    save_checkpoint(ck, model, optim.Adam(model.parameters()), epoch=2)
    with pytest.raises(CheckpointError, match="Adam") as info:
        load_checkpoint(ck, model, optim.SGD(model.parameters(), lr=0.1))
    _one_line_naming(info.value, ck)
    with pytest.raises(CheckpointError, match="scheduler"):
        opt = optim.Adam(model.parameters())
        load_checkpoint(ck, model, opt, optim.lr_scheduler.StepLR(opt, 1))
    wrong = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    with pytest.raises(CheckpointError, match="size mismatch") as info:
        load_checkpoint(ck, wrong)
    _one_line_naming(info.value, ck)

    data = ck.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 10])
    with pytest.raises(SafetensorsError) as info:
        read_checkpoint(cut)
    _one_line_naming(info.value, cut)


@pytest.mark.parametrize("own_generator", [False, True])
def test_resume_is_bit_for_bit(tmp_path, own_generator):
    """N epochs in one go == N/2 epochs, checkpoint, fresh state, load, N/2 more (dropout, momentum,
    a per-batch schedule and a shuffling loader make every piece of state matter)."""
    epochs = 6

    def setup(seed):
        model = _mlp(seed, dropout=0.2)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
        loader = _toy_loader(cr.Generator(7) if own_generator else None)
        sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, epochs=epochs, steps_per_epoch=len(loader))
        return model, opt, sched, loader

    cr.manual_seed(0)
    straight = setup(0)
    _train_steps(straight[0], straight[1], straight[2], straight[3], epochs)

    cr.manual_seed(0)
    first = setup(0)
    _train_steps(first[0], first[1], first[2], first[3], epochs // 2)
    path = tmp_path / "half.safetensors"
    save_checkpoint(path, first[0], first[1], first[2], epoch=epochs // 2, loader=first[3])

    cr.manual_seed(12345)                     # fresh state: other weights, other random numbers
    second = setup(3)
    info = load_checkpoint(path, second[0], second[1], second[2], loader=second[3])
    _train_steps(second[0], second[1], second[2], second[3], epochs - info["epoch"])

    assert not _same_weights(first[0], straight[0])
    assert _same_weights(second[0], straight[0])
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    save(straight[0].state_dict(), a)
    save(second[0].state_dict(), b)
    assert a.read_bytes() == b.read_bytes()


def test_fit_resume_in_a_fresh_process_is_bit_for_bit(tmp_path):
    """The same with ``fit`` + ``ModelCheckpoint``, the second half in a new Python process."""
    script = textwrap.dedent("""
        import sys, numpy as np, chainrule as cr
        from chainrule import nn, optim
        from chainrule.data import DataLoader, TensorDataset
        from chainrule.train import fit, ModelCheckpoint
        mode, ckdir, out = sys.argv[1], sys.argv[2], sys.argv[3]
        cr.manual_seed(0 if mode != "resume" else 42)
        X = cr.from_numpy(np.random.default_rng(0).standard_normal((120, 4)).astype(np.float32))
        y = cr.from_numpy((np.arange(120) % 3).astype(np.int64))
        loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=True)
        model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 3))
        opt = optim.Adam(model.parameters(), lr=0.01)
        sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=6)
        epochs = 6 if mode != "half" else 3
        hist = fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=epochs, val_loader=loader,
                   scheduler=sched, callbacks=[ModelCheckpoint(ckdir)], verbose=0,
                   resume=ckdir + "/last.safetensors" if mode == "resume" else None)
        cr.save(model.state_dict(), out)
        print(len(hist.epoch), hist.epoch[-1])
    """)
    (tmp_path / "run.py").write_text(script)
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))

    def run(*args):
        done = subprocess.run([sys.executable, str(tmp_path / "run.py"), *args], capture_output=True,
                              text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert run("full", str(tmp_path / "a"), str(tmp_path / "full.safetensors")) == ["6", "5"]
    assert run("half", str(tmp_path / "b"), str(tmp_path / "half.safetensors")) == ["3", "2"]
    assert run("resume", str(tmp_path / "b"), str(tmp_path / "resumed.safetensors")) == ["6", "5"]
    assert (tmp_path / "full.safetensors").read_bytes() == (tmp_path / "resumed.safetensors").read_bytes()
    assert (tmp_path / "full.safetensors").read_bytes() != (tmp_path / "half.safetensors").read_bytes()
