r"""Inference for the library's topic modules and for any Pyro model.

Stochastic variational inference maximises the evidence lower bound

.. math::

    \mathcal{L}(\theta, \phi)
    = \mathbb{E}_{q_\phi(z)}\left[\log p_\theta(x, z) - \log q_\phi(z)\right]
    \le \log p_\theta(x),

by gradient steps on :math:`-\mathcal{L}` (the "loss"). Three special cases cover every
topic of the library:

* an **empty guide** (no latent variables): :math:`\mathcal{L} = \log p_\theta(x)`, so SVI
  *is* maximum likelihood, and a deterministic optimiser such as L-BFGS applies;
* a **point-mass guide** (:class:`pyro.infer.autoguide.AutoDelta`): MAP estimation;
* a **Gaussian guide**: variational Bayes.

With minibatches of size :math:`B` out of :math:`N` data points every site of a data point
is scaled by :math:`N / B`, which keeps the gradient an unbiased estimate of the full one.

**How the loop uses a module.** A topic module is ordinary Pyro: ``model`` and ``guide``
methods that Pyro's own ``SVI``, ``Predictive``, ``MCMC`` and autoguides run unchanged.
:func:`fit_svi` and :func:`run_nuts` take any Pyro model the same way (a ``PyroModule``
with ``model``/``guide``, one whose ``forward`` is the model, or a function). A module may
also offer optional hooks, declared in :class:`TopicModule`: ``validate_data`` (checks at
the entry), ``reparam_loss`` (its ELBO in plain torch), ``nuts_potential`` (its potential
with a closed-form gradient) and ``params()``. The loop uses a fast hook only while it
agrees with Pyro's own number: checked at the start, and for the loss again during the
fit; ``FitResult.loss_path`` says which path ran, and ``fit_svi(..., loss_path="pyro")``
keeps Pyro's ELBO throughout.

The parts, each readable alone:

==================  ===============================================================
:mod:`.plates`      the data plate, minibatch scaling and its proof for any model
:mod:`.losses`      ELBOs, the hooks' Protocol, the licensed loss paths
:mod:`.batches`     in-memory minibatches and streams
:mod:`.step`        optimizers (torch and ``pyro.optim``), the guarded step
:mod:`.checkpoint`  atomic, unpickling-free checkpoints
:mod:`.stopping`    convergence and early stopping
:mod:`.loop`        :func:`fit_svi`
:mod:`.nuts`        :func:`run_nuts`
==================  ===============================================================
"""

from __future__ import annotations

from .batches import is_stream, to_tensor
from .loop import ConvergenceWarning, FitResult, evaluate_loss, fit_svi
from .losses import HOOKS, ShortcutError, TopicModule, hook
from .nuts import NutsRun, run_nuts
from .plates import (
    ScalingError,
    data_plate,
    has_nan,
    iid,
    local_pyro_method,
    minibatch,
    plate_scale,
)
from .plates import pyro_method as pyro_method  # deprecated: local_pyro_method
from .potentials import ClosedFormPotential
from .step import FitError

__all__ = [
    "HOOKS",
    "ClosedFormPotential",
    "ConvergenceWarning",
    "FitError",
    "FitResult",
    "NutsRun",
    "ScalingError",
    "ShortcutError",
    "TopicModule",
    "data_plate",
    "evaluate_loss",
    "fit_svi",
    "has_nan",
    "hook",
    "iid",
    "is_stream",
    "local_pyro_method",
    "minibatch",
    "plate_scale",
    "run_nuts",
    "to_tensor",
]
