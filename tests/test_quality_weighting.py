"""Boundary noise: injected with distance transforms (checked against scipy's morphology), estimated from boundary
bands (FedA3I's estimator), and the quality weighting that ranks the noisy site last."""

import dataclasses

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_dilation, binary_erosion

from fedlab.config import get_config
from fedlab.data.label_noise import shift_boundary, with_noisy_site
from fedlab.data.synthetic import make_federation
from fedlab.federation.annotation_quality import band_losses, boundary_bands, layer_mix, quality_weights
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import QualityWeighted


def _disk(size: int, radius: float, centre=None) -> np.ndarray:
    cy, cx = centre or (size / 2 - 0.5, size / 2 - 0.5)
    yy, xx = np.mgrid[:size, :size]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2


def _footprint(r: int) -> np.ndarray:
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    return yy ** 2 + xx ** 2 <= r ** 2


@pytest.mark.parametrize("r", [1, 2, 3])
def test_shift_boundary_is_dilation_and_erosion_by_a_disk(r):
    masks = np.stack([_disk(40, 8), _disk(40, 6, (15, 22))])[:, None]  # (2, 1, 40, 40), away from the border
    t = torch.from_numpy(masks.astype(np.float32))
    looser = shift_boundary(t, r).numpy().astype(bool)
    tighter = shift_boundary(t, -r).numpy().astype(bool)
    for n in range(2):
        assert np.array_equal(looser[n, 0], binary_dilation(masks[n, 0], structure=_footprint(r)))
        assert np.array_equal(tighter[n, 0], binary_erosion(masks[n, 0], structure=_footprint(r)))


def test_with_noisy_site_changes_only_that_site_and_not_its_test_masks():
    fed = make_federation("prostate", image_size=32, cases_scale=0.25, seed=0)
    noisy = with_noisy_site(fed, "B", 2.0)
    for a, b in zip(fed, noisy, strict=True):
        assert torch.equal(a.test.y, b.test.y) and torch.equal(a.train.x, b.train.x)
        assert torch.equal(a.train.y, b.train.y) == (a.name != "B")
    assert noisy["B"].train.y.sum() > fed["B"].train.y.sum()
    assert noisy["B"].metadata["injected_annotation_offset"] == 2.0
    with pytest.raises(KeyError, match="No site named"):
        with_noisy_site(fed, "Z", 1.0)


def test_boundary_bands_follow_the_authors_rule():
    m = torch.from_numpy(_disk(32, 5)[None, None].astype(np.float32))
    inner, outer = boundary_bands(m)
    # the disk's depth (5-ish) is smaller than the background's reach, so d = depth: the whole object is the
    # inner band, and the outer band is the background within that distance
    assert torch.equal(inner, m.bool())
    assert bool((outer & m.bool()).sum() == 0) and int(outer.sum()) > int(inner.sum())
    empty_inner, empty_outer = boundary_bands(torch.zeros(1, 1, 8, 8))
    assert not empty_inner.any() and not empty_outer.any()


def _reports(offsets, seed=0):
    """Band losses of a model that predicts the true disks, at sites whose masks are shifted by ``offsets``."""
    rng = np.random.default_rng(seed)
    reports = []
    for off in offsets:
        truth = np.stack([_disk(32, rng.uniform(5, 8), tuple(rng.uniform(12, 19, 2))) for _ in range(6)])[:, None]
        logits = torch.from_numpy(np.where(truth, 4.0, -4.0).astype(np.float32))
        masks = shift_boundary(torch.from_numpy(truth.astype(np.float32)), off)
        reports.append(band_losses(logits, masks))
    return reports


def test_quality_weighting_ranks_the_injected_noisy_site_last():
    offsets = [0.0, 0.4, -0.4, 3.0, 0.0, 0.3]  # site 3 draws 3 px looser; the others within inter-rater jitter
    q = quality_weights(_reports(offsets))
    assert int(np.argmin(q)) == 3 and q[3] == 0.0 and q.max() == 1.0
    tight = quality_weights(_reports([0.0, 0.3, -3.0, 0.2, -0.3]))  # a too-tight site is just as suspicious
    assert int(np.argmin(tight)) == 2


def test_looser_masks_raise_the_inner_band_loss_and_tighter_the_outer():
    clean, loose, tight = _reports([0.0, 2.0, -2.0])
    assert loose[0, 0] > clean[0, 0] and tight[0, 1] > clean[0, 1]


def test_layer_mix_goes_from_zero_at_the_input_to_one_at_the_head():
    keys = ["enc.0.weight", "enc.0.bias", "enc.1.weight", "dec.0.weight", "head.weight", "head.bias"]
    alpha = layer_mix(keys)
    assert alpha["enc.0.weight"] == alpha["enc.0.bias"] == 0.0 and alpha["head.weight"] == alpha["head.bias"] == 1.0
    assert alpha["enc.1.weight"] == pytest.approx(1 / 3) and alpha["dec.0.weight"] == pytest.approx(2 / 3)


def test_quality_weighted_run_finds_the_noisy_site(tiny_config):
    """Six copies of one site, one copy's masks 3 px looser: after a FedAvg warm-up the sites' reports rank it last
    and the five clean copies report the same. (Sites that differ in their own data, even at heterogeneity 0 through
    a few sampled cases of smaller glands, can rank last by themselves at this tiny scale.)"""
    cfg = get_config("smoke", image_size=32, base_width=8, levels=3, rounds=4, local_steps=6, batch_size=8,
                     eval_every=4)
    one = make_federation("prostate", image_size=32, cases_scale=0.25, seed=0, heterogeneity=0.0)
    copies = dataclasses.replace(one, sites=tuple(dataclasses.replace(one.sites[0], name=n) for n in "ABCDEF"))
    fed = with_noisy_site(copies, "C", 3.0)
    h = run_federation(QualityWeighted(warmup=2), fed, cfg, select="last", progress=False)
    facts = h.info["finish"]
    assert facts["report_round"] == 3
    assert min(facts["quality"], key=facts["quality"].get) == "C"
    assert max(facts["noise_score"], key=facts["noise_score"].get) == "C"
    assert len({v for k, v in facts["noise_score"].items() if k != "C"}) == 1
    report_bytes = [row["bytes_up"] for row in h.ledger]
    assert report_bytes[2] - report_bytes[1] == len(fed) * 2 * 4  # two float32 numbers per site, in round 3 only
