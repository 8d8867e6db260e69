"""Split helpers shared by the synthetic generators, the real loaders and the lessons.

* :func:`split_by_group`: train / val / test indices that never separate a group (patient, case),
* :func:`train_val_split`: carve a validation split out of a training split,
* :func:`dirichlet_label_skew`: the standard non-IID label-skew partition (class proportions per
  client drawn from a symmetric Dirichlet(alpha); Hsu et al., 2019).

All are deterministic functions of their ``seed`` (a fresh ``numpy.random.Generator``; no global state).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fedlab.data.federation import Split


def _check_fraction(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def split_by_group(groups: Sequence | np.ndarray, val_fraction: float = 0.2, test_fraction: float = 0.2,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group-aware train / val / test split: all samples of a group land in the same split.

    The unique groups are shuffled with ``seed``; ``round(test_fraction * G)`` groups go to test and
    ``round(val_fraction * G)`` to validation (at least one each when the fraction is > 0), the rest
    to training (at least one).

    Args:
        groups: (N,) group label of every sample (case / patient id; any hashable values).
        val_fraction: Fraction of groups for validation, in [0, 1).
        test_fraction: Fraction of groups for test, in [0, 1).
        seed: Seed of the shuffle.

    Returns:
        Sorted int64 sample indices ``(train_idx, val_idx, test_idx)``.

    Raises:
        ValueError: for fractions outside [0, 1) or too few groups to fill every requested split.
    """
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ValueError(f"groups must be one label per sample (1-D), got shape {groups.shape}")
    unique, inverse = np.unique(groups, return_inverse=True)
    g = len(unique)
    n_test = max(1, round(test_fraction * g)) if test_fraction > 0 else 0
    n_val = max(1, round(val_fraction * g)) if val_fraction > 0 else 0
    if n_test + n_val >= g:
        raise ValueError(f"{g} groups cannot fill train, {n_val} val and {n_test} test groups; "
                         "use smaller val_fraction / test_fraction or more groups (cases).")
    order = np.random.default_rng(seed).permutation(g)
    role = np.zeros(g, dtype=np.int64)  # 0 train, 1 val, 2 test
    role[order[:n_test]] = 2
    role[order[n_test:n_test + n_val]] = 1
    sample_role = role[inverse]
    return tuple(np.flatnonzero(sample_role == r).astype(np.int64) for r in (0, 1, 2))


def train_val_split(split: Split, val_fraction: float = 0.2, seed: int = 0,
                    groups: Sequence | np.ndarray | None = None) -> tuple[Split, Split]:
    """Carve a validation split out of a training split (for datasets that only ship train/test).

    Args:
        split: The training split.
        val_fraction: Fraction of samples (or of groups, when ``groups`` is given) for validation.
        seed: Seed of the shuffle.
        groups: Optional (N,) group labels; a group is never split between train and validation.

    Returns:
        ``(train, val)`` splits; training keeps at least one sample.
    """
    _check_fraction("val_fraction", val_fraction)
    if groups is None:
        groups = np.arange(len(split))
    if len(groups) != len(split):
        raise ValueError(f"groups has {len(groups)} labels but the split has {len(split)} samples")
    train_idx, val_idx, _ = split_by_group(groups, val_fraction, 0.0, seed)
    return split.subset(torch.from_numpy(train_idx)), split.subset(torch.from_numpy(val_idx))


def dirichlet_label_skew(labels: Sequence | np.ndarray, num_clients: int, alpha: float, seed: int = 0,
                         min_size: int = 1, max_tries: int = 1000) -> list[np.ndarray]:
    """Non-IID label-skew partition: each class is shared among clients with Dirichlet(alpha) proportions.

    For every class c, proportions ``p_c ~ Dir(alpha * 1_K)`` over the K clients are drawn and the
    (shuffled) samples of class c are cut accordingly. Small ``alpha`` gives clients dominated by few
    classes; ``alpha -> inf`` gives every client the global label proportions. The draw is repeated
    until every client holds at least ``min_size`` samples.

    Args:
        labels: (N,) class label of every sample.
        num_clients: Number of clients K (>= 1).
        alpha: Dirichlet concentration (> 0).
        seed: Seed of the partition.
        min_size: Minimum samples per client.
        max_tries: Redraws allowed before giving up.

    Returns:
        K sorted int64 index arrays; together they cover every sample exactly once.

    Raises:
        ValueError: for bad arguments, or when ``min_size`` cannot be met in ``max_tries`` draws.
    """
    labels = np.asarray(labels)
    if num_clients < 1:
        raise ValueError(f"num_clients must be >= 1, got {num_clients!r}")
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 (small = more skew), got {alpha!r}")
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (one class per sample), got shape {labels.shape}")
    if num_clients * min_size > len(labels):
        raise ValueError(f"{len(labels)} samples cannot give {num_clients} clients {min_size} each")
    rng = np.random.default_rng(seed)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for c in np.unique(labels):
            idx = rng.permutation(np.flatnonzero(labels == c))
            p = rng.dirichlet(np.full(num_clients, float(alpha)))
            cuts = np.round(np.cumsum(p)[:-1] * len(idx)).astype(int)
            for k, chunk in enumerate(np.split(idx, cuts)):
                parts[k].append(chunk)
        out = [np.sort(np.concatenate(p)).astype(np.int64) for p in parts]
        if min(len(o) for o in out) >= min_size:
            return out
    raise ValueError(f"No partition with >= {min_size} samples per client in {max_tries} draws; "
                     "increase alpha, lower min_size or use fewer clients.")
