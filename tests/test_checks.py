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
    check_positive,
    check_same_length,
    promoted_like,
)


def test_as_data_keeps_floating_dtype_and_converts_numpy():
    assert as_data(np.zeros((3, 2)), "x").dtype == torch.float64
    assert as_data(torch.zeros(3, dtype=torch.float32), "x").dtype == torch.float32
    assert as_data(np.arange(3), "x").dtype == torch.get_default_dtype()
    assert as_data(np.array([True, False]), "t").dtype == torch.get_default_dtype()


@pytest.mark.parametrize(
    ("value", "kwargs", "exc", "match"),
    [
        ("abc", {}, TypeError, "x must be a torch tensor or a numpy array"),
        (np.array(["a", "b"]), {}, TypeError, "x must hold real numbers"),
        (np.array([1 + 1j, 2]), {}, TypeError, "x must hold real numbers"),
        (np.zeros((2, 2, 2)), {}, ValueError, "x must be 1-D or 2-D"),
        (np.zeros(1), {}, ValueError, "at least 2 observations"),
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
