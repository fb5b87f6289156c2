"""Data-parallel VAE training: 1 against 2 ``torchrun`` processes, and how topics scale.

``run(quick)`` (what ``python -m benchmarks`` calls): one VAE epoch (784-400-20, Bernoulli,
global batch 128, synthetic binary images) through :func:`ppl_models.distributed.fit_distributed`,
launched by ``torchrun`` with

* 2 processes x 1 thread each (the method),
* 1 process x 1 thread (baseline: the same code with one process),
* 1 process x 2 threads (baseline: the same two cores used by torch's intra-op threads).

Each launch times warm epochs inside the worker (process start-up, imports and the first
epoch excluded); launches alternate between the configurations, and the ratio of epoch
times is reported per repeat (ratio < 1: two processes are faster; throughput ratio is its
inverse).

``python -m benchmarks.bench_distributed --scaling`` measures the numbers of
``docs/scaling.md``: time and peak memory (``ru_maxrss`` of a fresh subprocess) of
``pca.fit`` and ``ppca.closed_form`` in memory and streamed from a ``.npy`` file, and the
per-step time of ``MarginalPPCA`` and the VAE against N and the batch size.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._harness import Row, ratio_row

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(nproc: int, threads: int, data: Path, epochs: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(var, None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
        "--master_addr=127.0.0.1", f"--master_port={_free_port()}", "-m",
        "benchmarks.bench_distributed", "--worker",
        str(data), str(threads), str(epochs),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


def _worker(data: str, threads: int, epochs: int) -> None:
    import numpy as np
    import torch

    from ppl_models.distributed import fit_distributed, init_distributed
    from ppl_models.vae import VAE

    torch.set_num_threads(threads)
    rank, world = init_distributed(timeout_s=120)
    x = np.load(data)
    kw = dict(batch_size=128, lr=1e-3, seed=0, progress=False)
    vae = VAE(x.shape[1], 20, hidden=(400,), seed=0).float()
    fit_distributed(vae, x, epochs=1, **kw)  # warm-up: imports, allocator, first epoch
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        fit = fit_distributed(vae, x, epochs=1, **kw)
        times.append(time.perf_counter() - t0)
    allreduce_ms = None
    if world > 1:
        # The gradient all-reduce alone: one flat tensor of all the parameters.
        import torch.distributed as tdist

        flat = torch.zeros(sum(p.numel() for p in vae.parameters()))
        spans = []
        for _ in range(20):
            t0 = time.perf_counter()
            tdist.all_reduce(flat)
            spans.append(time.perf_counter() - t0)
        allreduce_ms = 1e3 * statistics.median(spans)
    if rank == 0:
        print(
            json.dumps(
                {
                    "world": world,
                    "threads": threads,
                    "epoch_s": statistics.median(times),
                    "rows": int(x.shape[0]),
                    "loss": float(fit.losses[-1]),
                    "steps": fit.num_steps,
                    "allreduce_ms": allreduce_ms,
                }
            ),
            flush=True,
        )


def _vae_data(path: Path, n: int, seed: int = 0) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    # Binary "images" with structure: 10 prototypes, each pixel flipped with probability 0.1.
    protos = rng.random((10, 784)) < 0.3
    labels = rng.integers(0, 10, n)
    flips = rng.random((n, 784)) < 0.1
    np.save(path, (protos[labels] ^ flips).astype(np.float32))


def run(quick: bool = False) -> list[Row]:
    n = 128 * (8 if quick else 32)
    repeats, epochs = (1, 1) if quick else (3, 2)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "x.npy"
        _vae_data(data, n)
        configs = {"2x1": (2, 1), "1x1": (1, 1), "1x2": (1, 2)}
        times: dict[str, list[float]] = {k: [] for k in configs}
        comm: list[float] = []
        for r in range(repeats):
            order = list(configs) if r % 2 == 0 else list(configs)[::-1]
            for name in order:
                out = _launch(*configs[name], data, epochs)
                times[name].append(out["epoch_s"])
                if out["allreduce_ms"] is not None:
                    comm.append(out["allreduce_ms"])
    case = f"VAE 784-400-20 epoch, N={n} ({n // 128} steps), global batch 128, CPU (gloo)"
    note = (
        "epoch time ratio; throughput = 1/ratio; gradient all-reduce alone "
        f"{statistics.median(comm):.1f} ms/step"
    )
    return [
        ratio_row("distributed", case, "torchrun 2 procs x 1 thread", "1 proc x 1 thread",
                  times["2x1"], times["1x1"], note=note),
        ratio_row("distributed", case, "torchrun 2 procs x 1 thread", "1 proc x 2 threads",
                  times["2x1"], times["1x2"], note=note),
    ]  # fmt: skip


# ------------------------------------------------------------------ scaling (docs)

_MEASURE = r"""
import json, sys, threading, time
import numpy as np, torch
torch.set_num_threads(2)
# VmHWM (peak resident set of this process image; ru_maxrss would start from the parent's
# peak, which Linux carries across fork and exec) also counts the pages of a memory-mapped
# file that were read (file-backed, reclaimable); the peak of RssAnon, sampled every 5 ms,
# is the memory the process allocated.
peak_anon, hwm = [0], [0]
def _sample():
    while True:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    peak_anon[0] = max(peak_anon[0], int(line.split()[1]))
                elif line.startswith("VmHWM:"):
                    hwm[0] = int(line.split()[1])
        time.sleep(0.005)
threading.Thread(target=_sample, daemon=True).start()
from ppl_models import pca, ppca
from ppl_models.datasets import open_npy
path, what, mode = sys.argv[1], sys.argv[2], sys.argv[3]
t0 = time.perf_counter()
if mode == "memory":
    x = torch.from_numpy(np.load(path))
else:
    x = open_npy(path, chunk_rows=65536)
load = time.perf_counter() - t0
t0 = time.perf_counter()
if what == "pca":
    pca.fit(x, 10)
else:
    ppca.closed_form(x, 10)
fit = time.perf_counter() - t0
print(json.dumps({"load_s": load, "fit_s": fit,
                  "peak_rss_mb": hwm[0] / 1024, "peak_anon_mb": peak_anon[0] / 1024}))
"""

_BASELINE = r"""
import json
import numpy as np, torch
from ppl_models import pca, ppca
from ppl_models.datasets import open_npy
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print(json.dumps({"peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024,
                  "anon_mb": int(status["RssAnon"].split()[0]) / 1024}))
"""


def _sub(code: str, *args: str) -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, check=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def _write_chunked(path: Path, n: int, d: int, seed: int = 0) -> None:
    """A float32 (n, d) .npy file written in chunks (never whole in memory)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    scales = np.linspace(3.0, 0.3, d).astype(np.float32)
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for start in range(0, n, 1_000_000):
        stop = min(n, start + 1_000_000)
        mm[start:stop] = rng.standard_normal((stop - start, d), dtype=np.float32) * scales
    mm.flush()
    del mm


def _step_times(sizes: list[int], d: int = 100) -> list[dict]:
    import numpy as np
    import torch

    from ppl_models.inference import fit_svi
    from ppl_models.ppca import MarginalPPCA
    from ppl_models.vae import VAE

    torch.set_num_threads(2)
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        x = torch.from_numpy(rng.standard_normal((n, d), dtype=np.float32))
        for batch in (None, 1024):
            m = MarginalPPCA(d, 10)
            fit_svi(m, x, num_steps=3, batch_size=batch, tol=0, progress=False)
            steps = 20 if batch or n <= 100_000 else 5
            fit = fit_svi(m, x, num_steps=steps, batch_size=batch, tol=0, progress=False)
            rows.append({"model": "MarginalPPCA D=100 M=10", "n": n, "batch": batch,
                         "step_ms": 1e3 * fit.seconds / steps})  # fmt: skip
    xb = (torch.rand(4096, 784) < 0.3).float()
    for batch in (128, 512, 2048):
        v = VAE(784, 20, hidden=(400,)).float()
        fit_svi(v, xb, num_steps=3, batch_size=batch, tol=0, progress=False)
        fit = fit_svi(v, xb, num_steps=20, batch_size=batch, tol=0, progress=False)
        rows.append({"model": "VAE 784-400-20", "n": 4096, "batch": batch,
                     "step_ms": 1e3 * fit.seconds / 20})  # fmt: skip
    return rows


def scaling(sizes: list[int], d: int = 100) -> dict:
    """Measure what docs/scaling.md reports; returns (and prints) a JSON-able dict."""
    result: dict = {"baseline": _sub(_BASELINE), "closed_forms": [], "steps": []}
    with tempfile.TemporaryDirectory(dir=os.environ.get("PPL_MODELS_SCRATCH")) as tmp:
        for n in sizes:
            path = Path(tmp) / f"x{n}.npy"
            _write_chunked(path, n, d)
            for what in ("pca", "ppca"):
                for mode in ("memory", "stream"):
                    r = _sub(_MEASURE, str(path), what, mode)
                    r.update(n=n, d=d, what=what, mode=mode)
                    result["closed_forms"].append(r)
                    print(json.dumps(r), file=sys.stderr, flush=True)
            path.unlink()
    result["steps"] = _step_times([10_000, 100_000, 1_000_000], d)
    return result


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--scaling":
        sizes = [int(float(s)) for s in sys.argv[2:]] or [100_000, 1_000_000, 10_000_000]
        print(json.dumps(scaling(sizes), indent=1))
    else:
        from ._harness import markdown_table

        print(markdown_table(run(quick="--quick" in sys.argv)))
