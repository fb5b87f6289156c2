"""What every figure module shares: the argument rules (``@checked(x=vector(), ...)``: a bad
argument is a ValueError or TypeError naming it, never an error from inside matplotlib;
arrays arrive as float64 numpy arrays), pyplot, and writing figures (:func:`save`,
:func:`finish`). matplotlib, numpy and torch are imported where used: the package imports
without them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._files import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def checked(**rules):
    """Decorate a figure function: each named argument passes its rule ``(value, name)
    -> value`` before the body runs."""
    import functools
    import inspect

    def decorate(fn):
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            for name, rule in rules.items():
                bound.arguments[name] = rule(bound.arguments[name], name)
            return fn(*bound.args, **bound.kwargs)

        return wrapped

    return decorate


def as_float_array(value, name, ndim, *, nan=False, inf=False, min_len=1, nonneg=False, cols=None):
    import numpy as np

    from .._checks import as_array

    t = as_array(value, name)
    a = t.detach().cpu().to(dtype=__import__("torch").float64).numpy()
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if a.ndim not in allowed:
        want = "a 2-D matrix" if allowed == (2,) else " or ".join(f"{d}-D" for d in allowed)
        raise ValueError(f"{name} must be {want}; got shape {a.shape}")
    if a.ndim and a.shape[0] < min_len:
        raise ValueError(f"{name} must have at least {min_len} value(s); got {a.shape[0]}")
    if cols is not None and a.ndim == 2 and a.shape[1] != cols:
        raise ValueError(f"{name} must have shape (N, {cols}); got {a.shape}")
    if a.ndim == 2 and a.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column; got shape {a.shape}")
    bad = np.isnan(a) if not nan else np.zeros(a.shape, dtype=bool)
    if not inf:
        bad = bad | np.isinf(a)
    if bad.any():
        allowed_text = "NaN allowed" if nan else "no NaN"
        raise ValueError(f"{name} must be finite ({allowed_text}); it has {int(bad.sum())} other")
    if nonneg and bool((a < 0).any()):
        raise ValueError(f"{name} must be non-negative")
    return a


def vector(**kw):
    return lambda v, n: as_float_array(v, n, 1, **kw)


def matrix(**kw):
    return lambda v, n: as_float_array(v, n, 2, **kw)


def record(kind, **fields):
    """A NamedTuple of arrays such as ``PCAParams``: each field, in order, passes its rule
    under the name ``<argument>.<field>``."""

    def rule(v, n):
        if not isinstance(v, tuple) or len(v) != len(fields):
            raise TypeError(f"{n} must be a {kind}({', '.join(fields)}); got {type(v).__name__}")
        return tuple(r(a, f"{n}.{f}") for a, (f, r) in zip(v, fields.items(), strict=True))

    return rule


def points(**kw):
    """Images or points, shape (K, D); one (D,) becomes one row."""

    def rule(v, n):
        import numpy as np

        return np.atleast_2d(as_float_array(v, n, (1, 2), **kw))

    return rule


def optional(rule):
    return lambda v, n: None if v is None else rule(v, n)


def mapping(rule, min_len=1, what="entry"):
    from collections.abc import Mapping

    def check(v, n):
        if not isinstance(v, Mapping):
            raise TypeError(f"{n} must be a dict; got {type(v).__name__}")
        if len(v) < min_len:
            raise ValueError(f"{n} must hold at least one {what}; got none")
        return {k: rule(x, f"{n}[{k!r}]") for k, x in v.items()}

    return check


def integer(minimum=None):
    """An integer rule without torch (the workflow figures draw in the ArviZ-only job)."""
    import numbers

    def check(v, n):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{n} must be an integer; got {type(v).__name__} {v!r}"[:160])
        if minimum is not None and v < minimum:
            raise ValueError(f"{n} must be an integer >= {minimum}; got {v}")
        return int(v)

    return check


def number(positive=False, lo=None, hi=None):
    import math
    import numbers

    def check(v, n):
        if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{n} must be a number; got {type(v).__name__}")
        v = float(v)
        if not math.isfinite(v) or (positive and v <= 0):
            raise ValueError(f"{n} must be {'positive and ' if positive else ''}finite; got {v!r}")
        if (lo is not None and v <= lo) or (hi is not None and v >= hi):
            raise ValueError(f"{n} must be in ({lo}, {hi}); got {v!r}")
        return v

    return check


def text(v, n):
    if not isinstance(v, str):
        raise TypeError(f"{n} must be a str; got {type(v).__name__}")
    return v


def figure(v, n):
    from matplotlib.figure import Figure

    if not isinstance(v, Figure):
        raise TypeError(f"{n} must be a matplotlib Figure; got {type(v).__name__}")
    return v


def class_labels(v, n):
    """Class labels, shape (N,): numbers or strings, no NaN."""
    import numpy as np

    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    if type(v).__module__.split(".")[0] == "pandas" and hasattr(v, "to_numpy"):
        v = v.to_numpy()
    try:
        a = np.asarray(v)
    except ValueError as err:
        raise TypeError(f"{n} must be a 1-D array of class labels ({err})") from None
    if a.ndim != 1 or a.shape[0] == 0 or a.dtype.kind not in "biuUS":
        raise ValueError(f"{n} must be a non-empty 1-D array of class labels (integers or str)")
    return a


def image_shape_rule(v, n):
    if v is None:
        return None
    if not isinstance(v, (tuple, list)) or len(v) != 2:
        raise TypeError(f"{n} must be a pair (height, width); got {v!r}"[:160])
    return (integer(1)(v[0], f"{n}[0]"), integer(1)(v[1], f"{n}[1]"))


def same_length(**arrays) -> None:
    lengths = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(lengths.values())) > 1:
        given = ", ".join(f"{k} has {m}" for k, m in lengths.items())
        raise ValueError(f"{' and '.join(lengths)} must have the same length; {given}")


def scatter_classes(ax, z, labels) -> None:
    """Scatter the points ``z`` (N, 2) on ``ax``, one colour and one legend entry per class
    of ``labels`` (N,): tab10 up to ten classes, tab20 beyond."""
    import numpy as np

    classes = np.unique(labels)
    cmap = pyplot().get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        sel = labels == c
        ax.scatter(z[sel, 0], z[sel, 1], s=6, alpha=0.7, color=cmap(i % cmap.N), label=str(c))


def pyplot():
    import matplotlib

    if os.environ.get("MPLBACKEND") is None and not os.environ.get("DISPLAY"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def image_path(v, n):
    if not isinstance(v, (str, os.PathLike)):
        raise TypeError(f"{n} must be a file path (str or os.PathLike); got {type(v).__name__}")
    path = Path(v)
    formats = ("png", "pdf", "svg", "jpg", "jpeg", "eps", "ps", "tif", "tiff", "webp")
    if path.suffix.lower().lstrip(".") not in formats:
        raise ValueError(
            f"{n} must end in an image format's suffix ({', '.join('.' + f for f in formats)});"
            f" got {str(path)!r}"
        )
    return path


@checked(fig=figure, path=image_path, dpi=integer(1))
def save(fig: Figure, path: str | os.PathLike[str], dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` (PNG by its suffix) whole or not at all, and close it."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    try:
        atomic_write(path, lambda f: fig.savefig(f, format=kind, dpi=dpi, bbox_inches="tight"))
    finally:
        pyplot().close(fig)
    return path


def file_stem(v, n):
    v = text(v, n)
    if not v or "/" in v or "\\" in v or v in (".", ".."):
        raise ValueError(f"{n} must be a file name without a folder; got {v!r}")
    return v


@checked(fig=figure, name=file_stem)
def finish(fig: Figure, name: str) -> Path | None:
    """End a tutorial figure: save it as ``$PPL_MODELS_OUT/<name>.png`` when that variable
    is set (scripts, tests), else show it (notebooks)."""
    out = os.environ.get("PPL_MODELS_OUT")
    if out:
        return save(fig, Path(out) / f"{name}.png")
    pyplot().show()
    return None


def to_numpy(a):
    import numpy as np

    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=float)


def resolve_image_shape(d: int, image_shape: tuple[int, int] | None) -> tuple[int, int]:
    if image_shape is not None:
        if image_shape[0] * image_shape[1] != d:
            raise ValueError(f"image_shape {tuple(image_shape)} must hold the {d} pixels")
        return tuple(image_shape)
    side = round(d**0.5)
    if side * side != d:
        raise ValueError(f"image_shape is needed: {d} pixels are not a square image")
    return side, side
