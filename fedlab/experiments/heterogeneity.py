"""The heterogeneity taxonomy one axis at a time: synthetic federations that differ along a single axis.

The systematic review sorts what makes federated sites differ into feature skew (P(x): the same anatomy looks
different, e.g. another scanner), label skew (P(y): other patients, e.g. larger or smaller organs) and
concept shift (P(y|x): the same image is labelled differently, e.g. another annotation convention).
fedlab's synthetic sites carry each of them in separate :class:`~fedlab.data.synthetic.SiteStyle` fields:

* **acquisition** -> feature skew (intensity curve, contrast, noise, blur, bias field, resolution ...);
* **population** -> label skew (object size, position and shape distribution);
* **annotation** -> concept shift (systematically looser or tighter boundaries).

:func:`axis_federation` asks the generator for sites that differ along the named axes only
(``make_federation(heterogeneity={axis: h, ...})`` with every other axis at 0, i.e. at the neutral
``REFERENCE_STYLES``): ``{"acquisition": 1}`` keeps only the scanner differences. Site sizes (cases, images per
case) are facts about the sites and are never blended, so data scarcity is the same in every federation of a sweep.
:func:`sweep_federations` builds one federation per axis (each alone at ``scale``) plus the one with no style
differences at all. The axes and their fields are the generator's (``fedlab.data.synthetic.AXES``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split

from fedlab.config import Config
from fedlab.data.federation import Federation, Split
from fedlab.data.label_skew import dirichlet_federation
from fedlab.data.standardize import standardize
from fedlab.data.synthetic import AAL90_ROIS, AXES, make_federation

#: What each axis is in the review's taxonomy.
TAXONOMY: Mapping[str, str] = MappingProxyType({
    "acquisition": "feature skew P(x)", "population": "label skew P(y)", "annotation": "concept shift P(y|x)"})


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

    Raises:
        ValueError: for an unknown axis or a negative scale.
    """
    unknown = sorted(set(scales) - set(AXES))
    if unknown:
        raise ValueError(f"unknown heterogeneity axes {unknown}; use some of {list(AXES)}")
    return make_federation(dataset, config=config, seed=seed,
                           heterogeneity={axis: float(scales.get(axis, 0.0)) for axis in AXES}, **kwargs)


def sweep_federations(dataset: str, scale: float = 1.0, config: Config | None = None, seed: int = 0,
                      **kwargs: object) -> dict[str, Federation]:
    """``{"none": no style differences, axis: that axis alone at scale, ...}`` for every axis."""
    out = {"none": axis_federation(dataset, {}, config, seed, **kwargs)}
    for axis in AXES:
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


__all__ = ["TAXONOMY", "axis_federation", "label_skew_federation", "sweep_federations"]
