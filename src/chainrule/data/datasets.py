"""MNIST and Fashion-MNIST, read from the original gzipped IDX files (like ``torchvision.datasets``).

chainrule ships MNIST inside the package, so this works offline:

>>> from chainrule.data.datasets import MNIST
>>> train = MNIST(train=True)
>>> len(train)
60000
>>> image, label = train[0]
>>> tuple(image.shape), str(image.dtype), label
((1, 28, 28), 'float32', 5)

What a sample is
----------------
``ds[i]`` is ``(image, label)`` like torchvision's: ``label`` is a Python int and, with no
``transform``, ``image`` is a float32 Tensor of shape ``(1, 28, 28)`` with pixels scaled to
``[0, 1]`` (the same numbers as torchvision's ``ToTensor()``: ``uint8 / 255``).  With
``flatten=True`` it is a ``(784,)`` vector instead, handy for an MLP.  A ``transform`` receives the raw
image as a uint8 ndarray of shape ``(28, 28)`` (what ``np.asarray`` of torchvision's PIL image gives);
a ``target_transform`` receives the int label.

The images stay in memory as uint8 (47 MB for the 60000 training images, not 188 MB of float32) in
``ds.data`` (uint8 Tensor, ``(N, 28, 28)``) and the labels in ``ds.targets`` (int64 Tensor, ``(N,)``).
A ``DataLoader`` fetches whole batches through ``__getitems__``, which gathers the uint8 rows with one
``np.take`` and scales them to float32 per batch.

Where the files come from
-------------------------
``root=None``: MNIST uses the copy shipped in ``chainrule/data/mnist/``, else the cache folder
``$CHAINRULE_DATA/<name>`` (default ``~/.cache/chainrule/<name>``, ``<name>`` = ``mnist`` or
``fashion-mnist``); FashionMNIST uses the cache folder.  ``root=folder``: the four ``.gz`` files in
``folder`` (torchvision's layout ``folder/MNIST/raw/`` works too).  Missing files are downloaded
(``download=True``) from the mirrors into that folder.  Every file's size and SHA-256 are checked
against the published values before it is parsed, so a truncated or corrupt file gives a clear error
instead of wrong data.
"""

from __future__ import annotations

import hashlib
import http.client
import operator
import os
import sys
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from ..autograd import Tensor
from ..autograd.factories import from_numpy
from ..serialization import atomic_open
from .dataset import Dataset, _as_index_array, _gather

__all__ = ["MNIST", "FashionMNIST", "DatasetNotFoundError", "DatasetIntegrityError", "read_idx",
           "default_data_dir"]

DOWNLOAD_TIMEOUT = 10.0  # seconds per connection attempt


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not on disk and could not be downloaded."""


class DatasetIntegrityError(ValueError):
    """A dataset file is corrupt: wrong size or checksum, broken gzip data, or a bad IDX header."""


class Resource(NamedTuple):
    """One published file: its name, size in bytes, MD5 (as torchvision lists it) and SHA-256."""

    filename: str
    size: int
    md5: str
    sha256: str


def default_data_dir(name: str) -> Path:
    """The cache folder for dataset ``name``: ``$CHAINRULE_DATA/<name>`` or ``~/.cache/chainrule/<name>``.

    >>> default_data_dir("mnist").name
    'mnist'
    """
    base = os.environ.get("CHAINRULE_DATA")
    if base:
        return Path(base).expanduser() / name
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "chainrule" / name


# ---- the IDX file format ---------------------------------------------------------------------------
#
# An IDX file is a 4-byte magic number, then one big-endian uint32 per dimension, then the values in
# C order.  The magic's bytes are 0, 0, a type code (0x08 = unsigned byte) and the number of
# dimensions: MNIST images are 0x00000803 = 2051 (3-D: N x 28 x 28), labels 0x00000801 = 2049 (1-D).

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_IDX_TYPES: dict[int, type[np.generic] | np.dtype] = {
    0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(source, expected_magic: int | None = None) -> np.ndarray:
    """Parse an IDX file (gzipped or not) into a writable ndarray.

    ``source`` is a path or the file's bytes.  ``expected_magic`` (2051 for images, 2049 for labels)
    makes a file of the other kind an error.  Raises ``DatasetIntegrityError`` naming the problem.

    >>> import gzip, struct
    >>> raw = struct.pack(">IIII", 2051, 1, 2, 2) + bytes([0, 64, 128, 255])
    >>> read_idx(gzip.compress(raw)).tolist()
    [[[0, 64], [128, 255]]]
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, where = bytes(source), "IDX data"
    else:
        where = os.fspath(source)
        with open(where, "rb") as f:
            data = f.read()
    return _parse_idx(data, where, expected_magic)


def _decompress(data: bytes, where: str) -> bytes:
    if data[:2] != b"\x1f\x8b":                 # not gzip: assume an already unpacked IDX file
        return data
    try:
        d = zlib.decompressobj(wbits=31)        # 31 = expect a gzip header
        raw = d.decompress(data)
    except zlib.error as e:
        raise DatasetIntegrityError(f"{where}: broken gzip data ({e})") from None
    if not d.eof:
        raise DatasetIntegrityError(f"{where}: the gzip data ends early (truncated file: "
                                    f"{len(data)} bytes)")
    return raw


def _parse_idx(data: bytes, where: str, expected_magic: int | None) -> np.ndarray:
    raw = _decompress(data, where)
    if len(raw) < 4:
        raise DatasetIntegrityError(f"{where}: too short to be an IDX file ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    zero, type_code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
    if zero != 0 or type_code not in _IDX_TYPES or ndim == 0 or \
            (expected_magic is not None and magic != expected_magic):
        want = f", expected 0x{expected_magic:08X}" if expected_magic is not None else ""
        raise DatasetIntegrityError(f"{where}: bad IDX magic number 0x{magic:08X}{want} "
                                    "(not an IDX file, or the wrong kind of IDX file)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetIntegrityError(f"{where}: the IDX header is cut short")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        shape = " x ".join(map(str, dims))
        raise DatasetIntegrityError(f"{where}: the header promises {shape} values ({expected} bytes) but "
                                    f"the file holds {len(raw) - header} bytes of data")
    array = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)     # native order, writable


# ---- checking and downloading files ----------------------------------------------------------------

def _checksum_problem(size: int, sha256: str, resource: Resource) -> str | None:
    """What is wrong with a file of this size and digest, or None if it is the published file."""
    if size != resource.size:
        hint = " (truncated or incomplete download?)" if size < resource.size else ""
        return f"wrong size: {size} bytes, expected {resource.size}{hint}"
    if sha256 != resource.sha256:
        return (f"SHA-256 checksum mismatch: got {sha256}, expected {resource.sha256} "
                "(the file is corrupt or is not the original)")
    return None


def _load_checked(path: Path, resource: Resource, expected_magic: int, fix: str) -> np.ndarray:
    """Read ``path``, verify it against ``resource`` (size, SHA-256), then parse it."""
    data = path.read_bytes()
    problem = _checksum_problem(len(data), hashlib.sha256(data).hexdigest(), resource)
    if problem:
        raise DatasetIntegrityError(f"{path}: {problem}. {fix}")
    return _parse_idx(data, str(path), expected_magic)


class _BadDownload(ValueError):
    pass


def _download(mirrors: list[str], folder: Path, resource: Resource, timeout: float = DOWNLOAD_TIMEOUT):
    """Fetch ``resource`` into ``folder`` from the first mirror that serves the right bytes.

    Writes to a temporary file and renames it into place only once the checksum matches, so an
    interrupted download never leaves a broken file behind.  Returns a list of error strings (empty
    on success).
    """
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / resource.filename
    errors = []
    for base in mirrors:
        url = base + resource.filename
        try:
            print(f"Downloading {url} -> {dest}", file=sys.stderr)
            with urllib.request.urlopen(url, timeout=timeout) as response, atomic_open(dest) as f:
                digest, size = hashlib.sha256(), 0
                while chunk := response.read(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                problem = _checksum_problem(size, digest.hexdigest(), resource)
                if problem:
                    raise _BadDownload(problem)        # atomic_open deletes the temporary file
            return []
        except (OSError, http.client.HTTPException, _BadDownload) as e:   # URLError is an OSError
            errors.append(f"{url}: {type(e).__name__}: {e}")
    return errors


# ---- the datasets ----------------------------------------------------------------------------------

class MNIST(Dataset):
    """The MNIST handwritten digits: 60000 training and 10000 test images, 28 x 28, labels 0-9.

    Args:
        root: folder holding the four ``.gz`` files (default: the copy shipped with chainrule, then
            the cache folder; see the module docstring).
        train: the training split (60000) or the test split (10000, ``t10k``).
        transform: called on each image (a uint8 ndarray of shape (28, 28)).
        target_transform: called on each label (an int).
        download: fetch missing files from the mirrors.
        flatten: without a transform, give images as (784,) vectors instead of (1, 28, 28).

    >>> test = MNIST(train=False, flatten=True)
    >>> xb, yb = test.__getitems__([0, 1, 2])      # what a DataLoader batch looks like
    >>> tuple(xb.shape), yb.tolist()
    ((3, 784), [7, 2, 1])
    """

    name = "mnist"
    mirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
    resources = {
        "train-images-idx3-ubyte.gz": Resource(
            "train-images-idx3-ubyte.gz", 9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
        "train-labels-idx1-ubyte.gz": Resource(
            "train-labels-idx1-ubyte.gz", 28881, "d53e105ee54ea40749a09fcbcd1e9432",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
        "t10k-images-idx3-ubyte.gz": Resource(
            "t10k-images-idx3-ubyte.gz", 1648877, "9fb629c4189551a2d022fa330f9573f3",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
        "t10k-labels-idx1-ubyte.gz": Resource(
            "t10k-labels-idx1-ubyte.gz", 4542, "ec29112dd5afa0611ce80d1b7f02629c",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
    }
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four",
               "5 - five", "6 - six", "7 - seven", "8 - eight", "9 - nine"]

    def __init__(self, root=None, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = True, flatten: bool = False):
        if flatten and transform is not None:
            raise ValueError("flatten=True only applies when there is no transform; flatten inside "
                             "your transform instead")
        self.root = None if root is None else Path(root).expanduser()
        self.train = train
        self.transform = transform
        self.target_transform = target_transform
        self.flatten = flatten
        split = "train" if train else "t10k"
        files = [f"{split}-images-idx3-ubyte.gz", f"{split}-labels-idx1-ubyte.gz"]
        self.folder = self._find_or_download(files, download)
        images, labels = (
            _load_checked(self.folder / f, self.resources[f], magic,
                          fix=f"Delete it and load again with download=True, or replace it with the "
                              f"original from {self.mirrors[0]}{f}")
            for f, magic in zip(files, (IMAGES_MAGIC, LABELS_MAGIC)))
        if len(images) != len(labels):
            raise DatasetIntegrityError(f"{self.folder}: {files[0]} holds {len(images)} images but "
                                        f"{files[1]} holds {len(labels)} labels")
        self._images = images                      # uint8 (N, 28, 28)
        self._labels = labels.astype(np.int64)     # int64 (N,)

    # ---- finding the files ---------------------------------------------------------------------------
    def _search_folders(self) -> list[Path]:
        if self.root is not None:
            return [self.root, self.root / type(self).__name__ / "raw"]      # + torchvision's layout
        shipped = Path(__file__).parent / self.name
        return ([shipped] if self.name == "mnist" else []) + [default_data_dir(self.name)]

    def _find_or_download(self, files: list[str], download: bool) -> Path:
        folders = self._search_folders()
        for folder in folders:
            if all((folder / f).is_file() for f in files):
                return folder
        target = self.root if self.root is not None else default_data_dir(self.name)
        missing = [f for f in files if not (target / f).is_file()]
        errors = []
        if download:
            for f in missing:
                errors = _download(self.mirrors, target, self.resources[f])
                if errors:              # no mirror works: don't wait on the other files too
                    break
            if not errors:
                return target
        raise DatasetNotFoundError(self._missing_message(files, folders, target, errors, download))

    def _missing_message(self, files, folders, target, errors, download) -> str:
        split = "train" if self.train else "test"
        lines = [f"{type(self).__name__} ({split} split): the files {', '.join(files)} were not found.",
                 "Looked in:"] + [f"  {f}" for f in folders]
        if errors:
            lines += ["Downloading failed:"] + [f"  {e}" for e in errors]
        lines += [f"Put the original gzipped files (keep the .gz) into {target}", "downloaded from e.g.:"]
        lines += [f"  {base}{f}" for f in files for base in self.mirrors]
        hint = "pass root=<folder holding them>"
        hint += ", or set $CHAINRULE_DATA" if self.root is None else ""
        if not download:
            hint += ", or use download=True to fetch them"
        return "\n".join(lines + [f"Or {hint}."])

    # ---- data access -----------------------------------------------------------------------------
    @property
    def data(self) -> Tensor:
        """The images, uint8, shape (N, 28, 28) (shares memory with the dataset)."""
        return from_numpy(self._images)

    @data.setter
    def data(self, value) -> None:
        self._images = np.ascontiguousarray(value.data if isinstance(value, Tensor) else value)

    @property
    def targets(self) -> Tensor:
        """The labels, int64, shape (N,)."""
        return from_numpy(self._labels)

    @targets.setter
    def targets(self, value) -> None:
        self._labels = np.asarray(value.data if isinstance(value, Tensor) else value, dtype=np.int64)

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(self.classes)}

    def __len__(self) -> int:
        return len(self._images)

    def _scale(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 -> float32 in [0, 1], exactly ``x / 255`` (as torchvision's ToTensor)."""
        return np.divide(pixels, np.float32(255), dtype=np.float32)

    def __getitem__(self, index) -> tuple:
        index = operator.index(index)
        image, label = self._images[index], int(self._labels[index])
        if self.transform is not None:
            image = self.transform(image.copy())   # a copy: the transform may modify it
        else:
            image = from_numpy(self._scale(image).reshape(-1 if self.flatten else (1,) + image.shape))
        if self.target_transform is not None:
            label = self.target_transform(label)
        return image, label

    def __getitems__(self, indices):
        """A whole batch ``(images, labels)``: float32 (B, 1, 28, 28) or (B, 784), and int64 (B,).

        One ``np.take`` gathers the uint8 rows, one ``np.divide`` scales them into a fresh float32
        array (the caller may keep each batch).  With a transform, returns the list of samples.
        """
        if self.transform is not None or self.target_transform is not None:
            return [self[i] for i in np.asarray(indices).reshape(-1).tolist()]
        n = len(self._images)
        idx = _as_index_array(indices, n)
        rows = self._images.reshape(n, -1) if self.flatten else self._images[:, None]   # (n, 1, 28, 28)
        images = self._scale(_gather(rows, idx))
        return from_numpy(images), from_numpy(_gather(self._labels, idx))

    def __repr__(self) -> str:
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.folder}", f"    Split: {'Train' if self.train else 'Test'}"]
        if self.transform is not None:
            lines.append(f"    Transform: {self.transform!r}")
        if self.target_transform is not None:
            lines.append(f"    Target transform: {self.target_transform!r}")
        return "\n".join(lines)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: 28 x 28 grayscale clothes in 10 classes, same format as ``MNIST``.

    Not shipped with chainrule: pass ``root=`` a folder holding the four ``.gz`` files, or let it
    download into the cache folder (``$CHAINRULE_DATA/fashion-mnist``).  Arguments as ``MNIST``.

    >>> train = FashionMNIST(root="data/fashion-mnist")         # doctest: +SKIP
    >>> image, label = train[0]                                 # doctest: +SKIP
    >>> train.classes[label]                                    # doctest: +SKIP
    'Ankle boot'
    """

    name = "fashion-mnist"
    mirrors = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
    resources = {
        "train-images-idx3-ubyte.gz": Resource(
            "train-images-idx3-ubyte.gz", 26421880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
        "train-labels-idx1-ubyte.gz": Resource(
            "train-labels-idx1-ubyte.gz", 29515, "25c81989df183df01b3e8a0aad5dffbe",
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
        "t10k-images-idx3-ubyte.gz": Resource(
            "t10k-images-idx3-ubyte.gz", 4422102, "bef4ecab320f06d8554ea6380940ec79",
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
        "t10k-labels-idx1-ubyte.gz": Resource(
            "t10k-labels-idx1-ubyte.gz", 5148, "bb300cfdad3c16e7a12a480ee83cd310",
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
