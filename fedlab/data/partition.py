"""Group-aware splits shared by the synthetic generators and the real loaders.

* :func:`split_by_group`: train / val / test indices that never separate a group (patient, case, file),
* :func:`train_val_split`: carve a validation split out of a training split.

Both draw the groups with scikit-learn's ``GroupShuffleSplit`` and are deterministic functions of their
``seed`` (no global state).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from sklearn.model_selection import GroupShuffleSplit

from fedlab.data.federation import Split


def _check_fraction(name: str, value: float) -> None:
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")


def split_by_group(groups: Sequence | np.ndarray, val_fraction: float = 0.2, test_fraction: float = 0.2,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group-aware train / val / test split: all samples of a group land in the same split.

    ``round(test_fraction * G)`` of the G groups go to test and ``round(val_fraction * G)`` to validation
    (at least one each when the fraction is > 0), the rest to training (at least one); which ones is drawn
    by ``sklearn.model_selection.GroupShuffleSplit`` with ``seed``.

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
    g = len(np.unique(groups))
    n_test = max(1, round(test_fraction * g)) if test_fraction > 0 else 0
    n_val = max(1, round(val_fraction * g)) if val_fraction > 0 else 0
    if n_test + n_val >= g:
        raise ValueError(f"{g} groups cannot fill train, {n_val} val and {n_test} test groups; "
                         "use smaller val_fraction / test_fraction or more groups (cases).")
    rest, test = _hold_out(np.arange(len(groups)), groups, n_test, seed)
    train, val = _hold_out(rest, groups[rest], n_val, seed + 1)
    return np.sort(train), np.sort(val), np.sort(test)


def _hold_out(index: np.ndarray, groups: np.ndarray, n_groups: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``index`` cut into (kept, held out) with ``n_groups`` whole groups held out (GroupShuffleSplit)."""
    if n_groups == 0:
        return index.astype(np.int64), np.zeros(0, np.int64)
    splitter = GroupShuffleSplit(n_splits=1, test_size=n_groups, random_state=seed)
    kept, held = next(splitter.split(index, groups=groups))
    return index[kept].astype(np.int64), index[held].astype(np.int64)


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
