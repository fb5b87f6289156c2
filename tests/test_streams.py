"""Streaming PCA/PPCA over chunks (a memory-mapped .npy file, a DataLoader) against in memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ppl_models import pca, ppca
from ppl_models.datasets import open_npy


def _data(n=3500, d=12, seed=0):
    rng = np.random.default_rng(seed)
    scales = np.linspace(4.0, 0.5, d)
    # Far from the origin next to the spread: the stream must not lose digits to cancellation.
    return rng.standard_normal((n, d)) * scales + 50.0


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.fixture
def npy(tmp_path):
    x = _data()
    path = tmp_path / "x.npy"
    np.save(path, x)
    return x, path


def test_moments_of_chunks_equal_numpy_and_combine_like_chan(npy):
    x, path = npy
    stream = open_npy(path, chunk_rows=1000)
    assert stream.shape == x.shape and len(stream) == 4
    mom, dtype = pca.moments(stream)
    assert mom.n == len(x) and dtype == torch.float64
    np.testing.assert_allclose(mom.mean, x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(mom.scatter / mom.n, np.cov(x.T, bias=True), rtol=1e-10)
    a, _ = pca.moments([torch.from_numpy(x[:700])])
    b, _ = pca.moments([torch.from_numpy(x[700:])])
    ab = a.combine(b)
    np.testing.assert_allclose(ab.scatter, mom.scatter, rtol=1e-10)
    np.testing.assert_allclose(ab.mean, mom.mean, rtol=1e-13)


def test_streaming_pca_and_ppca_give_the_in_memory_answer(npy):
    x, path = npy
    stream = open_npy(path, chunk_rows=1000)
    xt = torch.from_numpy(x)
    p_mem, p_str = pca.fit(xt, 4, method="eigh"), pca.fit(stream, 4)
    # Both routes are float64 throughout; 1e-10 is the bound (rounding ~1e-13).
    assert _rel(p_str.explained_variance, p_mem.explained_variance) < 1e-10
    assert _rel(p_str.components, p_mem.components) < 1e-10
    assert _rel(p_str.mean, p_mem.mean) < 1e-10
    q_mem, q_str = ppca.closed_form(xt, 4), ppca.closed_form(stream, 4)
    assert _rel(ppca.covariance(q_str), ppca.covariance(q_mem)) < 1e-10
    assert float(q_str.sigma2) == pytest.approx(float(q_mem.sigma2), rel=1e-10)
    e_mem = ppca.em(xt, 4, max_iter=50)
    e_str = ppca.em(stream, 4, max_iter=50)
    torch.testing.assert_close(e_str.log_likelihood, e_mem.log_likelihood, rtol=1e-10, atol=0)


def test_a_dataloader_is_a_stream():
    x = torch.from_numpy(_data(n=900, d=6, seed=2))
    loader = DataLoader(TensorDataset(x), batch_size=128, shuffle=True)
    got, ref = ppca.closed_form(loader, 2), ppca.closed_form(x, 2)
    assert _rel(ppca.covariance(got), ppca.covariance(ref)) < 1e-10


def test_float32_file_streams_in_float32(tmp_path):
    path = tmp_path / "x32.npy"
    x = _data(n=500, d=5).astype(np.float32)
    np.save(path, x)
    p = pca.fit(open_npy(path, chunk_rows=100), 2)
    assert p.components.dtype == torch.float32
    ref = pca.fit(torch.from_numpy(x).double(), 2)
    # The stream accumulates float64 moments of the float32 values: the float64 answer.
    assert _rel(p.explained_variance, ref.explained_variance) < 1e-6


def test_bad_streams_are_named(tmp_path):
    with pytest.raises(ValueError, match="path: no such file"):
        open_npy(tmp_path / "missing.npy")
    np.save(tmp_path / "v.npy", np.zeros(5))
    with pytest.raises(ValueError, match="2-D"):
        open_npy(tmp_path / "v.npy")
    with pytest.raises(ValueError, match="chunk_rows"):
        open_npy(tmp_path / "v.npy", chunk_rows=0)
    chunks = [torch.randn(10, 4), torch.randn(10, 3)]
    with pytest.raises(ValueError, match="chunk 1 of x has 3 columns"):
        pca.fit(chunks.__iter__(), 2)
    with pytest.raises(ValueError, match="chunk 0 of x"):
        pca.moments(iter([torch.tensor([[float("nan"), 1.0]])]))
    with pytest.raises(ValueError, match="method"):
        pca.fit(iter([torch.randn(10, 4)]), 2, method="svd")
    with pytest.raises(ValueError, match="method='data'"):
        ppca.em(iter([torch.randn(10, 4)]), 2, method="data")
    with pytest.raises(ValueError, match="at least 2 rows"):
        pca.moments(iter([torch.randn(1, 4)]))
