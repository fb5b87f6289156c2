"""Old spellings of renamed keywords and names, kept for one release (issue 18).

Each old spelling still works and emits a ``FutureWarning`` that names the new one. This
module imports nothing but the standard library: the figures that the ArviZ-only test job
draws (without torch) use it too.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["deprecated_alias", "moved", "renamed_keywords", "warn_renamed"]

_F = TypeVar("_F", bound=Callable[..., Any])


def warn_renamed(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (removed in the next release)."""
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new} instead",
        FutureWarning,
        stacklevel=stacklevel,
    )


def renamed_keywords(**renames: str) -> Callable[[_F], _F]:
    """Decorate a function whose keywords ``old=new`` were renamed: a call with an old
    keyword warns and passes the value on under the new one. The signature seen by
    ``inspect`` is the function's own (``functools.wraps``).

    >>> @renamed_keywords(n="num_points")
    ... def draw(num_points=1):
    ...     return num_points
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     draw(n=3), w[0].category.__name__
    (3, 'FutureWarning')
    """

    def decorate(fn: _F) -> _F:
        name = fn.__qualname__

        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(
                            f"{name}() got both {old}= (its old name) and {new}=; pass {new}= only"
                        )
                    warn_renamed(f"{name}({old}=...)", f"{name}({new}=...)")
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def deprecated_alias(fn: _F, old: str, new: str) -> _F:
    """``fn`` under its old name ``old``: every call warns, naming ``new``."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        warn_renamed(old, new)
        return fn(*args, **kwargs)

    wrapped.__doc__ = f"Deprecated alias of :func:`{new}` (removed in the next release)."
    wrapped.__name__ = wrapped.__qualname__ = old.rsplit(".", 1)[-1]
    return wrapped  # type: ignore[return-value]


def moved(module: str, table: Mapping[str, tuple[str, str]]) -> Callable[[str], Any]:
    """A module's ``__getattr__`` for names that moved: ``old -> (new module, new name)``.
    Reading an old name warns and imports its new home on demand (the only import these
    shims make; they go with the next release)."""

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        import importlib

        where, new = table[name]
        warn_renamed(f"{module}.{name}", f"{where}.{new}")
        return getattr(importlib.import_module(where), new)

    return __getattr__
