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
    styles = SITE_STYLES["prostate"]
    scale = PRESETS["segmentation"]["classroom"].cases_scale
    for site, style in zip(classroom, styles, strict=True):  # classroom keeps the benchmark's case counts
        assert site.metadata["num_cases"] == max(3, round(style.cases * scale))
    total = [len(s.train) + len(s.val) + len(s.test) for s in smoke]
    assert min(total) >= 20 and max(total) <= 100  # small enough for a 2-minute notebook
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
                   resolution=1.0, colour_gain=(1.0, 1.0, 1.0), annotation_margin=0.0, cup_margin=0.0,
                   annotation_jitter=0.0, endorectal_coil=0.0)
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

    # on polyp frames: MR slices are rescaled per image after the blur, camera frames are not
    sharp = _sample("polyp", _clean("polyp")).images
    blurred = _sample("polyp", _clean("polyp", blur=1.5)).images
    expected = gaussian_filter(sharp, sigma=(0, 0, 1.5 * 32 / 64, 1.5 * 32 / 64), mode="nearest")
    np.testing.assert_allclose(blurred, expected, atol=1e-5)

    def detail(images):  # mean squared horizontal gradient
        return float((np.diff(images, axis=-1) ** 2).mean())

    low = _sample("polyp", _clean("polyp", resolution=3.0)).images
    assert detail(low) < 0.6 * detail(sharp)


def test_bias_field_is_a_smooth_multiplicative_field():
    clean = _sample("prostate", _clean("prostate")).images[:, 0]
    biased = _sample("prostate", _clean("prostate", bias_field=0.4)).images[:, 0]
    t = np.linspace(-1, 1, 32)
    r, c = np.meshgrid(t, t, indexing="ij")
    basis = np.stack([np.ones_like(r), r, c, r * r, c * c, r * c], axis=-1)  # (H, W, 6)
    for img_clean, img_biased in zip(clean, biased, strict=True):
        inside = (img_clean > 0.2) & (img_clean < 0.95) & (img_biased < 0.95)  # unclipped pixels
        log_gain = np.log(img_biased[inside] / img_clean[inside])
        assert log_gain.std() > 0.01  # not a constant gain, ...
        coef, *_ = np.linalg.lstsq(basis[inside], log_gain, rcond=None)  # the constant absorbs the rescaling
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


def test_heterogeneity_zero_removes_style_differences_and_keeps_site_sizes():
    het = make_federation("prostate", **SMALL)
    flat = make_federation("prostate", heterogeneity=0.0, **SMALL)
    facts = ("name", "cases", "images_per_case")
    flat_styles = [{k: v for k, v in s.metadata["style"].items() if k not in facts} for s in flat]
    assert all(fs == flat_styles[0] for fs in flat_styles)
    assert [s.metadata["num_cases"] for s in flat] == [s.metadata["num_cases"] for s in het]
    means_het = [float(_site_images(het, n).mean()) for n in het.site_names]
    means_flat = [float(_site_images(flat, n).mean()) for n in flat.site_names]
    assert np.std(means_flat) < 0.5 * np.std(means_het)


def test_per_axis_heterogeneity_changes_only_that_axis():
    from fedlab.data.synthetic.styles import AXES

    no_annotation = make_federation("prostate", heterogeneity={"annotation": 0.0}, **SMALL)
    no_acquisition = make_federation("prostate", heterogeneity={"acquisition": 0.0}, **SMALL)
    default = make_federation("prostate", **SMALL)
    ref = REFERENCE_STYLES["prostate"]
    for a, b, d in zip(no_annotation, no_acquisition, default, strict=True):
        for name in AXES["annotation"]:
            assert a.metadata["style"][name] == getattr(ref, name)
            assert b.metadata["style"][name] == d.metadata["style"][name]
        for name in AXES["acquisition"]:
            assert b.metadata["style"][name] == getattr(ref, name)
            assert a.metadata["style"][name] == d.metadata["style"][name]
    # without annotation style the images are unchanged (same patients, same scanners), only the labels move
    assert torch.equal(no_annotation[1].train.x, default[1].train.x)
    assert not torch.equal(no_annotation[1].train.y, default[1].train.y)
    assert "annotation:0" in no_annotation.source
    with pytest.raises(ValueError, match="unknown axes.*'scanner'"):
        make_federation("prostate", heterogeneity={"scanner": 1.0}, **SMALL)
    with pytest.raises(ValueError, match=">= 0 on every axis"):
        make_federation("prostate", heterogeneity={"population": -1.0}, **SMALL)


def _boundary_offsets(sample) -> np.ndarray:
    """Per image and label: equivalent-radius difference between annotated and true masks (pixels at 64 px).

    For a near-round object of area A, a boundary moved outwards by m pixels gives area ~ pi (r + m)^2 with
    r = sqrt(A / pi), so sqrt(A_annotated / pi) - sqrt(A_true / pi) estimates m, independently of the generator.
    """
    scale = 64 / sample.images.shape[-1]
    r_true = np.sqrt(sample.true_masks.sum(axis=(2, 3)) / np.pi)
    r_ann = np.sqrt(sample.masks.sum(axis=(2, 3)) / np.pi)
    return (r_ann - r_true) * scale  # (N, L)


@pytest.mark.parametrize("dataset", ["prostate", "polyp", "fundus"])
def test_each_site_annotation_offset_matches_its_style(dataset):
    for style in SITE_STYLES[dataset]:
        sample = sample_site(dataset, replace(style, images_per_case=1, annotation_jitter=0.0), 16, 96, rng=0)
        offsets = _boundary_offsets(sample).mean(axis=0)
        margins = [style.annotation_margin, style.cup_margin][: offsets.size]
        for got, margin in zip(offsets, margins, strict=True):
            # elongated / irregular outlines are longer than a circle's: the estimate is a little larger
            assert abs(got - margin) <= 0.15 * abs(margin) + 0.05, (dataset, style.name, got, margin)


def test_annotation_jitter_is_random_per_image_with_zero_mean():
    style = replace(SITE_STYLES["prostate"][0], images_per_case=1)
    jittered = sample_site("prostate", style, 60, 96, rng=1)
    exact = sample_site("prostate", replace(style, annotation_jitter=0.0), 60, 96, rng=1)
    assert np.array_equal(jittered.images, exact.images)  # the labels move, the images do not
    offsets = _boundary_offsets(jittered)[:, 0] - _boundary_offsets(exact)[:, 0]
    assert abs(offsets.mean()) < 0.1  # no systematic part
    # the constant harmonic carries a quarter of the jitter's variance: per-image mean offsets have SD jitter / 2
    assert offsets.std() == pytest.approx(style.annotation_jitter / 2, rel=0.3)


@pytest.mark.parametrize("dataset", ["prostate", "polyp", "fundus"])
def test_each_site_noise_level_matches_its_style(dataset):
    for style in SITE_STYLES[dataset]:
        noisy = sample_site(dataset, replace(style, images_per_case=1), 8, 32, rng=2).images
        clean = sample_site(dataset, replace(style, images_per_case=1, noise=0.0), 8, 32, rng=2).images
        inside = (clean > 0.1) & (clean < 0.9)
        assert float((noisy - clean)[inside].std()) == pytest.approx(style.noise, rel=0.15), style.name


def test_gamma_darkens_or_brightens_the_same_patients_as_styled():
    for style in SITE_STYLES["prostate"]:
        if style.gamma == 1:
            continue
        base = dict(images_per_case=1, noise=0.0)
        curved = sample_site("prostate", replace(style, **base), 8, 32, rng=3).images.mean()
        linear = sample_site("prostate", replace(style, gamma=1.0, **base), 8, 32, rng=3).images.mean()
        assert (curved < linear) if style.gamma > 1 else (curved > linear), style.name


def test_endorectal_coil_brightens_the_tissue_next_to_the_rectum():
    style = _clean("prostate")
    plain = sample_site("prostate", style, 12, 64, rng=4)
    coil = sample_site("prostate", replace(style, endorectal_coil=2.0), 12, 64, rng=4)
    assert np.array_equal(plain.true_masks, coil.true_masks)

    def posterior_over_anterior(sample):  # gland rows below its centre vs above it
        ratios = []
        for img, mask in zip(sample.images[:, 0], sample.true_masks[:, 0], strict=True):
            rows = np.nonzero(mask.any(axis=1))[0]
            mid = (rows.min() + rows.max()) // 2
            ratios.append(img[mid + 1:][mask[mid + 1:] > 0].mean() / img[:mid][mask[:mid] > 0].mean())
        return np.mean(ratios)

    assert posterior_over_anterior(coil) > 1.2 * posterior_over_anterior(plain)


def test_mr_slices_are_rescaled_by_their_99th_percentile():
    images = _sample("prostate", _clean("prostate")).images
    p99 = np.percentile(images.reshape(len(images), -1), 99, axis=1)
    np.testing.assert_allclose(p99, 1.0, atol=5e-3)  # interpolated between the clipped top 1% and below


def _outline_contrast(images: np.ndarray, masks: np.ndarray, ring: int) -> np.ndarray:
    """Per image: |mean of a ``ring``-pixel band inside the outline - mean of one outside| / SD inside."""
    from scipy.ndimage import binary_dilation, binary_erosion

    out = []
    for img, mask in zip(images, masks, strict=True):
        inner = mask & ~binary_erosion(mask, iterations=ring)
        outer = binary_dilation(mask, iterations=ring) & ~mask
        out.append(abs(img[inner].mean() - img[outer].mean()) / img[mask].std())
    return np.array(out)


def _synthetic_prostate_contrast() -> float:
    # 2 px at 64 px = 6 px of the benchmark's 384-px crop (the 64-px image is its central half)
    sample = sample_site("prostate", replace(REFERENCE_STYLES["prostate"], images_per_case=5), 12, 64, rng=5)
    return float(np.median(_outline_contrast(sample.images[:, 0], sample.true_masks[:, 0] > 0, ring=2)))


def test_prostate_outline_is_low_contrast_like_real_t2():
    """Inside and just outside the gland differ by about the gland's own spread, not by a clear edge.

    The real two-site sample (``../shared``) gives a median of 0.86 (range 0.05-1.31) with the same measure;
    the old blob-in-noise generator gave about 4.
    """
    assert 0.4 < _synthetic_prostate_contrast() < 1.2


@pytest.mark.realdata
def test_prostate_outline_contrast_matches_the_real_slices(shared):
    from PIL import Image

    root = shared / "realdata" / "prostate_nci_isbi2013_slices"
    images, masks = [], []
    for path in sorted(root.glob("*/*/image/*.png")):
        images.append(np.asarray(Image.open(path).convert("L"), dtype=np.float32) / 255)
        masks.append(np.asarray(Image.open(str(path).replace("/image/", "/mask/")).convert("L")) < 128)  # inverted
    assert len(images) == 12
    real = float(np.median(_outline_contrast(np.stack(images), np.stack(masks), ring=6)))
    assert abs(_synthetic_prostate_contrast() - real) < 0.35, real


def test_prostate_has_gland_like_distractors_and_shrinks_towards_apex_and_base():
    sample = sample_site("prostate", replace(REFERENCE_STYLES["prostate"], images_per_case=9), 12, 64, rng=6)
    img, mask = sample.images[:, 0], sample.true_masks[:, 0] > 0
    lo, hi = np.percentile(img[mask], [10, 90])
    lookalike = ((img >= lo) & (img <= hi) & ~mask).sum() / mask.sum()
    assert lookalike > 2  # more gland-like pixels outside the gland than inside it
    area = mask.reshape(12, 9, -1).sum(-1).mean(0)  # mean area by slice position, apex to base
    assert area[4] > 1.5 * area[0] and area[4] > 1.5 * area[-1]


def _polyp_luminance_and_masks():
    sample = _sample("polyp", _clean("polyp"), size=64)
    return sample.images.mean(axis=1), sample.true_masks[:, 0] > 0  # (N, H, W) each


def test_polyp_sides_are_darker_than_its_top_under_the_endoscope_light():
    """Coaxial light: a raised polyp's steep sides face away from the camera, so its outline is drawn dark."""
    from scipy.ndimage import binary_erosion

    darkening = []
    for img, mask in zip(*_polyp_luminance_and_masks(), strict=True):
        core = binary_erosion(mask, iterations=max(1, int(0.5 * np.sqrt(mask.sum() / np.pi))))  # central half
        rim = mask & ~binary_erosion(mask)  # the outermost pixel ring of the polyp
        darkening.append(1 - img[rim].mean() / img[core].mean())
    assert 0.1 < np.median(darkening) < 0.5  # visible, but the colour alone does not give the polyp away
    assert min(darkening) > 0


def test_polyp_surface_lacks_the_mucosal_vessels():
    """Thin dark lines (vessels, dark in green) cover the mucosa but not the polyp's surface."""
    from scipy.ndimage import binary_dilation, binary_erosion, gaussian_filter

    sample = _sample("polyp", _clean("polyp"), size=64)
    green, masks = sample.images[:, 1], sample.true_masks[:, 0] > 0
    line = green < 0.85 * gaussian_filter(green, (0, 1.5, 1.5))  # darker than its neighbourhood
    mucosa = np.stack([~binary_dilation(m, iterations=3) for m in masks])
    surface = np.stack([binary_erosion(m, iterations=2) for m in masks])
    assert line[mucosa].mean() > 0.05  # the old scene without vessels: 0.02 (fold shadows)
    assert line[surface].mean() < 0.01


def test_coaxial_shading_is_the_cosine_between_the_dome_normal_and_the_view():
    from fedlab.data.synthetic.shapes import coaxial_shading

    radius, step = 40.0, 0.01
    x = np.arange(-radius, radius, step)
    rho = np.abs(x)[None, None, :]  # a line through the centre of a round dome
    boundary = np.full_like(rho, radius)
    for relief in (0.15, 0.5, 1.0):
        h = relief * np.sqrt(np.clip(radius**2 - x**2, 0, None))
        slope = np.gradient(h, step)
        expected = 1 / np.sqrt(1 + slope**2)  # the normal (-h', 1) against the view (0, 1)
        inside = np.abs(x) < 0.95 * radius
        got = coaxial_shading(rho, boundary, relief)[0, 0]
        np.testing.assert_allclose(got[inside], expected[inside], atol=2e-3)
    np.testing.assert_allclose(coaxial_shading(rho, boundary, 1.0)[0, 0], np.sqrt(np.clip(1 - (x / radius) ** 2, 0, 1)),
                               atol=1e-5)  # a hemisphere
    np.testing.assert_allclose(coaxial_shading(rho, boundary, 0.0)[rho < radius], 1.0, atol=1e-6)  # flat
    assert coaxial_shading(np.array([[[50.0]]]), np.array([[[radius]]]), 1.0).item() == 0.0  # beyond the foot


@pytest.mark.parametrize("dataset", ["prostate", "polyp", "fundus"])
def test_site_sizes_follow_the_real_benchmarks(dataset):
    real_images = {"prostate": None, "polyp": (1000, 196, 380, 612), "fundus": (101, 159, 400, 400)}[dataset]
    styles = SITE_STYLES[dataset]
    if real_images is None:
        assert [s.cases for s in styles] == [30, 30, 19, 13, 12, 12]
    else:
        for style, n in zip(styles, real_images, strict=True):
            assert abs(style.cases * style.images_per_case - n) <= 0.05 * n, style.name
    fed = make_federation(dataset, image_size=16, cases_scale=1.0)
    for site, style in zip(fed, styles, strict=True):
        assert len(site.train) + len(site.val) + len(site.test) == style.cases * style.images_per_case


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


def test_splits_carry_case_ids_in_slice_order():
    """Every split knows the case of each image (Split.groups), so a site can be scored per volume."""
    fed = make_federation("prostate", image_size=16, cases_scale=0.25, seed=0)
    for site in fed:
        for split in (site.train, site.val, site.test):
            g = split.groups
            assert g is not None and g.shape == (len(split),) and not g.dtype.is_floating_point
            # a case's images are consecutive (apex to base), never interleaved with another case's
            starts = (g[1:] != g[:-1]).sum().item() + 1
            assert starts == len(torch.unique(g))
        # no case is in two splits
        assert not set(site.train.groups.tolist()) & set(site.test.groups.tolist())
