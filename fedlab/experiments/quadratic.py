"""Client drift in two dimensions: quadratic sites whose optimum, and FedAvg's bias, are known in closed form.

Site ``k`` has the loss ``F_k(w) = 1/2 (w - b_k)^T A_k (w - b_k)`` over a two-parameter model ``w``, with its
own curvature ``A_k`` (symmetric positive definite) and its own minimum ``b_k``. The federation minimises
``F(w) = sum_k p_k F_k(w)`` (``p_k = n_k / n``), whose minimum is

    ``w* = (sum_k p_k A_k)^{-1} sum_k p_k A_k b_k``                                 (:func:`optimum`).

FedAvg with ``K`` full-gradient local steps of size ``lr`` moves site ``k`` from ``w`` to
``b_k + (I - lr A_k)^K (w - b_k)``; its rounds converge to the fixed point of the average of those maps,

    ``w_FedAvg = (sum_k p_k M_k)^{-1} sum_k p_k M_k b_k``, ``M_k = I - (I - lr A_k)^K``  (:func:`fedavg_fixed_point`),

which equals ``w*`` for ``K = 1`` (``M_k = lr A_k``) or identical curvatures, and otherwise is a biased point:
each site's many small steps curve towards its own ``b_k`` (client drift). SCAFFOLD's control variates
remove the drift, and its rounds converge to ``w*``.

The sites run through the real strategies (:func:`run_quadratic`): each site's data are rows ``X_k`` with
``X_k^T X_k / n_k = A_k`` and targets ``y_k = X_k b_k``, so that the least-squares loss
``1/2 mean_j (x_j^T w - y_j)^2`` *is* ``F_k`` (up to a constant 0); a batch size of at least the largest site
gives full gradients, so every run is deterministic.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from fedlab.config import Config, get_config
from fedlab.data.federation import Site, Split
from fedlab.federation.client import Client
from fedlab.federation.simulation import run_round
from fedlab.federation.strategies.base import Strategy
from fedlab.reproducibility import client_generator


@dataclass(frozen=True)
class QuadraticSite:
    """One site's quadratic loss ``1/2 (w - b)^T A (w - b)``.

    Attributes:
        name: Site name.
        curvature: A, 2x2 symmetric positive definite.
        minimum: b, the site's own optimum.
        size: n_k, its weight in the federation's objective (an even number of rows).
    """

    name: str
    curvature: tuple[tuple[float, float], tuple[float, float]]
    minimum: tuple[float, float]
    size: int = 2

    def __post_init__(self) -> None:
        a = np.asarray(self.curvature, dtype=float)
        if a.shape != (2, 2) or not np.allclose(a, a.T) or np.linalg.eigvalsh(a).min() <= 0:
            raise ValueError(f"site {self.name!r}: curvature must be a symmetric positive definite 2x2 matrix, "
                             f"got {self.curvature}")
        if len(self.minimum) != 2:
            raise ValueError(f"site {self.name!r}: minimum must have two coordinates, got {self.minimum}")
        if self.size < 2 or self.size % 2:
            raise ValueError(f"site {self.name!r}: size must be an even number >= 2, got {self.size}")

    @property
    def A(self) -> np.ndarray:  # noqa: N802  (the textbook's name)
        """The curvature as an array."""
        return np.asarray(self.curvature, dtype=float)

    @property
    def b(self) -> np.ndarray:
        """The minimum as an array."""
        return np.asarray(self.minimum, dtype=float)

    def loss(self, w: np.ndarray) -> float:
        """``F_k(w)``."""
        d = np.asarray(w, dtype=float) - self.b
        return float(0.5 * d @ self.A @ d)

    def split(self) -> Split:
        """Rows ``X`` (n, 2) with ``X^T X / n = A`` and targets ``y = X b`` (n,) (float64)."""
        root = np.linalg.cholesky(self.A)  # A = L L^T; the two columns of L, repeated n / 2 times, scaled by sqrt 2
        rows = np.sqrt(2.0) * np.tile(root.T, (self.size // 2, 1))  # (n, 2)
        x = torch.from_numpy(rows)
        return Split(x, x @ torch.from_numpy(self.b))


#: Two sites with different curvature, different minima and different sizes (A twice B): FedAvg with several
#: local steps is biased (0.18 away from the optimum with 10 steps of 0.1).
DRIFT_SITES: tuple[QuadraticSite, ...] = (
    QuadraticSite("A", ((3.0, 1.0), (1.0, 0.6)), (1.5, 0.0), size=4),
    QuadraticSite("B", ((0.4, 0.0), (0.0, 3.0)), (0.0, 1.2), size=2),
)


def weights(sites: Sequence[QuadraticSite]) -> np.ndarray:
    """``p_k = n_k / n``."""
    n = np.array([s.size for s in sites], dtype=float)
    return n / n.sum()


def optimum(sites: Sequence[QuadraticSite]) -> np.ndarray:
    """The minimum of ``sum_k p_k F_k``: ``(sum p_k A_k)^{-1} sum p_k A_k b_k``."""
    p = weights(sites)
    a = sum(pk * s.A for pk, s in zip(p, sites, strict=True))
    rhs = sum(pk * s.A @ s.b for pk, s in zip(p, sites, strict=True))
    return np.linalg.solve(a, rhs)


def fedavg_fixed_point(sites: Sequence[QuadraticSite], lr: float, local_steps: int) -> np.ndarray:
    """Where FedAvg with ``local_steps`` full-gradient steps of size ``lr`` converges (module docstring)."""
    p = weights(sites)
    eye = np.eye(2)
    m = [eye - np.linalg.matrix_power(eye - lr * s.A, local_steps) for s in sites]
    a = sum(pk * mk for pk, mk in zip(p, m, strict=True))
    rhs = sum(pk * mk @ s.b for pk, mk, s in zip(p, m, sites, strict=True))
    return np.linalg.solve(a, rhs)


def global_loss(sites: Sequence[QuadraticSite], w: np.ndarray) -> float:
    """``F(w) = sum_k p_k F_k(w)``."""
    return float(sum(pk * s.loss(w) for pk, s in zip(weights(sites), sites, strict=True)))


class QuadraticModel(nn.Module):
    """The two-parameter model ``x -> x^T w`` (float64)."""

    def __init__(self, start: Sequence[float] = (0.0, 0.0)) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([float(v) for v in start], dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predictions (N,) for rows (N, 2)."""
        return x @ self.w


def squared_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``1/2 mean (x^T w - y)^2``: the site's quadratic loss (see :meth:`QuadraticSite.split`)."""
    return 0.5 * ((model(x) - y) ** 2).mean()


def quadratic_config(lr: float, local_steps: int, sites: Sequence[QuadraticSite] = DRIFT_SITES) -> Config:
    """Plain SGD at ``lr``, ``local_steps`` per round, full batches (deterministic)."""
    return get_config("smoke", optimizer="sgd", lr=lr, local_steps=local_steps, head_steps=0,
                      batch_size=max(s.size for s in sites), weight_decay=0.0)


def run_quadratic(strategy: Strategy, sites: Sequence[QuadraticSite] = DRIFT_SITES, *, rounds: int = 50,
                  lr: float = 0.1, local_steps: int = 10, start: Sequence[float] = (0.0, 0.0),
                  seed: int = 0) -> pd.DataFrame:
    """Run ``strategy`` on the quadratic sites, round by round (:func:`~fedlab.federation.simulation.run_round`).

    Args:
        strategy: E.g. ``FedAvg()`` or ``SCAFFOLD()`` (its server state must hold the model in ``"global"``).
        sites: The quadratic sites.
        rounds: Communication rounds.
        lr: Local SGD step size.
        local_steps: Full-gradient steps per round (``K``).
        start: The round-0 model.
        seed: Seeds the clients' generators (unused with full batches; kept for the engine).

    Returns:
        One row per round (0 = start): ``round, w0, w1, loss`` (the global objective ``F``) and ``gap``
        (distance to :func:`optimum`).
    """
    config = quadratic_config(lr, local_steps, sites)
    model = QuadraticModel(start)
    strategy.setup(model, config, rounds, "quadratic")
    clients = []
    for k, qs in enumerate(sites):  # what Strategy.make_client does, with the quadratic loss
        split = qs.split()
        client = Client(k, Site(qs.name, train=split, test=split), copy.deepcopy(model), strategy.config,
                        client_generator(seed, k), squared_loss)
        strategy.init_client(client)
        clients.append(client)
    state = strategy.initial_state(model)
    target = optimum(sites)
    rows = []
    for rnd in range(rounds + 1):
        if rnd:
            state, _, _ = run_round(strategy, clients, state, rnd)
        w = state["global"]["w"].detach().numpy().copy()
        rows.append({"round": rnd, "w0": w[0], "w1": w[1], "loss": global_loss(sites, w),
                     "gap": float(np.linalg.norm(w - target))})
    return pd.DataFrame(rows)


__all__ = ["DRIFT_SITES", "QuadraticModel", "QuadraticSite", "fedavg_fixed_point", "global_loss", "optimum",
           "quadratic_config", "run_quadratic", "squared_loss"]
