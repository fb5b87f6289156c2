"""NUTS on Bayesian PCA: one gradient of the potential energy, the module's closed form
against Pyro's.

The potential NUTS needs is :math:`-\\ln p(X, \\theta)` in unconstrained coordinates and
its gradient. Pyro's (the baseline) traces ``BayesianPCA.model``, evaluates the low-rank
Gaussian on every row and differentiates by autograd; ``BayesianPCA.nuts_potential`` (the
method) computes it from :math:`\\bar x` and :math:`S` with the gradient in closed form.
Both are called through ``pyro.ops.integrator.potential_grad``, as NUTS calls them, at the
same points (the data-based initial point of each chain). A block of gradients is timed per
repeat. Bishop's data (N = 300, D = 10, M = 9) and N = 30000 (the closed form does not
depend on N).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from benchmarks._harness import Row, interleave, ratio_row


def _potentials(n: int):
    import pyro
    from pyro.infer.mcmc.util import initialize_model

    from ppl_models.bayesian_pca import BayesianPCA
    from ppl_models.datasets import make_bishop_bpca_data

    x = make_bishop_bpca_data(num_points=n, seed=0).x
    m = BayesianPCA(10, 9).double()
    (x,) = m.validate_data(x)
    with pyro.settings.context(module_local_params=True):
        init, reference, _, _ = initialize_model(
            m.model, model_args=(x,), init_strategy=m.init_strategy
        )
    return init, reference, m.nuts_potential(x)


def run(quick: bool) -> list[Row]:
    import pyro
    from pyro.ops.integrator import potential_grad

    calls = 50 if quick else 200
    repeats = 3 if quick else 7
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for n in (300, 30000):
            init, reference, fast = _potentials(n)

            def block(fn, init=init):
                z = {k: v.clone().requires_grad_() for k, v in init.items()}
                with pyro.settings.context(module_local_params=True):
                    for _ in range(calls):
                        potential_grad(fn, z)

            times = interleave(
                {"fast": lambda f=fast: block(f), "pyro": lambda r=reference: block(r)},
                repeats=repeats,
            )
            rows.append(
                ratio_row(
                    "bayesian_pca",
                    f"NUTS potential + gradient, N={n}, D=10, M=9 ({calls} calls per repeat)",
                    "BayesianPCA.nuts_potential (sufficient statistics, closed-form gradient)",
                    "Pyro's potential (model trace, low-rank Gaussian, autograd)",
                    [t / calls for t in times["fast"]],
                    [t / calls for t in times["pyro"]],
                    note="seconds per gradient; 1 torch thread",
                )
            )
    finally:
        torch.set_num_threads(threads)
    return rows


if __name__ == "__main__":
    for row in run(quick=False):
        print(row)
