"""Bad input at the user-facing boundaries: every error is one clear line naming the problem, and
nothing already on disk is lost (CLI options and files, safetensors files, checkpoints)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import cli, nn, optim
from chainrule import serialization as ser
from chainrule.io import CheckpointError, load_checkpoint, save, save_checkpoint
from chainrule.serialization import SafetensorsError, load_arrays, save_arrays

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
MNIST_DIR = os.path.join(ROOT, "src", "chainrule", "data", "mnist")


def run_cli(*args, timeout=60):
    """``python -m chainrule ARGS`` in a fresh process: (exit code, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "chainrule", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)
    return done.returncode, done.stdout, done.stderr


def main_exit(capsys, *args):
    """``cli.main(ARGS)`` in this process (argparse exits included): (exit code, stderr)."""
    try:
        code = cli.main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def assert_clean_error(code, err, command, *fragments):
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"chainrule {command}: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny model file as 'chainrule train' writes it (784-16-10), built directly."""
    cr.manual_seed(0)
    config = dict(cli.DEFAULTS, hidden=[16], lr=0.1, weight_decay=0.0)
    model = cli.build_mlp(784, [16], 10)
    path = str(tmp_path_factory.mktemp("model") / "tiny.safetensors")
    save(model.state_dict(), path, metadata=cli._model_metadata(config, 784, cli._classes("mnist"), None))
    return path


def header_file(path, header: dict, data: bytes = b"", size_prefix: int | None = None) -> str:
    raw = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw) if size_prefix is None else size_prefix) + raw + data)
    return str(path)


# --------------------------------------------------------------------------------------------------
# CLI: option values
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["--epochs", "0"], "--epochs"), (["--epochs", "-3"], "--epochs"), (["--epochs", "two"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"), (["--lr", "-0.1"], "--lr"), (["--lr", "fast"], "--lr"),
    (["--lr", "nan"], "--lr"), (["--lr", "inf"], "--lr"), (["--hidden", "a,b"], "--hidden"),
    (["--hidden", "16,0"], "--hidden"), (["--hidden", "-5"], "--hidden"), (["--hidden", "16,,8"], "--hidden"),
    (["--activation", "swish"], "swish"), (["--optimizer", "lbfgs"], "lbfgs"), (["--threads", "0"], "--threads"),
    (["--dropout", "1"], "--dropout"), (["--momentum", "-1"], "--momentum"), (["--seed", "x"], "--seed"),
    (["--limit", "0"], "--limit"), (["--dataset", "cifar"], "cifar"), (["--weight-decay", "-1"], "--weight-decay"),
    (["--schedule", "step"], "step"), (["--bogus"], "--bogus"),
])
def test_train_bad_option_values(capsys, args, fragment):
    code, err = main_exit(capsys, "train", *args)
    assert_clean_error(code, err, "train", fragment)


def test_bad_option_values_other_commands(capsys, model_file):
    assert_clean_error(*main_exit(capsys, "evaluate", model_file, "--batch-size", "0"), "evaluate", "--batch-size")
    assert_clean_error(*main_exit(capsys, "evaluate", model_file, "--limit", "-1"), "evaluate", "--limit")
    assert_clean_error(*main_exit(capsys, "predict", model_file, "0", "--top", "0"), "predict", "--top")
    assert_clean_error(*main_exit(capsys, "demo", "no-such-demo", "--fast"), "demo", "no-such-demo")


def test_limit_larger_than_the_dataset_is_fine(capsys, model_file):
    code, err = main_exit(capsys, "evaluate", model_file, "--limit", "10000000")
    assert code == 0, err


def test_train_output_folder_missing_or_not_writable(capsys, tmp_path):
    missing = tmp_path / "nope" / "m.safetensors"
    assert_clean_error(*main_exit(capsys, "train", "--limit", "100", "--epochs", "1", "-o", missing),
                       "train", "does not exist")
    assert not missing.parent.exists()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced")
        code, err = main_exit(capsys, "train", "--limit", "100", "--epochs", "1", "-q", "-o",
                              locked / "m.safetensors")
        assert_clean_error(code, err, "train", str(locked))
    finally:
        locked.chmod(0o700)


def test_train_output_is_a_folder(capsys, tmp_path):
    code, err = main_exit(capsys, "train", "--limit", "100", "--epochs", "1", "-q", "-o", tmp_path)
    assert_clean_error(code, err, "train", str(tmp_path))


def test_checkpoint_dir_is_a_file(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    code, err = main_exit(capsys, "train", "--limit", "100", "--epochs", "1", "-q", "-o", tmp_path / "m.st",
                          "--checkpoint-dir", f)
    assert_clean_error(code, err, "train", "--checkpoint-dir")
    assert f.read_text() == "x"


def test_resume_bad_files(capsys, tmp_path, model_file):
    assert_clean_error(*main_exit(capsys, "train", "--resume", tmp_path / "nope"), "train", "no such file")
    assert_clean_error(*main_exit(capsys, "train", "--resume", model_file), "train", "not a chainrule training")
    text = tmp_path / "t.txt"
    text.write_text("hello world, not a checkpoint\n")
    assert_clean_error(*main_exit(capsys, "train", "--resume", text), "train", str(text))


# --------------------------------------------------------------------------------------------------
# CLI: model files
# --------------------------------------------------------------------------------------------------

def _bad_model(kind, tmp_path, model_file):
    path = tmp_path / f"{kind}.safetensors"
    good = open(model_file, "rb").read()
    if kind == "missing":
        return path, "no such file"
    if kind == "folder":
        path.mkdir()
        return path, "folder"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "empty"
    if kind == "text":
        path.write_text("this is just some text\n" * 10)
        return path, str(path)
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
        return path, "truncated"
    if kind == "unreadable":
        path.write_bytes(good)
        path.chmod(0)
        return path, "permission"
    state = cr.load(model_file)
    meta = ser.read_metadata(model_file)
    if kind == "missing-keys":
        del state["2.bias"]
        save(state, path, metadata=meta)
        return path, "2.bias"
    if kind == "wrong-arch":
        arch = json.loads(meta[cli.ARCH_KEY])
        arch["hidden"] = [32]
        save(state, path, metadata=dict(meta, **{cli.ARCH_KEY: json.dumps(arch)}))
        return path, "do not match"
    if kind == "no-arch":
        save(state, path)
        return path, "chainrule.arch"
    if kind == "garbage-arch":
        save(state, path, metadata={cli.ARCH_KEY: json.dumps({"hidden": "a,b", "input_size": 784})})
        return path, "architecture"
    if kind == "arch-not-a-dict":
        save(state, path, metadata={cli.ARCH_KEY: "[1, 2]"})
        return path, "architecture"
    if kind == "bad-activation":
        arch = json.loads(meta[cli.ARCH_KEY])
        arch["activation"] = "swish"
        save(state, path, metadata=dict(meta, **{cli.ARCH_KEY: json.dumps(arch)}))
        return path, "swish"
    arch_edits = {"wrong-dataset": ("dataset", "cifar", "cifar"), "input-size": ("input_size", 100, "784"),
                  "output-size": ("output_size", 5, "10 classes"), "few-classes": ("classes", ["a"], "classes"),
                  "bad-dropout": ("dropout", 7, "dropout"), "bool-hidden": ("hidden", [True], "hidden")}
    if kind in arch_edits:
        key, value, fragment = arch_edits[kind]
        arch = json.loads(meta[cli.ARCH_KEY])
        arch[key] = value
        save(state, path, metadata=dict(meta, **{cli.ARCH_KEY: json.dumps(arch)}))
        return path, fragment
    raise AssertionError(kind)


MODEL_PROBLEMS = ["missing", "folder", "empty", "text", "truncated", "unreadable", "missing-keys", "wrong-arch",
                  "no-arch", "garbage-arch", "arch-not-a-dict", "bad-activation", "wrong-dataset", "input-size",
                  "output-size", "few-classes", "bad-dropout", "bool-hidden"]


@pytest.mark.parametrize("kind", MODEL_PROBLEMS)
@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_bad_model_file(capsys, tmp_path, model_file, command, kind):
    path, fragment = _bad_model(kind, tmp_path, model_file)
    if kind == "unreadable" and os.access(path, os.R_OK):
        pytest.skip("running as root: permissions are not enforced")
    args = [command, path] + (["0"] if command == "predict" else [])
    try:
        code, err = main_exit(capsys, *args)
    finally:
        if kind == "unreadable":
            path.chmod(0o600)
    assert_clean_error(code, err, command, fragment)


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_unreadable_model_file(capsys, monkeypatch, model_file, command):
    """Permission denied (simulated, so that it also works as root): one line naming the file."""
    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", os.fspath(path))

    monkeypatch.setattr(ser, "open", denied, raising=False)
    code, err = main_exit(capsys, command, model_file, *(["0"] if command == "predict" else []))
    assert_clean_error(code, err, command, model_file, "Permission denied")


def test_train_disk_full_when_saving_the_model(capsys, monkeypatch, tmp_path):
    out = tmp_path / "m.safetensors"
    out.write_bytes(b"previous")

    def full(f, code, array):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ser, "_write_array", full)
    code, err = main_exit(capsys, "train", "--limit", "200", "--epochs", "1", "--hidden", "8", "-q", "-o", out)
    assert_clean_error(code, err, "train", str(out), "No space left")
    assert out.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_train_output_folder_not_writable_simulated(capsys, monkeypatch, tmp_path):
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if os.fspath(p) == str(tmp_path) else real(p, mode))
    code, err = main_exit(capsys, "train", "--epochs", "1", "-o", tmp_path / "m.safetensors")
    assert_clean_error(code, err, "train", "not writable")


def test_bad_model_file_subprocess(tmp_path, model_file):
    """The same in a fresh process: exit status 2, one line, no traceback."""
    path, _ = _bad_model("truncated", tmp_path, model_file)
    code, _, err = run_cli("evaluate", str(path))
    assert_clean_error(code, err, "evaluate", "truncated")


# --------------------------------------------------------------------------------------------------
# CLI: predict's image
# --------------------------------------------------------------------------------------------------

def test_predict_bad_images(capsys, tmp_path, model_file):
    assert_clean_error(*main_exit(capsys, "predict", model_file, "10000"), "predict", "out of range")
    assert_clean_error(*main_exit(capsys, "predict", model_file, "-10001"), "predict", "out of range")
    assert_clean_error(*main_exit(capsys, "predict", model_file, tmp_path / "nope.png"), "predict", "no such")
    assert_clean_error(*main_exit(capsys, "predict", model_file, tmp_path), "predict", str(tmp_path))
    text = tmp_path / "digit.png"
    text.write_text("not an image")
    pytest.importorskip("PIL")
    assert_clean_error(*main_exit(capsys, "predict", model_file, text), "predict", "cannot read the image")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert_clean_error(*main_exit(capsys, "predict", model_file, empty), "predict", str(empty))


def test_predict_image_not_28x28(capsys, tmp_path, model_file):
    Image = pytest.importorskip("PIL.Image")
    big = tmp_path / "big.png"
    Image.fromarray((np.arange(40 * 60) % 256).astype(np.uint8).reshape(40, 60)).save(big)
    assert cli.main(["predict", model_file, str(big)]) == 0
    assert "resized from 60x40" in capsys.readouterr().out
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(tiny)
    assert cli.main(["predict", model_file, str(tiny)]) == 0


def test_predict_image_with_huge_dimensions_is_refused(capsys, tmp_path, model_file):
    pytest.importorskip("PIL")
    # a PNG header that claims 100000 x 100000 pixels (a "decompression bomb")
    import zlib
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b""))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png)
    assert_clean_error(*main_exit(capsys, "predict", model_file, bomb), "predict", str(bomb))


# --------------------------------------------------------------------------------------------------
# CLI: --data-dir
# --------------------------------------------------------------------------------------------------

def _data_dir(tmp_path, damage):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in os.listdir(MNIST_DIR):
        if name.startswith("t10k"):
            shutil.copy(os.path.join(MNIST_DIR, name), folder / name)
    target = folder / "t10k-images-idx3-ubyte.gz"
    if damage == "missing":
        target.unlink()
    elif damage == "truncated":
        target.write_bytes(target.read_bytes()[:1000])
    elif damage == "corrupt":
        data = bytearray(target.read_bytes())
        data[5000] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "folder":
        target.unlink()
        target.mkdir()
    return folder, target


@pytest.mark.parametrize("damage, fragments", [
    ("missing", ["t10k-images-idx3-ubyte.gz", "--data-dir"]),
    ("truncated", ["t10k-images-idx3-ubyte.gz", "wrong size", "replace it"]),
    ("corrupt", ["t10k-images-idx3-ubyte.gz", "checksum", "replace it"]),
    ("folder", ["t10k-images-idx3-ubyte.gz"]),
])
def test_data_dir_damaged(capsys, tmp_path, model_file, damage, fragments):
    folder, _ = _data_dir(tmp_path, damage)
    code, err = main_exit(capsys, "evaluate", model_file, "--data-dir", folder)
    assert_clean_error(code, err, "evaluate", *fragments)
    code, err = main_exit(capsys, "predict", model_file, "3", "--data-dir", folder)
    assert_clean_error(code, err, "predict", *fragments)


def test_data_dir_not_a_folder(capsys, tmp_path, model_file):
    assert_clean_error(*main_exit(capsys, "evaluate", model_file, "--data-dir", tmp_path / "x"), "evaluate",
                       "no such folder")
    assert_clean_error(*main_exit(capsys, "train", "--data-dir", tmp_path / "x"), "train", "no such folder")


def test_corrupt_dataset_subprocess(tmp_path, model_file):
    folder, _ = _data_dir(tmp_path, "corrupt")
    code, _, err = run_cli("evaluate", model_file, "--data-dir", str(folder))
    assert_clean_error(code, err, "evaluate", "checksum")


# --------------------------------------------------------------------------------------------------
# serialization: damaged files
# --------------------------------------------------------------------------------------------------

F32_8 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}


@pytest.mark.parametrize("case, fragment", [
    ("absurd-header-length", "header size"),
    ("header-not-json", "not valid JSON"),
    ("header-not-utf8", "UTF-8"),
    ("header-a-list", "not a JSON object"),
    ("overlap", "overlaps"),
    ("past-the-end", "truncated"),
    ("unknown-dtype", "unknown dtype"),
    ("shape-vs-bytes", "needs 12"),
    ("negative-shape", "non-negative"),
    ("float-shape", "non-negative integers"),
    ("offsets-reversed", "begin <= end"),
    ("gap", "gap"),
    ("trailing-bytes", "trailing"),
    ("metadata-not-strings", "__metadata__"),
    ("duplicate-key", "duplicate"),
    ("entry-missing-dtype", "lacks dtype"),
    ("huge-shape", "huge"),
    ("header-nested-deeply", "header"),
])
def test_load_damaged_safetensors(tmp_path, case, fragment):
    p = tmp_path / "bad.safetensors"
    data8 = bytes(8)
    if case == "absurd-header-length":
        header_file(p, {"a": F32_8}, data8, size_prefix=2**63)
    elif case == "header-not-json":
        raw = b"{this is not json}"
        p.write_bytes(struct.pack("<Q", len(raw)) + raw)
    elif case == "header-not-utf8":
        raw = b'{"\xff": 1}'
        p.write_bytes(struct.pack("<Q", len(raw)) + raw)
    elif case == "header-a-list":
        raw = b"[1, 2, 3]"
        p.write_bytes(struct.pack("<Q", len(raw)) + raw)
    elif case == "overlap":
        header_file(p, {"a": F32_8, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12))
    elif case == "past-the-end":
        header_file(p, {"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, data8)
    elif case == "unknown-dtype":
        header_file(p, {"a": {"dtype": "F33", "shape": [2], "data_offsets": [0, 8]}}, data8)
    elif case == "shape-vs-bytes":
        header_file(p, {"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, data8)
    elif case == "negative-shape":
        header_file(p, {"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, data8)
    elif case == "float-shape":
        header_file(p, {"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, data8)
    elif case == "offsets-reversed":
        header_file(p, {"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, data8)
    elif case == "gap":
        header_file(p, {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, data8)
    elif case == "trailing-bytes":
        header_file(p, {"a": F32_8}, bytes(12))
    elif case == "metadata-not-strings":
        header_file(p, {"__metadata__": {"x": 1}, "a": F32_8}, data8)
    elif case == "duplicate-key":
        raw = b'{"a": ' + json.dumps(F32_8).encode() + b', "a": ' + json.dumps(F32_8).encode() + b"}"
        p.write_bytes(struct.pack("<Q", len(raw)) + raw + data8)
    elif case == "entry-missing-dtype":
        header_file(p, {"a": {"shape": [2], "data_offsets": [0, 8]}}, data8)
    elif case == "huge-shape":
        # shape whose product overflows int64 while the byte count "matches" after wrap-around
        header_file(p, {"a": {"dtype": "U8", "shape": [2**32, 2**32], "data_offsets": [0, 0]}})
        fragment = "a"
    elif case == "header-nested-deeply":
        raw = b"{" + b'"a":' * 1 + b"[" * 100000 + b"]" * 100000 + b"}"
        p.write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(SafetensorsError) as info:
        load_arrays(p)
    message = str(info.value)
    assert message.startswith(str(p)), message
    assert "\n" not in message.strip(), message
    assert fragment in message, message


# --------------------------------------------------------------------------------------------------
# serialization: bad things to save
# --------------------------------------------------------------------------------------------------

def test_save_to_missing_folder(tmp_path):
    target = tmp_path / "no" / "such" / "w.safetensors"
    with pytest.raises(FileNotFoundError) as info:
        save({"w": cr.ones(2)}, target)
    assert str(target.parent) in str(info.value)
    with pytest.raises(FileNotFoundError) as info:
        save_arrays({"w": np.ones(2)}, target)
    assert str(target.parent) in str(info.value)


def test_save_bad_dicts(tmp_path):
    p = tmp_path / "w.safetensors"
    with pytest.raises(TypeError, match="keys must be str"):
        save({1.5: cr.ones(2)}, p)
    with pytest.raises(TypeError, match="names must be str"):
        save_arrays({1: np.ones(2)}, p)  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="object"):
        save({"o": np.array([None, 1], dtype=object)}, p)
    with pytest.raises(TypeError, match="list"):
        save({"l": [1, 2]}, p)
    assert not p.exists()
    assert os.listdir(tmp_path) == []


def test_save_odd_but_valid_arrays(tmp_path):
    p = tmp_path / "w.safetensors"
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    w = cr.tensor(base[:, ::2].T, requires_grad=True)        # non-contiguous data, requires grad
    y = (w * 2).sum()
    save({"strided": base[::2, ::3], "fortran": np.asfortranarray(base), "grad": w, "big": base.astype(">f4"),
          "out": y}, p)
    back = cr.load(p)
    np.testing.assert_array_equal(back["strided"].numpy(), base[::2, ::3])
    np.testing.assert_array_equal(back["fortran"].numpy(), base)
    np.testing.assert_array_equal(back["grad"].numpy(), base[:, ::2].T)
    np.testing.assert_array_equal(back["big"].numpy(), base)
    assert not back["grad"].requires_grad


def test_save_crash_midway_keeps_previous_file(tmp_path, monkeypatch):
    p = tmp_path / "w.safetensors"
    save({"w": cr.ones(3)}, p)
    before = p.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    for exc in (OSError, KeyboardInterrupt):
        calls = {"n": 0}

        def failing_write(f, code, array, exc=exc, calls=calls):
            calls["n"] += 1
            f.write(b"partial")
            raise exc("simulated crash")

        monkeypatch.setattr(ser, "_write_array", failing_write)
        with pytest.raises(exc):
            save({"w": cr.zeros(3), "v": cr.zeros(5)}, p)
        assert calls["n"] == 1
        assert p.read_bytes() == before
        assert os.listdir(tmp_path) == ["w.safetensors"]
    monkeypatch.undo()
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        save({"w": cr.zeros(3)}, p)
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.safetensors"]


# --------------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------------

def _trained():
    cr.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(cr.ones(4, 3)).sum().backward()
    opt.step()
    return model, opt


def test_keyboard_interrupt_during_checkpoint_save_keeps_the_last_good_one(tmp_path, monkeypatch):
    from chainrule.train import ModelCheckpoint

    model, opt = _trained()
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, model, opt, epoch=3)
    good = path.read_bytes()
    original_replace = os.replace

    def interrupted_replace(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, model, opt, epoch=4)
    monkeypatch.setattr(os, "replace", original_replace)
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["last.safetensors"]
    fresh, fresh_opt = nn.Linear(3, 2), optim.SGD(nn.Linear(3, 2).parameters(), lr=0.1, momentum=0.9)
    fresh_opt = optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    assert load_checkpoint(path, fresh, fresh_opt)["epoch"] == 3

    # the same through ModelCheckpoint inside fit(): Ctrl-C during the second epoch's save
    from chainrule.data import DataLoader, TensorDataset

    cr.manual_seed(0)
    x, y = cr.randn(32, 3), cr.randint(0, 2, (32,))
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    folder = tmp_path / "ck"
    ck = ModelCheckpoint(str(folder), monitor="loss", verbose=0)
    import chainrule.serialization as serialization_module
    real = serialization_module._write_array
    count = {"n": 0}

    def write_then_interrupt(f, code, array):
        count["n"] += 1
        if count["n"] > 12:
            raise KeyboardInterrupt
        real(f, code, array)

    monkeypatch.setattr(serialization_module, "_write_array", write_then_interrupt)
    history = cr.train.fit(model, nn.CrossEntropyLoss(), opt, loader, epochs=5, callbacks=[ck], verbose=0)
    monkeypatch.undo()
    assert history.note.startswith("Interrupted")
    info = load_checkpoint(folder / "last.safetensors", nn.Linear(3, 2))
    assert 1 <= info["epoch"] < 5
    assert sorted(os.listdir(folder)) == ["best.safetensors", "last.safetensors"]


def test_checkpoint_dir_cannot_be_created(tmp_path):
    from chainrule.train import ModelCheckpoint

    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises((OSError, ValueError)) as info:
        ck = ModelCheckpoint(str(f))
        ck.on_train_begin({})
    assert str(f) in str(info.value)


def test_load_checkpoint_damaged(tmp_path):
    model, opt = _trained()
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, model, opt, epoch=1)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, nn.Linear(4, 2))
    with pytest.raises(CheckpointError, match="Adam"):
        load_checkpoint(path, model, optim.Adam(model.parameters()))
    save(model.state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="plain weights"):
        load_checkpoint(tmp_path / "w.safetensors", model)
    data = path.read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:-3])
    with pytest.raises(SafetensorsError, match="truncated"):
        load_checkpoint(tmp_path / "cut.safetensors", model)
