"""Synthetic segmentation federations: determinism, schema, case-level splits and measurable site effects."""

from __future__ import annotations

from dataclasses import replace

import matplotlib
import numpy as np
import pytest
import torch

from fedlab.config import PRESETS
from fedlab.data.synthetic import (
    REFERENCE_STYLES,
    SITE_STYLES,
    SiteStyle,
    make_federation,
    make_fundus,
    make_polyp,
    make_prostate,
    sample_site,
)

matplotlib.use("Agg")

SMALL = {"image_size": 32, "cases_scale": 0.25}
EXPECTED = {  # dataset -> (channels, labels, sites)
    "prostate": (1, ("prostate",), 6),
    "polyp": (3, ("polyp",), 4),
    "fundus": (3, ("disc", "cup"), 4),
}


def _splits(fed):
    for site in fed:
        for name in ("train", "val", "test"):
            yield site, name, getattr(site, name)


def _site_images(fed, site):
    s = fed[site]
    return torch.cat([s.train.x, s.val.x, s.test.x])


def test_same_seed_is_bitwise_identical_and_other_seed_differs():
    a, b = make_federation("prostate", seed=3, **SMALL), make_federation("prostate", seed=3, **SMALL)
    c = make_federation("prostate", seed=4, **SMALL)
    for (_, _, sa), (_, _, sb) in zip(_splits(a), _splits(b), strict=True):
        assert torch.equal(sa.x, sb.x) and torch.equal(sa.y, sb.y)
    assert not torch.equal(a[0].train.x, c[0].train.x)
    assert a.source == "fedlab.data.synthetic prostate seed=3 size=32 cases_scale=0.25 heterogeneity=1"


@pytest.mark.parametrize("maker, dataset", [(make_prostate, "prostate"), (make_polyp, "polyp"),
                                            (make_fundus, "fundus")])
def test_schema_shapes_dtypes_and_binary_masks(maker, dataset):
    fed = maker(**SMALL)
    channels, labels, num_sites = EXPECTED[dataset]
    assert (fed.name, fed.labels, len(fed), fed.synthetic, fed.task) == (dataset, labels, num_sites, True,
                                                                        "segmentation")
    assert "synthetic" in fed.title
    for site, _, split in _splits(fed):
        assert len(split) > 0
        assert split.x.shape[1:] == (channels, 32, 32) and split.y.shape[1:] == (len(labels), 32, 32)
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.float32
        assert set(torch.unique(split.y).tolist()) <= {0.0, 1.0}
        assert 0.0 <= split.x.min() and split.x.max() <= 1.0
        assert site.metadata["synthetic"] is True
        assert site.metadata["style"]["name"] == site.name


def test_prostate_case_counts_follow_the_benchmark():
    counts = (30, 30, 19, 13, 12, 12)
    full = make_federation("prostate", image_size=16, cases_scale=1.0)
    half = make_federation("prostate", image_size=16, cases_scale=0.5)
    for site, c, style in zip(full, counts, SITE_STYLES["prostate"], strict=True):
        assert site.metadata["num_cases"] == c
        assert len(site.train) + len(site.val) + len(site.test) == c * style.images_per_case
    for site, c in zip(half, counts, strict=True):
        assert abs(site.metadata["num_cases"] - c / 2) <= 0.5


def test_classroom_and_smoke_sizes():
    classroom = make_federation("prostate", config=PRESETS["segmentation"]["classroom"], image_size=16)
    smoke = make_federation("prostate", config=PRESETS["segmentation"]["smoke"])
    total = [len(s.train) + len(s.val) + len(s.test) for s in classroom]
    assert min(total) >= 60 and max(total) <= 200
    total = [len(s.train) + len(s.val) + len(s.test) for s in smoke]
    assert min(total) >= 12 and max(total) <= 40
    assert smoke[0].train.x.shape[-1] == PRESETS["segmentation"]["smoke"].image_size


def test_splits_are_by_case():
    fed = make_federation("prostate", image_size=16, cases_scale=0.5, seed=1)
    for site in fed:
        cases = site.metadata["cases"]
        train, val, test = (set(cases[k]) for k in ("train", "val", "test"))
        assert not (train & val or train & test or val & test)
        assert len(train | val | test) == site.metadata["num_cases"]
        per_case = site.metadata["style"]["images_per_case"]
        for name in ("train", "val", "test"):  # a straddling case would break these counts
            assert len(getattr(site, name)) == per_case * len(cases[name])


def test_a_split_holds_whole_cases_of_the_generated_images():
    style = SITE_STYLES["prostate"][0]
    fed = make_federation("prostate", image_size=16, cases_scale=0.25, styles=(style,))
    sample = sample_site("prostate", style, fed[0].metadata["num_cases"], 16,
                         np.random.default_rng([0, 0, 0]))
    images = torch.from_numpy(sample.images)
    for name in ("train", "val", "test"):
        x = getattr(fed[0], name).x
        # each split image is one generated image; their cases are exactly the recorded ones
        match = (x[:, None] == images[None]).flatten(2).all(-1).float().argmax(1).numpy()
        got = sorted({f"A-{c:03d}" for c in sample.case_ids[match]})
        assert got == fed[0].metadata["cases"][name]


def test_changing_one_site_leaves_the_others_unchanged():
    styles = list(SITE_STYLES["polyp"])
    styles[1] = replace(styles[1], noise=0.2)
    base, changed = make_federation("polyp", **SMALL), make_federation("polyp", styles=styles, **SMALL)
    assert torch.equal(base[0].train.x, changed[0].train.x)
    assert not torch.equal(base[1].train.x, changed[1].train.x)
    assert torch.equal(base[1].train.y, changed[1].train.y)  # same patients, noisier scanner


def _clean(dataset: str, **changes) -> SiteStyle:
    """A neutral style with no noise, blur or bias, so one effect can be measured alone."""
    neutral = dict(noise=0.0, blur=0.0, bias_field=0.0, gamma=1.0, contrast=1.0, brightness=0.0,
                   resolution=1.0, colour_gain=(1.0, 1.0, 1.0), annotation_margin=0.0)
    return replace(REFERENCE_STYLES[dataset], name="S", images_per_case=1, **{**neutral, **changes})


def _sample(dataset: str, style: SiteStyle, size: int = 32):
    return sample_site(dataset, style, num_cases=12, image_size=size, rng=7)


def test_noise_level_is_as_configured():
    clean = _sample("prostate", _clean("prostate")).images
    noisy = _sample("prostate", _clean("prostate", noise=0.05)).images
    inside = (clean > 0.15) & (clean < 0.85)  # away from clipping
    assert abs(float((noisy - clean)[inside].std()) - 0.05) < 0.005


def test_brightness_and_colour_cast_are_as_configured():
    clean = _sample("polyp", _clean("polyp")).images
    bright = _sample("polyp", _clean("polyp", brightness=0.1)).images
    inside = (clean > 0.05) & (clean < 0.85)
    np.testing.assert_allclose((bright - clean)[inside], 0.1, atol=1e-5)
    cast = _sample("polyp", _clean("polyp", colour_gain=(1.2, 1.0, 0.8))).images
    unsat = (clean < 0.8).all(axis=1)  # pixels not clipped in any channel
    for ch, gain in enumerate((1.2, 1.0, 0.8)):
        ratio = cast[:, ch][unsat].sum() / clean[:, ch][unsat].sum()
        assert ratio == pytest.approx(gain, rel=1e-4)


def test_blur_is_the_configured_gaussian_and_low_resolution_removes_detail():
    from scipy.ndimage import gaussian_filter

    sharp = _sample("prostate", _clean("prostate")).images
    blurred = _sample("prostate", _clean("prostate", blur=1.5)).images
    expected = gaussian_filter(sharp, sigma=(0, 0, 1.5 * 32 / 64, 1.5 * 32 / 64), mode="nearest")
    np.testing.assert_allclose(blurred, expected, atol=1e-5)

    def detail(images):  # mean squared horizontal gradient
        return float((np.diff(images, axis=-1) ** 2).mean())

    low = _sample("prostate", _clean("prostate", resolution=3.0)).images
    assert detail(low) < 0.6 * detail(sharp)


def test_bias_field_is_a_smooth_multiplicative_field():
    clean = _sample("prostate", _clean("prostate")).images[:, 0]
    biased = _sample("prostate", _clean("prostate", bias_field=0.4)).images[:, 0]
    t = np.linspace(-1, 1, 32)
    r, c = np.meshgrid(t, t, indexing="ij")
    basis = np.stack([np.ones_like(r), r, c, r * r, c * c, r * c], axis=-1)  # (H, W, 6)
    for img_clean, img_biased in zip(clean, biased, strict=True):
        inside = (img_clean > 0.2) & (img_biased < 0.95)  # unclipped pixels
        log_gain = np.log(img_biased[inside] / img_clean[inside])
        assert log_gain.std() > 0.01  # not a constant gain, ...
        coef, *_ = np.linalg.lstsq(basis[inside], log_gain, rcond=None)
        residual = log_gain - basis[inside] @ coef
        assert np.abs(residual).max() < 1e-4  # ... but a smooth quadratic surface


def test_annotation_style_moves_the_label_not_the_image():
    loose = _sample("prostate", _clean("prostate", annotation_margin=1.5, noise=0.03))
    exact = _sample("prostate", _clean("prostate", annotation_margin=0.0, noise=0.03))
    tight = _sample("prostate", _clean("prostate", annotation_margin=-1.5, noise=0.03))
    assert np.array_equal(loose.images, tight.images) and np.array_equal(loose.true_masks, tight.true_masks)
    assert np.array_equal(exact.masks, exact.true_masks)
    assert (tight.masks <= loose.true_masks).all() and (loose.true_masks <= loose.masks).all()
    assert tight.masks.sum() < exact.masks.sum() < loose.masks.sum()


def test_default_sites_differ_as_configured_and_heterogeneity_zero_removes_it():
    het = make_federation("prostate", **SMALL)
    flat = make_federation("prostate", heterogeneity=0.0, **SMALL)
    styles = {s.name: s for s in SITE_STYLES["prostate"]}
    # C is brightened (gamma < 1, brightness > 0) and B darkened (gamma > 1, brightness < 0)
    assert styles["C"].brightness > 0 > styles["B"].brightness and styles["C"].gamma < 1 < styles["B"].gamma
    assert _site_images(het, "C").mean() > _site_images(het, "B").mean() + 0.1
    # looser annotators at B than at D: larger masks relative to the same object size distribution
    assert styles["B"].annotation_margin > styles["D"].annotation_margin
    facts = ("name", "cases", "images_per_case")
    flat_styles = [{k: v for k, v in s.metadata["style"].items() if k not in facts} for s in flat]
    assert all(fs == flat_styles[0] for fs in flat_styles)
    means_het = [float(_site_images(het, n).mean()) for n in het.site_names]
    means_flat = [float(_site_images(flat, n).mean()) for n in flat.site_names]
    assert np.std(means_flat) < 0.25 * np.std(means_het)


def test_looser_site_annotates_larger_masks_on_the_same_objects():
    styles = SITE_STYLES["prostate"]
    loose, tight = styles[1], styles[3]  # B (margin > 0) and D (margin < 0)
    assert loose.annotation_margin > 0 > tight.annotation_margin
    for style in (loose, tight):
        sample = sample_site("prostate", style, 6, 32, rng=0)
        area_ratio = sample.masks.sum() / sample.true_masks.sum()
        assert (area_ratio > 1) if style.annotation_margin > 0 else (area_ratio < 1)


def test_fundus_cup_inside_disc():
    fed = make_federation("fundus", heterogeneity=2.0, **SMALL)
    for _, _, split in _splits(fed):
        disc, cup = split.y[:, 0], split.y[:, 1]
        assert (cup <= disc).all()
        assert 0 < cup.sum() < disc.sum()
    sample = sample_site("fundus", SITE_STYLES["fundus"][3], 5, 32, rng=0)  # tighter annotators
    assert (sample.true_masks[:, 1] <= sample.true_masks[:, 0]).all()
    assert (sample.masks[:, 1] <= sample.masks[:, 0]).all()


def test_config_gives_defaults_and_explicit_arguments_win():
    smoke = PRESETS["segmentation"]["smoke"]
    fed = make_federation("fundus", config=smoke, image_size=48)
    assert fed[0].train.x.shape[-1] == 48
    assert fed[0].metadata["num_cases"] == round(SITE_STYLES["fundus"][0].cases * smoke.cases_scale)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown synthetic dataset 'liver'.*fundus.*polyp.*prostate"):
        make_federation("liver")
    with pytest.raises(ValueError, match="heterogeneity must be >= 0"):
        make_federation("prostate", heterogeneity=-1, **SMALL)
    with pytest.raises(ValueError, match="cases_scale must be > 0"):
        make_federation("prostate", cases_scale=0)
    with pytest.raises(ValueError, match=r"SiteStyle 'X': invalid noise=-0.1"):
        SiteStyle("X", noise=-0.1)


def test_plots_label_the_data_synthetic():
    from fedlab.viz import plot_intensity_histograms, plot_site_samples

    fed = make_federation("fundus", **SMALL)
    fig = plot_site_samples(fed, n=3)
    assert "fundus (synthetic)" in fig._suptitle.get_text()
    assert len(fig.axes) == 3 * len(fed)
    fig = plot_intensity_histograms(fed)
    assert len(fig.axes[0].get_lines()) == len(fed)
    assert "synthetic" in fig.axes[0].get_title()
    matplotlib.pyplot.close("all")
