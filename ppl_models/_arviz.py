r"""One path into ArviZ for both of its generations, with numpy arrays only (no torch).

ArviZ 0.x (``arviz<1``) builds :class:`arviz.InferenceData` with
``az.from_dict(posterior=..., log_likelihood=..., ...)``; ArviZ 1.x builds an
:class:`xarray.DataTree` with ``az.from_dict({"posterior": ..., ...})`` and has no Pyro
converter. :func:`from_arrays` takes the groups as dictionaries of numpy arrays and calls
whichever ``from_dict`` is installed, so the library builds one dictionary for both.
The wrappers :func:`summary`, :func:`rhat` and :func:`loo` smooth over the differences in
call conventions and results (column names, rounding, attribute names of the LOO result).

Every array of a sampled group (``posterior``, ``posterior_predictive``,
``log_likelihood``, ``sample_stats``) has the leading dimensions ``(chain, draw)``;
``observed_data`` has none. ``dims`` names the remaining dimensions of a variable; the
library always names all of them, because the two generations name unnamed dimensions
differently (``obs_dim_1`` in 0.x, ``obs_dim_0`` in 1.x for the same axis).

PSIS-LOO (Vehtari, Gelman & Gabry 2017) estimates the expected log pointwise predictive
density

.. math::

    \mathrm{elpd}_{\mathrm{loo}} = \sum_{n=1}^N \log p(x_n \mid x_{-n}),
    \qquad p(x_n \mid x_{-n}) = \int p(x_n \mid \theta)\, p(\theta \mid x_{-n})\, d\theta,

from the ``log_likelihood`` group, :math:`\log p(x_n \mid \theta_s)` for posterior draws
:math:`\theta_s`, by Pareto-smoothed importance sampling with weights
:math:`1 / p(x_n \mid \theta_s)`.

References
----------
A. Vehtari, A. Gelman, J. Gabry, "Practical Bayesian model evaluation using leave-one-out
cross-validation and WAIC", *Statistics and Computing* 27 (2017).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "PRIOR_GROUPS",
    "SAMPLE_GROUPS",
    "LooResult",
    "arviz_major",
    "compare",
    "from_arrays",
    "get_group",
    "group_names",
    "loo",
    "loo_pit",
    "rhat",
    "summary",
]

#: Groups whose arrays start with the dimensions ``(chain, draw)``.
SAMPLE_GROUPS = ("posterior", "posterior_predictive", "log_likelihood", "sample_stats")
#: Groups of prior draws, also ``(chain, draw, ...)``; their (chain, draw) may differ from
#: the posterior's.
PRIOR_GROUPS = ("prior", "prior_predictive")

# The columns both generations' summaries report (their interval columns differ: HDI
# "hdi_3%" in 0.x, ETI "eti89_lb" in 1.x).
_SUMMARY_COLUMNS = ["mean", "sd", "mcse_mean", "mcse_sd", "ess_bulk", "ess_tail", "r_hat"]


def _az() -> Any:
    import arviz

    return arviz


def arviz_major() -> int:
    """The major version of the installed ArviZ (0 or 1).

    >>> arviz_major() in (0, 1)
    True
    """
    return int(_az().__version__.split(".")[0])


def _as_array(value: Any, where: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{where} must hold real numbers; got an array of dtype {arr.dtype}")
    return arr


def _check_group(
    name: str, group: Mapping[str, Any] | None, shape: tuple[int, int] | None
) -> tuple[dict[str, np.ndarray] | None, tuple[int, int] | None]:
    if group is None:
        return None, shape
    if not isinstance(group, Mapping):
        raise TypeError(
            f"{name} must be a dict from variable names to arrays; got {type(group).__name__}"
        )
    out = {}
    for var, value in group.items():
        if not isinstance(var, str):
            raise TypeError(f"{name} must have str keys (variable names); got {var!r}")
        arr = _as_array(value, f"{name}[{var!r}]")
        if name in SAMPLE_GROUPS or name in PRIOR_GROUPS:
            if arr.ndim < 2:
                raise ValueError(
                    f"{name}[{var!r}] must have leading dimensions (chain, draw); got shape "
                    f"{arr.shape}"
                )
            if shape is None:
                shape = arr.shape[:2]
            elif arr.shape[:2] != shape:
                raise ValueError(
                    f"{name}[{var!r}] must have (chain, draw) = {shape} like the other "
                    f"{'prior' if name in PRIOR_GROUPS else 'posterior'} groups; got shape "
                    f"{arr.shape}"
                )
        out[var] = arr
    return out, shape


def from_arrays(
    posterior: Mapping[str, Any] | None,
    posterior_predictive: Mapping[str, Any] | None = None,
    log_likelihood: Mapping[str, Any] | None = None,
    observed_data: Mapping[str, Any] | None = None,
    sample_stats: Mapping[str, Any] | None = None,
    dims: Mapping[str, Sequence[str]] | None = None,
    coords: Mapping[str, Any] | None = None,
    prior: Mapping[str, Any] | None = None,
    prior_predictive: Mapping[str, Any] | None = None,
) -> Any:
    """Build ArviZ data from dictionaries of numpy arrays, in either ArviZ generation.

    Parameters
    ----------
    posterior : dict of str to array_like, each ``(chain, draw, ...)``
        Posterior draws per variable; may be ``None`` only when ``prior`` is given (a
        prior predictive check before any fit).
    posterior_predictive : dict of str to array_like, each ``(chain, draw, ...)``, optional
        Draws of the observed variables given each posterior draw.
    log_likelihood : dict of str to array_like, each ``(chain, draw, ...)``, optional
        Pointwise log-likelihood :math:`\\log p(x_n \\mid \\theta_s)` per observed variable.
    observed_data : dict of str to array_like, optional
        The observed values (no chain/draw dimensions).
    sample_stats : dict of str to array_like, each ``(chain, draw)``, optional
        Sampler statistics (e.g. ``"diverging"``).
    dims : dict of str to list of str, optional
        Names of each variable's dimensions after ``(chain, draw)``; applies to a variable
        of that name in every group.
    coords : dict of str to array_like, optional
        Coordinate values of named dimensions.
    prior, prior_predictive : dict of str to array_like, each ``(chain, draw, ...)``, optional
        Draws from the prior and the data they generate; their ``(chain, draw)`` may differ
        from the posterior's.

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        ``InferenceData`` with ArviZ 0.x, ``DataTree`` with ArviZ 1.x; read groups from
        either with :func:`get_group`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> data = from_arrays({"mu": rng.normal(size=(2, 100))},
    ...                    observed_data={"obs": np.zeros(5)}, dims={"obs": ["data"]})
    >>> group_names(data)
    ['posterior', 'observed_data']
    >>> dict(get_group(data, "posterior").sizes)
    {'chain': 2, 'draw': 100}
    """
    empty_prior = prior is None or (isinstance(prior, Mapping) and not prior)
    if empty_prior and (posterior is None or (isinstance(posterior, Mapping) and not posterior)):
        raise ValueError("posterior must be a non-empty dict from variable names to arrays")
    groups: dict[str, dict[str, np.ndarray]] = {}
    shape = prior_shape = None
    for name, group in [
        ("posterior", posterior),
        ("posterior_predictive", posterior_predictive),
        ("log_likelihood", log_likelihood),
        ("sample_stats", sample_stats),
        ("prior", prior),
        ("prior_predictive", prior_predictive),
        ("observed_data", observed_data),
    ]:
        if name in PRIOR_GROUPS:
            checked, prior_shape = _check_group(name, group, prior_shape)
        else:
            checked, shape = _check_group(name, group, shape)
        if checked:
            groups[name] = checked
    dims = None if dims is None else {k: list(v) for k, v in dims.items()}
    coords = None if coords is None else dict(coords)
    az = _az()
    if arviz_major() >= 1:
        return az.from_dict(groups, dims=dims, coords=coords)
    return az.from_dict(**groups, dims=dims, coords=coords)


class MissingGroupError(KeyError, ValueError):
    """ArviZ data without a group a function needs: a ``KeyError`` (a missing key) and a
    ``ValueError`` (a bad argument value) both."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _is_arviz_data(data: Any) -> bool:
    inference_data = hasattr(data, "groups") and callable(data.groups)
    data_tree = hasattr(data, "children") and hasattr(data, "to_dataset")
    return inference_data or data_tree


def check_data(data: Any, name: str = "data") -> Any:
    """Refuse anything but ArviZ data (``InferenceData`` or ``xarray.DataTree``)."""
    if not _is_arviz_data(data):
        raise TypeError(
            f"{name} must be ArviZ data (InferenceData or xarray.DataTree, e.g. from "
            f"ppl_models.workflow.to_inference_data); got {type(data).__name__}"
        )
    return data


def group_names(data: Any) -> list[str]:
    """The names of the groups of ``data`` (InferenceData or DataTree), in order."""
    check_data(data)
    if hasattr(data, "groups") and callable(data.groups) and not hasattr(data, "children"):
        return list(data.groups())
    return list(data.children)


def get_group(data: Any, name: str) -> Any:
    """Group ``name`` of ``data`` as an :class:`xarray.Dataset`, in either generation.

    Raises
    ------
    TypeError
        If ``data`` is not ArviZ data or ``name`` not a string.
    MissingGroupError
        (a ``KeyError`` and a ``ValueError``) if ``data`` has no such group; the message
        lists the groups it has.
    """
    names = group_names(data)
    if not isinstance(name, str):
        raise TypeError(f"name must be a group name (str); got {type(name).__name__}")
    if name not in names:
        raise MissingGroupError(f"the data has no group {name!r} (name); it has {names}")
    group = data[name]
    return group.to_dataset() if hasattr(group, "to_dataset") else group


def _check_variable(data: Any, group: str, var_name: Any, *, required: bool) -> None:
    """``var_name`` names a variable of ``data``'s ``group`` (or is None where allowed)."""
    if var_name is None and not required:
        get_group(data, group)
        return
    if not isinstance(var_name, str):
        raise TypeError(f"var_name must be a variable name (str); got {type(var_name).__name__}")
    known = list(get_group(data, group).data_vars)
    if var_name not in known:
        raise ValueError(f"var_name {var_name!r} is not in the {group} group; it has {known}")


def _check_var_names(var_names: Any, data: Any, name: str = "var_names") -> list[str] | None:
    """``None`` or a list of the posterior's variable names."""
    if var_names is None:
        return None
    if isinstance(var_names, str):
        var_names = [var_names]
    if not isinstance(var_names, (list, tuple)) or not all(isinstance(v, str) for v in var_names):
        raise TypeError(f"{name} must be a list of variable names (str); got {var_names!r}"[:200])
    known = list(get_group(data, "posterior").data_vars)
    unknown = [v for v in var_names if v not in known]
    if unknown:
        raise ValueError(f"{name} holds {unknown}, not in the posterior; it has {known}")
    return list(var_names)


def summary(data: Any, var_names: Sequence[str] | None = None) -> Any:
    """Posterior summary with unrounded numbers and the columns both generations share.

    Parameters
    ----------
    data : InferenceData or DataTree
        With a ``posterior`` group.
    var_names : list of str, optional
        Variables to summarise (all by default).

    Returns
    -------
    pandas.DataFrame
        One row per scalar component (``"mu"``, ``"w[0]"``, ...) and the float columns
        ``mean, sd, mcse_mean, mcse_sd, ess_bulk, ess_tail, r_hat`` (rank-normalised split
        R-hat, Vehtari et al. 2021).
    """
    check_data(data)
    var_names = _check_var_names(var_names, data)
    table = _az().summary(data, var_names=var_names, kind="all", round_to="none")
    import pandas as pd

    return pd.DataFrame(
        table[_SUMMARY_COLUMNS].to_numpy(dtype=float),
        index=list(table.index),
        columns=_SUMMARY_COLUMNS,
    )


def rhat(data: Any, var_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Rank-normalised split R-hat of each posterior variable, as numpy arrays.

    Returns
    -------
    dict of str to numpy.ndarray
        Variable name to R-hat, of the variable's shape without ``(chain, draw)``.
    """
    check_data(data)
    var_names = _check_var_names(var_names, data)
    result = _az().rhat(data, var_names=var_names)
    if hasattr(result, "to_dataset"):  # 1.x returns a DataTree node
        result = result.to_dataset()
    return {str(k): np.asarray(v.values) for k, v in result.data_vars.items()}


class LooResult(NamedTuple):
    """PSIS-LOO estimate, the same fields in both ArviZ generations.

    Attributes
    ----------
    elpd : float
        Estimated expected log pointwise predictive density (sum over observations).
    se : float
        Its standard error.
    p : float
        Effective number of parameters, ``lppd - elpd``.
    elpd_i : numpy.ndarray
        Pointwise contributions, shape of the observations.
    pareto_k : numpy.ndarray
        Pareto shape estimates per observation; above 0.7 the estimate is unreliable.
    n_samples, n_data_points : int
        Posterior draws and observations used.
    warning : bool
        Whether ArviZ flagged the estimate (some ``pareto_k`` too high).
    """

    elpd: float
    se: float
    p: float
    elpd_i: np.ndarray
    pareto_k: np.ndarray
    n_samples: int
    n_data_points: int
    warning: bool


def loo(data: Any, var_name: str | None = None, quiet: bool = False) -> LooResult:
    """PSIS-LOO from the ``log_likelihood`` group, in either ArviZ generation.

    Parameters
    ----------
    data : InferenceData or DataTree
        With ``posterior`` and ``log_likelihood`` groups.
    var_name : str, optional
        The observed variable to score; required when the log-likelihood group has more than
        one.
    quiet : bool
        Silence ArviZ's warning about high Pareto k (the result's ``warning`` still says so).

    Returns
    -------
    LooResult
    """
    _check_variable(data, "log_likelihood", var_name, required=False)
    az = _az()
    with warnings.catch_warnings():
        if quiet:
            warnings.filterwarnings("ignore", message=".*Pareto distribution.*")
        result = az.loo(data, var_name=var_name, pointwise=True)
    if arviz_major() >= 1:
        elpd, p, elpd_i = result.elpd, result.p, result.elpd_i
    else:
        elpd, p, elpd_i = result.elpd_loo, result.p_loo, result.loo_i
    return LooResult(
        elpd=float(elpd),
        se=float(result.se),
        p=float(p),
        elpd_i=np.asarray(getattr(elpd_i, "values", elpd_i), dtype=float),
        pareto_k=np.asarray(getattr(result.pareto_k, "values", result.pareto_k), dtype=float),
        n_samples=int(result.n_samples),
        n_data_points=int(result.n_data_points),
        warning=bool(result.warning),
    )


# The columns of compare's table, the same in both generations (0.x names them elpd_loo,
# p_loo and reports elpd_diff >= 0; 1.x names them elpd, p and reports elpd_diff <= 0).
_COMPARE_COLUMNS = [
    "rank",
    "elpd",
    "se",
    "p",
    "elpd_diff",
    "dse",
    "weight",
    "max_pareto_k",
    "warning",
]


def compare(
    datasets: Mapping[str, Any],
    method: str = "loo",
    var_name: str | None = None,
    quiet: bool = False,
) -> Any:
    r"""Rank models by their estimated expected log predictive density, in either ArviZ
    generation (``arviz.compare`` in 0.x, ``arviz_stats.compare`` in 1.x).

    Parameters
    ----------
    datasets : dict of str to InferenceData or DataTree
        Model name to its data, each with ``posterior`` and ``log_likelihood`` groups over
        the *same* observations (the comparison sums over them).
    method : {"loo", "waic"}
        PSIS-LOO (Vehtari et al. 2017; both generations) or WAIC (ArviZ 0.x only; 1.x has
        no WAIC).
    var_name : str, optional
        The observed variable, when the log-likelihood group has more than one.
    quiet : bool
        Silence ArviZ's warnings about high Pareto k (the ``warning`` column still says so).

    Returns
    -------
    pandas.DataFrame
        One row per model, best first, indexed by name, with the float columns
        ``elpd`` (estimated :math:`\mathrm{elpd}`), ``se`` (its standard error), ``p``
        (effective number of parameters), ``elpd_diff`` (the best model's elpd minus this
        one's, :math:`\ge 0`), ``dse`` (standard error of that difference), ``weight``
        (stacking weight), ``max_pareto_k`` (``nan`` for WAIC), and the int ``rank``
        (0 for the best) and bool ``warning``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=30)
    >>> def fitted(shift):  # posterior draws of mu, x_n ~ N(mu, 1)
    ...     mu = rng.normal(x.mean() + shift, 0.18, size=(2, 200))
    ...     ll = -0.5 * (x - mu[..., None]) ** 2 - 0.5 * np.log(2 * np.pi)
    ...     return from_arrays({"mu": mu}, log_likelihood={"obs": ll}, dims={"obs": ["data"]})
    >>> table = compare({"centred": fitted(0.0), "shifted": fitted(1.0)}, quiet=True)
    >>> list(table.index), float(table["elpd_diff"].iloc[0])
    (['centred', 'shifted'], 0.0)
    """
    import pandas as pd

    if not isinstance(datasets, Mapping) or len(datasets) < 2:
        raise ValueError(
            "datasets must be a dict from model names to ArviZ data with at least two models; "
            f"got {type(datasets).__name__}"
            + (f" with {len(datasets)}" if isinstance(datasets, Mapping) else "")
        )
    if not isinstance(method, str) or method not in ("loo", "waic"):
        raise ValueError(f"method must be one of ['loo', 'waic']; got {method!r}")
    major = arviz_major()
    if method == "waic" and major >= 1:
        raise ValueError("method='waic' needs ArviZ 0.x; ArviZ 1.x compares by PSIS-LOO only")
    for name, data in datasets.items():
        if "log_likelihood" not in group_names(data):
            raise ValueError(
                f"datasets[{name!r}] has no log_likelihood group; build it with "
                "ppl_models.workflow.to_inference_data"
            )
    az = _az()
    data = dict(datasets)
    with warnings.catch_warnings():
        if quiet:
            warnings.filterwarnings("ignore", message=".*Pareto.*")
            warnings.filterwarnings("ignore", message=".*(posterior variance|WAIC).*")
        if major >= 1:
            table = az.compare(data, var_name=var_name, round_to="none")
            elpd, p = table["elpd"], table["p"]
        else:
            table = az.compare(data, ic=method, var_name=var_name)
            elpd, p = table[f"elpd_{method}"], table[f"p_{method}"]
        if method == "loo":
            kmax = {
                name: float(np.max(loo(d, var_name=var_name, quiet=True).pareto_k))
                for name, d in data.items()
            }
        else:
            kmax = {name: float("nan") for name in data}
    elpd = np.asarray(elpd, dtype=float)
    names = list(table.index)
    out = pd.DataFrame(
        {
            "rank": np.asarray(table["rank"], dtype=int),
            "elpd": elpd,
            "se": np.asarray(table["se"], dtype=float),
            "p": np.asarray(p, dtype=float),
            "elpd_diff": elpd.max() - elpd,
            "dse": np.asarray(table["dse"], dtype=float),
            "weight": np.asarray(table["weight"], dtype=float),
            "max_pareto_k": [kmax[n] for n in names],
        },
        index=names,
    )
    out["warning"] = out["max_pareto_k"] > 0.7
    if "warning" in table.columns and table["warning"].dtype == bool:
        out["warning"] |= np.asarray(table["warning"], dtype=bool)
    return out.sort_values("elpd", ascending=False, kind="stable")[_COMPARE_COLUMNS]


def loo_pit(data: Any, var_name: str = "obs") -> np.ndarray:
    r"""Leave-one-out probability integral transform of each observation, in either ArviZ
    generation.

    .. math::

        u_n = P(\tilde x_n \le x_n \mid x_{-n})
            \approx \frac{\sum_s w_{sn}\, \mathbb{1}[\tilde x^{(s)}_n \le x_n]}{\sum_s w_{sn}},

    with the PSIS leave-one-out weights :math:`w_{sn}`. For a calibrated model the
    :math:`u_n` are uniform on :math:`[0, 1]` (Gelman et al., *BDA3*; Gabry et al. 2019):
    a U shape says the predictive is too narrow, a hump that it is too wide.

    Parameters
    ----------
    data : InferenceData or DataTree
        With ``posterior``, ``posterior_predictive``, ``log_likelihood`` and
        ``observed_data`` groups holding ``var_name``.
    var_name : str
        The observed variable.

    Returns
    -------
    numpy.ndarray
        :math:`u_n` in :math:`[0, 1]`, of the observations' shape.
    """
    missing = [
        g
        for g in ("posterior_predictive", "log_likelihood", "observed_data")
        if g not in group_names(data)
    ]
    if missing:
        raise ValueError(f"loo_pit needs the groups {missing} in data; it has {group_names(data)}")
    for group in ("posterior_predictive", "log_likelihood", "observed_data"):
        _check_variable(data, group, var_name, required=True)
    az = _az()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Pareto.*")
        if arviz_major() >= 1:
            result = az.loo_pit(data, var_names=[var_name])
            result = result[var_name]
        else:
            result = az.loo_pit(data, y=var_name)
    return np.asarray(getattr(result, "values", result), dtype=float)
