"""Read and write the safetensors format with NumPy only.

safetensors (https://github.com/huggingface/safetensors) is a simple, safe
container for named tensors: loading a file only parses JSON and copies bytes,
so, unlike a pickle (``torch.save``), it can never run code. chainrule reads
and writes it with nothing but the standard library and NumPy. Files it writes
load in ``safetensors.numpy.load_file`` and ``safetensors.torch.load_file``,
and files those write load here.

File layout
-----------
::

    +----------+---------------------------+-------------------------------+
    | 8 bytes  | N bytes                   | the rest of the file          |
    | N (u64,  | header: UTF-8 JSON object | byte buffer: the tensors'     |
    | little-  | padded with spaces        | raw data, back to back        |
    | endian)  |                           |                               |
    +----------+---------------------------+-------------------------------+

The header maps each tensor name to its description, plus one optional
special key, ``"__metadata__"``, holding free-form string-to-string pairs::

    {
      "__metadata__": {"format": "np"},
      "fc.weight": {"dtype": "F32", "shape": [10, 784], "data_offsets": [0, 31360]},
      "fc.bias":   {"dtype": "F32", "shape": [10],      "data_offsets": [31360, 31400]}
    }

* ``data_offsets`` are ``[begin, end)`` byte positions relative to the start
  of the byte buffer (not of the file); ``end - begin`` must equal
  ``prod(shape) * itemsize``. A 0-d tensor has ``shape: []``, and an empty
  tensor has ``begin == end``.
* Together the tensors must tile the buffer exactly: no gaps, no overlaps, no
  trailing bytes.
* Data is stored C-contiguous (row-major) and little-endian.
* The header may end in spaces (0x20); writers pad it so that the buffer
  starts at a multiple of 8 bytes. chainrule also stores tensors with larger
  items first, so every tensor starts aligned to its item size.

Data types (code -> NumPy)::

    BOOL bool     U8 uint8     I8 int8      U16 uint16   I16 int16
    F16 float16   U32 uint32   I32 int32    F32 float32  U64 uint64
    I64 int64     F64 float64  C64 complex64             BF16 (see below)

``BF16`` (bfloat16) has no NumPy dtype. :func:`load_arrays` widens it to
``float32`` exactly -- every bfloat16 value is a float32 with its low 16 bits
zero -- so a bfloat16 checkpoint from PyTorch loads as float32 arrays. (It is
therefore read-only: chainrule never writes BF16.) The 8-bit float codes
(``F8_E4M3``, ``F8_E5M2``, ...) and any other code raise
:class:`SafetensorsError`.

Public API
----------
* :func:`save_arrays` / :func:`load_arrays` / :func:`read_metadata` work on
  plain ``dict[str, numpy.ndarray]``.
* :func:`atomic_write_bytes` and :func:`atomic_open` write a file so that it
  either appears complete or not at all; other modules (checkpoints) reuse
  them.
* Anything wrong with a file raises :class:`SafetensorsError` (a
  ``ValueError``) whose message starts with the file's path.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import struct
import sys
import tempfile
from collections.abc import Iterator, Mapping
from typing import IO, Any, Callable, NoReturn, Union

import numpy as np

__all__ = [
    "SafetensorsError",
    "save_arrays",
    "load_arrays",
    "read_metadata",
    "atomic_write_bytes",
    "atomic_open",
]

PathLike = Union[str, "os.PathLike[str]"]

#: Largest header accepted, in bytes (the reference implementation's limit).
MAX_HEADER_SIZE = 100_000_000

_METADATA_KEY = "__metadata__"

# safetensors code -> little-endian NumPy dtype, for everything NumPy can hold.
_CODE_TO_DTYPE: dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
    "C64": np.dtype("<c8"),
}
# NumPy dtype (any byte order, compared by kind and size) -> safetensors code.
_KIND_SIZE_TO_CODE: dict[tuple[str, int], str] = {
    (dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()
}
# Codes that can be read but have no NumPy dtype of their own: code -> itemsize.
_BF16 = "BF16"
# Codes other safetensors writers produce that chainrule cannot represent.
_KNOWN_UNSUPPORTED = (
    "F8_E4M3", "F8_E4M3FNUZ", "F8_E5M2", "F8_E5M2FNUZ", "F8_E8M0", "F4", "F6_E2M3",
    "F6_E3M2", "C128", "I4", "U4",
)  # fmt: skip

_SUPPORTED_NAMES = ", ".join(str(dt.newbyteorder("=")) for dt in _CODE_TO_DTYPE.values())


class SafetensorsError(ValueError):
    """A file is not a valid safetensors file; the message starts with its path."""


# --------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------


def _current_umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no way to read it without setting it
    os.umask(mask)
    return mask


def _fsync_directory(directory: str) -> None:
    """Make a rename in ``directory`` durable (POSIX only; best effort)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open ``path`` for writing so that it is replaced all at once or not at all.

    The body writes to a temporary file in the same directory. When the body
    finishes, the file is flushed, ``fsync``-ed and renamed onto ``path`` with
    ``os.replace`` (atomic on POSIX and Windows). If the body raises, or
    anything before the rename fails, the temporary file is deleted, the error
    propagates, and whatever was at ``path`` before is untouched -- a crash can
    never leave a half-written file at ``path``.

    ``mode`` is ``"wb"`` (binary, the default) or ``"w"`` (text; ``encoding``
    defaults to UTF-8). A new file gets the usual permissions
    (``0o666 & ~umask``); a replaced file keeps its permissions.

    Example::

        with atomic_open("run/state.json", "w") as f:
            json.dump(state, f)
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    try:
        permissions = os.stat(target).st_mode & 0o7777
    except OSError:
        permissions = 0o666 & ~_current_umask()

    text = mode == "w"
    tmp = tempfile.NamedTemporaryFile(
        mode=mode,
        dir=directory,
        prefix="." + os.path.basename(target) + ".",
        suffix=".tmp",
        delete=False,
        encoding=(encoding or "utf-8") if text else None,
    )
    try:
        with tmp:
            yield tmp
            tmp.flush()
            os.fsync(tmp.fileno())
        os.chmod(tmp.name, permissions)
        os.replace(tmp.name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise
    _fsync_directory(directory)


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "wb") as f:
        f.write(data)


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


def _code_for(name: str, array: np.ndarray) -> str:
    dt = array.dtype
    code = None
    if dt.fields is None and dt.subdtype is None:
        code = _KIND_SIZE_TO_CODE.get((dt.kind, dt.itemsize))
    if code is None:
        raise TypeError(
            f"save_arrays: array {name!r} has dtype {dt}, which safetensors cannot store "
            f"(supported: {_SUPPORTED_NAMES})"
        )
    return code


def _validate_for_saving(
    arrays: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None
) -> list[tuple[str, str, np.ndarray]]:
    if not isinstance(arrays, Mapping):
        raise TypeError(f"save_arrays: arrays must be a dict of name -> ndarray, got {type(arrays).__name__}")
    entries = []
    for name, array in arrays.items():
        if not isinstance(name, str):
            raise TypeError(f"save_arrays: array names must be str, got {name!r} ({type(name).__name__})")
        if name == _METADATA_KEY:
            raise ValueError(f"save_arrays: {_METADATA_KEY!r} is reserved and cannot name an array")
        if not isinstance(array, np.ndarray):
            raise TypeError(
                f"save_arrays: value for {name!r} must be a numpy.ndarray, got {type(array).__name__}"
            )
        entries.append((name, _code_for(name, array), array))
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError(
                f"save_arrays: metadata must be a dict of str -> str, got {type(metadata).__name__}"
            )
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(
                    f"save_arrays: metadata must map str to str, got {key!r}: {value!r} "
                    f"({type(key).__name__}: {type(value).__name__})"
                )
    return entries


def _encode_header(
    entries: list[tuple[str, str, np.ndarray]], metadata: Mapping[str, str] | None
) -> tuple[bytes, list[tuple[str, str, np.ndarray]]]:
    """Return (8-byte size prefix + padded JSON header, entries in buffer order)."""
    # Larger items first, then by name: every tensor starts aligned to its item
    # size, and the output does not depend on dict order.
    ordered = sorted(entries, key=lambda e: (-e[2].dtype.itemsize, e[0]))
    header: dict[str, Any] = {}
    if metadata:
        header[_METADATA_KEY] = dict(metadata)
    offset = 0
    for name, code, array in ordered:
        end = offset + array.size * array.dtype.itemsize
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, end]}
        offset = end
    text = json.dumps(header, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    return struct.pack("<Q", len(text)) + text, ordered


def _write_array(f: IO[bytes], code: str, array: np.ndarray) -> None:
    """Write one array's bytes: C order, little-endian."""
    if array.size == 0:
        return
    data = np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code])
    # numpy's stubs declare the buffer protocol (``__buffer__``) only for Python >= 3.12
    f.write(data.reshape(-1).view(np.uint8))  # type: ignore[call-overload,unused-ignore]


def save_arrays(
    arrays: Mapping[str, np.ndarray], path: PathLike, metadata: Mapping[str, str] | None = None
) -> None:
    """Save named NumPy arrays to ``path`` in safetensors format, atomically.

    ``arrays`` maps names to arrays of a supported dtype (``bool``, 8- to
    64-bit signed and unsigned ints, ``float16``/``float32``/``float64``,
    ``complex64``); any shape works, 0-d and empty included. Non-contiguous
    arrays are written in C order and big-endian arrays as little-endian; the
    arrays themselves are not modified. ``metadata`` is optional
    string-to-string information stored in the header (see
    :func:`read_metadata`).

    Everything is validated before the file is touched: a name that is not a
    ``str``, a value that is not an ``ndarray`` or has an unsupported dtype,
    or non-string metadata raises ``TypeError`` naming the culprit. The file
    is written through :func:`atomic_open`, so an existing file at ``path``
    stays intact until the new one is complete.
    """
    entries = _validate_for_saving(arrays, metadata)
    header, ordered = _encode_header(entries, metadata)
    with atomic_open(path, "wb") as f:
        f.write(header)
        for _name, code, array in ordered:
            _write_array(f, code, array)


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def _foreign_format(prefix: bytes) -> str | None:
    """Name the format of a file that is clearly not safetensors, if we can tell."""
    if prefix.startswith(b"PK\x03\x04"):
        return "a zip archive (a PyTorch torch.save checkpoint?)"
    if len(prefix) >= 2 and prefix[0] == 0x80 and 2 <= prefix[1] <= 5:
        return "a Python pickle (a legacy PyTorch torch.save checkpoint?)"
    if prefix.startswith(b"\x93NUMPY"):
        return "a NumPy .npy file"
    if prefix.startswith(b"\x1f\x8b"):
        return "a gzip file"
    if prefix.startswith(b"\x89HDF"):
        return "an HDF5 file (a Keras checkpoint?)"
    return None


class _Header:
    """A parsed and validated header: where each tensor's bytes are."""

    def __init__(self, data_start: int, tensors: list[tuple[str, str, tuple[int, ...], int, int]],
                 metadata: dict[str, str]):
        self.data_start = data_start  # file offset of the byte buffer
        self.tensors = tensors  # (name, code, shape, begin, end), sorted by begin
        self.metadata = metadata


def _check_int_list(value: Any, what: str, fail: Callable[[str], NoReturn]) -> list[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    ):
        fail(f"{what} must be a list of non-negative integers, got {value!r}")
    return value


def _read_header(f: IO[bytes], display: str) -> _Header:
    """Parse and fully validate the header of the open file ``f``."""

    def fail(message: str) -> NoReturn:
        raise SafetensorsError(f"{display}: {message}")

    file_size = os.fstat(f.fileno()).st_size
    prefix = f.read(8)

    def not_safetensors(problem: str) -> NoReturn:
        foreign = _foreign_format(prefix)
        if foreign is not None:
            fail(f"is not a safetensors file, it looks like {foreign}; chainrule never unpickles")
        fail(problem)

    if file_size == 0:
        fail("file is empty, not a safetensors file")
    if len(prefix) < 8:
        not_safetensors(f"file is too short ({file_size} bytes) for the 8-byte safetensors header size")
    (header_size,) = struct.unpack("<Q", prefix)
    if header_size > file_size - 8:
        not_safetensors(
            f"header size {header_size} is larger than the rest of the file "
            f"({file_size - 8} bytes): truncated or not a safetensors file"
        )
    if header_size > MAX_HEADER_SIZE:
        not_safetensors(f"header size {header_size} exceeds the {MAX_HEADER_SIZE}-byte limit")
    raw = f.read(header_size)
    if len(raw) != header_size:
        fail(f"file is truncated inside the header ({len(raw)} of {header_size} bytes)")
    if not raw.lstrip(b" ").startswith(b"{"):
        not_safetensors("header is not a JSON object (it does not start with '{')")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                fail(f"header has a duplicate key {key!r}")
            result[key] = value
        return result

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except UnicodeDecodeError as e:
        not_safetensors(f"header is not valid UTF-8 ({e})")
    except json.JSONDecodeError as e:
        not_safetensors(f"header is not valid JSON ({e})")
    except RecursionError:
        fail("header nests JSON too deeply to be a safetensors header")
    if not isinstance(header, dict):
        fail(f"header must be a JSON object, got {type(header).__name__}")

    metadata = header.pop(_METADATA_KEY, None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        fail(f"{_METADATA_KEY!r} must map strings to strings, got {metadata!r}")

    tensors = []
    for name, info in header.items():
        where = f"tensor {name!r}"
        if not isinstance(info, dict):
            fail(f"{where}: entry must be a JSON object, got {info!r}")
        missing = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
        if missing:
            fail(f"{where}: entry lacks {', '.join(missing)}")
        code = info["dtype"]
        if code != _BF16 and code not in _CODE_TO_DTYPE:
            if code in _KNOWN_UNSUPPORTED:
                fail(f"{where}: dtype {code} has no NumPy equivalent and is not supported")
            fail(f"{where}: unknown dtype {code!r}")
        shape = tuple(_check_int_list(info["shape"], f"{where}: shape", fail))
        offsets = _check_int_list(info["data_offsets"], f"{where}: data_offsets", fail)
        if len(offsets) != 2 or offsets[0] > offsets[1]:
            fail(f"{where}: data_offsets must be [begin, end] with begin <= end, got {offsets!r}")
        begin, end = offsets
        itemsize = 2 if code == _BF16 else _CODE_TO_DTYPE[code].itemsize
        expected = math.prod(shape) * itemsize
        if end - begin != expected:
            fail(
                f"{where}: data_offsets {offsets} span {end - begin} bytes, but shape "
                f"{list(shape)} of {code} needs {expected}"
            )
        tensors.append((name, code, shape, begin, end))

    data_start = 8 + header_size
    buffer_size = file_size - data_start
    data_size = max((t[4] for t in tensors), default=0)
    if data_size > buffer_size:
        fail(f"file is truncated: header says {data_size} bytes of data, file has {buffer_size}")
    tensors.sort(key=lambda t: (t[3], t[4]))
    position, previous = 0, None
    for name, _code, _shape, begin, end in tensors:
        if begin > position:
            fail(f"tensor {name!r} starts at byte {begin}, leaving a gap of {begin - position} "
                 f"unused bytes after {'the header' if previous is None else repr(previous)}")
        if begin < position:
            fail(
                f"tensor {name!r} (bytes {begin}..{end}) overlaps tensor {previous!r}, "
                f"which ends at {position}"
            )
        position, previous = end, name
    if position < buffer_size:
        fail(f"{buffer_size - position} trailing bytes after the last tensor are not covered by any tensor")
    return _Header(data_start, tensors, metadata)


def _read_tensor(f: io.BufferedIOBase, display: str, name: str, code: str, shape: tuple[int, ...]) -> np.ndarray:
    """Read one tensor at the current position into a fresh, aligned array."""
    stored = np.dtype("<u2") if code == _BF16 else _CODE_TO_DTYPE[code]
    try:
        array = np.empty(shape, dtype=stored)
    except (ValueError, MemoryError) as e:
        raise SafetensorsError(
            f"{display}: tensor {name!r}: cannot allocate shape {list(shape)} ({e})"
        ) from e
    if array.nbytes:
        # numpy's stubs declare the buffer protocol (``__buffer__``) only for Python >= 3.12
        got = f.readinto(array.reshape(-1).view(np.uint8))  # type: ignore[arg-type,unused-ignore]
        if got != array.nbytes:
            raise SafetensorsError(f"{display}: file is truncated inside tensor {name!r}")
    if code == _BF16:
        # bfloat16 is the top half of a float32: widen exactly. (In place, so
        # that a 0-d array stays an array rather than becoming a scalar.)
        widened = array.astype(np.uint32)
        widened <<= 16
        return widened.view(np.float32)
    if sys.byteorder == "big" and array.dtype.itemsize > 1:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def load_arrays(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Load a safetensors file: returns ``(arrays, metadata)``.

    ``arrays`` maps each tensor name (in the order the data is stored in the
    file) to a new, writeable, C-contiguous array of the stored dtype and
    shape -- copies in memory, not memory maps, so the file can be changed or
    deleted afterwards. ``BF16`` tensors come back as ``float32`` (exactly).
    ``metadata`` is the header's ``"__metadata__"`` dict (``{}`` if absent).

    Loading only parses JSON and copies bytes; it never executes anything
    from the file. A missing file raises ``FileNotFoundError``; a file that is
    empty, truncated, not a safetensors file (a ``torch.save`` pickle, say),
    or has an inconsistent header raises :class:`SafetensorsError` whose
    message starts with ``path`` and says what is wrong.
    """
    display = os.fspath(path)
    with open(path, "rb") as f:
        header = _read_header(f, display)
        f.seek(header.data_start)
        arrays = {name: _read_tensor(f, display, name, code, shape)
                  for name, code, shape, _begin, _end in header.tensors}
    return arrays, header.metadata


def read_metadata(path: PathLike) -> dict[str, str]:
    """Return the ``"__metadata__"`` dict of a safetensors file without reading its data.

    The header is validated as in :func:`load_arrays`, including that the file
    is long enough for the data it describes, so a truncated file is reported
    here too.
    """
    with open(path, "rb") as f:
        return _read_header(f, os.fspath(path)).metadata
