"""Data that exist: scikit-learn's bundled digits, MNIST from its IDX files on disk, ``.npy``
files read as streams of row chunks, and the digits prepared for the VAE and for the
workflow tutorial's PPCA. Nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from .._deprecation import renamed_keywords


def _check_path(path: object, name: str) -> Path:
    """``path`` (a str or ``os.PathLike``) as a ``Path``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"{name} must be a file path (str or os.PathLike); got {type(path).__name__}"
        )
    return Path(path)


class LabelledImages(NamedTuple):
    """Images as rows of pixels with their labels.

    Attributes
    ----------
    x : torch.Tensor, shape (N, H * W)
        One flattened image per row (row-major: pixel ``(i, j)`` is column ``i * W + j``).
    y : torch.Tensor, shape (N,)
        The digit shown, an integer 0-9 (``torch.int64``).
    """

    x: torch.Tensor
    y: torch.Tensor


def load_digits(dtype: torch.dtype = torch.float64) -> LabelledImages:
    """scikit-learn's bundled handwritten digits: 1797 images of 8 x 8 pixels (no download).

    Pixel values are integers from 0 (background) to 16 (ink), kept on that scale (divide
    by 16 for [0, 1]). The images are the UCI "optical recognition of handwritten digits"
    test set, 4 x 4 blocks of a 32 x 32 bitmap counted.

    Parameters
    ----------
    dtype : torch.dtype
        Floating dtype of ``x``.

    Returns
    -------
    LabelledImages
        ``x`` of shape (1797, 64) on the 0..16 scale, ``y`` of shape (1797,).

    Examples
    --------
    >>> x, y = load_digits()
    >>> tuple(x.shape), x.dtype, float(x.min()), float(x.max()), sorted(set(y.tolist()))[:3]
    ((1797, 64), torch.float64, 0.0, 16.0, [0, 1, 2])
    """
    from sklearn import datasets as sk_datasets

    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype; got {dtype!r}")
    bunch = sk_datasets.load_digits()
    return LabelledImages(
        torch.as_tensor(bunch.data, dtype=dtype),
        torch.as_tensor(bunch.target, dtype=torch.int64),
    )


_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MNIST_SOURCE = (
    "the MNIST files come from Yann LeCun's page (yann.lecun.com/exdb/mnist) or one of its "
    "mirrors, e.g. the ones torchvision.datasets.MNIST downloads from; put the four files "
    "(raw or .gz) in one folder"
)


def _find_idx(folder: Path, stem: str) -> Path:
    # Some distributions name the files with a dot ("train-images.idx3-ubyte").
    alt = stem.replace("-idx", ".idx")
    for name in (stem, stem + ".gz", alt, alt + ".gz"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{stem} (or {stem}.gz) not found in path={str(folder)!r}; {_MNIST_SOURCE}"
    )


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes with ``ndim`` dimensions, checking its header."""
    import gzip

    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as err:  # gzip.BadGzipFile is an OSError
        raise ValueError(f"{path} is not a readable (gzip) IDX file: {err}") from err
    header = 4 + 4 * ndim
    if len(raw) >= 4:
        magic = int.from_bytes(raw[:4], "big")
        want = 0x0800 + ndim  # two zero bytes, type 0x08 (unsigned byte), number of dims
        if magic != want:
            raise ValueError(
                f"{path} is not an IDX file of unsigned bytes with {ndim} dimension(s): magic "
                f"number {magic:#010x}, expected {want:#010x}"
            )
    if len(raw) < header:
        raise ValueError(f"{path} is truncated: {len(raw)} bytes, shorter than its header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(shape))
    if len(raw) != header + size:
        raise ValueError(
            f"{path} is truncated or corrupt: its header announces shape {shape} "
            f"({header + size} bytes) but the file holds {len(raw)} bytes"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


@renamed_keywords(n="num_points")
def load_mnist(
    path: str | os.PathLike[str],
    kind: str = "train",
    *,
    dtype: torch.dtype = torch.float32,
    scale: bool = True,
    num_points: int | None = None,
) -> LabelledImages:
    """MNIST from the four IDX files in a local folder (nothing is downloaded).

    The folder must hold ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte``
    (``kind="train"``, 60000 images) or ``t10k-images-idx3-ubyte`` and
    ``t10k-labels-idx1-ubyte`` (``kind="test"``, 10000 images), each raw or gzipped
    (``.gz``). The magic numbers, the announced sizes and the agreement of the two files are
    checked.

    Parameters
    ----------
    path : path
        The folder.
    kind : {"train", "test"}
        Which split.
    dtype : torch.dtype
        Floating dtype of ``x`` (float32 by default: the training set is 188 MB in it).
    scale : bool
        Divide the 0..255 pixel values by 255 (values in [0, 1], as a Bernoulli likelihood
        wants); else keep 0..255.
    num_points : int, optional
        Keep only the first ``num_points`` images (formerly ``n``).

    Returns
    -------
    LabelledImages
        ``x`` of shape (N, 784) (28 x 28 images, row-major), ``y`` of shape (N,).

    Raises
    ------
    FileNotFoundError
        The folder or one of the two files is missing (the message names it).
    ValueError
        A file is not an IDX file of the right kind, is truncated, or the two disagree.
    """
    from .._checks import check_choice, check_int

    check_choice(kind, "kind", list(_MNIST_FILES))
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype; got {dtype!r}")
    n = None if num_points is None else check_int(num_points, "num_points", minimum=1)
    folder = _check_path(path, "path")
    if not folder.is_dir():
        raise FileNotFoundError(f"path {str(folder)!r} is not a folder; {_MNIST_SOURCE}")
    image_stem, label_stem = _MNIST_FILES[kind]
    image_path, label_path = _find_idx(folder, image_stem), _find_idx(folder, label_stem)
    images = _read_idx(image_path, 3)
    labels = _read_idx(label_path, 1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{image_path} holds {images.shape[0]} images but {label_path} holds "
            f"{labels.shape[0]} labels"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{label_path} holds labels above 9 (max {int(labels.max())})")
    if n is not None:
        images, labels = images[:n], labels[:n]
    x = torch.from_numpy(images.reshape(images.shape[0], -1).copy()).to(dtype)
    if scale:
        x /= 255.0
    return LabelledImages(x, torch.from_numpy(labels.astype(np.int64)))


class NpyChunks:
    """A ``.npy`` file read as a stream of row chunks, through a memory map.

    Iterating yields tensors of at most ``chunk_rows`` rows (copies of the mapped rows, so
    only one chunk is in memory at a time); it can be iterated any number of times.
    :func:`ppl_models.pca.fit`, :func:`ppl_models.ppca.closed_form` and
    :func:`ppl_models.ppca.em` accept it (or any iterable of chunks, such as a
    ``torch.utils.data.DataLoader``) in place of an in-memory matrix.

    Attributes
    ----------
    path : pathlib.Path
    shape : tuple of int
        ``(N, D)`` of the whole file.
    chunk_rows : int
    dtype : torch.dtype
        The dtype of the yielded tensors.
    """

    def __init__(self, path: str | os.PathLike[str], chunk_rows: int = 1000, dtype=None):
        self.path = _check_path(path, "path")
        if not self.path.is_file():
            raise ValueError(f"path: no such file: {self.path}")
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise ValueError(f"chunk_rows must be a positive int; got {chunk_rows!r}")
        if dtype is not None and (
            not isinstance(dtype, torch.dtype) or not dtype.is_floating_point
        ):
            raise TypeError(f"dtype must be a floating torch dtype or None; got {dtype!r}")
        try:
            arr = np.load(self.path, mmap_mode="r")
        except (ValueError, OSError, EOFError) as err:
            raise ValueError(
                f"path: {str(self.path)!r} is not a readable .npy file ({err})"
            ) from None
        if arr.ndim != 2:
            raise ValueError(f"path: expected a 2-D array (N, D); got shape {arr.shape}")
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"path: expected a numeric array; got dtype {arr.dtype}")
        self.shape = (int(arr.shape[0]), int(arr.shape[1]))
        self.chunk_rows = chunk_rows
        if dtype is None:
            dtype = torch.float32 if arr.dtype == np.float32 else torch.float64
        self.dtype = dtype
        del arr

    def __len__(self) -> int:
        """The number of chunks."""
        return -(-self.shape[0] // self.chunk_rows)

    def __iter__(self):
        arr = np.load(self.path, mmap_mode="r")
        for start in range(0, self.shape[0], self.chunk_rows):
            chunk = np.array(arr[start : start + self.chunk_rows])
            yield torch.from_numpy(chunk).to(self.dtype)

    def __repr__(self) -> str:
        return f"NpyChunks({str(self.path)!r}, shape={self.shape}, chunk_rows={self.chunk_rows})"


def open_npy(path: str | os.PathLike[str], chunk_rows: int = 1000, dtype=None) -> NpyChunks:
    """Open a ``.npy`` file of shape (N, D) as a stream of ``chunk_rows``-row tensors.

    The file is memory-mapped, never read whole: a file larger than memory streams.

    Examples
    --------
    >>> import tempfile
    >>> from ppl_models import pca
    >>> x = np.random.default_rng(0).standard_normal((2500, 4))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     np.save(f"{d}/x.npy", x)
    ...     stream = open_npy(f"{d}/x.npy", chunk_rows=1000)
    ...     p = pca.fit(stream, 2)
    ...     len(stream), torch.allclose(p.explained_variance, pca.fit(x, 2).explained_variance)
    (3, True)
    """
    return NpyChunks(path, chunk_rows, dtype)


class ImageSplit(NamedTuple):
    """Images split into training and held-out rows, with their labels.

    Attributes
    ----------
    x_train, x_test : torch.Tensor, shape (N_train, D) and (N_test, D)
    y_train, y_test : torch.Tensor, shape (N_train,) and (N_test,), ``torch.int64``
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@renamed_keywords(n="num_points")
def load_vae_data(
    likelihood: str = "bernoulli",
    *,
    test_size: float = 0.25,
    seed: int = 0,
    mnist_path: str | os.PathLike[str] | None = None,
    num_points: int | None = None,
    dtype: torch.dtype = torch.float64,
) -> ImageSplit:
    """Digits for a variational autoencoder: binarised for a Bernoulli likelihood, scaled
    to [0, 1] for a normal one, split into training and held-out rows.

    The bundled 8 x 8 digits (:func:`load_digits`) by default, or MNIST read from the IDX
    files in ``mnist_path`` (:func:`load_mnist`; its own train/test split is used, and
    ``test_size`` and ``seed`` are ignored). Binarisation is the fixed threshold
    ``x >= 0.5`` on the [0, 1] scale (deterministic, so that held-out log-likelihoods are
    of fixed data).

    Parameters
    ----------
    likelihood : {"bernoulli", "normal"}
    test_size : float
        The held-out fraction of the digits, in (0, 1).
    seed : int
        Seeds the random split of the digits.
    mnist_path : path, optional
        A folder with the four MNIST IDX files.
    num_points : int, optional
        MNIST only: keep the first ``num_points`` training and the first ``num_points``
        test images (formerly ``n``).
    dtype : torch.dtype
        Floating dtype of the images.

    Returns
    -------
    ImageSplit

    Examples
    --------
    >>> s = load_vae_data("bernoulli")
    >>> tuple(s.x_train.shape), tuple(s.x_test.shape), sorted(set(s.x_train.unique().tolist()))
    ((1348, 64), (449, 64), [0.0, 1.0])
    """
    from .._checks import check_choice, check_int

    check_choice(likelihood, "likelihood", ["bernoulli", "normal"])
    if not (isinstance(test_size, float) and 0.0 < test_size < 1.0):
        raise ValueError(f"test_size must be a float in (0, 1); got {test_size!r}")
    seed = check_int(seed, "seed", minimum=0)
    if mnist_path is not None:
        train = load_mnist(mnist_path, "train", dtype=dtype, num_points=num_points)
        test = load_mnist(mnist_path, "test", dtype=dtype, num_points=num_points)
        x_train, y_train, x_test, y_test = train.x, train.y, test.x, test.y
    else:
        x, y = load_digits(dtype)
        x = x / 16
        perm = torch.from_numpy(np.random.default_rng(seed).permutation(x.shape[0]))
        n_test = round(test_size * x.shape[0])
        x_train, y_train = x[perm[n_test:]], y[perm[n_test:]]
        x_test, y_test = x[perm[:n_test]], y[perm[:n_test]]
    if likelihood == "bernoulli":
        x_train, x_test = (x_train >= 0.5).to(dtype), (x_test >= 0.5).to(dtype)
    return ImageSplit(x_train, y_train, x_test, y_test)


# The PPCA case of the workflow tutorial (issue 8(b)). On the raw 8 x 8 digits the held-out
# PPCA log-likelihood rises almost up to M = D (near-constant pixels drive sigma^2 down as
# M grows), and on dequantised digits its optimum sits near M = 57 of 64: no question to
# ask there, and far too costly to answer by posterior draws per M. Average-pooling to
# 4 x 4 (D = 16) and adding Gaussian "sensor" noise of sd 3 (pixel scale 0..16) puts a
# floor under the spectrum, so the criteria have an interior optimum near the pooled
# spectrum's gap after the 7th eigenvalue, and one marginal fit per M takes seconds.
PPCA_POOLED_N = 300
PPCA_NOISE_SD = 3.0


@renamed_keywords(n="num_points")
def noisy_pooled_digits(
    num_points: int = PPCA_POOLED_N, noise_sd: float = PPCA_NOISE_SD, seed: int = 0
) -> torch.Tensor:
    """``num_points`` random digits (seeded), 2 x 2 average-pooled to 4 x 4 (D = 16), plus
    independent Gaussian noise of sd ``noise_sd``; float64, shape (num_points, 16).

    Examples
    --------
    >>> noisy_pooled_digits(5).shape
    torch.Size([5, 16])
    """
    x = load_digits().x.reshape(-1, 4, 2, 4, 2).mean((2, 4)).reshape(-1, 16)
    idx = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))[:num_points]
    g = torch.Generator().manual_seed(seed + 100)
    return x[idx] + noise_sd * torch.randn(num_points, 16, generator=g, dtype=torch.float64)
