"""Tests for chainrule.data: datasets, DataLoader, collate, MNIST / Fashion-MNIST and toy datasets."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import struct
import time
import urllib.error
import urllib.request
from collections import OrderedDict, namedtuple
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule.data import (
    ConcatDataset,
    DataLoader,
    Dataset,
    FashionMNIST,
    MNIST,
    RandomSampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    random_split,
    toy,
)
from chainrule.data.datasets import DatasetIntegrityError, DatasetNotFoundError, read_idx

SHIPPED = Path(cr.__file__).parent / "data" / "mnist"
TEST_FILES = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def _fashion_root() -> Path | None:
    """$CHAINRULE_FASHION_MNIST, else ../shared/data/fashion-mnist next to the repository."""
    env = os.environ.get("CHAINRULE_FASHION_MNIST")
    root = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"
    files = FashionMNIST.resources
    return root if all((root / f).is_file() for f in files) else None


@pytest.fixture(scope="module")
def mnist_train():
    return MNIST(train=True)


@pytest.fixture(scope="module")
def mnist_test():
    return MNIST(train=False)


def _copy_test_split(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for f in TEST_FILES:
        shutil.copyfile(SHIPPED / f, dest / f)
    return dest


def _idx_bytes(magic: int, dims, payload: bytes) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{len(dims)}I", *dims) + payload


# ---- MNIST: reading the shipped IDX files ------------------------------------------------------------

def test_mnist_sizes_and_dtypes(mnist_train, mnist_test):
    assert len(mnist_train) == 60000 and len(mnist_test) == 10000
    assert mnist_train.data.shape == (60000, 28, 28) and mnist_train.data.dtype == np.uint8
    assert mnist_train.targets.shape == (60000,) and mnist_train.targets.dtype == np.int64
    assert mnist_test.data.shape == (10000, 28, 28)
    assert mnist_train.classes[5] == "5 - five" and mnist_train.class_to_idx["0 - zero"] == 0


def test_mnist_known_values(mnist_train, mnist_test):
    # label counts of the official MNIST splits
    assert np.bincount(mnist_train.targets.numpy()).tolist() == \
        [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(mnist_test.targets.numpy()).tolist() == \
        [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert mnist_train.targets[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert mnist_test.targets[:5].tolist() == [7, 2, 1, 0, 4]
    assert int(mnist_train.data.numpy()[0].astype(np.int64).sum()) == 27525
    assert int(mnist_test.data.numpy()[0].astype(np.int64).sum()) == 18454


def test_mnist_parse_is_exact(mnist_train):
    # Rebuild the uncompressed IDX file from the parsed array: its MD5 is the published one.
    raw = _idx_bytes(2051, (60000, 28, 28), mnist_train.data.numpy().tobytes())
    assert hashlib.md5(raw).hexdigest() == "6bbc9ace898e44ae57da46a324031adb"


def test_mnist_item_is_torchvision_like(mnist_train):
    image, label = mnist_train[0]
    assert isinstance(image, cr.Tensor) and image.shape == (1, 28, 28) and image.dtype == np.float32
    assert label == 5 and type(label) is int
    np.testing.assert_array_equal(image.numpy()[0], mnist_train.data.numpy()[0] / np.float32(255))
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    assert mnist_train[-1][1] == int(mnist_train.targets[-1])


def test_mnist_scaling_matches_torch_bit_for_bit(mnist_test):
    torch = pytest.importorskip("torch")
    xb, _ = mnist_test.__getitems__(np.arange(256))
    expected = torch.from_numpy(mnist_test.data.numpy()[:256].copy()).float().div(255).unsqueeze(1)
    np.testing.assert_array_equal(xb.numpy(), expected.numpy())


def test_mnist_getitems_matches_getitem(mnist_test):
    idx = [3, 0, 9999, 17, -1]
    xb, yb = mnist_test.__getitems__(idx)
    assert xb.shape == (5, 1, 28, 28) and xb.dtype == np.float32 and yb.dtype == np.int64
    for row, i in enumerate(idx):
        image, label = mnist_test[i]
        np.testing.assert_array_equal(xb.numpy()[row], image.numpy())
        assert yb.tolist()[row] == label
    with pytest.raises(IndexError):
        mnist_test.__getitems__([0, 10000])


def test_mnist_flatten_and_transforms():
    flat = MNIST(train=False, flatten=True)
    assert flat[0][0].shape == (784,)
    assert flat.__getitems__([0, 1])[0].shape == (2, 784)
    seen = []

    def transform(img):
        seen.append((img.dtype, img.shape))
        img[:] = 0                    # must not damage the dataset
        return cr.from_numpy(img.astype(np.float32) + 1)

    ds = MNIST(train=False, transform=transform, target_transform=lambda y: y * 10)
    image, label = ds[0]
    assert seen == [(np.uint8, (28, 28))] and float(image.sum()) == 784 and label == 70
    assert ds.data.numpy()[0].sum() > 0
    batch = next(iter(DataLoader(ds, batch_size=3)))       # list-of-samples path, then collated
    assert batch[0].shape == (3, 28, 28) and batch[1].tolist() == [70, 20, 10]
    with pytest.raises(ValueError, match="flatten"):
        MNIST(train=False, flatten=True, transform=transform)


def test_mnist_data_setter_keeps_fast_path(mnist_test):
    ds = MNIST(train=False)
    ds.data, ds.targets = ds.data[:100], ds.targets[:100]
    assert len(ds) == 100
    xb, yb = next(iter(DataLoader(ds, batch_size=1000)))
    assert xb.shape == (100, 1, 28, 28) and yb.tolist() == mnist_test.targets[:100].tolist()


def test_mnist_load_time():
    start = time.perf_counter()
    MNIST(train=True)
    elapsed = time.perf_counter() - start
    print(f"\nMNIST train load (verify SHA-256 + gunzip + parse): {elapsed:.3f} s")


def test_mnist_repr(mnist_test):
    text = repr(mnist_test)
    assert "Number of datapoints: 10000" in text and "Split: Test" in text


# ---- errors: corrupt, truncated, missing -----------------------------------------------------------

def test_corrupt_file_is_named(tmp_path):
    root = _copy_test_split(tmp_path / "m")
    data = bytearray((root / TEST_FILES[0]).read_bytes())
    data[5000] ^= 0xFF
    (root / TEST_FILES[0]).write_bytes(bytes(data))
    with pytest.raises(DatasetIntegrityError) as info:
        MNIST(root=root, train=False, download=False)
    msg = str(info.value)
    assert TEST_FILES[0] in msg and "SHA-256" in msg and "mismatch" in msg


def test_truncated_file_is_named(tmp_path):
    root = _copy_test_split(tmp_path / "m")
    path = root / TEST_FILES[1]
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DatasetIntegrityError) as info:
        MNIST(root=root, train=False, download=True)          # a corrupt file is never replaced silently
    msg = str(info.value)
    assert TEST_FILES[1] in msg and "wrong size: 1000 bytes" in msg and "truncated" in msg


def test_read_idx_errors(tmp_path):
    good = _idx_bytes(2051, (2, 2, 2), bytes(range(8)))
    assert read_idx(gzip.compress(good)).shape == (2, 2, 2)
    assert read_idx(good).tolist() == [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]      # plain IDX works too
    with pytest.raises(DatasetIntegrityError, match="bad IDX magic number 0x00000803, expected 0x00000801"):
        read_idx(gzip.compress(good), expected_magic=2049)
    with pytest.raises(DatasetIntegrityError, match="bad IDX magic"):
        read_idx(gzip.compress(b"\x12\x34\x56\x78" + good[4:]))
    with pytest.raises(DatasetIntegrityError, match="truncated|broken gzip"):
        read_idx(gzip.compress(good)[:-12])
    with pytest.raises(DatasetIntegrityError, match="header promises 2 x 2 x 2 values"):
        read_idx(good[:-1])
    path = tmp_path / "x.gz"
    path.write_bytes(gzip.compress(good)[:20])
    with pytest.raises(DatasetIntegrityError, match="x.gz"):
        read_idx(path)
    big_endian = read_idx(_idx_bytes(0x00000C01, (2,), struct.pack(">ii", 1, -2)))  # int32 type code
    assert big_endian.tolist() == [1, -2] and big_endian.dtype.isnative


def test_missing_files_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        MNIST(root=tmp_path, train=False, download=False)
    msg = str(info.value)
    for f in TEST_FILES:
        assert f in msg
        assert "https://ossci-datasets.s3.amazonaws.com/mnist/" + f in msg
    assert str(tmp_path) in msg and "download=True" in msg
    assert isinstance(info.value, FileNotFoundError)


def test_torchvision_layout_is_found(tmp_path):
    _copy_test_split(tmp_path / "MNIST" / "raw")
    assert len(MNIST(root=tmp_path, train=False, download=False)) == 10000


def _serve_local(calls, bad_urls=()):
    """A fake urlopen: serves the shipped files by name; URLs in bad_urls serve garbage."""
    def urlopen(url, timeout=None):
        calls.append((url, timeout))
        name = url.rsplit("/", 1)[1]
        if url in bad_urls:
            return io.BytesIO(b"<html>not the file</html>")
        if "fashion" in url or not (SHIPPED / name).is_file():
            raise urllib.error.URLError("no route to host")
        return io.BytesIO((SHIPPED / name).read_bytes())
    return urlopen


def test_download_via_mirror(tmp_path, monkeypatch):
    calls = []
    first = "https://ossci-datasets.s3.amazonaws.com/mnist/" + TEST_FILES[0]
    monkeypatch.setattr(urllib.request, "urlopen", _serve_local(calls, bad_urls={first}))
    ds = MNIST(root=tmp_path / "new", train=False, download=True)
    assert len(ds) == 10000 and ds.targets[:5].tolist() == [7, 2, 1, 0, 4]
    # the first mirror served garbage for the images: rejected by the checksum, second mirror used
    assert [u for u, _ in calls] == [first, "http://yann.lecun.com/exdb/mnist/" + TEST_FILES[0],
                                     "https://ossci-datasets.s3.amazonaws.com/mnist/" + TEST_FILES[1]]
    assert all(t is not None and t <= 60 for _, t in calls)                  # a timeout is always set
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == sorted(TEST_FILES)   # no temp files
    calls.clear()
    MNIST(root=tmp_path / "new", train=False, download=True)                 # now on disk: no download
    assert calls == []


def test_download_failure_is_clear(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(urllib.request, "urlopen", _serve_local(calls))
    with pytest.raises(DatasetNotFoundError) as info:
        FashionMNIST(root=tmp_path, train=False, download=True)
    msg = str(info.value)
    assert "Downloading failed" in msg and "no route to host" in msg
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz" in msg
    assert list(tmp_path.iterdir()) == []                                   # nothing half-written


def test_default_root_uses_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINRULE_DATA", str(tmp_path))
    _copy_test_split(tmp_path / "fashion-mnist")   # MNIST files: wrong checksums for Fashion-MNIST
    with pytest.raises(DatasetIntegrityError, match="fashion-mnist"):
        FashionMNIST(train=False, download=False)


# ---- Fashion-MNIST ---------------------------------------------------------------------------------

@pytest.mark.skipif(_fashion_root() is None, reason="Fashion-MNIST files not available "
                    "(set CHAINRULE_FASHION_MNIST to a folder holding the four .gz files)")
def test_fashion_mnist():
    root = _fashion_root()
    train, test = FashionMNIST(root=root), FashionMNIST(root=root, train=False, flatten=True)
    assert len(train) == 60000 and len(test) == 10000
    assert np.bincount(train.targets.numpy()).tolist() == [6000] * 10
    assert np.bincount(test.targets.numpy()).tolist() == [1000] * 10
    assert train[0][1] == 9 and train.classes[9] == "Ankle boot"
    assert train[0][0].shape == (1, 28, 28) and test[0][0].shape == (784,)


# ---- DataLoader ------------------------------------------------------------------------------------

def _toy_dataset(n=10):
    X = cr.from_numpy(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = cr.from_numpy(np.arange(n, dtype=np.int64))
    return TensorDataset(X, y)


@pytest.mark.parametrize("n,bs,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False), (9, 3, True),
                                             (2, 5, False), (2, 5, True), (1, 1, False)])
def test_len_and_batch_sizes(n, bs, drop_last):
    dl = DataLoader(_toy_dataset(n), batch_size=bs, drop_last=drop_last)
    sizes = [xb.shape[0] for xb, _ in dl]
    assert len(dl) == len(sizes)
    full, rest = divmod(n, bs)
    assert sizes == [bs] * full + ([rest] if rest and not drop_last else [])


def test_len_matches_torch():
    torch = pytest.importorskip("torch")
    for n, bs, drop in [(60000, 128, False), (60000, 128, True), (7, 7, True), (0, 4, False)]:
        ours = DataLoader(range(n), batch_size=bs, drop_last=drop)
        theirs = torch.utils.data.DataLoader(range(n), batch_size=bs, drop_last=drop)
        assert len(ours) == len(theirs)


def test_sequential_order_and_values():
    batches = list(DataLoader(_toy_dataset(5), batch_size=2))
    assert [yb.tolist() for _, yb in batches] == [[0, 1], [2, 3], [4]]
    np.testing.assert_array_equal(batches[0][0].numpy(), [[0, 1, 2], [3, 4, 5]])
    assert isinstance(batches[0], tuple)


def _epoch_labels(dl):
    return np.concatenate([yb.numpy() for _, yb in dl])


def test_shuffle_reproducible_with_manual_seed():
    ds = _toy_dataset(100)
    cr.manual_seed(123)
    a = [(xb.numpy().copy(), yb.numpy().copy()) for xb, yb in DataLoader(ds, batch_size=16, shuffle=True)]
    cr.manual_seed(123)
    b = [(xb.numpy().copy(), yb.numpy().copy()) for xb, yb in DataLoader(ds, batch_size=16, shuffle=True)]
    assert len(a) == len(b) == 7
    for (xa, ya), (xb_, yb_) in zip(a, b):
        assert xa.tobytes() == xb_.tobytes() and ya.tobytes() == yb_.tobytes()     # bit for bit
    order = np.concatenate([y for _, y in a])
    assert sorted(order.tolist()) == list(range(100)) and order.tolist() != list(range(100))
    cr.manual_seed(124)
    other = _epoch_labels(DataLoader(ds, batch_size=16, shuffle=True))
    assert other.tolist() != order.tolist()


def test_each_epoch_reshuffles():
    cr.manual_seed(0)
    dl = DataLoader(_toy_dataset(50), batch_size=50, shuffle=True)
    first, second = _epoch_labels(dl), _epoch_labels(dl)
    assert sorted(first) == sorted(second) and first.tolist() != second.tolist()
    cr.manual_seed(0)
    again = DataLoader(_toy_dataset(50), batch_size=50, shuffle=True)
    assert _epoch_labels(again).tolist() == first.tolist()
    assert _epoch_labels(again).tolist() == second.tolist()


def test_generator_argument_is_independent_of_global_state():
    ds = _toy_dataset(30)
    g1, g2 = cr.Generator(7), cr.Generator(7)
    cr.manual_seed(1)
    state = cr.get_rng_state()
    a = _epoch_labels(DataLoader(ds, batch_size=4, shuffle=True, generator=g1))
    assert cr.get_rng_state() == state                       # the global generator was not used
    cr.manual_seed(999)
    b = _epoch_labels(DataLoader(ds, batch_size=4, shuffle=True, generator=g2))
    assert a.tolist() == b.tolist()


def test_order_is_drawn_when_iteration_starts():
    cr.manual_seed(5)
    dl = DataLoader(_toy_dataset(20), batch_size=20, shuffle=True)
    it = iter(dl)
    cr.manual_seed(5)                                        # reseeding after iter() changes nothing
    first = next(it)[1].tolist()
    cr.manual_seed(5)
    assert _epoch_labels(dl).tolist() == first


def test_batches_are_fresh_arrays(mnist_test):
    for ds in (_toy_dataset(10), mnist_test):
        it = iter(DataLoader(ds, batch_size=4))
        first = next(it)
        kept = first[0].numpy().copy()
        next(it)
        np.testing.assert_array_equal(first[0].numpy(), kept)
        first[0].numpy()[...] = 0                            # the user may modify a batch freely
        assert ds[0][0].numpy().any()


def test_mnist_loader_epoch_covers_everything(mnist_test):
    cr.manual_seed(0)
    dl = DataLoader(mnist_test, batch_size=128, shuffle=True, drop_last=False)
    labels = _epoch_labels(dl)
    assert len(dl) == 79 and len(labels) == 10000
    assert np.bincount(labels).tolist() == np.bincount(mnist_test.targets.numpy()).tolist()


def test_sampler_and_batch_sampler_options():
    ds = _toy_dataset(6)
    dl = DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 2, 1, 0])
    assert _epoch_labels(dl).tolist() == [5, 4, 3, 2, 1, 0]
    dl = DataLoader(ds, batch_sampler=[[0, 5], [1, 2, 3]])
    assert [yb.tolist() for _, yb in dl] == [[0, 5], [1, 2, 3]] and len(dl) == 2
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(ds, sampler=[0], shuffle=True)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    assert list(SequentialSampler(range(3))) == [0, 1, 2]
    cr.manual_seed(0)
    assert sorted(RandomSampler(range(5))) == [0, 1, 2, 3, 4]
    assert len(list(RandomSampler(range(5), replacement=True, num_samples=12))) == 12


def test_custom_collate_fn_gets_samples():
    got = []

    def collate(samples):
        got.append(samples)
        return len(samples)

    assert list(DataLoader(_toy_dataset(5), batch_size=2, collate_fn=collate)) == [2, 2, 1]
    x0, y0 = got[0][0]
    assert x0.shape == (3,) and int(y0) == 0


def test_plain_python_dataset():
    data = [(float(i), i % 2) for i in range(7)]       # a list is a dataset too
    xb, yb = next(iter(DataLoader(data, batch_size=4)))
    assert xb.dtype == np.float32 and yb.dtype == np.int64 and yb.tolist() == [0, 1, 0, 1]


def test_torch_style_getitems_returning_samples():
    class Samples(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return {"x": np.full(2, i, dtype=np.float32), "y": i}

        def __getitems__(self, idx):            # torch's meaning: a list of samples
            return [self[i] for i in idx]

    batch = next(iter(DataLoader(Samples(), batch_size=3)))
    assert batch["x"].shape == (3, 2) and batch["y"].tolist() == [0, 1, 2]


# ---- collate -----------------------------------------------------------------------------------------

def test_default_collate_structures():
    Point = namedtuple("Point", "x y")
    samples = [
        {"img": np.ones((2, 2), np.float64) * i, "label": i, "w": 0.5 * i, "ok": i > 0, "name": f"s{i}",
         "pair": (cr.tensor([i, i]), np.int32(i)), "pt": Point(i, [i, 2 * i])}
        for i in range(3)]
    b = default_collate(samples)
    assert b["img"].shape == (3, 2, 2) and b["img"].dtype == np.float64           # arrays keep dtype
    assert b["label"].dtype == np.int64 and b["label"].tolist() == [0, 1, 2]
    assert b["w"].dtype == np.float32 and b["ok"].dtype == np.bool_
    assert b["name"] == ["s0", "s1", "s2"]
    assert isinstance(b["pair"], tuple) and b["pair"][0].shape == (3, 2) and b["pair"][1].dtype == np.int32
    assert isinstance(b["pt"], Point) and b["pt"].x.tolist() == [0, 1, 2]
    assert isinstance(b["pt"].y, list) and b["pt"].y[1].tolist() == [0, 2, 4]
    od = default_collate([OrderedDict(a=1), OrderedDict(a=2)])
    assert isinstance(od, OrderedDict) and od["a"].tolist() == [1, 2]


def test_default_collate_errors_and_grad():
    with pytest.raises(RuntimeError, match="same length"):
        default_collate([(1, 2), (1,)])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    out = default_collate([w, w * 2])
    assert out.requires_grad
    out.sum().backward()
    assert w.grad.tolist() == [3.0, 3.0]


def test_default_collate_agrees_with_torch():
    torch = pytest.importorskip("torch")
    samples = [(np.arange(3, dtype=np.float32) + i, i, {"a": np.int64(i)}) for i in range(4)]
    ours, theirs = default_collate(samples), torch.utils.data.default_collate(samples)
    np.testing.assert_array_equal(ours[0].numpy(), theirs[0].numpy())
    assert str(ours[0].dtype) == str(theirs[0].dtype).removeprefix("torch.")
    np.testing.assert_array_equal(ours[1].numpy(), theirs[1].numpy())
    assert ours[1].dtype == np.int64 and theirs[1].dtype == torch.int64
    np.testing.assert_array_equal(ours[2]["a"].numpy(), theirs[2]["a"].numpy())


# ---- TensorDataset, Subset, ConcatDataset, random_split ---------------------------------------------

def test_tensor_dataset_errors_and_inputs():
    with pytest.raises(ValueError, match="same size in the first dimension.*tensor 1 has 4"):
        TensorDataset(cr.zeros(3, 2), cr.zeros(4))
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(ValueError, match="scalar"):
        TensorDataset(cr.tensor(1.0))
    arr = np.zeros((3, 2), np.float32)
    ds = TensorDataset(arr, [1, 2, 3])
    assert np.shares_memory(ds.tensors[0].data, arr) and ds.tensors[1].dtype == np.int64
    assert len(ds) == 3 and ds[-1][1].item() == 3
    xb, yb = ds.__getitems__([2, -3])
    assert yb.tolist() == [3, 1]
    with pytest.raises(IndexError):
        ds.__getitems__([3])


def test_subset_and_concat_batches_match_items(mnist_test):
    ds = _toy_dataset(10)
    sub = Subset(ds, [9, 2, 4])
    assert len(sub) == 3 and int(sub[0][1]) == 9
    assert sub.__getitems__([2, 0])[1].tolist() == [4, 9]
    both = ds + _toy_dataset(5)
    assert isinstance(both, ConcatDataset) and len(both) == 15 and int(both[12][1]) == 2
    cr.manual_seed(3)
    mixed = list(DataLoader(both, batch_size=4, shuffle=True))
    cr.manual_seed(3)
    slow = list(DataLoader(both, batch_size=4, shuffle=True, collate_fn=default_collate_copy))
    for (xa, ya), (xs, ys) in zip(mixed, slow):
        np.testing.assert_array_equal(xa.numpy(), xs.numpy())
        assert ya.tolist() == ys.tolist()
    mnist_pair = ConcatDataset([Subset(mnist_test, range(5)), Subset(mnist_test, range(100, 105))])
    xb, yb = mnist_pair.__getitems__([7, 0, 9, 2])
    assert yb.tolist() == [mnist_test[i][1] for i in (102, 0, 104, 2)]
    np.testing.assert_array_equal(xb.numpy()[0], mnist_test[102][0].numpy())
    mixed_kinds = ConcatDataset([_toy_dataset(3), [(cr.zeros(3), cr.tensor(7))]])   # a list: no batch method
    assert next(iter(DataLoader(mixed_kinds, batch_size=4)))[1].tolist() == [0, 1, 2, 7]


def default_collate_copy(samples):
    """default_collate under another name: forces the per-sample path."""
    return default_collate(samples)


def test_random_split_sizes_and_determinism():
    ds = range(10)
    a = random_split(ds, [7, 3], generator=cr.Generator(0))
    b = random_split(ds, [7, 3], generator=cr.Generator(0))
    assert [list(s) for s in a] == [list(s) for s in b]
    assert sorted(list(a[0]) + list(a[1])) == list(range(10))
    c = random_split(ds, [7, 3], generator=cr.Generator(1))
    assert [list(s) for s in c] != [list(s) for s in a]
    cr.manual_seed(4)
    d = random_split(ds, [0.5, 0.5])
    cr.manual_seed(4)
    assert [list(s) for s in random_split(ds, [0.5, 0.5])] == [list(s) for s in d]
    assert [len(s) for s in random_split(range(10), [0.33, 0.33, 0.34])] == [4, 3, 3]
    assert [len(s) for s in random_split(range(11), [0.5, 0.5])] == [6, 5]
    with pytest.raises(ValueError, match="sum to 9"):
        random_split(ds, [5, 4])
    with pytest.raises(ValueError):
        random_split(ds, [0.5, 0.6])


def test_random_split_sizes_match_torch():
    torch = pytest.importorskip("torch")
    for n, fr in [(10, [0.33, 0.33, 0.34]), (11, [0.5, 0.5]), (101, [0.8, 0.1, 0.1]), (7, [0.25] * 4)]:
        ours = [len(s) for s in random_split(range(n), fr)]
        theirs = [len(s) for s in torch.utils.data.random_split(range(n), fr)]
        assert ours == theirs


def test_random_split_of_mnist_keeps_fast_path(mnist_test):
    train, val = random_split(mnist_test, [0.9, 0.1], generator=cr.Generator(0))
    assert (len(train), len(val)) == (9000, 1000)
    xb, yb = next(iter(DataLoader(val, batch_size=64)))
    assert xb.shape == (64, 1, 28, 28)
    assert yb.tolist()[0] == mnist_test[val.indices[0]][1]


# ---- toy datasets ------------------------------------------------------------------------------------

def test_gates():
    for fn, truth in [(toy.xor, [0, 1, 1, 0]), (toy.and_gate, [0, 0, 0, 1]), (toy.or_gate, [0, 1, 1, 1])]:
        X, y = fn()
        assert X.dtype == np.float32 and X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
        assert y.dtype == np.int64 and y.tolist() == truth
    X, y = toy.xor(400, noise=0.1, seed=0)
    assert X.shape == (400, 2) and int(y.sum()) == 200
    corners = np.round(X.numpy()).astype(int)
    assert ((corners[:, 0] ^ corners[:, 1]) == y.numpy()).mean() > 0.99


@pytest.mark.parametrize("make,kwargs,n_classes", [
    (toy.two_moons, {"noise": 0.1}, 2), (toy.circles, {"noise": 0.05, "factor": 0.3}, 2),
    (toy.spirals, {"classes": 2}, 2), (toy.spirals, {"classes": 3}, 3)])
def test_2d_datasets_shapes_and_determinism(make, kwargs, n_classes):
    X, y = make(301, seed=11, **kwargs)
    assert X.shape == (301, 2) and X.dtype == np.float32 and y.shape == (301,) and y.dtype == np.int64
    counts = np.bincount(y.numpy())
    assert len(counts) == n_classes and counts.max() - counts.min() <= 1
    X2, y2 = make(301, seed=11, **kwargs)
    assert X.numpy().tobytes() == X2.numpy().tobytes() and y.tolist() == y2.tolist()
    X3, _ = make(301, seed=12, **kwargs)
    assert X3.numpy().tobytes() != X.numpy().tobytes()
    cr.manual_seed(2)
    X4, _ = make(301, **kwargs)
    cr.manual_seed(2)
    X5, _ = make(301, **kwargs)
    assert X4.numpy().tobytes() == X5.numpy().tobytes()
    assert X.data.flags["C_CONTIGUOUS"]


def test_circles_geometry_and_regression():
    X, y = toy.circles(200, noise=0.0, factor=0.4, shuffle=False)
    r = np.linalg.norm(X.numpy(), axis=1)
    np.testing.assert_allclose(r[y.numpy() == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(r[y.numpy() == 1], 0.4, rtol=1e-6)
    X, y = toy.regression_1d(64, noise=0.0, fn=np.cos, low=0.0, high=2.0, seed=3)
    assert X.shape == y.shape == (64, 1) and X.dtype == y.dtype == np.float32
    assert 0.0 <= float(X.min()) and float(X.max()) < 2.0
    np.testing.assert_allclose(y.numpy(), np.cos(X.numpy().astype(np.float64)), rtol=1e-6)
    with pytest.raises(ValueError):
        toy.xor(8, seed=1, generator=cr.Generator(1))
    loader = toy.make_loader(*toy.two_moons(100, seed=0), batch_size=25)
    assert len(loader) == 4


# ---- speed sanity (printed, not asserted) -------------------------------------------------------------

def test_mnist_epoch_speed(mnist_train):
    cr.manual_seed(0)
    for flatten in (False, True):
        ds = mnist_train if not flatten else MNIST(train=True, flatten=True)
        loader = DataLoader(ds, batch_size=128, shuffle=True)
        start = time.perf_counter()
        n = sum(xb.shape[0] for xb, _ in loader)
        elapsed = time.perf_counter() - start
        assert n == 60000
        print(f"\nMNIST train epoch, batch 128, shuffle, flatten={flatten}: {elapsed * 1e3:.1f} ms "
              f"({len(loader)} batches)")


def test_user_sampler_subclass_and_shape_errors():
    from chainrule.data import Sampler

    class Evens(Sampler):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(0, self.n, 2))

        def __len__(self):
            return (self.n + 1) // 2

    dl = DataLoader(_toy_dataset(7), batch_size=3, sampler=Evens(7))
    assert len(dl) == 2 and [yb.tolist() for _, yb in dl] == [[0, 2, 4], [6]]

    class Reversed(SequentialSampler):           # overrides __iter__ of a built-in sampler
        def __iter__(self):
            return iter(range(len(self.data_source) - 1, -1, -1))

    assert _epoch_labels(DataLoader(_toy_dataset(4), batch_size=3, sampler=Reversed(range(4)))).tolist() \
        == [3, 2, 1, 0]
    with pytest.raises(RuntimeError, match="different shapes"):
        default_collate([np.zeros(2), np.zeros(3)])
