"""The heterogeneity taxonomy one axis at a time: synthetic federations that differ along a single axis.

The systematic review sorts what makes federated sites differ into feature skew (P(x): the same anatomy looks
different, e.g. another scanner), label skew (P(y): other patients, e.g. larger or smaller organs) and
concept shift (P(y|x): the same image is labelled differently, e.g. another annotation convention).
fedlab's synthetic sites carry each of them in separate :class:`~fedlab.data.synthetic.SiteStyle` fields:

* **acquisition** -> feature skew (intensity curve, contrast, noise, blur, bias field, resolution ...);
* **population** -> label skew (object size, position and shape distribution);
* **annotation** -> concept shift (systematically looser or tighter boundaries).

:func:`axis_styles` moves each site's style towards the neutral ``REFERENCE_STYLES`` axis by axis,
``reference + h_axis * (style - reference)``: ``{"acquisition": 1, "population": 0, "annotation": 0}`` keeps
only the scanner differences. Site sizes (cases, images per case) are facts about the sites and are never
blended, so data scarcity is the same in every federation of a sweep. :func:`axis_federation` builds the
federation, :func:`sweep_federations` one federation per axis (each alone at ``scale``) plus the one with no
style differences at all.

The axes are the generator's own (``fedlab.data.synthetic.styles.AXES``) when it defines them, else the
field groups documented on :class:`SiteStyle`; every style field must belong to exactly one axis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from types import MappingProxyType

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from fedlab.config import Config
from fedlab.data.federation import Federation, Split
from fedlab.data.label_skew import dirichlet_federation
from fedlab.data.standardize import standardize
from fedlab.data.synthetic import AAL90_ROIS, REFERENCE_STYLES, SITE_STYLES, SiteStyle, make_federation
from fedlab.data.synthetic import styles as _styles

#: The field groups of SiteStyle's docstring (used when the generator does not define AXES itself).
DOCUMENTED_AXES: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "acquisition": ("gamma", "contrast", "brightness", "noise", "blur", "bias_field", "colour_gain", "resolution"),
    "population": ("object_size", "size_spread", "position", "position_spread", "elongation", "irregularity"),
    "annotation": ("annotation_margin",),
})
#: Fields that are facts about a site, never blended.
FACTS = ("name", "cases", "images_per_case")
#: What each axis is in the review's taxonomy.
TAXONOMY: Mapping[str, str] = MappingProxyType({
    "acquisition": "feature skew P(x)", "population": "label skew P(y)", "annotation": "concept shift P(y|x)"})


def style_axes() -> Mapping[str, tuple[str, ...]]:
    """``{axis: SiteStyle fields}``, checked to cover every style field exactly once."""
    axes = getattr(_styles, "AXES", None) or DOCUMENTED_AXES
    assigned = [name for names in axes.values() for name in names]
    expected = [f.name for f in fields(SiteStyle) if f.name not in FACTS]
    if sorted(assigned) != sorted(expected):
        raise RuntimeError(f"the heterogeneity axes do not cover SiteStyle's fields exactly once: unassigned "
                           f"{sorted(set(expected) - set(assigned))}, unknown {sorted(set(assigned) - set(expected))}")
    return axes


def axis_scales(scales: Mapping[str, float]) -> dict[str, float]:
    """Every axis's scale (missing axes: 0, i.e. no differences on that axis)."""
    axes = style_axes()
    unknown = sorted(set(scales) - set(axes))
    if unknown:
        raise ValueError(f"unknown heterogeneity axes {unknown}; use some of {list(axes)}")
    out = {axis: float(scales.get(axis, 0.0)) for axis in axes}
    negative = {k: v for k, v in out.items() if v < 0}
    if negative:
        raise ValueError(f"heterogeneity scales must be >= 0, got {negative}")
    return out


def axis_styles(dataset: str, scales: Mapping[str, float],
                styles: Sequence[SiteStyle] | None = None) -> tuple[SiteStyle, ...]:
    """The sites' styles with each axis moved towards the reference by its own scale.

    Args:
        dataset: "prostate", "polyp" or "fundus".
        scales: ``{axis: h}`` (missing axes: 0); 1 keeps the default differences, 0 removes them, > 1 exaggerates.
        styles: The site styles to start from (default ``SITE_STYLES[dataset]``).

    Returns:
        One style per site; each axis's fields come from ``style.blend(reference, h_axis)``, so the
        generator's own blending (and its clamping to valid ranges) is used for every axis.
    """
    axes, h = style_axes(), axis_scales(scales)
    reference = REFERENCE_STYLES[dataset]
    out = []
    for style in SITE_STYLES[dataset] if styles is None else styles:
        blended = {axis: style.blend(reference, h[axis]) for axis in axes}
        out.append(replace(style, **{name: getattr(blended[axis], name) for axis in axes for name in axes[axis]}))
    return tuple(out)


def axis_federation(dataset: str, scales: Mapping[str, float], config: Config | None = None, seed: int = 0,
                    **kwargs: object) -> Federation:
    """A synthetic federation whose sites differ only along the axes with a non-zero scale.

    Args:
        dataset: "prostate", "polyp" or "fundus".
        scales: ``{axis: h}``; missing axes are 0.
        config: Gives image size and cases scale (see :func:`~fedlab.data.synthetic.make_federation`).
        seed: Seed of the data.
        **kwargs: Passed on to ``make_federation`` (e.g. ``image_size``, ``device``).

    Returns:
        The federation; its ``source`` and every site's ``metadata["heterogeneity"]`` give the per-axis scales.
    """
    h = axis_scales(scales)
    fed = make_federation(dataset, config=config, seed=seed, heterogeneity=1.0, styles=axis_styles(dataset, h),
                          **kwargs)
    label = ", ".join(f"{axis}={v:g}" for axis, v in h.items())
    sites = tuple(replace(s, metadata={**s.metadata, "heterogeneity": dict(h)}) for s in fed)
    return replace(fed, sites=sites, source=fed.source.replace("heterogeneity=1", f"heterogeneity=({label})"))


def sweep_federations(dataset: str, scale: float = 1.0, config: Config | None = None, seed: int = 0,
                      **kwargs: object) -> dict[str, Federation]:
    """``{"none": no style differences, axis: that axis alone at scale, ...}`` for every axis."""
    out = {"none": axis_federation(dataset, {}, config, seed, **kwargs)}
    for axis in style_axes():
        out[axis] = axis_federation(dataset, {axis: scale}, config, seed, **kwargs)
    return out


def label_skew_federation(table: pd.DataFrame, alpha: float, num_sites: int = 4, seed: int = 0,
                          test_fraction: float = 0.2, synthetic: bool = True) -> Federation:
    """Label skew alone on a tabular cohort: pool it, hold out one test set, deal the rest out by Dirichlet(alpha).

    The sites of the result differ only in their class balance (and size): every site draws from the same
    pooled population (scanners and phases mixed), so the federation isolates P(y) skew.

    Args:
        table: An ADNI-schema table (``diagnosis`` "AD"/"NC" and the 90 AAL ROI columns), e.g.
            :func:`fedlab.data.synthetic.make_adni_cohort` or a validated ADNI CSV.
        alpha: Dirichlet concentration (large: balanced sites; small: one class dominates each site).
        num_sites: Number of sites.
        seed: Seeds the stratified test split and the partition.
        test_fraction: Share of subjects in the common test set (stratified by diagnosis).
        synthetic: Label the federation synthetic (True for the synthetic cohort).

    Returns:
        A classification federation (label 1 = AD), features standardised with federated training statistics
        (:func:`fedlab.data.standardize.standardize`), the same test set at every site.
    """
    x = torch.tensor(table[list(AAL90_ROIS)].to_numpy(dtype=np.float32))
    y = torch.tensor((table["diagnosis"] == "AD").to_numpy(dtype=np.float32))
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=test_fraction, random_state=seed,
                                           stratify=y.numpy())
    train = Split(x[train_idx], y[train_idx])
    test = Split(x[test_idx], y[test_idx])
    name = "ADNI-like cohort (synthetic)" if synthetic else "ADNI cohort"
    fed = dirichlet_federation(train, test, num_sites, alpha, seed=seed, name="adni", synthetic=synthetic,
                               source=f"{name}, pooled,")
    return standardize(fed, "federated")[0]


__all__ = ["DOCUMENTED_AXES", "TAXONOMY", "axis_federation", "axis_scales", "axis_styles", "label_skew_federation",
           "style_axes", "sweep_federations"]
