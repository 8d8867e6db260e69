"""Robust aggregation rules: pure functions on the sites' updates, tested on their own.

FedAvg's weighted mean lets one site move the global model arbitrarily far: a site that sends a huge or
sign-flipped update (a poisoning / Byzantine site, or a broken one) controls the average. The rules here
bound what one site can do, each in its own way:

* :func:`coordinate_median`: per coordinate, the median of the sites' values (Yin et al., ICML 2018).
  It equals :func:`numpy.median` over the stacked states (the mean of the two middle values for an even
  number of sites).
* :func:`trimmed_mean`: per coordinate, drop the ``int(trim * K)`` largest and smallest values and
  average the rest (Yin et al. 2018); it equals :func:`scipy.stats.trim_mean` with
  ``proportiontocut=trim``. ``trim=0`` is the uniform mean.
* :func:`krum_scores` / :func:`krum_select`: (Multi-)Krum (Blanchard et al., NeurIPS 2017): score each
  site by the summed squared distances to its ``K - f - 2`` nearest neighbours and keep the
  ``m`` best-scored sites; an update far from every other one is never selected.
* :func:`clip_by_norm`: scale an update down to L2 norm at most ``max_norm`` (norm bounding, Sun et al.
  2019); the clipped updates are then averaged with FedAvg's weights.

All of them take one state per site (``{key: tensor}``, same keys and shapes), treat integer tensors
as FedAvg does (the first state's value is kept), and return a new state. Median, trimmed mean and
Krum give every site one vote: they ignore how much data a site has (sample weighting is dropped).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

State = dict[str, torch.Tensor]


def _check_states(states: Sequence[Mapping[str, torch.Tensor]]) -> list[str]:
    if not states:
        raise ValueError("robust aggregation needs at least one state")
    keys = list(states[0].keys())
    for i, s in enumerate(states[1:], start=1):
        if list(s.keys()) != keys:
            raise ValueError(f"state {i} has different keys from state 0")
    return keys


def _per_key(states: Sequence[Mapping[str, torch.Tensor]], reduce) -> State:
    """Apply ``reduce`` to the (K, ...) stack of every floating-point key; integer keys keep state 0's value."""
    out: State = {}
    for k in _check_states(states):
        first = states[0][k]
        if not first.is_floating_point():
            out[k] = first.clone()
            continue
        out[k] = reduce(torch.stack([s[k] for s in states]))  # (K, *shape) -> shape
    return out


def coordinate_median(states: Sequence[Mapping[str, torch.Tensor]]) -> State:
    """Coordinate-wise median of the states (numpy's convention: mean of the two middle values for even K).

    Args:
        states: One state per site, same keys and shapes.

    Returns:
        The median state.
    """
    def median(stack: torch.Tensor) -> torch.Tensor:
        k = stack.shape[0]
        ordered = stack.sort(dim=0).values
        if k % 2:
            return ordered[k // 2].clone()
        return (ordered[k // 2 - 1] + ordered[k // 2]) / 2

    return _per_key(states, median)


def trimmed_count(num_states: int, trim: float) -> int:
    """How many values :func:`trimmed_mean` drops at each end: ``int(trim * K)`` (scipy's rule)."""
    if not 0 <= trim < 0.5:
        raise ValueError(f"trim must be in [0, 0.5), got {trim!r}")
    return int(trim * num_states)


def trimmed_mean(states: Sequence[Mapping[str, torch.Tensor]], trim: float = 0.2) -> State:
    """Coordinate-wise trimmed mean: drop the ``int(trim * K)`` largest and smallest values, average the rest.

    Args:
        states: One state per site, same keys and shapes.
        trim: Fraction cut from each end, in [0, 0.5) (as ``scipy.stats.trim_mean``'s ``proportiontocut``).

    Returns:
        The trimmed-mean state; ``trim=0`` (or too few sites to cut one) gives the uniform mean.
    """
    cut = trimmed_count(len(states), trim)

    def reduce(stack: torch.Tensor) -> torch.Tensor:
        k = stack.shape[0]
        kept = stack.sort(dim=0).values[cut:k - cut] if cut else stack
        return kept.mean(dim=0)

    return _per_key(states, reduce)


def flatten(state: Mapping[str, torch.Tensor], keys: Sequence[str] | None = None) -> torch.Tensor:
    """The floating-point tensors of ``state`` (or ``keys``) as one vector, in key order."""
    keys = [k for k in (keys or state.keys()) if state[k].is_floating_point()]
    if not keys:
        return torch.zeros(0)
    return torch.cat([state[k].reshape(-1) for k in keys])


def state_norm(state: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """L2 norm of all floating-point tensors of ``state`` together (a 0-d tensor)."""
    return torch.linalg.vector_norm(flatten(state))


def krum_scores(states: Sequence[Mapping[str, torch.Tensor]], num_byzantine: int) -> torch.Tensor:
    """Krum's score of every state: the sum of its squared distances to its ``K - f - 2`` nearest others.

    Args:
        states: One state (update) per site.
        num_byzantine: ``f``, the number of malicious sites the rule must tolerate; needs ``K >= 2f + 3``.

    Returns:
        (K,) scores; lower is more central.

    Raises:
        ValueError: when there are too few states for ``f``.
    """
    k = len(states)
    _check_states(states)
    if num_byzantine < 0:
        raise ValueError(f"num_byzantine must be >= 0, got {num_byzantine}")
    if k < 2 * num_byzantine + 3:
        raise ValueError(f"Krum with f={num_byzantine} needs at least {2 * num_byzantine + 3} sites, got {k}; "
                         "lower num_byzantine or use the median / trimmed mean.")
    vectors = torch.stack([flatten(s) for s in states])  # (K, P)
    dist = torch.cdist(vectors[None].double(), vectors[None].double())[0] ** 2  # (K, K), squared distances
    neighbours = k - num_byzantine - 2
    dist.fill_diagonal_(float("inf"))
    return dist.sort(dim=1).values[:, :neighbours].sum(dim=1)


def krum_select(states: Sequence[Mapping[str, torch.Tensor]], num_byzantine: int = 1,
                num_selected: int = 1) -> list[int]:
    """Indices of the ``num_selected`` states with the lowest Krum scores (Krum: 1; Multi-Krum: m > 1).

    Ties are broken by the lower index, so the result is deterministic.
    """
    if not 1 <= num_selected <= len(states):
        raise ValueError(f"num_selected must be in [1, {len(states)}], got {num_selected}")
    scores = krum_scores(states, num_byzantine)
    order = sorted(range(len(states)), key=lambda i: (float(scores[i]), i))
    return order[:num_selected]


def clip_by_norm(state: Mapping[str, torch.Tensor], max_norm: float) -> State:
    """``state`` scaled by ``min(1, max_norm / ||state||)`` (its floating-point tensors; others unchanged)."""
    if not max_norm > 0 or not math.isfinite(max_norm):
        raise ValueError(f"max_norm must be a positive finite number, got {max_norm!r}")
    norm = float(state_norm(state))
    scale = min(1.0, max_norm / norm) if norm > 0 else 1.0
    return {k: (v * scale if v.is_floating_point() and scale < 1.0 else v.clone()) for k, v in state.items()}


def subtract(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> State:
    """``a - b`` for the floating-point keys of ``a`` (an update from a new and an old state); others from ``a``."""
    return {k: (v - b[k] if v.is_floating_point() else v.clone()) for k, v in a.items()}


def add(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> State:
    """``a + b`` for the floating-point keys of ``a`` (an old state plus an update); others from ``a``."""
    return {k: (v + b[k] if v.is_floating_point() else v.clone()) for k, v in a.items()}


__all__ = ["add", "clip_by_norm", "coordinate_median", "flatten", "krum_scores", "krum_select", "state_norm",
           "subtract", "trimmed_count", "trimmed_mean"]
