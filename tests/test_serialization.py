"""Tests for chainrule.serialization: the NumPy-only safetensors reader/writer."""

from __future__ import annotations

import json
import os
import pickle
import stat
import struct

import numpy as np
import pytest

from chainrule import serialization
from chainrule.serialization import (
    SafetensorsError,
    atomic_open,
    atomic_write_bytes,
    load_arrays,
    read_metadata,
    save_arrays,
)

# NumPy dtype -> safetensors code, everything chainrule can write.
DTYPES = {
    np.bool_: "BOOL",
    np.uint8: "U8",
    np.int8: "I8",
    np.uint16: "U16",
    np.int16: "I16",
    np.float16: "F16",
    np.uint32: "U32",
    np.int32: "I32",
    np.float32: "F32",
    np.uint64: "U64",
    np.int64: "I64",
    np.float64: "F64",
    np.complex64: "C64",
}
SHAPES = [(), (0,), (1,), (7,), (2, 3), (2, 0, 4), (3, 1, 2, 2)]


def sample(dtype, shape, seed=0):
    """Values covering each dtype's extremes (and nan/inf for floats)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    if dtype.kind == "b":
        flat = rng.random(n) < 0.5
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        flat = rng.integers(info.min, info.max, size=n, dtype=dtype, endpoint=True)
        flat[: min(n, 2)] = [info.min, info.max][: min(n, 2)]
    elif dtype.kind == "f":
        flat = (rng.standard_normal(n) * 100).astype(dtype)
        flat[: min(n, 4)] = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=dtype)[: min(n, 4)]
    else:
        flat = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dtype)
    return flat.astype(dtype).reshape(shape)


def assert_same(actual, expected):
    assert isinstance(actual, np.ndarray)
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)  # nan == nan here
    # Bit-exact too (distinguishes -0.0 from 0.0, keeps nan payloads).
    assert np.ascontiguousarray(actual).tobytes() == np.ascontiguousarray(expected).tobytes()


def all_arrays():
    return {
        f"{np.dtype(dt).name}/{'x'.join(map(str, shape)) or 'scalar'}": sample(dt, shape, seed=i)
        for i, (dt, shape) in enumerate((dt, s) for dt in DTYPES for s in SHAPES)
    }


def raw_file(path, header, data=b"", header_size=None):
    """Write a hand-made safetensors file; ``header`` is a dict or raw bytes."""
    if not isinstance(header, bytes):
        header = json.dumps(header).encode()
    size = len(header) if header_size is None else header_size
    path.write_bytes(struct.pack("<Q", size) + header + data)
    return path


def leftovers(directory, keep):
    return sorted(p.name for p in directory.iterdir() if p.name not in keep)


# --------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", list(DTYPES), ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_round_trip_every_dtype_and_shape(tmp_path, dtype, shape):
    original = sample(dtype, shape)
    path = tmp_path / "one.safetensors"
    save_arrays({"x": original}, path)
    arrays, metadata = load_arrays(path)
    assert list(arrays) == ["x"]
    assert metadata == {}
    assert_same(arrays["x"], original)


def test_round_trip_many_arrays_in_one_file(tmp_path):
    originals = all_arrays()
    path = tmp_path / "all.safetensors"
    save_arrays(originals, path)
    arrays, _ = load_arrays(path)
    assert set(arrays) == set(originals)
    for name, original in originals.items():
        assert_same(arrays[name], original)


def test_loaded_arrays_are_independent_writeable_copies(tmp_path):
    path = tmp_path / "a.safetensors"
    save_arrays({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.arange(3, dtype=np.int8)}, path)
    arrays, _ = load_arrays(path)
    for arr in arrays.values():
        assert type(arr) is np.ndarray  # not a np.memmap
        assert arr.flags.writeable and arr.flags.c_contiguous and arr.flags.aligned
        assert arr.flags.owndata or not isinstance(arr.base, np.memmap)
    arrays["a"][0, 0] = 100.0
    arrays["b"][:] = 0
    os.remove(path)  # the data no longer depends on the file
    assert arrays["a"][0, 0] == 100.0 and arrays["a"][1, 2] == 5.0
    assert not np.shares_memory(arrays["a"], arrays["b"])


def test_metadata_round_trip_and_read_metadata(tmp_path):
    path = tmp_path / "m.safetensors"
    metadata = {"format": "np", "epoch": "3", "note": "ünïcødé ✓", "empty": "", "json": '{"a": [1]}'}
    save_arrays({"w": np.ones(3)}, path, metadata=metadata)
    arrays, loaded = load_arrays(path)
    assert loaded == metadata
    assert read_metadata(path) == metadata
    assert_same(arrays["w"], np.ones(3))


def test_no_metadata_reads_as_empty_dict(tmp_path):
    path = tmp_path / "m.safetensors"
    save_arrays({"w": np.ones(3)}, path)
    assert read_metadata(path) == {}
    save_arrays({"w": np.ones(3)}, path, metadata={})
    assert read_metadata(path) == {}


def test_empty_dict_round_trip(tmp_path):
    path = tmp_path / "empty.safetensors"
    save_arrays({}, path, metadata={"k": "v"})
    assert load_arrays(path) == ({}, {"k": "v"})


def test_unusual_names_round_trip(tmp_path):
    path = tmp_path / "names.safetensors"
    originals = {
        "": np.array(1),
        "layer.0/weight": np.ones(2),
        "ünï 名前": np.zeros(1),
        '"quoted"\n': np.arange(2),
    }
    save_arrays(originals, path)
    arrays, _ = load_arrays(path)
    for name, original in originals.items():
        assert_same(arrays[name], original)


def test_non_contiguous_and_big_endian_arrays(tmp_path):
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    big = np.arange(5, dtype=">i4")
    originals = {
        "transposed": base.T,
        "strided": base[::2, ::3],
        "reversed": base[::-1],
        "fortran": np.asfortranarray(base),
        "big_endian": big,
        "big_endian_2d": np.arange(6, dtype=">f8").reshape(2, 3).T,
        "broadcast": np.broadcast_to(np.arange(3, dtype=np.int16), (4, 3)),
    }
    before = {k: v.copy() for k, v in originals.items()}
    path = tmp_path / "nc.safetensors"
    save_arrays(originals, path)
    arrays, _ = load_arrays(path)
    for name, original in originals.items():
        np.testing.assert_array_equal(arrays[name], original)
        assert arrays[name].dtype == original.dtype.newbyteorder("=")
        assert arrays[name].dtype.isnative
        np.testing.assert_array_equal(original, before[name])  # inputs untouched
        assert original.dtype == before[name].dtype


def test_file_layout_follows_the_spec(tmp_path):
    path = tmp_path / "layout.safetensors"
    originals = {
        "b": np.arange(3, dtype=np.int8),
        "a": np.ones((2, 2), np.float32),
        "d": np.zeros(2, np.float64),
    }
    save_arrays(originals, path, metadata={"k": "v"})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0  # buffer starts 8-byte aligned
    header_bytes = raw[8 : 8 + n]
    assert header_bytes.startswith(b"{")
    header = json.loads(header_bytes)
    assert header.pop("__metadata__") == {"k": "v"}
    buffer = raw[8 + n :]
    spans = sorted(tuple(info["data_offsets"]) for info in header.values())
    assert spans[0][0] == 0 and spans[-1][1] == len(buffer)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))  # no gaps, no overlaps
    codes = {"a": "F32", "b": "I8", "d": "F64"}
    for name, info in header.items():
        assert info["dtype"] == codes[name]
        assert info["shape"] == list(originals[name].shape)
        begin, end = info["data_offsets"]
        assert begin % originals[name].dtype.itemsize == 0  # each tensor aligned
        assert buffer[begin:end] == originals[name].astype(originals[name].dtype.newbyteorder("<")).tobytes()


def test_output_is_deterministic(tmp_path):
    one, two = tmp_path / "1.safetensors", tmp_path / "2.safetensors"
    save_arrays({"x": np.ones(2), "y": np.arange(3)}, one)
    save_arrays({"y": np.arange(3), "x": np.ones(2)}, two)
    assert one.read_bytes() == two.read_bytes()


def test_accepts_str_and_pathlike_paths(tmp_path):
    save_arrays({"x": np.ones(2)}, str(tmp_path / "s.safetensors"))
    arrays, _ = load_arrays(str(tmp_path / "s.safetensors"))
    assert_same(arrays["x"], np.ones(2))


# --------------------------------------------------------------------------
# Validation when saving
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({1: np.ones(2)}, "str"),
        ({"x": [1.0, 2.0]}, "'x'"),
        ({"x": 3.0}, "'x'"),
        ({"obj": np.array([object()])}, "'obj'.*object"),
        ({"text": np.array(["a", "b"])}, "'text'.*<U1"),
        ({"when": np.array(["2020-01-01"], dtype="datetime64[D]")}, "'when'.*datetime64"),
        ({"rec": np.zeros(2, dtype=[("a", "f4"), ("b", "i4")])}, "'rec'"),
        ({"c128": np.zeros(2, dtype=np.complex128)}, "'c128'.*complex128"),
    ],
)
def test_save_rejects_bad_arrays_with_type_error(tmp_path, arrays, message):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(TypeError, match=message):
        save_arrays(arrays, path)
    assert list(tmp_path.iterdir()) == []  # nothing written, no temp file


def test_save_rejects_long_double(tmp_path):
    if np.dtype(np.longdouble).itemsize == 8:
        pytest.skip("longdouble is float64 on this platform")
    with pytest.raises(TypeError, match="'ld'"):
        save_arrays({"ld": np.zeros(2, dtype=np.longdouble)}, tmp_path / "x.safetensors")


@pytest.mark.parametrize("metadata", [{"epoch": 3}, {1: "a"}, {"a": None}, ["a"]])
def test_save_rejects_non_string_metadata(tmp_path, metadata):
    with pytest.raises(TypeError, match="metadata"):
        save_arrays({"x": np.ones(1)}, tmp_path / "x.safetensors", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_save_rejects_reserved_name(tmp_path):
    with pytest.raises(ValueError, match="__metadata__"):
        save_arrays({"__metadata__": np.ones(1)}, tmp_path / "x.safetensors")


def test_save_rejects_non_mapping(tmp_path):
    with pytest.raises(TypeError, match="dict"):
        save_arrays([np.ones(1)], tmp_path / "x.safetensors")


# --------------------------------------------------------------------------
# Interoperability with the official safetensors package
# --------------------------------------------------------------------------


def test_chainrule_files_load_in_safetensors_numpy(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    originals = all_arrays()
    path = tmp_path / "cr.safetensors"
    save_arrays(originals, path, metadata={"source": "chainrule"})
    loaded = st_numpy.load_file(str(path))
    assert set(loaded) == set(originals)
    for name, original in originals.items():
        assert_same(np.asarray(loaded[name]), original)
    safetensors = pytest.importorskip("safetensors")
    with safetensors.safe_open(str(path), framework="np") as f:
        assert f.metadata() == {"source": "chainrule"}


def test_chainrule_files_load_in_safetensors_torch(tmp_path):
    st_torch = pytest.importorskip("safetensors.torch")
    torch = pytest.importorskip("torch")
    originals = all_arrays()
    path = tmp_path / "cr.safetensors"
    save_arrays(originals, path)
    loaded = st_torch.load_file(str(path))
    assert set(loaded) == set(originals)
    for name, original in originals.items():
        tensor = loaded[name]
        assert isinstance(tensor, torch.Tensor)
        assert tuple(tensor.shape) == original.shape
        assert_same(tensor.numpy(), original)


def test_safetensors_numpy_files_load_in_chainrule(tmp_path):
    st_numpy = pytest.importorskip("safetensors.numpy")
    originals = all_arrays()
    path = tmp_path / "st.safetensors"
    st_numpy.save_file(originals, str(path), metadata={"a": "b"})
    arrays, metadata = load_arrays(path)
    assert metadata == {"a": "b"}
    assert read_metadata(path) == {"a": "b"}
    assert set(arrays) == set(originals)
    for name, original in originals.items():
        assert_same(arrays[name], original)


def test_safetensors_torch_files_load_in_chainrule(tmp_path):
    st_torch = pytest.importorskip("safetensors.torch")
    torch = pytest.importorskip("torch")
    originals = all_arrays()
    tensors = {name: torch.from_numpy(a.copy(order="C")) for name, a in originals.items()}
    tensors["bf16"] = torch.tensor([[1.0, -2.5, 3.14159], [1e30, -1e-30, float("inf")]], dtype=torch.bfloat16)
    tensors["bf16_scalar"] = torch.tensor(0.1, dtype=torch.bfloat16)
    tensors["bf16_empty"] = torch.zeros((0, 2), dtype=torch.bfloat16)
    path = tmp_path / "pt.safetensors"
    st_torch.save_file(tensors, str(path), metadata={"format": "pt"})
    arrays, metadata = load_arrays(path)
    assert metadata == {"format": "pt"}
    assert set(arrays) == set(tensors)
    for name, original in originals.items():
        assert_same(arrays[name], original)
    # bfloat16 widens exactly to float32.
    for name in ("bf16", "bf16_scalar", "bf16_empty"):
        assert_same(arrays[name], tensors[name].float().numpy())


# --------------------------------------------------------------------------
# Broken and foreign files
# --------------------------------------------------------------------------


def assert_error(path, *fragments, reader=load_arrays):
    with pytest.raises(SafetensorsError) as info:
        reader(path)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert message.startswith(str(path) + ": "), message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_file_raises_file_not_found(tmp_path):
    path = tmp_path / "nope.safetensors"
    for reader in (load_arrays, read_metadata):
        with pytest.raises(FileNotFoundError, match="nope.safetensors"):
            reader(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    assert_error(path, "empty")
    assert_error(path, "empty", reader=read_metadata)


@pytest.mark.parametrize("size", [1, 4, 7])
def test_file_shorter_than_size_prefix(tmp_path, size):
    path = tmp_path / "short.safetensors"
    path.write_bytes(b"\x10" * size)
    assert_error(path, "too short", f"({size} bytes)")


def test_truncated_files_at_many_points(tmp_path):
    good = tmp_path / "good.safetensors"
    arrays = {"a": np.arange(100, dtype=np.float32), "b": np.ones((3, 4)), "c": np.arange(5, dtype=np.int8)}
    save_arrays(arrays, good)
    raw = good.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    data_size = len(raw) - 8 - n
    cut_points = [0, 3, 8, 9, 8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 1, 8 + n + data_size // 2, len(raw) - 1]
    for cut in cut_points:
        path = tmp_path / f"cut{cut}.safetensors"
        path.write_bytes(raw[:cut])
        message = assert_error(path)
        assert_error(path, reader=read_metadata)
        if cut >= 8 + n:
            expected = f"file is truncated: header says {data_size} bytes of data, file has {cut - 8 - n}"
            assert expected in message
        elif cut > 8:
            assert "header size" in message and "larger than the rest of the file" in message


@pytest.mark.parametrize(
    "payload",
    [b"garbage! this is not a safetensors file at all" * 3, b"\x00" * 64, bytes(range(256))],
    ids=["text", "zeros", "bytes"],
)
def test_garbage_files(tmp_path, payload):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(payload)
    assert_error(path)


def test_header_size_overflow(tmp_path):
    for size in (2**64 - 1, 2**63, 10**12):
        path = raw_file(tmp_path / "overflow.safetensors", b"{}", header_size=size)
        assert_error(path, f"header size {size}", "larger than the rest of the file")


def test_header_size_above_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "MAX_HEADER_SIZE", 16)
    path = raw_file(tmp_path / "big.safetensors", b"{}" + b" " * 30)
    assert_error(path, "exceeds the 16-byte limit")


def test_torch_save_zip_checkpoint_is_recognised(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(3)}, path)
    assert_error(path, "is not a safetensors file", "zip", "never unpickles")


def test_legacy_torch_pickle_is_recognised(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "legacy.pt"
    torch.save({"w": torch.ones(3)}, path, _use_new_zipfile_serialization=False)
    assert_error(path, "is not a safetensors file", "pickle", "never unpickles")


class _Boom:
    """Unpickling this would create a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_malicious_pickle_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.safetensors"
    for protocol in (2, 4, 5):
        path.write_bytes(pickle.dumps(_Boom(str(marker)), protocol=protocol))
        assert_error(path, "pickle", "never unpickles")
        assert_error(path, "pickle", reader=read_metadata)
    assert not marker.exists()


def test_other_foreign_formats(tmp_path):
    path = tmp_path / "arr.npy"
    np.save(path, np.arange(10))
    assert_error(path, "NumPy .npy")


@pytest.mark.parametrize(
    "header, fragment",
    [
        (b"not json at all", "not a JSON object"),
        (b"{not json}", "not valid JSON"),
        (b'{"a": 1,}', "not valid JSON"),
        (b'{"a": "\xff\xfe"}', "not valid UTF-8"),
        (b"[1, 2, 3]", "not a JSON object"),
        (b'{"x": 5}', "entry must be a JSON object"),
        (b'{"x": {"dtype": "F32", "shape": [1]}}', "lacks data_offsets"),
    ],
)
def test_bad_headers(tmp_path, header, fragment):
    path = raw_file(tmp_path / "bad.safetensors", header, b"\x00" * 4)
    assert_error(path, fragment)


def test_header_padding_with_spaces_is_accepted(tmp_path):
    header = json.dumps({"x": {"dtype": "I32", "shape": [2], "data_offsets": [0, 8]}}).encode() + b"   "
    path = raw_file(tmp_path / "pad.safetensors", header, struct.pack("<2i", 7, -9))
    arrays, _ = load_arrays(path)
    assert_same(arrays["x"], np.array([7, -9], dtype=np.int32))


def entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


@pytest.mark.parametrize(
    "header, data_size, fragments",
    [
        ({"x": entry(dtype="F128")}, 8, ["tensor 'x'", "unknown dtype 'F128'"]),
        ({"x": entry(dtype="F8_E4M3", offsets=(0, 2))}, 2, ["F8_E4M3", "not supported"]),
        ({"x": entry(dtype=7)}, 8, ["unknown dtype"]),
        ({"x": entry(shape=(3,))}, 8, ["tensor 'x'", "span 8 bytes", "needs 12"]),
        ({"x": entry(shape=(-2,))}, 8, ["shape must be a list of non-negative integers"]),
        ({"x": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}, 8, ["shape must be a list"]),
        ({"x": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, 8, ["shape must be a list"]),
        ({"x": entry(offsets=(8, 0))}, 8, ["begin <= end"]),
        ({"x": entry(offsets=(0, 8, 16))}, 16, ["data_offsets must be [begin, end]"]),
        ({"x": entry(offsets=(0, 8))}, 4, ["file is truncated: header says 8 bytes of data, file has 4"]),
        ({"x": entry(offsets=(100, 108))}, 8, ["file is truncated: header says 108 bytes of data"]),
        ({"x": entry(), "y": entry(offsets=(4, 12))}, 12, ["overlaps"]),
        ({"x": entry(), "y": entry()}, 8, ["overlaps"]),
        ({"x": entry(), "y": entry(offsets=(12, 20))}, 20, ["gap of 4", "after 'x'"]),
        ({"x": entry(offsets=(4, 12))}, 12, ["gap of 4", "after the header"]),
        ({"x": entry()}, 12, ["4 trailing bytes"]),
        ({"__metadata__": {"epoch": 3}, "x": entry()}, 8, ["'__metadata__' must map strings to strings"]),
        ({"__metadata__": ["a"], "x": entry()}, 8, ["'__metadata__' must map strings to strings"]),
    ],
)
def test_inconsistent_headers(tmp_path, header, data_size, fragments):
    path = raw_file(tmp_path / "bad.safetensors", header, b"\x00" * data_size)
    assert_error(path, *fragments)
    assert_error(path, *fragments, reader=read_metadata)


def test_duplicate_keys_are_rejected(tmp_path):
    one = json.dumps(entry())
    header = f'{{"x": {one}, "x": {one}}}'.encode()
    path = raw_file(tmp_path / "dup.safetensors", header, b"\x00" * 8)
    assert_error(path, "duplicate key 'x'")


def test_null_metadata_and_empty_tensors_sharing_an_offset(tmp_path):
    header = {
        "__metadata__": None,
        "e1": entry(shape=(0,), offsets=(0, 0)),
        "x": entry(),
        "e2": entry(dtype="I64", shape=(2, 0), offsets=(8, 8)),
        "e3": entry(dtype="U8", shape=(0, 5), offsets=(8, 8)),
    }
    path = raw_file(tmp_path / "ok.safetensors", header, np.array([1.5, -2], "<f4").tobytes())
    arrays, metadata = load_arrays(path)
    assert metadata == {}
    assert_same(arrays["x"], np.array([1.5, -2], np.float32))
    assert_same(arrays["e1"], np.zeros(0, np.float32))
    assert_same(arrays["e2"], np.zeros((2, 0), np.int64))
    assert_same(arrays["e3"], np.zeros((0, 5), np.uint8))


def test_absurd_empty_shape_is_an_error_not_a_crash(tmp_path):
    path = raw_file(tmp_path / "huge.safetensors", {"x": entry(shape=(0, 2**62, 2**62), offsets=(0, 0))})
    assert_error(path, "tensor 'x'")


def test_bf16_is_read_as_float32(tmp_path):
    values = np.array([1.0, -2.5, 0.15625, np.inf, -0.0], dtype=np.float32)
    bits = (values.view(np.uint32) >> 16).astype("<u2")  # these values are exact in bf16
    path = raw_file(tmp_path / "bf16.safetensors", {"x": entry("BF16", (5,), (0, 10))}, bits.tobytes())
    arrays, _ = load_arrays(path)
    assert_same(arrays["x"], values)


# --------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------


@pytest.fixture
def existing(tmp_path):
    path = tmp_path / "model.safetensors"
    save_arrays({"old": np.arange(4)}, path, metadata={"version": "old"})
    return path, path.read_bytes()


def test_failed_replace_leaves_old_file_and_no_temp(existing, monkeypatch):
    path, before = existing

    def broken_replace(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        save_arrays({"new": np.ones(1000)}, path)
    assert path.read_bytes() == before
    assert leftovers(path.parent, {path.name}) == []


def test_failure_mid_write_leaves_old_file_and_no_temp(existing, monkeypatch):
    path, before = existing
    real_write = serialization._write_array
    calls = []

    def write_then_fail(f, code, array):
        calls.append(code)
        if len(calls) == 2:
            raise RuntimeError("conversion failed halfway")
        real_write(f, code, array)

    monkeypatch.setattr(serialization, "_write_array", write_then_fail)
    with pytest.raises(RuntimeError, match="halfway"):
        save_arrays({"a": np.ones(100), "b": np.ones(100), "c": np.ones(100)}, path)
    assert len(calls) == 2
    assert path.read_bytes() == before
    assert leftovers(path.parent, {path.name}) == []
    arrays, metadata = load_arrays(path)
    assert metadata == {"version": "old"}
    assert_same(arrays["old"], np.arange(4))


def test_array_whose_conversion_raises(existing):
    path, before = existing
    # A broadcast view of 2**47 float64s (1 PiB) is valid but cannot be made
    # contiguous: the writer fails after the header and the first array.
    bomb = np.broadcast_to(np.zeros(1), (2**47,))
    with pytest.raises(MemoryError):
        save_arrays({"fine": np.ones(3), "zbomb": bomb}, path)
    assert path.read_bytes() == before
    assert leftovers(path.parent, {path.name}) == []


def test_failed_fsync_leaves_old_file_and_no_temp(existing, monkeypatch):
    path, before = existing

    def broken_fsync(fd):
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="no space"):
        save_arrays({"new": np.ones(10)}, path)
    assert path.read_bytes() == before
    assert leftovers(path.parent, {path.name}) == []


def test_failed_first_write_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError("nope")))
    with pytest.raises(OSError):
        save_arrays({"x": np.ones(2)}, tmp_path / "new.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_successful_overwrite_replaces_file(existing):
    path, _ = existing
    save_arrays({"new": np.ones(2)}, path)
    arrays, metadata = load_arrays(path)
    assert list(arrays) == ["new"] and metadata == {}
    assert leftovers(path.parent, {path.name}) == []


def test_atomic_write_bytes(tmp_path):
    path = tmp_path / "blob.bin"
    atomic_write_bytes(path, b"first")
    assert path.read_bytes() == b"first"
    atomic_write_bytes(str(path), b"second")
    assert path.read_bytes() == b"second"
    assert leftovers(tmp_path, {"blob.bin"}) == []


def test_atomic_open_text_and_binary(tmp_path):
    path = tmp_path / "state.json"
    with atomic_open(path, "w") as f:
        json.dump({"épоch": 3}, f, ensure_ascii=False)
        assert not path.exists()  # nothing visible until the block ends
    assert json.loads(path.read_text(encoding="utf-8")) == {"épоch": 3}
    with atomic_open(path) as f:
        f.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert leftovers(tmp_path, {"state.json"}) == []


def test_atomic_open_exception_in_body_keeps_old_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    with pytest.raises(KeyError):
        with atomic_open(path, "w") as f:
            f.write("half of the new cont")
            raise KeyError("crash")
    assert path.read_text() == "old"
    assert leftovers(tmp_path, {"state.json"}) == []


def test_atomic_open_rejects_other_modes(tmp_path):
    for mode in ("r", "ab", "w+"):
        with pytest.raises(ValueError, match="mode"):
            with atomic_open(tmp_path / "x", mode):
                pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_atomic_write_permissions(tmp_path):
    new = tmp_path / "new.bin"
    atomic_write_bytes(new, b"x")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask  # not tempfile's 0o600
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"old")
    os.chmod(kept, 0o640)
    atomic_write_bytes(kept, b"new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
