"""Data sets: the bundled digits and the MNIST IDX reader (on small files written here)."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn import datasets as sk_datasets

from ppl_models.datasets import load_digits, load_mnist


def test_load_digits_matches_sklearn():
    x, y = load_digits()
    bunch = sk_datasets.load_digits()
    assert x.shape == (1797, 64) and x.dtype == torch.float64
    assert y.shape == (1797,) and y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), bunch.data)
    np.testing.assert_array_equal(y.numpy(), bunch.target)
    assert float(x.min()) == 0.0 and float(x.max()) == 16.0  # the documented 0..16 scale
    assert load_digits(torch.float32).x.dtype == torch.float32


def test_load_digits_rejects_integer_dtype():
    with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):
        load_digits(torch.int64)


def _idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes, written from the format's description."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(folder: Path, name: str, data: bytes, compress: bool) -> Path:
    path = folder / (name + ".gz" if compress else name)
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def tiny_mnist() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 0, 9, 1, 7], dtype=np.uint8)
    return images, labels


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("kind", ["train", "test"])
def test_load_mnist_reads_idx_files(tmp_path, tiny_mnist, compress, kind):
    images, labels = tiny_mnist
    prefix = "train" if kind == "train" else "t10k"
    _write(tmp_path, f"{prefix}-images-idx3-ubyte", _idx_bytes(images), compress)
    _write(tmp_path, f"{prefix}-labels-idx1-ubyte", _idx_bytes(labels), compress)
    x, y = load_mnist(tmp_path, kind)
    assert x.shape == (5, 784) and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), images.reshape(5, -1) / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y.numpy(), labels)
    assert y.dtype == torch.int64
    x_raw, _ = load_mnist(str(tmp_path), kind, dtype=torch.float64, scale=False, num_points=2)
    np.testing.assert_array_equal(x_raw.numpy(), images[:2].reshape(2, -1))


def test_load_mnist_dotted_names(tmp_path, tiny_mnist):
    images, labels = tiny_mnist
    _write(tmp_path, "t10k-images.idx3-ubyte", _idx_bytes(images), False)
    _write(tmp_path, "t10k-labels.idx1-ubyte", _idx_bytes(labels), False)
    assert load_mnist(tmp_path, "test").x.shape == (5, 784)


def test_load_mnist_missing_files(tmp_path, tiny_mnist):
    images, _ = tiny_mnist
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte \(or .*\.gz\).*LeCun"):
        load_mnist(tmp_path)
    _write(tmp_path, "train-images-idx3-ubyte", _idx_bytes(images), False)
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist(tmp_path)


@pytest.mark.parametrize("compress", [False, True])
def test_load_mnist_truncated_file(tmp_path, tiny_mnist, compress):
    images, labels = tiny_mnist
    _write(tmp_path, "train-images-idx3-ubyte", _idx_bytes(images)[:-100], compress)
    _write(tmp_path, "train-labels-idx1-ubyte", _idx_bytes(labels), compress)
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_mnist(tmp_path)


def test_load_mnist_corrupt_files(tmp_path, tiny_mnist):
    images, labels = tiny_mnist
    img = tmp_path / "train-images-idx3-ubyte"
    lab = tmp_path / "train-labels-idx1-ubyte"
    # labels where images belong: magic 0x801 instead of 0x803
    img.write_bytes(_idx_bytes(labels))
    lab.write_bytes(_idx_bytes(labels))
    with pytest.raises(ValueError, match="magic number 0x00000801, expected 0x00000803"):
        load_mnist(tmp_path)
    img.write_bytes(b"\x00\x00")
    with pytest.raises(ValueError, match="shorter than its header"):
        load_mnist(tmp_path)
    img.write_bytes(_idx_bytes(images))
    lab.write_bytes(_idx_bytes(labels[:4]))
    with pytest.raises(ValueError, match=r"holds 5 images but .* holds 4 labels"):
        load_mnist(tmp_path)
    lab.write_bytes(_idx_bytes(np.array([1, 2, 3, 4, 12])))
    with pytest.raises(ValueError, match="labels above 9"):
        load_mnist(tmp_path)
    lab.unlink()
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="not a readable"):
        load_mnist(tmp_path)


def test_load_mnist_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="kind must be one of"):
        load_mnist(tmp_path, "validation")
    with pytest.raises(ValueError, match="num_points must be an integer >= 1"):
        load_mnist(tmp_path, num_points=0)
    with pytest.raises(TypeError, match="dtype must be a floating torch dtype"):
        load_mnist(tmp_path, dtype=torch.uint8)
