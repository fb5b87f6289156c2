"""Input validation shared by every public entry point.

Every check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind,
impossible value) with a message that names the argument, what was expected and what
was given. ``assert`` is never used on user input: it disappears under ``python -O``.

The library's conventions for data and dtypes, which every topic module refers to:

* **Data.** Every function that takes data converts them once, at the entry
  (:func:`as_data`): torch tensors and numpy arrays, and pandas DataFrames and Series (a
  column that does not hold numbers is refused by name); floating data keep their dtype,
  float16 is computed in float32, integer and boolean numpy data become float64 (numpy's
  and scikit-learn's convention); sparse matrices are refused (pass ``.toarray()``).
* **Dtypes.** A Pyro model computes in ``torch.promote_types(module dtype, data dtype)``
  (:func:`promoted_like`), as torch's own type promotion does: a module built in the
  default float32 runs on float64 data, on the data's device.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "as_array",
    "as_data",
    "as_design",
    "check_binary",
    "check_choice",
    "check_int",
    "check_like",
    "check_positive",
    "check_same_device",
    "check_same_length",
    "check_sizes",
    "is_one_array",
    "promoted_like",
]


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a tensor of shape {tuple(x.shape)} and dtype {x.dtype}"
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r}"[:120]


def _is_pandas(x: object) -> bool:
    return type(x).__module__.split(".")[0] == "pandas" and hasattr(x, "to_numpy")


def _is_sparse(x: object) -> bool:
    if isinstance(x, torch.Tensor):
        return x.layout != torch.strided
    return type(x).__module__.startswith("scipy.sparse") or hasattr(x, "tocsr")


def is_one_array(x: object) -> bool:
    """Whether ``x`` is one array (a tensor, a numpy array, a pandas DataFrame or Series,
    a sparse matrix) rather than a stream of chunks: all of these are iterable, and a
    DataFrame iterates over its column names.

    >>> import pandas as pd
    >>> is_one_array(pd.DataFrame({"a": [1.0]})), is_one_array(iter([np.zeros((2, 2))]))
    (True, False)
    """
    return isinstance(x, (torch.Tensor, np.ndarray)) or _is_pandas(x) or _is_sparse(x)


def _contiguous(arr: np.ndarray) -> np.ndarray:
    # np.ascontiguousarray would turn a 0-d array into a 1-d one.
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _from_pandas(x: object, name: str) -> np.ndarray:
    """A DataFrame or Series as a float64 numpy array, converted once; a column that does
    not hold numbers is refused by name. Missing values (``NaN``, ``None``, ``pd.NA``)
    become NaN, which the caller then accepts or refuses."""
    frame = hasattr(x, "columns")
    columns = x.dtypes.items() if frame else [(None, x.dtype)]
    for column, dtype in columns:
        kind = getattr(dtype, "kind", "O")  # numpy dtypes and pandas' nullable ones
        if kind not in "biuf":
            which = f"column {column!r} has" if frame else "its values have"
            raise TypeError(
                f"{name} (a pandas {type(x).__name__}) must hold numbers; {which} dtype "
                f"{dtype}: convert it (pd.to_numeric, one-hot encoding) or drop it"
            )
    try:
        arr = x.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as err:  # pragma: no cover - guarded by the dtype check
        raise TypeError(f"{name} must hold numbers; pandas could not convert it ({err})") from None
    # pandas may hand back a read-only view of its own memory (copy-on-write).
    return arr if arr.flags.writeable else arr.copy()


def as_array(x: object, name: str) -> torch.Tensor:
    """Convert data as they enter the library to a tensor, without the shape and value
    checks of :func:`as_data`: the one place where the accepted input types are decided.

    - torch tensors pass through (a sparse layout is refused);
    - numpy arrays, numbers and nested lists go through ``np.asarray``; pandas DataFrames
      and Series are converted once with ``to_numpy`` (float64; a column that does not
      hold numbers is a ``TypeError`` naming it; missing values become NaN);
    - integer and boolean **numpy** data (lists and pandas included) become float64,
      numpy's and scikit-learn's convention; integer and boolean torch tensors become
      torch's default floating dtype;
    - float16 and bfloat16 are promoted to float32 (the linear algebra of the library has
      no half-precision kernels on the CPU; a fit would otherwise fail deep inside);
    - complex numbers, strings, objects and sparse matrices (scipy or torch) are refused
      with a ``TypeError`` that says what to do.

    >>> as_array(np.array([1, 2]), "x").dtype, as_array(torch.tensor([1, 2]), "x").dtype
    (torch.float64, torch.float32)
    >>> as_array(np.zeros(2, dtype=np.float16), "x").dtype
    torch.float32
    """
    if isinstance(x, torch.Tensor):
        if _is_sparse(x):
            raise TypeError(
                f"{name} must be a dense tensor; got a sparse one ({x.layout}): pass "
                f"{name}.to_dense()"
            )
        t = x
    elif _is_pandas(x):
        t = torch.from_numpy(_contiguous(_from_pandas(x, name)))
    elif isinstance(x, (np.ndarray, list, tuple, numbers.Number, np.generic)) and not isinstance(
        x, bool
    ):
        try:
            arr = np.asarray(x)
        except ValueError as err:  # ragged nested lists
            raise TypeError(
                f"{name} must be a rectangular array of numbers; got a ragged "
                f"{type(x).__name__} ({err})"
            ) from None
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers; got {_describe(arr)}")
        if arr.dtype.kind in "biu":
            arr = arr.astype(np.float64)
        t = torch.from_numpy(_contiguous(arr))
    elif _is_sparse(x):
        raise TypeError(
            f"{name} must be a dense array; got a sparse matrix ({type(x).__name__}): pass "
            f"{name}.toarray()"
        )
    else:
        raise TypeError(
            f"{name} must be a torch tensor or a numpy array (or a pandas DataFrame or "
            f"Series); got {_describe(x)}"
        )
    if t.is_complex() or not (t.is_floating_point() or t.dtype == torch.bool or _is_int(t)):
        raise TypeError(f"{name} must hold real numbers; got {_describe(t)}")
    if t.device.type == "meta":
        raise ValueError(f"{name} is a meta tensor: it holds no data to compute with")
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    elif t.dtype in (torch.float16, torch.bfloat16):
        t = t.to(torch.float32)
    return t


def as_data(
    x: object,
    name: str,
    *,
    ndim: int | Sequence[int] = (1, 2),
    min_rows: int = 2,
    dtype: torch.dtype | None = None,
    allow_nan: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Convert ``x`` (tensor, numpy array, pandas DataFrame/Series or nested sequence) to a
    floating tensor and check it.

    The conversion is :func:`as_array`'s: floating inputs keep their dtype (so closed
    forms on float64 data stay float64), except float16/bfloat16, promoted to float32;
    integer and boolean numpy data become float64 (numpy's and scikit-learn's
    convention), integer and boolean tensors torch's default floating dtype; a pandas
    object is converted once (float64), a column that does not hold numbers refused by
    name; sparse matrices are refused (pass ``.toarray()``).

    Parameters
    ----------
    x : array_like
        The data.
    name : str
        The argument's name, used in error messages.
    ndim : int or sequence of int
        The allowed numbers of dimensions.
    min_rows : int
        The least number of rows (observations along dimension 0).
    dtype : torch.dtype, optional
        Convert to this floating dtype.
    allow_nan : bool
        Accept NaN (missing values) but never infinities.
    device : torch.device or str, optional
        Move the result there.

    Returns
    -------
    torch.Tensor
        A floating tensor with ``x.ndim in ndim`` and at least ``min_rows`` rows.

    Examples
    --------
    >>> as_data([[1.0, 2.0], [3.0, 4.0]], "x").shape
    torch.Size([2, 2])
    >>> as_data([1.0, float("nan")], "x")
    Traceback (most recent call last):
    ...
    ValueError: x must be finite (no NaN or inf); it has 1 non-finite value(s)
    """
    t = as_array(x, name)
    if dtype is not None:
        t = t.to(dtype)
    if device is not None:
        t = t.to(device)
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if t.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {want}; got {_describe(t)}")
    if t.ndim > 0 and t.shape[0] < min_rows:
        rows = "observation (row)" if min_rows == 1 else "observations (rows)"
        raise ValueError(f"{name} must have at least {min_rows} {rows}; got {t.shape[0]}")
    if t.ndim > 1 and any(s == 0 for s in t.shape[1:]):
        raise ValueError(f"{name} must have at least one column; got {_describe(t)}")
    if t.numel() and bool(torch.isfinite(t.sum())):
        return t  # exact shortcut: any NaN or inf makes the sum non-finite
    finite = torch.isfinite(t)
    if allow_nan:
        bad = int((~finite & ~torch.isnan(t)).sum())
        if bad:
            raise ValueError(f"{name} must not hold inf; it has {bad} infinite value(s)")
    else:
        bad = int((~finite).sum())
        if bad:
            raise ValueError(
                f"{name} must be finite (no NaN or inf); it has {bad} non-finite value(s)"
            )
    return t


def as_design(
    phi: object,
    t: object,
    *,
    num_features: int | None = None,
    binary: bool = False,
    min_rows: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a design matrix ``phi`` (N, M) and its targets ``t`` (N,); return both as
    tensors of one floating dtype (the promotion of theirs) on ``phi``'s device.

    Parameters
    ----------
    phi, t : array_like
        Features, shape ``(N, M)``; targets, shape ``(N,)``.
    num_features : int, optional
        The number of columns ``phi`` must have.
    binary : bool
        Targets of a Bernoulli likelihood: only 0 and 1 allowed.
    min_rows : int
        The least number of observations.

    >>> phi, t = as_design(np.ones((3, 2)), [0, 1, 1], binary=True)
    >>> phi.dtype, t.dtype
    (torch.float64, torch.float64)
    """
    phi = as_data(phi, "phi", ndim=2, min_rows=min_rows)
    t = as_data(t, "t", ndim=1, min_rows=min_rows, device=phi.device)
    check_same_length(phi=phi, t=t)
    if num_features is not None and phi.shape[1] != num_features:
        raise ValueError(f"phi must have {num_features} columns (num_features); got {phi.shape[1]}")
    if binary:
        check_binary(t, "t")
    dtype = torch.promote_types(phi.dtype, t.dtype)
    return phi.to(dtype), t.to(dtype)


def _is_int(t: torch.Tensor) -> bool:
    return not t.is_floating_point() and not t.is_complex() and t.dtype != torch.bool


def check_same_length(**arrays: torch.Tensor) -> int:
    """Check that all arrays have the same number of rows; return it.

    >>> check_same_length(phi=torch.zeros(3, 2), t=torch.zeros(3))
    3
    """
    lengths = {k: int(v.shape[0]) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        given = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise ValueError(f"{' and '.join(lengths)} must have the same number of rows; {given}")
    return next(iter(lengths.values()))


def check_same_device(**tensors: torch.Tensor) -> torch.device:
    """Check that all tensors live on one device; return it. The first argument is the
    reference the message asks the others to move to.

    >>> check_same_device(x=torch.zeros(2), mean=torch.zeros(2))
    device(type='cpu')
    """
    for name, ref_name, device, ref_device in _mismatches(tensors, "device"):
        raise ValueError(
            f"{name} is on {device} but {ref_name} is on {ref_device}: put them on one "
            f"device (e.g. {name}.to({ref_name}.device))"
        )
    return next(iter(tensors.values())).device


def _mismatches(tensors: dict[str, torch.Tensor], attr: str):
    """``(name, ref_name, value, ref_value)`` for each tensor whose ``attr`` (device,
    dtype) differs from the first tensor's, in order; ``ref_name`` names the first."""
    (ref_name, ref), *others = tensors.items()
    for name, t in others:
        if getattr(t, attr) != getattr(ref, attr):
            yield name, ref_name, getattr(t, attr), getattr(ref, attr)


def check_like(**tensors: torch.Tensor) -> torch.Tensor:
    """Check that all tensors share the first one's device and floating dtype (an
    operation between them would otherwise fail inside torch, or read memory of another
    device); return the first.

    >>> check_like(x=torch.zeros(2), w=torch.zeros(2, dtype=torch.float64))
    Traceback (most recent call last):
    ...
    ValueError: w has dtype torch.float64 but x has torch.float32: convert one (e.g. w.to(x.dtype))
    """
    check_same_device(**tensors)
    for name, ref_name, dtype, ref_dtype in _mismatches(tensors, "dtype"):
        raise ValueError(
            f"{name} has dtype {dtype} but {ref_name} has {ref_dtype}: convert one "
            f"(e.g. {name}.to({ref_name}.dtype))"
        )
    return next(iter(tensors.values()))


def check_positive(value: object, name: str, *, allow_tensor: bool = True) -> float | torch.Tensor:
    """Check that ``value`` is a finite number (or tensor of numbers) strictly above zero.

    >>> check_positive(2.0, "alpha")
    2.0
    >>> check_positive(0.0, "alpha")
    Traceback (most recent call last):
    ...
    ValueError: alpha must be positive and finite; got 0.0
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a positive number; got {_describe(value)}")
    if isinstance(value, (torch.Tensor, np.ndarray)) and allow_tensor:
        t = torch.as_tensor(value)
        if not (t.is_floating_point() or _is_int(t)):
            raise TypeError(f"{name} must be a positive number; got {_describe(value)}")
        if not bool(torch.all(torch.isfinite(t) & (t > 0))):
            raise ValueError(f"{name} must be positive and finite; got {t.tolist()}")
        return t
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number; got {_describe(value)}")
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be positive and finite; got {value!r}")
    return v


def check_int(
    value: object, name: str, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Check that ``value`` is an integer within ``[minimum, maximum]``; return it.

    >>> check_int(3, "degree", minimum=0)
    3
    >>> check_int(-1, "degree", minimum=0)
    Traceback (most recent call last):
    ...
    ValueError: degree must be an integer >= 0; got -1
    """
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer; got {_describe(value)}")
    v = int(value)
    if minimum is not None and maximum is not None and not (minimum <= v <= maximum):
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}]; got {v}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be an integer <= {maximum}; got {v}")
    return v


def check_sizes(sizes: object, name: str, minimum_len: int) -> tuple[int, ...]:
    """A sequence of positive integers of at least ``minimum_len`` entries (layer sizes),
    as a tuple."""
    if isinstance(sizes, (str, bytes)) or not isinstance(sizes, Sequence):
        raise TypeError(f"{name} must be a sequence of positive integers; got {sizes!r}")
    out = tuple(check_int(s, f"{name}[{i}]", minimum=1) for i, s in enumerate(sizes))
    if len(out) < minimum_len:
        raise ValueError(f"{name} must have at least {minimum_len} entries; got {len(out)}")
    return out


def check_binary(t: torch.Tensor, name: str) -> torch.Tensor:
    """Check that every entry of ``t`` is 0 or 1 (targets of a Bernoulli likelihood).

    >>> check_binary(torch.tensor([0.0, 1.0, 0.5]), "t")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: t must hold only 0 and 1 (...); got 1 other value(s), e.g. 0.5
    """
    if t.dtype == torch.bool:
        return t
    # t * t - t is exactly 0 at 0 and 1 only: t * t < t on (0, 1) and > t elsewhere, an
    # underflow to 0 differs from t, and two different floats never subtract to 0; NaN
    # and +-inf give NaN; for integers x (x - 1) = 0 mod 2^64 forces x = 0 or 1. Chunks
    # of 2^16 entries stay in cache: on the 60000 x 784 digits this is 3x faster than a
    # mask over the whole tensor. The mask below only finds an example for the message.
    flat = t.reshape(-1)
    if not any(bool((c * c - c).any()) for c in flat.split(1 << 16)):
        return t
    other = flat[(flat != 0) & (flat != 1)]
    if other.numel():
        raise ValueError(
            f"{name} must hold only 0 and 1 (binary targets for a Bernoulli likelihood); "
            f"got {other.numel()} other value(s), e.g. {other.flatten()[0].item():.9g}"
        )
    return t


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Check that ``value`` is one of ``choices``.

    >>> check_choice("adam", "optimizer", ["adam", "lbfgs"])
    'adam'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}; got {value!r}")
    return value


def promoted_like(module: torch.nn.Module, *data: object) -> torch.Tensor:
    """The dtype and device a topic model computes in, as an empty 0-d tensor ``like``.

    Its dtype is ``torch.promote_types`` of the module's dtype (that of its first floating
    parameter, else of its first floating buffer, else torch's default dtype) and of the
    floating tensors among ``data``, as torch's own type promotion would give; its device
    is that of the first tensor among ``data``, else the module's (``None`` and other
    objects are skipped). A model casts its parameters, prior arguments and data with
    ``t.to(like)``, which returns ``t`` itself where dtype and device already match: for a
    module and data of one dtype (what ``fit_svi`` arranges) the cast costs nothing and
    changes no number. Its value is uninitialised and shared between calls: use only its
    dtype and device (``like.new_zeros(...)`` and the like).

    >>> m = torch.nn.Linear(2, 1)  # float32
    >>> promoted_like(m, torch.zeros(3, dtype=torch.float64), None).dtype
    torch.float64
    >>> promoted_like(m, torch.zeros(3, dtype=torch.bool)).dtype
    torch.float32
    """
    ref = _first_floating(module, "_parameters")
    if ref is None:
        ref = _first_floating(module, "_buffers")
    dtype = torch.get_default_dtype() if ref is None else ref.dtype
    device = None
    for t in data:
        if isinstance(t, torch.Tensor):
            if t.is_floating_point():
                dtype = torch.promote_types(dtype, t.dtype)
            if device is None:
                device = t.device
    if device is None:
        device = torch.device("cpu") if ref is None else ref.device
    like = _LIKES.get((dtype, device))
    if like is None:
        like = _LIKES[dtype, device] = torch.empty((), dtype=dtype, device=device)
    return like


def _first_floating(module: torch.nn.Module, kind: str) -> torch.Tensor | None:
    """The first floating tensor of ``module.parameters()`` (``kind="_parameters"``) or
    ``module.buffers()`` (``"_buffers"``), in their order (the submodules depth-first), read
    from the modules' dictionaries: ``parameters()`` and a ``PyroModule``'s attribute
    lookup cost several times more, and this runs in every model and guide call."""
    stack = [module]
    while stack:
        m = stack.pop()
        for t in getattr(m, kind).values():
            if t is not None and t.is_floating_point():
                return t
        stack.extend(c for c in reversed(m._modules.values()) if c is not None)
    return None


# One empty 0-d tensor per (dtype, device): allocating one per call costs more than the
# rest of promoted_like.
_LIKES: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}
