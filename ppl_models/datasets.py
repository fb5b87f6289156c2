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


def _check_path(path: object, name: str) -> Path:
    """``path`` (a str or ``os.PathLike``) as a ``Path``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"{name} must be a file path (str or os.PathLike); got {type(path).__name__}"
        )
    return Path(path)


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


__all__ += ["NpyChunks", "open_npy"]


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


# --- ppca data (owned by the PPCA topic) ---


__all__ += ["PPCAData", "make_ppca_data"]


class PPCAData(NamedTuple):
    """Points drawn from a PPCA model, with the truth they were drawn from.

    Attributes
    ----------
    x : torch.Tensor, shape (n, d)
        The data points.
    z : torch.Tensor, shape (n, latent_dim)
        Their latent coordinates.
    W : torch.Tensor, shape (d, latent_dim)
        The true loadings: orthogonal columns with squared norms ``signal``.
    mu : torch.Tensor, shape (d,)
        The true mean.
    sigma2 : torch.Tensor, shape ()
        The true noise variance.
    """

    x: torch.Tensor
    z: torch.Tensor
    W: torch.Tensor
    mu: torch.Tensor
    sigma2: torch.Tensor

    @property
    def params(self):
        """The truth as a :class:`ppl_models.ppca.PPCAParams`."""
        from .ppca import PPCAParams

        return PPCAParams(self.W, self.mu, self.sigma2)


def make_ppca_data(
    n: int,
    d: int,
    latent_dim: int,
    sigma2: float = 1.0,
    *,
    signal=None,
    seed: int | None = 0,
    dtype: torch.dtype = torch.float64,
) -> PPCAData:
    r"""Draw from a PPCA model with known parameters: :math:`z_n \sim \mathcal N(0, I_M)`,
    :math:`x_n = W z_n + \mu + \sigma \epsilon_n`, :math:`\epsilon_n \sim \mathcal N(0, I_D)`.

    :math:`W = Q\,\mathrm{diag}(\sqrt{s_1}, \dots, \sqrt{s_M})` with :math:`Q` (D x M)
    random orthonormal columns, so the covariance :math:`W W^\top + \sigma^2 I` has the
    eigenvalues :math:`s_j + \sigma^2` along the columns and :math:`\sigma^2` elsewhere;
    :math:`\mu \sim \mathcal N(0, I)`.

    Parameters
    ----------
    n, d : int
        Number of points and dimension, :math:`d \ge 2`.
    latent_dim : int
        :math:`M`, :math:`1 \le M < d`.
    sigma2 : float
        The noise variance :math:`\sigma^2 > 0`.
    signal : sequence of float, optional
        The squared column norms :math:`s_1, \dots, s_M` (positive). By default
        :math:`5\sigma^2 (M, M-1, \dots, 1)`: strong, distinct directions.
    seed : int, optional
        Seed of :math:`Q`, :math:`\mu` and the points.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    PPCAData
        ``(x, z, W, mu, sigma2)``; ``.params`` gives the truth as ``PPCAParams``.

    Examples
    --------
    >>> data = make_ppca_data(200, 10, 3, sigma2=0.5, seed=0)
    >>> data.x.shape, data.W.shape, float(data.sigma2)
    (torch.Size([200, 10]), torch.Size([10, 3]), 0.5)
    >>> [round(float(v), 6) for v in (data.W.T @ data.W).diagonal()]
    [7.5, 5.0, 2.5]
    """
    from ._checks import check_int, check_positive

    n = check_int(n, "n", minimum=1)
    d = check_int(d, "d", minimum=2)
    m = check_int(latent_dim, "latent_dim", minimum=1, maximum=d - 1)
    s2 = check_positive(sigma2, "sigma2", allow_tensor=False)
    if signal is None:
        s = 5.0 * s2 * np.arange(m, 0, -1, dtype=np.float64)
    else:
        s = np.asarray(signal, dtype=np.float64).reshape(-1)
        if s.shape[0] != m or not (np.isfinite(s).all() and (s > 0).all()):
            raise ValueError(
                f"signal must hold {m} positive finite numbers (one per column of W); "
                f"got {s.tolist()}"
            )
    rng = _rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, m)))
    q = q * np.sign(np.diag(r))
    w = q * np.sqrt(s)
    mu = rng.standard_normal(d)
    z = rng.standard_normal((n, m))
    x = z @ w.T + mu + np.sqrt(s2) * rng.standard_normal((n, d))
    return PPCAData(
        torch.as_tensor(x, dtype=dtype),
        torch.as_tensor(z, dtype=dtype),
        torch.as_tensor(w, dtype=dtype),
        torch.as_tensor(mu, dtype=dtype),
        torch.tensor(s2, dtype=dtype),
    )


# --- bayesian pca data (owned by the Bayesian PCA topic) ---


__all__ += ["BishopBPCAData", "make_bishop_bpca_data"]


class BishopBPCAData(NamedTuple):
    """Bishop's Bayesian-PCA data with the truth it was drawn from.

    Attributes
    ----------
    x : torch.Tensor, shape (n, d)
        The data points (mean zero in expectation).
    directions : torch.Tensor, shape (d, k)
        Orthonormal directions of the large standard deviation.
    W : torch.Tensor, shape (d, k)
        The true PPCA loadings, ``directions * sqrt(signal_std**2 - noise_std**2)``, so
        that the true covariance is ``W W^T + sigma2 I``.
    sigma2 : torch.Tensor, shape ()
        The true noise variance ``noise_std**2``.
    """

    x: torch.Tensor
    directions: torch.Tensor
    W: torch.Tensor
    sigma2: torch.Tensor


def make_bishop_bpca_data(
    n: int = 300,
    d: int = 10,
    latent_dim: int = 3,
    signal_std: float = 1.0,
    noise_std: float = 0.5,
    seed: int | None = 0,
    dtype: torch.dtype = torch.float64,
) -> BishopBPCAData:
    r"""The data of Bishop's Bayesian-PCA experiment (Bishop 1999; PRML Fig. 12.14):
    Gaussian points with standard deviation ``signal_std`` in ``latent_dim`` random
    orthogonal directions and ``noise_std`` in the other ``d - latent_dim``.

    The covariance is :math:`Q\,\mathrm{diag}(s^2, \dots, s^2, \epsilon^2, \dots)\,Q^\top`
    with :math:`Q` a random orthogonal matrix, that is the PPCA covariance
    :math:`W W^\top + \sigma^2 I` with :math:`W = Q_{:, :k} \sqrt{s^2 - \epsilon^2}` and
    :math:`\sigma^2 = \epsilon^2`.

    Parameters
    ----------
    n, d : int
        Number of points (300 in the paper) and dimension (10).
    latent_dim : int
        The number of large directions, :math:`1 \le k < d` (3).
    signal_std, noise_std : float
        Standard deviations along the large and the other directions (1.0 and 0.5);
        ``signal_std > noise_std > 0``.
    seed : int, optional
        Seed of the directions and the points.
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    BishopBPCAData
        ``(x, directions, W, sigma2)``.

    Examples
    --------
    >>> data = make_bishop_bpca_data(seed=0)
    >>> data.x.shape, data.W.shape, float(data.sigma2)
    (torch.Size([300, 10]), torch.Size([10, 3]), 0.25)
    """
    from ._checks import check_int, check_positive

    n = check_int(n, "n", minimum=1)
    d = check_int(d, "d", minimum=2)
    k = check_int(latent_dim, "latent_dim", minimum=1, maximum=d - 1)
    s = check_positive(signal_std, "signal_std", allow_tensor=False)
    e = check_positive(noise_std, "noise_std", allow_tensor=False)
    if not s > e:
        raise ValueError(f"signal_std must exceed noise_std; got signal_std={s!r}, noise_std={e!r}")
    rng = _rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    q = q * np.sign(np.diag(r))  # Haar-distributed orthogonal matrix
    stds = np.full(d, e)
    stds[:k] = s
    x = (rng.standard_normal((n, d)) * stds) @ q.T
    directions = q[:, :k]
    w = directions * np.sqrt(s**2 - e**2)
    return BishopBPCAData(
        torch.as_tensor(x, dtype=dtype),
        torch.as_tensor(directions, dtype=dtype),
        torch.as_tensor(w, dtype=dtype),
        torch.tensor(e**2, dtype=dtype),
    )


# --- vae data (owned by the VAE topic) ---


__all__ += ["ImageSplit", "load_vae_data"]


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


def load_vae_data(
    likelihood: str = "bernoulli",
    *,
    test_size: float = 0.25,
    seed: int = 0,
    mnist_path: str | os.PathLike[str] | None = None,
    n: int | None = None,
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
    n : int, optional
        MNIST only: keep the first ``n`` training and the first ``n`` test images.
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
    from ._checks import check_choice, check_int

    check_choice(likelihood, "likelihood", ["bernoulli", "normal"])
    if not (isinstance(test_size, float) and 0.0 < test_size < 1.0):
        raise ValueError(f"test_size must be a float in (0, 1); got {test_size!r}")
    seed = check_int(seed, "seed", minimum=0)
    if mnist_path is not None:
        train = load_mnist(mnist_path, "train", dtype=dtype, n=n)
        test = load_mnist(mnist_path, "test", dtype=dtype, n=n)
        x_train, y_train, x_test, y_test = train.x, train.y, test.x, test.y
    else:
        x, y = load_digits(dtype)
        x = x / 16
        perm = torch.from_numpy(_rng(seed).permutation(x.shape[0]))
        n_test = round(test_size * x.shape[0])
        x_train, y_train = x[perm[n_test:]], y[perm[n_test:]]
        x_test, y_test = x[perm[:n_test]], y[perm[:n_test]]
    if likelihood == "bernoulli":
        x_train, x_test = (x_train >= 0.5).to(dtype), (x_test >= 0.5).to(dtype)
    return ImageSplit(x_train, y_train, x_test, y_test)
