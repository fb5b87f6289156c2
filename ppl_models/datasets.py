"""Bundled and synthetic data sets.

Every generator takes a ``seed`` and returns torch tensors (float64 unless ``dtype`` says
otherwise); the same seed gives the same data. Nothing here downloads anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

__all__: list[str] = []


def _rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- digits and MNIST (owned by the PCA topic) ---


__all__ += ["LabelledImages", "load_digits", "load_mnist"]


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
    raise FileNotFoundError(f"{stem} (or {stem}.gz) not found in {str(folder)!r}; {_MNIST_SOURCE}")


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


def load_mnist(
    path: str | os.PathLike[str],
    kind: str = "train",
    *,
    dtype: torch.dtype = torch.float32,
    scale: bool = True,
    n: int | None = None,
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
    n : int, optional
        Keep only the first ``n`` images.

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
    from ._checks import check_choice, check_int

    check_choice(kind, "kind", list(_MNIST_FILES))
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating torch dtype; got {dtype!r}")
    if n is not None:
        n = check_int(n, "n", minimum=1)
    folder = Path(path)
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


# --- regression data (owned by the regression topic) ---


__all__ += ["make_sin_data"]


def make_sin_data(
    n: int,
    noise_std: float = 0.3,
    seed: int | None = 0,
    design: str = "even",
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The curve-fitting data of PRML 1.1 (Fig. 1.2, Appendix A):
    :math:`t_n = \sin(2\pi x_n) + \epsilon_n`, :math:`\epsilon_n \sim \mathcal{N}(0,
    \text{noise\_std}^2)`.

    Parameters
    ----------
    n : int
        Number of points, at least 1.
    noise_std : float
        Standard deviation of the Gaussian noise, :math:`\ge 0` (0.3 in PRML).
    seed : int, optional
        Seed of the noise (and of ``x`` when ``design="uniform"``).
    design : {"even", "uniform"}
        ``"even"``: ``x`` evenly spaced on :math:`[0, 1]` endpoints included, as in PRML
        Fig. 1.2; ``"uniform"``: ``x`` drawn uniformly on :math:`[0, 1]` and sorted.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    x, t : torch.Tensor, shape (n,)
        Inputs and noisy targets.

    Examples
    --------
    >>> x, t = make_sin_data(10, seed=0)
    >>> x.shape, float(x[0]), float(x[-1])
    (torch.Size([10]), 0.0, 1.0)
    """
    from ._checks import check_choice, check_int

    n = check_int(n, "n", minimum=1)
    if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float, np.floating)):
        raise TypeError(f"noise_std must be a number; got {type(noise_std).__name__}")
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be finite and >= 0; got {noise_std!r}")
    check_choice(design, "design", ["even", "uniform"])
    rng = _rng(seed)
    if design == "even":
        x = np.linspace(0.0, 1.0, n)
    else:
        x = np.sort(rng.uniform(0.0, 1.0, n))
    t = np.sin(2.0 * np.pi * x) + noise_std * rng.standard_normal(n)
    return torch.as_tensor(x, dtype=dtype), torch.as_tensor(t, dtype=dtype)


# --- logistic data (owned by the logistic topic) ---


__all__ += ["make_two_class"]


def make_two_class(
    n: int,
    seed: int | None = 0,
    separable: bool = False,
    dtype: torch.dtype = torch.float64,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Two classes in the plane for logistic regression: Gaussian blobs with identity
    covariance around :math:`\pm(0.75, 0.75)` (overlapping), or, with ``separable=True``,
    around :math:`\pm(1.5, 1.5)` with every point at least 0.25 from the line
    :math:`x_1 + x_2 = 0` on its own class's side (linearly separable, no
    maximum-likelihood estimate).

    Parameters
    ----------
    n : int
        Number of points, at least 2: ``n // 2`` of class 0, the rest of class 1, in a
        random order.
    seed : int, optional
        Seed of the draws.
    separable : bool
        Draw linearly separable classes.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    x : torch.Tensor, shape (n, 2)
        Inputs (add a column of ones for a bias: ``ppl_models.logistic.add_bias``).
    t : torch.Tensor, shape (n,)
        Targets, 0 or 1.

    Examples
    --------
    >>> x, t = make_two_class(6, seed=0)
    >>> x.shape, sorted(t.tolist())
    (torch.Size([6, 2]), [0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    """
    from ._checks import check_int

    n = check_int(n, "n", minimum=2)
    if not isinstance(separable, (bool, np.bool_)):
        raise TypeError(f"separable must be a bool; got {type(separable).__name__}")
    rng = _rng(seed)
    t = np.zeros(n)
    t[n // 2 :] = 1.0
    t = t[rng.permutation(n)]
    sign = 2.0 * t - 1.0
    centre = 1.5 if separable else 0.75
    x = sign[:, None] * centre + rng.standard_normal((n, 2))
    if separable:
        # Redraw the points on the wrong side of (or too close to) x1 + x2 = 0.
        margin = 0.25 * np.sqrt(2.0)
        bad = sign * x.sum(1) < margin
        while bad.any():
            x[bad] = sign[bad, None] * centre + rng.standard_normal((int(bad.sum()), 2))
            bad = sign * x.sum(1) < margin
    return torch.as_tensor(x, dtype=dtype), torch.as_tensor(t, dtype=dtype)
