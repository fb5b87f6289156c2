r"""Data-parallel training over processes (``torchrun``) and distributed sufficient statistics.

Data-parallel SVI
-----------------
:math:`K` processes (ranks) each hold a copy of the model and read a disjoint part of every
global minibatch. With :math:`N` data points, a global batch :math:`\mathcal B` of size
:math:`B` and rank :math:`k`'s part :math:`\mathcal B_k` of size :math:`B/K`, rank
:math:`k`'s plate (:func:`~ppl_models.inference.data_plate`) scales its likelihood terms by
:math:`N / (B/K)`, so its loss and gradient are

.. math::

    \ell_k = \frac{NK}{B} \sum_{n \in \mathcal B_k} \ell_n, \qquad
    g_k = \frac{NK}{B} \sum_{n \in \mathcal B_k} \nabla \ell_n .

``DistributedDataParallel`` replaces every rank's gradient by the average over ranks,

.. math::

    \frac1K \sum_{k=1}^K g_k = \frac{N}{B} \sum_{k} \sum_{n \in \mathcal B_k} \nabla\ell_n
    = \frac{N}{B} \sum_{n \in \mathcal B} \nabla \ell_n ,

which is exactly the gradient a single process computes on the global batch. The same
optimizer then takes the same step on every rank, so every rank holds the same model.

The global batches do not depend on :math:`K`: ``DistributedSampler`` draws one
permutation :math:`\pi` of :math:`0..N-1` per epoch (seeded by ``seed + epoch``) and gives
rank :math:`k` the positions :math:`\pi_k, \pi_{k+K}, \pi_{k+2K}, \dots`; the :math:`j`-th
local batch of rank :math:`k` is :math:`\pi_{jB + k + Ki}`, :math:`i < B/K`, and their
union over ranks is :math:`\pi_{jB}, \dots, \pi_{(j+1)B - 1}`: the :math:`j`-th global
batch of the one-process run. Each epoch has :math:`\lfloor N / B \rfloor` steps (the
incomplete last batch is dropped).

Distributed sufficient statistics
---------------------------------
PCA and probabilistic PCA need only :math:`(n, \bar x, S)` with
:math:`S = \sum_n (x_n - \bar x)(x_n - \bar x)^\top`: each rank computes them on its shard
(:func:`ppl_models.pca.moments`), the ranks exchange them (one all-gather of
:math:`1 + D + D^2` numbers per rank) and every rank combines them in rank order with
Chan et al.'s pairwise update (:meth:`ppl_models.pca.Moments.combine`), so every rank holds
the moments of the whole data set.

============================  =========================  ===============================
symbol                        argument                   meaning
============================  =========================  ===============================
:math:`N`                     ``len(x)``                 data points
:math:`B`                     ``batch_size``             the *global* batch size
:math:`K`                     ``WORLD_SIZE``             processes
:math:`k`                     ``RANK``                   this process
============================  =========================  ===============================

References
----------
S. Li et al., *PyTorch Distributed: experiences on accelerating data parallel training*,
VLDB 2020. T. F. Chan, G. H. Golub, R. J. LeVeque, *Updating formulae and a pairwise
algorithm for computing sample variances*, 1979.
"""

from __future__ import annotations

from .._deprecation import moved
from ._group import init_distributed, shard_rows
from .statistics import closed_form_distributed, distributed_moments, pca_fit_distributed
from .training import ELBOLoss, fit_distributed

__all__ = [
    "ELBOLoss",
    "closed_form_distributed",
    "distributed_moments",
    "fit_distributed",
    "init_distributed",
    "pca_fit_distributed",
    "shard_rows",
]

# The train command is command-line glue: it moved to ppl_models.cli (issue 18), where the
# old path leads for one release, with a FutureWarning.
__getattr__ = moved(
    __name__,
    {"train": ("ppl_models.cli", "train"), "TRAIN_TOPICS": ("ppl_models.cli", "TRAIN_TOPICS")},
)
