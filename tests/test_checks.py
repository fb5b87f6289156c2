"""Input validation shared by every public entry point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ppl_models._checks import (
    as_data,
    check_binary,
    check_choice,
    check_int,
    check_like,
    check_positive,
    check_same_device,
    check_same_length,
    promoted_like,
)


def test_as_data_keeps_floating_dtype_and_converts_numpy():
    assert as_data(np.zeros((3, 2)), "x").dtype == torch.float64
    assert as_data(torch.zeros(3, dtype=torch.float32), "x").dtype == torch.float32
    # Integer and boolean numpy data (and lists) become float64, numpy's and
    # scikit-learn's convention; integer tensors follow torch's (its default dtype).
    assert as_data(np.arange(3), "x").dtype == torch.float64
    assert as_data(np.array([True, False]), "t").dtype == torch.float64
    assert as_data([1, 2, 3], "x").dtype == torch.float64
    assert as_data(torch.arange(3), "x").dtype == torch.get_default_dtype()
    # Half precision is promoted at the entry: the CPU has no half linear algebra.
    for half in (np.zeros(3, dtype=np.float16), torch.zeros(3, dtype=torch.bfloat16)):
        assert as_data(half, "x").dtype == torch.float32


def test_as_data_converts_pandas_once_and_names_a_bad_column():
    import pandas as pd

    frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5], "c": [True, False, True]})
    got = as_data(frame, "x")
    np.testing.assert_array_equal(got.numpy(), frame.to_numpy(dtype=np.float64))
    assert got.dtype == torch.float64
    series = as_data(pd.Series([1.0, 2.0], name="t"), "t", ndim=1)
    assert series.shape == (2,) and series.dtype == torch.float64
    # pandas' nullable integers: a missing entry becomes NaN, refused or allowed as asked.
    nullable = pd.Series([1, None, 3], dtype="Int64")
    with pytest.raises(ValueError, match="t must be finite"):
        as_data(nullable, "t")
    assert torch.isnan(as_data(nullable, "t", allow_nan=True)).sum() == 1
    frame["name"] = ["u", "v", "w"]
    with pytest.raises(
        TypeError, match=r"x \(a pandas DataFrame\) must hold numbers; column 'name'"
    ):
        as_data(frame, "x")
    with pytest.raises(TypeError, match=r"t .* must hold numbers; its values have dtype"):
        as_data(pd.Series(pd.Categorical(["a", "b"])), "t")


def test_as_data_refuses_sparse_matrices_and_says_what_to_do():
    import scipy.sparse as sparse

    with pytest.raises(TypeError, match=r"x must be a dense array; .*csr.*x\.toarray\(\)"):
        as_data(sparse.csr_matrix(np.eye(3)), "x")
    with pytest.raises(TypeError, match=r"x must be a dense tensor; .*x\.to_dense\(\)"):
        as_data(torch.eye(3).to_sparse(), "x")


def test_as_data_refuses_ragged_lists_by_name():
    with pytest.raises(TypeError, match="x must be a rectangular array of numbers"):
        as_data([[1.0, 2.0], [3.0]], "x")


@pytest.mark.parametrize(
    ("value", "kwargs", "exc", "match"),
    [
        ("abc", {}, TypeError, "x must be a torch tensor or a numpy array"),
        (np.array(["a", "b"]), {}, TypeError, "x must hold real numbers"),
        (np.array([1 + 1j, 2]), {}, TypeError, "x must hold real numbers"),
        (np.zeros((2, 2, 2)), {}, ValueError, "x must be 1-D or 2-D"),
        (np.zeros(1), {}, ValueError, r"at least 2 observations \(rows\)"),
        (np.zeros(0), {"min_rows": 1}, ValueError, r"at least 1 observation \(row\); got 0"),
        (np.zeros((3, 0)), {}, ValueError, "at least one column"),
        (np.array([1.0, np.inf]), {}, ValueError, "x must be finite"),
        (np.array([1.0, np.nan]), {}, ValueError, "x must be finite"),
        (np.array([1.0, np.inf]), {"allow_nan": True}, ValueError, "x must not hold inf"),
    ],
)
def test_as_data_rejects(value, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        as_data(value, "x", **kwargs)


def test_as_data_allows_nan_when_asked():
    assert torch.isnan(as_data([1.0, float("nan")], "x", allow_nan=True)).sum() == 1


def test_scalar_checks():
    assert check_positive(np.float64(2.0), "beta") == 2.0
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="beta must be positive"):
            check_positive(bad, "beta")
    with pytest.raises(TypeError, match="beta must be a positive number"):
        check_positive("1", "beta")
    with pytest.raises(TypeError, match="beta must be a positive number"):
        check_positive(True, "beta")
    with pytest.raises(ValueError, match="alpha must be positive"):
        check_positive(torch.tensor([1.0, 0.0]), "alpha")
    assert check_int(np.int64(3), "degree", minimum=0) == 3
    with pytest.raises(TypeError, match="degree must be an integer"):
        check_int(2.5, "degree")
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, 3\]"):
        check_int(4, "k", minimum=1, maximum=3)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        check_choice("x", "optimizer", ["adam"])


def test_device_and_dtype_checks_name_the_argument():
    x = torch.zeros(3, 2)
    assert check_like(x=x, w=torch.zeros(2, 1)) is x
    with pytest.raises(ValueError, match=r"w has dtype torch.float64 but x has torch.float32"):
        check_like(x=x, w=torch.zeros(2, 1, dtype=torch.float64))
    meta = torch.zeros(2, device="meta")  # another device, on any machine
    with pytest.raises(ValueError, match=r"mean is on meta but x is on cpu.*mean.to\(x.device\)"):
        check_same_device(x=x, mean=meta)


def test_lengths_and_binary():
    assert check_same_length(a=torch.zeros(4), b=torch.zeros(4, 2)) == 4
    with pytest.raises(ValueError, match="phi and t must have the same number of rows"):
        check_same_length(phi=torch.zeros(4, 2), t=torch.zeros(3))
    check_binary(torch.tensor([0.0, 1.0, 1.0]), "t")
    for bad in ([0.0, 2.0], [-1.0, 1.0], [0.5, 1.0]):
        with pytest.raises(ValueError, match="t must hold only 0 and 1"):
            check_binary(torch.tensor(bad), "t")


def test_binary_edge_cases():
    # The check is arithmetic (t * t - t == 0), so the values next to 0 and 1, the
    # non-finite ones and integer overflow are where it could go wrong.
    for good in (torch.tensor([0, 1, 1]), torch.tensor([True, False]), torch.zeros(3, 70000)):
        check_binary(good, "t")
    near_one = 1.0 - 2.0**-24  # the float32 just below 1: t * t rounds to another float
    tiny = torch.finfo(torch.float32).tiny * 2.0**-20  # subnormal: t * t underflows to 0
    for bad in (
        torch.tensor([0.0, near_one]),
        torch.tensor([0.0, tiny]),
        torch.tensor([0.0, float("inf")]),
        torch.tensor([float("-inf"), 1.0]),
        torch.tensor([0.0, float("nan")]),
        torch.tensor([0, 2**32]),  # (2^32)^2 wraps to 0 in int64
        torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64),
    ):
        with pytest.raises(ValueError, match="t must hold only 0 and 1"):
            check_binary(bad, "t")
    # A bad value in a later chunk (the check runs in chunks of 2^16 entries).
    x = torch.zeros(3, 70000)
    x[2, 69999] = 0.5
    with pytest.raises(ValueError, match=r"1 other value\(s\), e.g. 0.5"):
        check_binary(x, "t")


def test_promoted_like_is_torchs_promotion_of_module_and_data():
    f32 = torch.nn.Linear(2, 1)
    f64 = torch.nn.Linear(2, 1).double()
    x32, x64 = torch.zeros(3), torch.zeros(3, dtype=torch.float64)
    assert promoted_like(f32, x64).dtype == torch.float64
    assert promoted_like(f64, x32).dtype == torch.float64
    assert promoted_like(f32, x32).dtype == torch.float32
    # No data (drawing new points): the module's dtype; None and integer data are skipped.
    assert promoted_like(f64).dtype == torch.float64
    assert promoted_like(f32, None, torch.zeros(3, dtype=torch.int64)).dtype == torch.float32
    # A module without floating parameters: its floating buffer, else torch's default.
    buffered = torch.nn.Module()
    buffered.register_buffer("b", torch.zeros(2, dtype=torch.float64))
    assert promoted_like(buffered).dtype == torch.float64
    assert promoted_like(torch.nn.Module(), x32).dtype == torch.get_default_dtype()
    like = promoted_like(f32, x64)
    assert like.shape == () and like.device == x64.device
    assert x64.to(like) is x64  # the cast of matching data is no copy


def test_pandas_and_integers_everywhere_data_enter():
    # Issue 16, item 2: a DataFrame (Series) is converted once at the entry, and gives the
    # numbers of the same values as a float64 numpy array; integer numpy data are float64.
    import pandas as pd

    from ppl_models import autoencoder, bayesian_pca, gaussian, logistic, pca, ppca, regression

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4)) @ rng.standard_normal((4, 4))
    frame = pd.DataFrame(x, columns=list("abcd"))
    t = pd.Series((x[:, 0] > 0).astype(int), name="t")
    phi = pd.DataFrame({"one": np.ones(40), "a": x[:, 1]})
    same = [
        (gaussian.mle(frame["a"]).covariance, gaussian.mle(x[:, 0]).covariance),
        (regression.mle(phi, frame["b"]).w, regression.mle(phi.to_numpy(), x[:, 1]).w),
        (logistic.irls(phi, t).w, logistic.irls(phi.to_numpy(), t.to_numpy() * 1.0).w),
        (pca.fit(frame, 2).components, pca.fit(x, 2).components),
        (ppca.closed_form(frame, 2).sigma2, ppca.closed_form(x, 2).sigma2),
        (ppca.select_latent_dim(frame).scores, ppca.select_latent_dim(x).scores),
        (bayesian_pca.ard_em(frame, 3).alpha, bayesian_pca.ard_em(x, 3).alpha),
        (autoencoder.linear_optimum(frame, 2).sigma, autoencoder.linear_optimum(x, 2).sigma),
    ]
    for got, ref in same:
        assert got.dtype == torch.float64
        torch.testing.assert_close(got, ref, rtol=0, atol=0)  # the same values, the same code
    ints = rng.integers(0, 10, size=(30, 4))
    assert ppca.closed_form(ints, 1).W.dtype == torch.float64  # was float32
    assert pca.fit(ints, 1).components.dtype == torch.float64
    # float16 is computed in float32 (it failed deep inside, or came back as float16).
    assert ppca.closed_form(x.astype(np.float16), 1).W.dtype == torch.float32
    half = np.float16
    assert (
        regression.mle(phi.to_numpy().astype(half), x[:, 1].astype(half)).w.dtype == torch.float32
    )
    # A DataFrame is one array, not a stream of chunks (it iterates over its column names).
    assert not pca.is_stream(frame)
    with pytest.raises(TypeError, match=r"x \(a pandas DataFrame\) must hold numbers; column 'e'"):
        pca.fit(frame.assign(e="text"), 2)
