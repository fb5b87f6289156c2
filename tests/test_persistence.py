"""ppl_models.save / load: a new process gets the same numbers bit for bit, in the saved
dtype, and a file that would build anything but tensors and plain containers is refused."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pyro.nn import PyroSample

import ppl_models
from ppl_models import bayesian_pca, estimators, ppca, regression, vae
from ppl_models.datasets import make_ppca_data
from ppl_models.inference import fit_svi
from ppl_models.persistence import FORMAT

# What the new process computes from each loaded object, and this process from the
# original: the same function on both sides.
_OUTPUTS = """
import numpy as np, pandas as pd, torch

def outputs(name, obj, x):
    if isinstance(obj, torch.nn.Module):
        out = {k: v for k, v in obj.state_dict().items()}
        out["dtypes"] = sorted({str(v.dtype) for v in obj.state_dict().values()})
        if hasattr(obj, "params"):
            out["params"] = [t for t in obj.params()]
        return out
    if isinstance(obj, tuple):
        return {"fields": list(obj)}
    xs = x[:, :3] if name.startswith("blr") else x  # the regression saw 3 features
    xs = xs.astype(np.float32) if name.endswith("32") else xs
    if getattr(obj, "feature_names_in_", None) is not None:  # fitted on a DataFrame
        xs = pd.DataFrame(xs, columns=obj.feature_names_in_)
    out = {}
    for method in ("transform", "score_samples", "predict", "predict_proba", "get_covariance"):
        if hasattr(obj, method):
            fn = getattr(obj, method)
            value = fn() if method == "get_covariance" else fn(xs)
            if isinstance(value, pd.DataFrame):  # set_output(transform="pandas")
                out["columns"] = list(value.columns)
                value = value.to_numpy()
            out[method] = value
    return out
"""

_CHILD = """
import sys, pickle, warnings
import numpy as np, torch
import ppl_models
{outputs}
folder = sys.argv[1]
x = np.load(folder + "/x.npy")
results = {{}}
for name in open(folder + "/names.txt").read().split():
    obj = ppl_models.load(folder + "/" + name + ".pt")
    results[name] = (type(obj).__module__ + "." + type(obj).__qualname__, outputs(name, obj, x))
with open(folder + "/child.pkl", "wb") as f:
    pickle.dump(results, f)
"""


def _same(a, b) -> bool:
    """Bit for bit, dtype included (NaN equal to NaN)."""
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b, strict=True))
    return a == b


def _objects(x: np.ndarray) -> dict:
    x32 = x.astype(np.float32)
    xt = torch.from_numpy(x)
    y = np.where(x[:, 0] > np.median(x[:, 0]), "high", "low")
    three = np.array(["a", "b", "c"])[np.arange(len(x)) % 3]
    df = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    m64 = ppca.MarginalPPCA(x.shape[1], 2).double()
    fit_svi(m64, xt, num_steps=5, tol=0, progress=False)
    m32 = ppca.MarginalPPCA(x.shape[1], 2)
    fit_svi(m32, xt.float(), num_steps=5, tol=0, progress=False)
    bpca = bayesian_pca.BayesianPCA(x.shape[1], 2, form="latent").double()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_svi(bpca, xt, num_steps=3, tol=0, progress=False)
    xm = x.copy()
    xm[::7, 1] = np.nan
    return {
        "marginal_ppca64": m64,
        "marginal_ppca32": m32,
        "vae64": vae.VAE(x.shape[1], 2, hidden=(8,), likelihood="normal").double(),
        "bayesian_pca64": bpca,
        "params64": ppca.closed_form(xt, 2),
        "params32": ppca.closed_form(xt.float(), 2),
        "evidence64": regression.maximize_evidence(xt[:, :3], xt[:, 3]),
        "ppca_est64": estimators.PPCA(n_components=2).fit(x),
        "ppca_est32": estimators.PPCA(n_components=2).fit(x32),
        "ppca_missing64": estimators.PPCA(n_components=2).fit(xm),
        "pca_est64": estimators.PCA(n_components=2).set_output(transform="pandas").fit(df),
        "bpca_est64": estimators.BayesianPCA().fit(x),
        "classifier64": estimators.PPCAClassifier(n_components=1).fit(x, three),
        "classifier32": estimators.PPCAClassifier(n_components=1).fit(x32, three),
        "blr64": estimators.BayesianLinearRegression().fit(x[:, :3], x[:, 3]),
        "blogr64": estimators.BayesianLogisticRegression().fit(x, y),
        "blogr32": estimators.BayesianLogisticRegression().fit(x32, y),
    }


def test_round_trip_in_a_new_process_is_bit_for_bit(tmp_path):
    x = make_ppca_data(60, 5, 2, seed=0).x.numpy()
    np.save(tmp_path / "x.npy", x)
    objs = _objects(x)
    for name, obj in objs.items():
        ppl_models.save(obj, tmp_path / f"{name}.pt")
    (tmp_path / "names.txt").write_text(" ".join(objs))
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    child = _CHILD.format(outputs=_OUTPUTS)
    subprocess.run([sys.executable, "-c", child, str(tmp_path)], check=True, env=env, timeout=300)
    with open(tmp_path / "child.pkl", "rb") as f:
        results = pickle.load(f)  # our own child's file, in our own tmp_path
    namespace: dict = {}
    exec(_OUTPUTS, namespace)
    for name, obj in objs.items():
        cls, theirs = results[name]
        assert cls == f"{type(obj).__module__}.{type(obj).__qualname__}", name
        assert _same(namespace["outputs"](name, obj, x), theirs), name
    # The float64 module comes back float64 (a plain state_dict into a fresh module
    # would make it float32), the float32 one float32.
    assert results["marginal_ppca64"][1]["dtypes"] == ["torch.float64"]
    assert results["marginal_ppca32"][1]["dtypes"] == ["torch.float32"]
    assert results["ppca_est32"][1]["transform"].dtype == np.float32
    assert results["pca_est64"][1]["columns"] == ["pca0", "pca1"]


def test_regression_estimator_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((40, 3)), rng.standard_normal(40)
    for dtype in (np.float64, np.float32):
        est = estimators.BayesianLinearRegression().fit(x.astype(dtype), t)
        back = ppl_models.load(ppl_models.save(est, tmp_path / "blr.pt"))
        mean, sd = est.predict(x.astype(dtype), return_std=True)
        mean2, sd2 = back.predict(x.astype(dtype), return_std=True)
        assert mean.dtype == mean2.dtype == dtype
        assert np.array_equal(mean, mean2) and np.array_equal(sd, sd2)
        assert back.get_params() == est.get_params()


# -------------------------------------------------------------------------- refusals


class _Hostile:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_hostile_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": 1, "object": _Hostile(str(marker))}, path)
    with pytest.raises(ValueError, match="holds objects other than tensors and plain containers"):
        ppl_models.load(path)
    with open(tmp_path / "plain.pkl", "wb") as f:
        pickle.dump(_Hostile(str(marker)), f)
    with pytest.raises(ValueError, match=r"path: cannot read|holds objects other than"):
        ppl_models.load(tmp_path / "plain.pkl")
    assert not marker.exists()


@pytest.mark.parametrize(
    "obj",
    [
        {"@": "object", "class": "os:system", "state": {"@": "dict", "keys": [], "values": []}},
        {"@": "module", "class": "ppl_models.cli:main", "init": {}, "state": {}},
        {"@": "namedtuple", "class": "collections:namedtuple", "fields": {}},
        {"@": "object", "class": "subprocess:Popen"},
    ],
)
def test_a_class_outside_the_allowlist_is_refused(tmp_path, obj):
    path = tmp_path / "named.pt"
    torch.save({"format": FORMAT, "version": 1, "object": obj}, path)
    with pytest.raises(ValueError, match="not one of this library's models, containers or"):
        ppl_models.load(path)


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="path: no such file"):
        ppl_models.load(tmp_path / "missing.pt")
    good = ppl_models.save(ppca.closed_form(make_ppca_data(30, 4, 1).x, 1), tmp_path / "p.pt")
    data = good.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated or corrupt|cannot read"):
        ppl_models.load(tmp_path / "cut.pt")
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"was not written by ppl_models\.save"):
        ppl_models.load(tmp_path / "other.pt")
    torch.save({"format": FORMAT, "version": 99, "object": None}, tmp_path / "new.pt")
    with pytest.raises(ValueError, match="format version 99"):
        ppl_models.load(tmp_path / "new.pt")
    with pytest.raises(TypeError, match="path must be a file path"):
        ppl_models.save(1.0, 3)
    with pytest.raises(ValueError, match="path must be a file, not a folder"):
        ppl_models.save(1.0, tmp_path)


def test_what_cannot_be_recorded_is_refused_when_saving(tmp_path):
    from sklearn.preprocessing import StandardScaler

    with pytest.raises(TypeError, match=r"cannot save obj\['f'\]: an object of type"):
        ppl_models.save({"f": lambda: 0}, tmp_path / "f.pt")
    with pytest.raises(TypeError, match=r"sklearn\.preprocessing\._data:StandardScaler"):
        ppl_models.save(StandardScaler(), tmp_path / "s.pt")
    with pytest.raises(TypeError, match="is not one of this library's topic modules"):
        ppl_models.save(torch.nn.Linear(2, 2), tmp_path / "l.pt")
    # A prior put on an instance would not come back from the constructor: refused.
    m = ppca.MarginalPPCA(4, 1)
    m.W = PyroSample(lambda self: torch.distributions.Normal(0.0, 1.0).expand([4, 1]).to_event(2))
    with pytest.raises(TypeError, match="differs from what its constructor builds"):
        ppl_models.save(m, tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "p.pt"
    first = ppca.closed_form(make_ppca_data(30, 4, 1).x, 1)
    ppl_models.save(first, path)
    before = path.read_bytes()

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        ppl_models.save(ppca.closed_form(make_ppca_data(30, 4, 2).x, 2), path)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp"))


def test_containers_and_plain_values_round_trip(tmp_path):
    value = {
        "params": [ppca.closed_form(make_ppca_data(30, 4, 1).x, 1)],
        "labels": np.array(["x", "yy"]),
        "ints": np.arange(3, dtype=np.int32),
        "scalar": np.float32(1.5),
        "dtype": torch.float16,
        "nested": ({"a": 1, "b": None}, [1.0, "s"]),
    }
    back = ppl_models.load(ppl_models.save(value, tmp_path / "v.pt"))
    assert back["labels"].tolist() == ["x", "yy"] and back["labels"].dtype == value["labels"].dtype
    assert back["ints"].dtype == np.int32 and back["scalar"].dtype == np.float32
    assert back["dtype"] is torch.float16
    assert back["nested"] == ({"a": 1, "b": None}, [1.0, "s"])
    assert type(back["params"][0]) is ppca.PPCAParams
    assert json.dumps(sorted(back)) == json.dumps(sorted(value))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_faithful_on_a_gpu(tmp_path):
    m = ppca.MarginalPPCA(5, 2).double().cuda()
    back = ppl_models.load(ppl_models.save(m, tmp_path / "m.pt"))
    assert all(v.is_cuda and v.dtype == torch.float64 for v in back.state_dict().values())
    cpu = ppl_models.load(tmp_path / "m.pt", map_location="cpu")
    assert all(v.device.type == "cpu" for v in cpu.state_dict().values())
    p = ppca.closed_form(torch.randn(50, 5, device="cuda", dtype=torch.float64), 2)
    q = ppl_models.load(ppl_models.save(p, Path(tmp_path) / "p.pt"))
    assert all(a.is_cuda and torch.equal(a, b) for a, b in zip(q, p, strict=True))
