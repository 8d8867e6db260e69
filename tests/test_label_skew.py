"""Dirichlet label skew: a partition of every sample, deterministic, skewed as alpha says."""

import numpy as np
import pytest
import torch

from fedlab.data.federation import Split
from fedlab.data.label_skew import dirichlet_federation, dirichlet_partition, label_counts, skew_summary


def _labels(n=2000, seed=0):
    return np.random.default_rng(seed).integers(0, 2, n)


def test_every_sample_lands_at_exactly_one_site_and_the_draw_is_seeded():
    labels = _labels()
    parts = dirichlet_partition(labels, 5, alpha=0.5, seed=3)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(len(labels)))
    again = dirichlet_partition(labels, 5, alpha=0.5, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = dirichlet_partition(labels, 5, alpha=0.5, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


def _positive_share_spread(alpha, seeds=range(20)):
    labels = _labels()
    spreads = []
    for s in seeds:
        shares = [labels[p].mean() for p in dirichlet_partition(labels, 4, alpha, seed=s)]
        spreads.append(np.std(shares))
    return float(np.mean(spreads))


def test_small_alpha_skews_the_class_balance_large_alpha_keeps_it():
    near_iid, skewed = _positive_share_spread(1000.0), _positive_share_spread(0.1)
    assert near_iid < 0.03 < 0.2 < skewed
    # the share of a class dealt to one site is Beta(alpha, (K - 1) alpha): mean 1 / K and variance
    # (K - 1) / (K^2 (K alpha + 1)); for K = 3, alpha = 1: sd = sqrt(2 / 36) = 0.236
    labels = _labels(20000)
    positives = labels.sum()
    draws = 1000
    shares = [labels[dirichlet_partition(labels, 3, 1.0, seed=s)[0]].sum() / positives for s in range(draws)]
    sd = np.sqrt(2 / 36)
    assert np.mean(shares) == pytest.approx(1 / 3, abs=4 * sd / np.sqrt(draws))  # 4 standard errors
    assert np.std(shares) == pytest.approx(sd, rel=0.1)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="alpha"):
        dirichlet_partition(_labels(), 3, alpha=0.0)
    with pytest.raises(ValueError, match="cannot give"):
        dirichlet_partition(_labels(10), 6, alpha=1.0, min_size=2)


def test_federation_shares_one_test_set_and_counts_classes():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 4, generator=g)
    y = (x[:, 0] > 0).float()
    train, test = Split(x[:200], y[:200]), Split(x[200:], y[200:])
    fed = dirichlet_federation(train, test, 3, alpha=0.3, seed=1)
    assert fed.task == "classification" and len(fed) == 3
    assert all(site.test is test for site in fed)
    counts = label_counts(fed)
    assert counts.to_numpy().sum() == 200 and list(counts.columns) == [0.0, 1.0]
    assert counts.loc["site 1"].to_dict() == {float(k): v for k, v in fed["site 1"].metadata["class_counts"].items()}


def test_skew_summary_reads_sizes_and_class_shares():
    x = torch.zeros(10, 2)
    y = torch.tensor([1, 1, 1, 0, 0, 0, 0, 0, 1, 0], dtype=torch.float32)
    fed = dirichlet_federation(Split(x, y), Split(x[:2], y[:2]), 2, alpha=1.0, seed=0, min_size=1)
    counts = label_counts(fed)
    summary = skew_summary(fed)
    sizes = counts.sum(axis=1)
    assert summary["largest site share"] == pytest.approx(sizes.max() / 10)
    shares = counts[1.0] / sizes
    assert summary["positive share min"] == pytest.approx(shares.min())
    assert summary["positive share max"] == pytest.approx(shares.max())
    assert summary["largest site positive share"] == pytest.approx(shares[sizes.idxmax()])
