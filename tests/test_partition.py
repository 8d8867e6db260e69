"""Split helpers: group-aware splits and validation carving (scikit-learn's GroupShuffleSplit underneath)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.model_selection import GroupShuffleSplit

from fedlab.data.federation import Split
from fedlab.data.partition import split_by_group, train_val_split


def _groups(num_groups: int = 20, seed: int = 0) -> np.ndarray:
    sizes = np.random.default_rng(seed).integers(1, 6, num_groups)
    return np.repeat([f"case{g}" for g in range(num_groups)], sizes)


def test_split_by_group_is_a_disjoint_cover_with_pure_groups():
    groups = _groups()
    train, val, test = split_by_group(groups, 0.2, 0.25, seed=1)
    everything = np.concatenate([train, val, test])
    assert np.array_equal(np.sort(everything), np.arange(len(groups)))  # cover, no duplicates
    sets = [set(groups[i]) for i in (train, val, test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])  # group purity
    assert (len(sets[1]), len(sets[2]), len(sets[0])) == (4, 5, 11)  # round(0.2 * 20), round(0.25 * 20)
    for idx in (train, val, test):
        assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)


def test_split_by_group_test_part_is_group_shuffle_split():
    groups = _groups()
    _, _, test = split_by_group(groups, 0.0, 0.25, seed=3)
    _, expected = next(GroupShuffleSplit(n_splits=1, test_size=5, random_state=3).split(groups, groups=groups))
    np.testing.assert_array_equal(test, np.sort(expected))


def test_split_by_group_is_deterministic_and_seed_dependent():
    groups = _groups()
    a, b = split_by_group(groups, 0.2, 0.2, seed=5), split_by_group(groups, 0.2, 0.2, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    c = split_by_group(groups, 0.2, 0.2, seed=6)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_split_by_group_small_and_empty_fractions():
    train, val, test = split_by_group([0, 0, 1, 2, 2], 0.1, 0.1, seed=0)  # at least one group each
    assert len({0, 1, 2} - {*np.asarray([0, 0, 1, 2, 2])[np.concatenate([train, val, test])]}) == 0
    assert len(val) > 0 and len(test) > 0 and len(train) > 0
    train, val, test = split_by_group(np.arange(10), 0.0, 0.3, seed=0)
    assert len(val) == 0 and len(test) == 3 and len(train) == 7


def test_split_by_group_bad_inputs():
    with pytest.raises(ValueError, match="test_fraction must be in"):
        split_by_group([0, 1, 2], 0.2, 1.5)
    with pytest.raises(ValueError, match="2 groups cannot fill train"):
        split_by_group([0, 0, 1], 0.2, 0.2)
    with pytest.raises(ValueError, match="1-D"):
        split_by_group(np.zeros((3, 2)), 0.2, 0.2)


def test_train_val_split_carves_rows_and_respects_groups():
    x = torch.arange(20, dtype=torch.float32)[:, None]
    split = Split(x, x[:, 0].clone())
    train, val = train_val_split(split, 0.25, seed=0)
    assert (len(train), len(val)) == (15, 5)
    assert sorted(torch.cat([train.x, val.x])[:, 0].tolist()) == list(range(20))
    groups = np.repeat(np.arange(5), 4)
    train, val = train_val_split(split, 0.4, seed=0, groups=groups)
    train_groups = {int(v) // 4 for v in train.y.tolist()}
    val_groups = {int(v) // 4 for v in val.y.tolist()}
    assert not train_groups & val_groups and len(val_groups) == 2
    with pytest.raises(ValueError, match="groups has 3 labels but the split has 20"):
        train_val_split(split, 0.2, groups=[0, 1, 2])
