"""The heterogeneity sweep of lesson 02 and the sentences the lesson computes from its results."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from fedlab.config import get_config
from fedlab.data.synthetic import make_federation
from fedlab.experiments.personalization_report import (
    describe_annotation_styles,
    describe_selection_gap,
    head_spread,
)
from fedlab.experiments.personalization_sweep import describe_sweep, heterogeneity_sweep, sweep_gain, sweep_points
from fedlab.federation.history import History
from fedlab.federation.identity import federation_fingerprint
from fedlab.models.unet import build_unet


def test_sweep_points_vary_one_axis_and_keep_the_others_at_the_default():
    points = sweep_points({"annotation": (1.5, 0, 1)})
    assert [(a, lvl) for a, lvl, _ in points] == [("annotation", 0.0), ("annotation", 1.0), ("annotation", 1.5)]
    assert points[0][2] == {"acquisition": 1.0, "population": 1.0, "annotation": 0.0}


@pytest.mark.parametrize("axes, message", [({"scanner": (0, 1)}, "unknown heterogeneity axis"),
                                           ({"annotation": ()}, "no levels"),
                                           ({"annotation": (-1, 1)}, ">= 0"),
                                           ({}, "axes is empty")])
def test_sweep_points_reject_bad_axes(axes, message):
    with pytest.raises(ValueError, match=message):
        sweep_points(axes)


def test_level_one_is_the_default_federation_and_level_zero_removes_the_axis():
    """Level 1 holds exactly the default data (so a run cache reuses the lesson's runs); level 0 no annotation style."""
    config = get_config("smoke")
    default = make_federation("prostate", config=config, seed=3)
    (_, _, at_zero), (_, _, at_one) = sweep_points({"annotation": (0, 1)})
    assert federation_fingerprint(make_federation("prostate", config=config, seed=3, heterogeneity=at_one)) == \
        federation_fingerprint(default)
    zero = make_federation("prostate", config=config, seed=3, heterogeneity=at_zero)
    margins = {s.metadata["style"]["annotation_margin"] for s in zero}
    assert margins == {0.0}
    # the images do not change with the annotation axis, only the masks
    for a, b in zip(zero, default, strict=True):
        assert torch.equal(a.train.x, b.train.x)
    assert any(not torch.equal(a.train.y, b.train.y) for a, b in zip(zero, default, strict=True))


def test_heterogeneity_sweep_runs_every_method_at_every_point():
    config = get_config("smoke").replace(rounds=1, local_steps=2, finetune_steps=1)
    sweep = heterogeneity_sweep(["FedAvg", "FT"], config, axes={"annotation": (0, 1.5)}, seed=0, device="cpu")
    assert list(sweep.columns[:2]) == ["axis", "level"]
    iou = sweep[sweep["metric"] == "iou"]
    assert set(map(tuple, iou[["level", "method"]].drop_duplicates().to_numpy())) == {
        (0.0, "FedAvg"), (0.0, "FT"), (1.5, "FedAvg"), (1.5, "FT")}
    assert len(iou) == 2 * 2 * 6 and iou["value"].between(0, 1).all()
    gain = sweep_gain(sweep)
    expected = (iou[iou["method"] == "FT"].groupby("level")["value"].mean()
                - iou[iou["method"] == "FedAvg"].groupby("level")["value"].mean())
    np.testing.assert_allclose(gain.xs("annotation", level="axis")["FT"].to_numpy(), expected.to_numpy())
    with pytest.raises(ValueError, match="baseline"):
        sweep_gain(sweep, baseline="FedRep")


def _gain(values):
    index = pd.MultiIndex.from_tuples([("annotation", lvl) for lvl in (0.0, 1.0, 1.5)], names=["axis", "level"])
    return pd.DataFrame({"FT": values}, index=index)


def test_describe_sweep_says_what_the_numbers_show():
    grows = describe_sweep(_gain([0.002, 0.01, 0.03]))  # +0.2, +1.0, +3.0 IoU points
    assert "**grows**" in grows and "**vanishes**" in grows and "+2.80 from the lowest" in grows
    flat = describe_sweep(_gain([0.02, 0.025, 0.021]))
    assert "**does not grow**" in flat and "does **not** vanish" in flat
    assert "in between it is largest at level 1 (+2.50)" in flat and "not steadily" not in flat
    assert "**shrinks**" in describe_sweep(_gain([0.03, 0.01, 0.0]))
    peaked = describe_sweep(_gain([0.0, 0.05, 0.02]))
    assert "**grows**" in peaked and "not steadily: it is largest at level 1 (+5.00)" in peaked


def test_head_spread_is_zero_for_identical_heads_and_a_norm_ratio_otherwise():
    config = get_config("smoke")
    model = build_unet(1, 1, config)
    same = head_spread([copy.deepcopy(model) for _ in range(3)], ["A", "B", "C"])
    assert (same == 0).all()
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.head.parameters():
            p.mul_(3.0)
    spread = head_spread([model, other], ["A", "B"])  # mean = 2w: each is ||w|| / ||2w|| = 0.5 away
    np.testing.assert_allclose(spread.to_numpy(), [0.5, 0.5])


def test_describe_annotation_styles_names_sites_from_the_margins():
    styles = pd.DataFrame({"annotation_margin": [0.0, 0.5, -0.3]}, index=["A", "B", "C"])
    text = describe_annotation_styles(styles, image_size=32)
    assert "**looser** masks are B (+0.5 px)" in text and "**tighter**: C (-0.3 px)" in text
    assert "largest margin is 0.25 px" in text and "disagreement between two sites 0.40 px" in text
    assert "real data" in describe_annotation_styles(pd.DataFrame(index=["A"]), image_size=32)


def test_describe_selection_gap_reports_each_method_and_says_why_it_is_zero():
    h = History("FedAvg", ["A", "B"])
    for rnd, (a, b) in enumerate([(0.5, 0.5), (0.6, 0.7)], start=1):
        h.record("A", "dice", a, "test", rnd)
        h.record("B", "dice", b, "test", rnd)
    ft = History("FT", ["A", "B"], info={"finish": {"finetune": {}}})
    gap = pd.DataFrame({"method": ["FedAvg", "FedAvg"], "site": ["A", "B"], "val_selected": [0.6, 0.5],
                        "best_on_test": [0.6, 0.7], "inflation": [0.0, 0.2]}).set_index(["method", "site"])
    text = describe_selection_gap(gap, {"FedAvg": h, "FT": ft})
    assert "mean inflation 10.00 Dice points (largest 20.00 at site B)" in text
    assert "best test round at 1 of 2 sites; 2 evaluated rounds." in text
    assert "**FT**: not measured" in text
    zero = describe_selection_gap(gap.assign(inflation=0.0), {"FedAvg": h})
    assert "About zero: only one or two evaluated rounds" in zero


def test_describe_outcome_ranks_methods_names_every_smallest_site_and_compares_with_the_paper():
    from fedlab.experiments.personalization_report import describe_outcome

    cols = pd.MultiIndex.from_product([["IoU (%)"], ["A", "B", "C", "avg"]], names=["metric", "site"])
    ours = pd.DataFrame([[70.0, 60.0, 50.0, 60.0], [80.0, 70.0, 66.0, 72.0], [81.0, 72.0, 66.0, 73.0]],
                        index=["Local Train", "FedAvg", "FT"], columns=cols)
    ours.attrs["sites"] = {"A": "A", "B": "B", "C": "C"}
    paper = pd.DataFrame([[0.0, 0.0, 0.0, 80.0], [0.0, 0.0, 0.0, 79.5]], index=["FedAvg", "FT"], columns=cols)
    text = describe_outcome(ours, paper, pd.Series({"A": 100, "B": 40, "C": 40}), "classroom", 0)
    assert "FT 73.0, FedAvg 72.0, Local Train 60.0" in text
    assert "FedAvg minus Local is +12.0 IoU points on average; at the smallest sites (40 training images each): " \
           "+10.0 at B, +16.0 at C." in text
    one = describe_outcome(ours, paper, pd.Series({"A": 100, "B": 40, "C": 50}), "classroom", 0)
    assert "at the smallest site (40 training images): +10.0 at B." in one
    assert "**FT** is ahead of FedAvg (+1.0); in the paper (real data) it is level with FedAvg (-0.5): " \
           "**not the paper's pattern**." in text
