r"""Saving and loading: :func:`save` and :func:`load` for topic modules, parameters
containers and the scikit-learn estimators.

The file is what ``torch.save`` writes, holding nothing but tensors and plain containers
(``dict``, ``list``, ``tuple``, ``str``, numbers, ``None``), and :func:`load` reads it with
``torch.load(weights_only=True)``, which builds nothing else: no object of the file's
choosing is constructed and no code in it runs. An object is recorded as data that says
how to rebuild it:

=========================  ==============================================================
what                       recorded as
=========================  ==============================================================
a topic module             the import path of its class, its constructor arguments (plain
(``PyroModule``)           data, read back from the module) and its ``state_dict``; loading
                           calls the constructor and ``load_state_dict(..., assign=True)``,
                           so every tensor keeps its dtype and device (a float64 module
                           comes back float64, not float32)
a parameters container     the import path of the ``NamedTuple`` class and its fields
(``PPCAParams``, ...)
an estimator               the import path of its class and its attributes (``__dict__``)
                           with every value recorded by these rules; loading makes the
                           instance without calling ``__init__`` and sets them
a tensor                   itself (dtype and device kept)
a numpy array              a tensor (numbers), or a list of its entries (strings: e.g.
                           ``classes_``, ``feature_names_in_``), with its dtype
=========================  ==============================================================

Classes are taken only from an allowlist of this library's own (the topic modules' modules
and containers, the estimators, :class:`ppl_models.ppca.PPCAClassifier`); a file that names
any other class is refused with ``ValueError``, as is a pickle that holds anything but
tensors and plain containers (``torch.load`` refuses it before anything in it is built).

Writing is atomic (a temporary file beside the target, then a rename:
:func:`ppl_models.inference.checkpoint.atomic_save`): a crash leaves the previous file
whole. A module that its constructor cannot rebuild (a prior put on an instance with
``PyroSample``, a replaced submodule) is refused when saving, not found out when loading:
:func:`save` rebuilds it and compares.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pyro.nn import PyroModule

from .inference.checkpoint import atomic_save, load_tensors

__all__ = ["load", "save"]

FORMAT = "ppl_models.save"
VERSION = 1

# Classes a file may name: module path -> class names. Nothing else is ever imported or
# built by load().
_ALLOWED: dict[str, tuple[str, ...]] = {
    "ppl_models.gaussian": ("Gaussian", "BayesianGaussian", "GaussianParams", "NormalGammaParams"),
    "ppl_models.regression": (
        "LinearRegression",
        "RegressionParams",
        "Posterior",
        "EvidenceResult",
    ),
    "ppl_models.logistic": ("LogisticRegression", "LogisticParams", "LaplaceApproximation"),
    "ppl_models.pca": ("PCA", "PCAParams", "EMResult"),
    "ppl_models.autoencoder": ("Autoencoder", "AutoencoderParams"),
    "ppl_models.ppca": (
        "MarginalPPCA",
        "LatentPPCA",
        "PPCAParams",
        "EMResult",
        "LatentDimSelection",
        "PPCAClassifier",
    ),
    "ppl_models.bayesian_pca": ("BayesianPCA", "BPCAResult"),
    "ppl_models.vae": ("VAE", "VAEParams"),
    "ppl_models.inference.loop": ("FitResult",),
    "ppl_models.estimators": (
        "PCA",
        "PPCA",
        "BayesianPCA",
        "PPCAClassifier",
        "BayesianLinearRegression",
        "BayesianLogisticRegression",
    ),
}

_PLAIN = (type(None), bool, int, float, str)


def _class_path(cls: type) -> str:
    """``"module:Name"`` at the class's public home: the allowlisted module that defines
    it or the nearest allowlisted package above that exports it (``ppl_models.ppca`` for
    the ``MarginalPPCA`` of ``ppl_models.ppca.models``). A file names the path users
    import, which moves inside a package leave unchanged."""
    parts = cls.__module__.split(".")
    for i in range(len(parts), 0, -1):
        home = ".".join(parts[:i])
        names = _ALLOWED.get(home, ())
        if (
            cls.__qualname__ in names
            and getattr(sys.modules.get(home), cls.__qualname__, None) is cls
        ):
            return f"{home}:{cls.__qualname__}"
    return f"{cls.__module__}:{cls.__qualname__}"


def _allowed(cls: type) -> bool:
    module, name = _class_path(cls).split(":")
    return name in _ALLOWED.get(module, ())


def _resolve(path: object, where: str) -> type:
    """The class named by ``path`` (``"module:Name"``), from the allowlist only."""
    if not isinstance(path, str) or path.count(":") != 1:
        raise ValueError(f"{where}: a class must be named 'module:Name'; got {path!r}")
    module, name = path.split(":")
    if name not in _ALLOWED.get(module, ()):
        raise ValueError(
            f"{where}: the file names the class {path!r}, which is not one of this library's "
            "models, containers or estimators; it is not loaded"
        )
    return getattr(importlib.import_module(module), name)


# ------------------------------------------------------------------------- encoding


def _encode(value: Any, where: str) -> Any:
    """``value`` as tensors and plain containers (see the module docstring)."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            raise TypeError(f"cannot save {where}: a {value.layout} tensor (make it dense)")
        return value.detach()
    if isinstance(value, PyroModule) and _allowed(type(value)):
        return _encode_module(value, where)
    if isinstance(value, torch.nn.Module):
        raise TypeError(
            f"cannot save {where}: {_class_path(type(value))} is not one of this library's "
            "topic modules (save its state_dict with torch.save instead)"
        )
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        cls = type(value)
        if not _allowed(cls):
            raise TypeError(
                f"cannot save {where}: {_class_path(cls)} is not one of this library's "
                "parameters containers"
            )
        fields = {f: _encode(getattr(value, f), f"{where}.{f}") for f in cls._fields}
        return {"@": "namedtuple", "class": _class_path(cls), "fields": fields}
    if isinstance(value, (list, tuple)):
        kind = "list" if isinstance(value, list) else "tuple"
        items = [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return {"@": kind, "items": items}
    if isinstance(value, dict):
        keys = list(value)
        bad = [k for k in keys if not isinstance(k, (str, int)) or isinstance(k, bool)]
        if bad:
            raise TypeError(f"cannot save {where}: dictionary keys must be str or int; got {bad!r}")
        return {
            "@": "dict",
            "keys": keys,
            "values": [_encode(value[k], f"{where}[{k!r}]") for k in keys],
        }
    if isinstance(value, np.ndarray):
        return _encode_array(value, where)
    if isinstance(value, np.generic):
        arr = _encode_array(np.asarray(value), where)
        return {"@": "npscalar", "array": arr}
    if isinstance(value, np.dtype):
        return {"@": "npdtype", "str": value.str}
    if isinstance(value, torch.dtype):
        return {"@": "torch_dtype", "name": str(value).removeprefix("torch.")}
    if _allowed(type(value)) and hasattr(value, "__dict__"):
        state = _encode(dict(vars(value)), f"{where}.__dict__")
        return {"@": "object", "class": _class_path(type(value)), "state": state}
    raise TypeError(
        f"cannot save {where}: an object of type {_class_path(type(value))}; save() takes this "
        "library's topic modules, parameters containers and estimators, made of tensors, "
        "numpy arrays, numbers, strings and lists, tuples and dicts of them"
    )


def _encode_array(arr: np.ndarray, where: str) -> dict:
    if arr.dtype.kind in "biuf":
        try:
            data = torch.from_numpy(np.array(arr, copy=True, order="C"))
        except TypeError as err:
            raise TypeError(f"cannot save {where}: numpy dtype {arr.dtype} ({err})") from None
        return {"@": "ndarray", "data": data}
    if arr.dtype.kind == "U" or arr.dtype == object:
        items = arr.ravel().tolist()
        if not all(isinstance(v, _PLAIN) for v in items):
            kinds = sorted({type(v).__name__ for v in items if not isinstance(v, _PLAIN)})
            raise TypeError(f"cannot save {where}: an object array holding {kinds}")
        shape = list(arr.shape)
        return {"@": "ndarray_items", "dtype": arr.dtype.str, "shape": shape, "items": items}
    raise TypeError(f"cannot save {where}: numpy arrays of dtype {arr.dtype} are not supported")


# ------------------------------------------------------------------ topic modules

# Constructor arguments that a module keeps under another name or in another form. The
# others are read from the attribute of the same name; a tensor-valued argument (a
# starting point such as ``init`` or ``mean``) is left at its default, since the
# state_dict restores what it set.


def _buffer_float(module: torch.nn.Module, name: str) -> float | None:
    buf = module._buffers.get(name)
    return None if buf is None else float(buf)


def _activation(module: torch.nn.Module) -> str:
    from .autoencoder import ACTIVATIONS

    for layer in module.encoder:
        if isinstance(layer, torch.nn.Linear):
            continue
        for key, cls in ACTIVATIONS.items():
            if type(layer) is cls:
                return key
        raise TypeError(
            f"cannot save a {type(module).__name__} whose activation is "
            f"{_class_path(type(layer))}: only the named activations {list(ACTIVATIONS)} "
            "can be rebuilt (save its state_dict with torch.save instead)"
        )
    return "relu"  # no hidden layer: the activation is never used


def _ae_sigma(module: torch.nn.Module) -> object:
    if module.likelihood != "normal":
        return "shared"
    if module.sigma_mode == "fixed":
        return float(module.sigma)
    return module.sigma_mode


def _vae_sigma(module: torch.nn.Module) -> str:
    if module.likelihood != "normal":
        return "shared"
    return "shared" if module.sigma.ndim == 0 else "per_dim"


_READERS: dict[tuple[str, str], Any] = {
    ("ppl_models.gaussian:BayesianGaussian", "prior"): lambda m: (
        float(m.mu0),
        float(m.kappa0),
        float(m.a0),
        float(m.b0),
    ),
    ("ppl_models.regression:LinearRegression", "beta"): lambda m: _buffer_float(m, "beta"),
    ("ppl_models.pca:PCA", "sigma"): lambda m: _buffer_float(m, "sigma"),
    ("ppl_models.ppca:LatentPPCA", "guide"): lambda m: m.guide_kind,
    ("ppl_models.autoencoder:Autoencoder", "activation"): _activation,
    ("ppl_models.autoencoder:Autoencoder", "sigma"): _ae_sigma,
    ("ppl_models.vae:VAE", "activation"): _activation,
    ("ppl_models.vae:VAE", "sigma"): _vae_sigma,
    ("ppl_models.bayesian_pca:BayesianPCA", "alpha_prior"): lambda m: (
        float(m.alpha_a),
        float(m.alpha_b),
    ),
    ("ppl_models.bayesian_pca:BayesianPCA", "sigma_scale"): lambda m: float(m.sigma_scale),
    ("ppl_models.bayesian_pca:BayesianPCA", "mu_scale"): lambda m: float(m.mu_scale),
    ("ppl_models.bayesian_pca:BayesianPCA", "guide"): lambda m: m.guide_family,
}


def _is_plain(value: object) -> bool:
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return False


def _init_args(module: torch.nn.Module) -> dict[str, Any]:
    path = _class_path(type(module))
    sig = inspect.signature(type(module).__init__)
    args: dict[str, Any] = {}
    for name, p in list(sig.parameters.items())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        reader = _READERS.get((path, name))
        if reader is not None:
            args[name] = reader(module)
            continue
        value = getattr(module, name, p.default)
        if isinstance(value, torch.Tensor) or not _is_plain(value):
            continue  # a starting point: the state_dict restores what it set
        args[name] = value
    return args


def _setup_lazy(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Create the parameters that a module makes at its first call (a Pyro autoguide's),
    shaped as in ``state``, so that ``load_state_dict`` finds them."""
    from .bayesian_pca import BayesianPCA

    if not isinstance(module, BayesianPCA) or not any(k.startswith("autoguide.") for k in state):
        return
    import pyro

    rows = 2
    for key in ("autoguide.locs.z_unconstrained", "autoguide.z_unconstrained"):
        if key in state:
            rows = int(state[key].shape[0])
    x = torch.zeros(rows, module.data_dim)
    with torch.no_grad(), pyro.poutine.block():
        module.guide(x)


def _structure(module: torch.nn.Module) -> tuple:
    """What the constructor determines: the modules' layout, the parameters' names and
    shapes, and the priors (PyroSample sites)."""
    shapes = tuple((k, tuple(v.shape)) for k, v in module.state_dict().items())
    priors = []
    for name, sub in module.named_modules():
        for site, sample in getattr(sub, "_pyro_samples", {}).items():
            prior = getattr(sample, "prior", sample)
            code = getattr(prior, "__code__", None)
            priors.append((name, site, type(prior).__name__, code))
    return repr(module), shapes, tuple(priors)


def _build_module(cls: type, init: dict[str, Any], state: dict[str, torch.Tensor]) -> Any:
    module = cls(**init)
    _setup_lazy(module, state)
    return module


def _encode_module(module: PyroModule, where: str) -> dict:
    cls = type(module)
    init = _init_args(module)
    state = module.state_dict()
    try:
        fresh = _build_module(cls, init, state)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"cannot save {where}: {_class_path(cls)} cannot be rebuilt from its constructor "
            f"arguments {init!r} ({err})"
        ) from None
    if _structure(fresh) != _structure(module):
        raise TypeError(
            f"cannot save {where}: the {cls.__name__} differs from what its constructor builds "
            f"from {init!r} (a prior or a submodule put on the instance?): its parameters or "
            "priors would not come back; save its state_dict with torch.save instead"
        )
    return {
        "@": "module",
        "class": _class_path(cls),
        "init": _encode(init, f"{where} (constructor arguments)"),
        "state": {k: v.detach() for k, v in state.items()},
        "training": module.training,
    }


# ------------------------------------------------------------------------- decoding


def _decode(value: Any, where: str) -> Any:
    if isinstance(value, (torch.Tensor, *_PLAIN)):
        return value
    if not isinstance(value, dict) or "@" not in value:
        raise ValueError(f"{where}: unexpected entry of type {type(value).__name__}")
    kind = value["@"]
    if kind in ("list", "tuple"):
        items = [_decode(v, f"{where}[{i}]") for i, v in enumerate(value["items"])]
        return items if kind == "list" else tuple(items)
    if kind == "dict":
        return {
            k: _decode(v, f"{where}[{k!r}]")
            for k, v in zip(value["keys"], value["values"], strict=True)
        }
    if kind == "ndarray":
        return value["data"].numpy()
    if kind == "ndarray_items":
        dtype = np.dtype(value["dtype"])
        if dtype.kind not in "UO":
            raise ValueError(f"{where}: unexpected dtype {dtype} for an array of items")
        arr = np.empty(len(value["items"]), dtype=dtype)
        arr[:] = value["items"]
        return arr.reshape(value["shape"])
    if kind == "npscalar":
        return _decode(value["array"], where)[()]
    if kind == "npdtype":
        return np.dtype(value["str"])
    if kind == "torch_dtype":
        dtype = getattr(torch, str(value["name"]), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"{where}: unknown torch dtype {value['name']!r}")
        return dtype
    if kind == "namedtuple":
        cls = _resolve(value["class"], where)
        fields = value["fields"]
        if not (isinstance(cls, type) and issubclass(cls, tuple)) or list(fields) != list(
            cls._fields
        ):
            raise ValueError(
                f"{where}: the fields {list(fields)} do not match {value['class']} "
                f"{list(getattr(cls, '_fields', []))} (written by another version?)"
            )
        return cls(**{f: _decode(v, f"{where}.{f}") for f, v in fields.items()})
    if kind == "object":
        cls = _resolve(value["class"], where)
        if issubclass(cls, (torch.nn.Module, tuple)):
            raise ValueError(f"{where}: {value['class']} is not recorded as an object")
        state = _decode(value["state"], f"{where}.__dict__")
        obj = cls.__new__(cls)
        obj.__dict__.update(state)
        return obj
    if kind == "module":
        cls = _resolve(value["class"], where)
        if not issubclass(cls, PyroModule):
            raise ValueError(f"{where}: {value['class']} is not a module")
        init = _decode(value["init"], f"{where} (constructor arguments)")
        state = value["state"]
        module = _build_module(cls, init, state)
        module.load_state_dict(state, assign=True)
        module.train(bool(value.get("training", True)))
        return module
    raise ValueError(f"{where}: unknown entry kind {kind!r}")


# ------------------------------------------------------------------------- public API


def save(obj: Any, path: str | os.PathLike[str]) -> Path:
    r"""Write a topic module, a parameters container or an estimator to ``path``.

    Parameters
    ----------
    obj : PyroModule, NamedTuple or estimator
        One of this library's topic modules (``MarginalPPCA``, ``VAE``, ...), parameters
        containers (``PPCAParams``, ``BPCAResult``, ...) or :mod:`ppl_models.estimators`
        (fitted or not); also lists, tuples and dicts of them with tensors, numpy arrays,
        numbers and strings.
    path : str or os.PathLike
        The file; its folder is created. Written atomically: the previous file, if any,
        stays whole until the new one is complete.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    TypeError
        For an object that cannot be recorded as data (another class, a module with a
        prior put on the instance, ...), naming where in ``obj`` it is.

    Examples
    --------
    >>> import tempfile
    >>> from ppl_models.ppca import PPCAParams
    >>> p = PPCAParams(torch.ones(3, 1, dtype=torch.float64), torch.zeros(3), torch.tensor(0.5))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     q = load(save(p, f"{d}/params.pt"))
    >>> type(q).__name__, q.W.dtype, torch.equal(q.W, p.W)
    ('PPCAParams', torch.float64, True)
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path; got {type(path).__name__}")
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"path must be a file, not a folder; got {str(p)!r}")
    payload = {"format": FORMAT, "version": VERSION, "object": _encode(obj, "obj")}
    atomic_save(payload, p)
    return p


def load(path: str | os.PathLike[str], *, map_location: Any = None) -> Any:
    r"""Read what :func:`save` wrote: the object, rebuilt, in a new process too.

    Nothing in the file is unpickled but tensors and plain containers
    (``torch.load(weights_only=True)``), and the only classes built are this library's
    own, named in an allowlist; anything else is refused.

    Parameters
    ----------
    path : str or os.PathLike
    map_location : optional
        Passed to ``torch.load``: by default every tensor returns to the device it was
        saved from; ``"cpu"`` loads a file saved on a GPU on a machine without one.

    Returns
    -------
    object
        The module, container or estimator, with every tensor in its saved dtype.

    Raises
    ------
    ValueError
        If the file is missing, truncated or corrupt, holds anything but tensors and plain
        containers (a pickle of other objects), was not written by :func:`save`, or names a
        class outside the allowlist.

    Examples
    --------
    See :func:`save`.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path; got {type(path).__name__}")
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"path: no such file: {str(p)!r}")
    payload = load_tensors(p, "path", map_location, "a file written by ppl_models.save")
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"path: {str(p)!r} was not written by ppl_models.save")
    if not isinstance(payload.get("version"), int) or payload["version"] > VERSION:
        raise ValueError(
            f"path: {str(p)!r} has format version {payload.get('version')!r}; this library "
            f"reads versions up to {VERSION} (upgrade ppl_models)"
        )
    try:
        return _decode(payload["object"], "obj")
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"path: {str(p)!r} is malformed ({type(err).__name__}: {err})") from None
