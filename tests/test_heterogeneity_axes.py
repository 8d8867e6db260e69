"""One heterogeneity axis at a time: only that axis's style fields differ, and only the data it governs change."""

from dataclasses import fields

import pytest
import torch

from fedlab.data.synthetic import AXES, REFERENCE_STYLES, SITE_STYLES, SiteStyle, make_federation
from fedlab.experiments.heterogeneity import axis_federation, sweep_federations

FACTS = ("name", "cases", "images_per_case")
KW = {"image_size": 16, "cases_scale": 0.25}


def _styles(federation):
    return [SiteStyle(**{**s.metadata["style"], "position": tuple(s.metadata["style"]["position"]),
                         "colour_gain": tuple(s.metadata["style"]["colour_gain"])}) for s in federation]


def _differing_fields(styles):
    return {f.name for f in fields(styles[0]) if f.name not in FACTS
            and len({repr(getattr(s, f.name)) for s in styles}) > 1}


@pytest.mark.parametrize("dataset", ["prostate", "polyp", "fundus"])
def test_each_axis_alone_varies_only_its_own_fields(dataset):
    assert _differing_fields(_styles(axis_federation(dataset, {}, **KW))) == set()
    for axis, names in AXES.items():
        varied = _differing_fields(_styles(axis_federation(dataset, {axis: 1.0}, **KW)))
        assert varied and varied <= set(names), axis


def test_all_axes_at_one_are_the_default_federation_and_zero_is_the_reference():
    ref = REFERENCE_STYLES["prostate"]
    default = make_federation("prostate", image_size=32, cases_scale=0.25, seed=2)
    same = axis_federation("prostate", dict.fromkeys(AXES, 1.0), image_size=32, cases_scale=0.25, seed=2)
    for a, b in zip(default, same, strict=True):
        assert torch.equal(a.train.x, b.train.x) and torch.equal(a.train.y, b.train.y)
    for style, default in zip(_styles(axis_federation("prostate", {}, **KW)), SITE_STYLES["prostate"], strict=True):
        assert all(getattr(style, k) == getattr(default, k) for k in FACTS)  # sizes are facts, never blended
        assert all(getattr(style, f.name) == getattr(ref, f.name) for f in fields(style) if f.name not in FACTS)


def test_acquisition_changes_images_only_and_annotation_changes_masks_only():
    """Same seed, same patients: the acquisition axis alone renders them differently, the annotation axis alone
    outlines them differently."""
    kw = {"image_size": 32, "cases_scale": 0.25, "seed": 1}
    feds = sweep_federations("prostate", **kw)
    margins = {s.name: s.annotation_margin for s in SITE_STYLES["prostate"]}
    for none, acq, ann in zip(feds["none"], feds["acquisition"], feds["annotation"], strict=True):
        assert torch.equal(none.train.y, acq.train.y) and not torch.equal(none.train.x, acq.train.x)
        assert torch.equal(none.train.x, ann.train.x)
        assert torch.equal(none.train.y, ann.train.y) == (margins[none.name] == 0)
    assert "acquisition:1" in feds["acquisition"].source
    assert feds["population"]["A"].metadata["heterogeneity"]["population"] == 1.0


def test_unknown_axes_and_negative_scales_are_named():
    with pytest.raises(ValueError, match="unknown heterogeneity axes"):
        axis_federation("prostate", {"scanner": 1.0}, image_size=32)
    with pytest.raises(ValueError, match=">= 0"):
        axis_federation("prostate", {"annotation": -1.0}, image_size=32)
