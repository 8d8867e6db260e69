"""Feature standardisation fit on training data only: local or federated statistics.

* ``local``: each site standardises with the mean and standard deviation of its own training set.
* ``federated``: one scaler for all sites from the pooled training statistics, computed without
  pooling the data: each site sends only ``(n_k, sum_k x, sum_k x^2)`` (a secure-aggregation-friendly
  sum), the server adds them up and derives ``mean = S1 / n`` and ``var = S2 / n - mean^2``. This is
  numerically the statistic of the pooled training data (what "Mix" uses).

Standard deviations are the population ones (ddof = 0, as scikit-learn's ``StandardScaler``); a
constant feature gets std 1. Test data are transformed with the training statistics, never refit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch

from fedlab.data.federation import Federation, Site, Split

MODES = ("federated", "local", "none")


@dataclass(frozen=True)
class Scaler:
    """``x -> (x - mean) / std`` with fixed statistics (both ``(F,)``)."""

    mean: torch.Tensor
    std: torch.Tensor

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Standardise features ``(N, F)``."""
        return (x - self.mean.to(x)) / self.std.to(x)

    def apply(self, split: Split | None) -> Split | None:
        """Standardise a split's features (labels unchanged)."""
        return None if split is None else Split(self.transform(split.x), split.y)


def feature_sums(x: torch.Tensor) -> tuple[int, torch.Tensor, torch.Tensor]:
    """What a site sends for federated statistics: ``(n, sum x, sum x^2)`` over rows of ``x`` ``(N, F)``."""
    x64 = x.double()
    return x.shape[0], x64.sum(0), (x64 ** 2).sum(0)


def scaler_from_sums(sums: Sequence[tuple[int, torch.Tensor, torch.Tensor]]) -> Scaler:
    """Aggregate per-site sums into one scaler (sample-weighted mean and variance)."""
    n = sum(s[0] for s in sums)
    if n == 0:
        raise ValueError("cannot fit a scaler on zero samples")
    s1 = torch.stack([s[1] for s in sums]).sum(0)
    s2 = torch.stack([s[2] for s in sums]).sum(0)
    mean = s1 / n
    var = (s2 / n - mean ** 2).clamp_min(0.0)
    std = var.sqrt()
    std = torch.where(std > 1e-12, std, torch.ones_like(std))
    return Scaler(mean.float(), std.float())


def fit_scaler(xs: Sequence[torch.Tensor]) -> Scaler:
    """A scaler fit on the rows of all of ``xs`` (one site: ``[x]``; federated: one tensor per site)."""
    return scaler_from_sums([feature_sums(x) for x in xs])


def standardize(federation: Federation, mode: str = "federated") -> tuple[Federation, list[Scaler]]:
    """Standardise every site's splits with statistics of training data only.

    Args:
        federation: A classification federation with raw features.
        mode: "federated" (one scaler from all sites' training sums), "local" (each site its own
            training statistics) or "none".

    Returns:
        The standardised federation and the scaler used at each site (in site order).
    """
    if mode not in MODES:
        raise ValueError(f"standardisation mode must be one of {MODES}, got {mode!r}")
    if mode == "none":
        f = federation.num_channels
        return federation, [Scaler(torch.zeros(f), torch.ones(f)) for _ in federation]
    if mode == "federated":
        shared = fit_scaler([s.train.x for s in federation])
        scalers = [shared] * len(federation)
    else:
        scalers = [fit_scaler([s.train.x]) for s in federation]
    sites: list[Site] = [replace(s, train=sc.apply(s.train), test=sc.apply(s.test), val=sc.apply(s.val),
                                 metadata={**s.metadata, "standardized": mode})
                         for s, sc in zip(federation, scalers, strict=True)]
    return replace(federation, sites=tuple(sites)), scalers
