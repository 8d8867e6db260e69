"""Embedded synthetic multi-site 2D segmentation federations shaped like the LC-Fed benchmarks.

* ``prostate``: prostate-like axial T2 MR slices, 1 channel, label "prostate", 6 sites A-F whose case
  counts follow the multi-site prostate benchmark (30/30/19/13/12/12 cases, 10 slices per case);
* ``polyp``: colonoscopy-like frames, RGB, label "polyp", 4 sites A-D sized like Kvasir-SEG,
  ETIS-Larib, CVC-ColonDB and CVC-ClinicDB;
* ``fundus``: disc-centred fundus crops, RGB, labels "disc" and "cup" (cup inside disc), 4 sites A-D
  sized like Drishti-GS, RIM-ONE-r3, REFUGE-train and REFUGE-val.

The mechanisms the lessons teach, each with its knob (see ``styles.py`` for the real counterparts):

* **data scarcity**: the number of cases per site (``SiteStyle.cases``, scaled by ``cases_scale``)
  on images hard enough that a dozen cases do not cover the variation between patients
  (``scenes.py``: anatomy, texture, distractors of similar intensity, low-contrast outlines);
* **acquisition shift** (feature-level inconsistency): intensity curve, contrast, noise, blur, bias
  field, endorectal coil, colour cast, resolution (``heterogeneity={"acquisition": ...}``);
* **population shift**: object size, position and shape distributions (``"population"``);
* **annotation style** (prediction-level inconsistency at the boundary): systematic margins and
  random inter-observer jitter, sized like published inter-observer variability (``"annotation"``).

``heterogeneity`` scales the style differences from the neutral reference style: one number for all
axes, or a mapping with one scale per axis (0 = all sites share the reference on that axis). Site
sizes are facts and never scaled by it. The generator knows nothing about training methods.

Each site is generated from its own generator ``numpy.random.default_rng([seed, dataset, site])``,
and random draws never depend on style values, so a site does not change when another site's style
does, and a style change keeps the same patients. Train / val / test are split by case: slices of
one case never straddle splits. Everything is labelled synthetic (``Federation.synthetic``,
``Site.metadata["synthetic"]``).

Example:
    >>> fed = make_federation("prostate", image_size=32, cases_scale=0.25, seed=0)
    >>> fed.title, fed.site_names
    ('prostate (synthetic)', ['A', 'B', 'C', 'D', 'E', 'F'])
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch

from fedlab.config import Config
from fedlab.data.federation import Federation, Site, Split
from fedlab.data.partition import split_by_group
from fedlab.data.synthetic.acquisition import acquire
from fedlab.data.synthetic.scenes import Scene, fundus_scene, polyp_scene, prostate_scene
from fedlab.data.synthetic.styles import REFERENCE_STYLES, SITE_STYLES, SiteStyle, axis_scales


@dataclass(frozen=True)
class DatasetSpec:
    """Fixed facts of one synthetic task."""

    code: int  # part of every site's seed
    channels: int
    labels: tuple[str, ...]
    scene: Callable[[np.random.Generator, SiteStyle, int, int], Scene]
    modelled_on: tuple[str, ...]  # the real sites each synthetic site loosely imitates (documentation only)
    normalise: bool = False  # rescale each image by its 99th percentile (MR preprocessing)


DATASETS: MappingProxyType[str, DatasetSpec] = MappingProxyType({
    "prostate": DatasetSpec(0, 1, ("prostate",), prostate_scene,
                            ("RUNMC", "BMC", "I2CVB", "UCL", "BIDMC", "HK"), normalise=True),
    "polyp": DatasetSpec(1, 3, ("polyp",), polyp_scene,
                         ("Kvasir", "ETIS", "CVC-ColonDB", "CVC-ClinicDB")),
    "fundus": DatasetSpec(2, 3, ("disc", "cup"), fundus_scene,
                          ("Drishti-GS", "RIM-ONE-r3", "REFUGE-train", "REFUGE-val")),
})


@dataclass(frozen=True)
class SiteSample:
    """All images of one synthetic site, with its true objects and its annotators' masks.

    Attributes:
        images: (N, C, H, W) float32 images in [0, 1], rendered from the true objects.
        true_masks: (N, L, H, W) float32 0/1 true objects.
        masks: (N, L, H, W) float32 0/1 masks as annotated at this site (the training labels).
        case_ids: (N,) int64 case of every image (images of a case are consecutive).
        style: The (already blended) style that produced them.
    """

    images: np.ndarray
    true_masks: np.ndarray
    masks: np.ndarray
    case_ids: np.ndarray
    style: SiteStyle


def _spec(dataset: str) -> DatasetSpec:
    if dataset not in DATASETS:
        raise ValueError(f"Unknown synthetic dataset {dataset!r}; choose one of {sorted(DATASETS)}.")
    return DATASETS[dataset]


def sample_site(dataset: str, style: SiteStyle, num_cases: int, image_size: int = 64,
                rng: np.random.Generator | int = 0) -> SiteSample:
    """Generate every image of one site (vectorised over images).

    Args:
        dataset: "prostate", "polyp" or "fundus".
        style: The site's style (used as given; blend it first for a heterogeneity below 1).
        num_cases: Number of cases; the site has ``num_cases * style.images_per_case`` images.
        image_size: Side of the square images in pixels.
        rng: A generator or a seed. The same seed and dataset size give the same true objects for
            any style values, so two styles can be compared on identical patients.

    Returns:
        The images, true masks, annotated masks and case ids.
    """
    spec = _spec(dataset)
    if num_cases < 1:
        raise ValueError(f"num_cases must be >= 1, got {num_cases!r}")
    if image_size < 16:
        raise ValueError(f"image_size must be >= 16 pixels, got {image_size!r}")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    scene = spec.scene(rng, style, num_cases, image_size)  # image (N,C,H,W), true / annotated (N,L,H,W)
    images = acquire(rng, scene.image, style, coil=scene.coil, normalise=spec.normalise)
    case_ids = np.repeat(np.arange(num_cases, dtype=np.int64), style.images_per_case)
    return SiteSample(images, scene.true, scene.annotated, case_ids, style)


def _resolve(explicit, config: Config | None, field: str, default):
    if explicit is not None:
        return explicit
    return getattr(config, field) if config is not None else default


def make_federation(dataset: str = "prostate", image_size: int | None = None,
                    cases_scale: float | None = None, seed: int = 0,
                    heterogeneity: float | Mapping[str, float] = 1.0,
                    val_fraction: float = 0.2, test_fraction: float = 0.2,
                    device: torch.device | str = "cpu", *,
                    config: Config | None = None, styles: Sequence[SiteStyle] | None = None) -> Federation:
    """Build a synthetic multi-site segmentation federation.

    Args:
        dataset: "prostate", "polyp" or "fundus".
        image_size: Side of the square images (default: ``config.image_size``, else 64).
        cases_scale: Multiplier on every site's number of cases (default: ``config.cases_scale``,
            else 1). Each site keeps enough cases to fill every split.
        seed: Seed of the whole federation.
        heterogeneity: Scale of the style differences between sites (0 = identical styles,
            1 = the defaults, > 1 exaggerated): one number for every axis, or a mapping
            ``{"acquisition": a, "population": p, "annotation": n}`` (missing axes keep 1) to vary
            one mechanism alone. Site sizes are not affected.
        val_fraction: Fraction of each site's cases for validation.
        test_fraction: Fraction of each site's cases for test.
        device: Where the tensors are put.
        config: A :class:`fedlab.config.Config` giving ``image_size`` and ``cases_scale``
            (explicit arguments win).
        styles: Site styles to use instead of ``SITE_STYLES[dataset]`` (e.g. with one effect changed
            via ``dataclasses.replace``).

    Returns:
        The federation; every split carries its images' case ids (``Split.groups``, so a site can be
        scored per volume); ``site.metadata`` holds the style, the case names of each split and ``synthetic=True``.

    Raises:
        ValueError: for an unknown dataset, invalid sizes / fractions or heterogeneity.
    """
    spec = _spec(dataset)
    scales = axis_scales(heterogeneity)
    image_size = int(_resolve(image_size, config, "image_size", 64))
    cases_scale = float(_resolve(cases_scale, config, "cases_scale", 1.0))
    if cases_scale <= 0:
        raise ValueError(f"cases_scale must be > 0, got {cases_scale!r}")
    styles = tuple(SITE_STYLES[dataset] if styles is None else styles)
    min_cases = 1 + (val_fraction > 0) + (test_fraction > 0)
    reference = REFERENCE_STYLES[dataset]
    sites = []
    for k, base in enumerate(styles):
        style = base.blend(reference, heterogeneity)
        num_cases = max(min_cases, round(base.cases * cases_scale))
        rng = np.random.default_rng([seed, spec.code, k])
        sample = sample_site(dataset, style, num_cases, image_size, rng)
        split_seed = int(np.random.SeedSequence([seed, spec.code, k, 1]).generate_state(1)[0])
        parts = split_by_group(sample.case_ids, val_fraction, test_fraction, split_seed)
        x, y = torch.from_numpy(sample.images), torch.from_numpy(sample.masks)
        g = torch.from_numpy(sample.case_ids)  # (N,) case of every image; a case's slices run apex -> base
        train, val, test = (Split(x[idx], y[idx], g[idx]).to(device) for idx in map(torch.from_numpy, parts))
        names = [f"{style.name}-{c:03d}" for c in range(num_cases)]
        cases = {split: sorted({names[c] for c in sample.case_ids[idx]})
                 for split, idx in zip(("train", "val", "test"), parts, strict=True)}
        metadata = {
            "synthetic": True,
            "dataset": dataset,
            "modelled_on": spec.modelled_on[k] if len(styles) == len(spec.modelled_on) else None,
            "style": style.to_dict(),
            "num_cases": num_cases,
            "cases": cases,
            "heterogeneity": scales,
        }
        sites.append(Site(style.name, train=train, test=test, val=val, metadata=metadata))
    het = (f"{float(heterogeneity):g}" if not isinstance(heterogeneity, Mapping)
           else ",".join(f"{axis}:{h:g}" for axis, h in scales.items()))
    source = (f"fedlab.data.synthetic {dataset} seed={seed} size={image_size} cases_scale={cases_scale:g} "
              f"heterogeneity={het}")
    return Federation(dataset, tuple(sites), task="segmentation", labels=spec.labels, synthetic=True,
                      source=source)


def make_prostate(**kwargs) -> Federation:
    """Synthetic prostate-like MR federation (6 sites); arguments as :func:`make_federation`."""
    return make_federation("prostate", **kwargs)


def make_polyp(**kwargs) -> Federation:
    """Synthetic polyp-like endoscopy federation (4 sites, RGB); arguments as :func:`make_federation`."""
    return make_federation("polyp", **kwargs)


def make_fundus(**kwargs) -> Federation:
    """Synthetic fundus optic disc / cup federation (4 sites, RGB, 2 labels); as :func:`make_federation`."""
    return make_federation("fundus", **kwargs)
