"""Systematic annotation noise injected into one site's masks: boundaries drawn looser or tighter.

FedA3I (Wu et al., AAAI 2024) models the label noise of segmentation as a shift of the drawn contour along
its normal, with a per-site mean offset (a site's annotators are consistently generous or consistently
tight) and a smaller random part. :func:`shift_boundary` applies the systematic part, the mean offset:
every mask is replaced by the pixels whose signed distance to the true boundary is at most ``pixels``
(dilation by a disk for ``pixels > 0``, erosion for ``< 0``; Euclidean distance transforms).
:func:`with_noisy_site` does it to one site of a federation, on the splits its annotators labelled
(training and validation); its test masks stay the reference, so that scores measure the truth.

This works on any segmentation federation, synthetic or real. (The synthetic generators have their own
``annotation_margin`` per site style; this adds a margin on top of whatever a site's masks already are.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt

from fedlab.data.federation import Federation, Split


def shift_boundary(masks: torch.Tensor, pixels: float) -> torch.Tensor:
    """Masks whose boundary is moved ``pixels`` outwards (> 0, looser) or inwards (< 0, tighter).

    Args:
        masks: (N, L, H, W) binary masks.
        pixels: Signed offset of the boundary along its normal, in pixels.

    Returns:
        New (N, L, H, W) float masks on the same device. An eroded mask may vanish when ``-pixels`` exceeds
        the object's depth, as a too-tight annotator would miss a small object.
    """
    if masks.ndim != 4:
        raise ValueError(f"masks must be (N, L, H, W), got shape {tuple(masks.shape)}")
    array = masks.detach().cpu().numpy() > 0.5
    out = np.empty(array.shape, dtype=np.float32)
    for index in np.ndindex(array.shape[:2]):
        m = array[index]
        if pixels >= 0:
            out[index] = distance_transform_edt(~m) <= pixels  # background within `pixels` of the object
        else:
            out[index] = distance_transform_edt(m) > -pixels  # object deeper than `-pixels`
    return torch.from_numpy(out).to(device=masks.device, dtype=masks.dtype)


def with_noisy_site(federation: Federation, site: str | int, pixels: float,
                    splits: Sequence[str] = ("train", "val")) -> Federation:
    """A copy of ``federation`` in which one site's annotators drew every boundary ``pixels`` further out.

    Args:
        federation: A segmentation federation.
        site: The site's name or index.
        pixels: Boundary offset in pixels (> 0 looser masks, < 0 tighter).
        splits: The splits whose masks change (default: those the site's annotators labelled for training
            and model selection; the test split stays the reference).

    Returns:
        The new federation; the site's metadata records ``{"injected_annotation_offset": pixels}``.
    """
    if federation.task != "segmentation":
        raise ValueError(f"annotation noise applies to segmentation masks; this federation's task is "
                         f"{federation.task!r}")
    unknown = [s for s in splits if s not in ("train", "val", "test")]
    if unknown:
        raise ValueError(f"splits must be among 'train', 'val', 'test', got {unknown}")
    index = federation.site_names.index(federation[site].name) if isinstance(site, str) else int(site)
    target = federation[index]
    changes = {}
    for name in splits:
        split: Split | None = getattr(target, name)
        if split is not None and len(split):
            changes[name] = Split(split.x, shift_boundary(split.y, pixels), split.groups)
    noisy = replace(target, **changes, metadata={**target.metadata, "injected_annotation_offset": float(pixels)})
    sites = tuple(noisy if k == index else s for k, s in enumerate(federation.sites))
    source = f"{federation.source}; site {target.name} boundaries {pixels:+g} px ({', '.join(splits)})"
    return replace(federation, sites=sites, source=source)


__all__ = ["shift_boundary", "with_noisy_site"]
