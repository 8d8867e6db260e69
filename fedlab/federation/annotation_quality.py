"""Estimate how noisy a site's annotations are from the boundary of its masks (FedA3I's estimator).

FedA3I (Wu et al., AAAI 2024) models segmentation label noise as a *contour* shift: a site's annotators
draw boundaries systematically outside (looser masks) or inside (tighter masks) the true one. A shared
model trained on several sites learns roughly the consensus boundary, so at a site whose masks are
looser, the model disagrees with the labels in a band just *inside* the drawn boundary (the labels say
1 where the model says 0); at a site with tighter masks, in a band just *outside*. The estimator, as in
the authors' code (``cal_loss_two_directions``):

1. per image and label, the inner band is the labelled object and the outer band the background pixels
   within the same distance ``d`` of the boundary, ``d`` = the smaller of the object's largest depth
   and the background's largest distance (:func:`boundary_bands`, Euclidean distance transforms);
2. the site computes the mean per-pixel binary cross-entropy of the global model's prediction in each
   band, averaged over its images (:func:`band_losses`); only these two numbers per label leave the site;
3. the server turns the sites' reports into quality weights (:func:`quality_weights`).

Step 3 differs from the authors' code, stated plainly: they split the sites into an "expanding" and a
"shrinking" group with a two-component Gaussian mixture and min-max normalise the noise within each
group; with a handful of sites a mixture fit is unstable, so here the noise score of a site is how far
its boundary asymmetry (inner minus outer band loss) lies from the federation's median asymmetry,
``s_k = |a_k - median_j a_j|``, in either direction, and the quality ``q_k = 1 - (s_k - min s) /
(max s - min s)`` is the authors' min-max normalisation over all sites (1 for the most typical site,
0 for the least). Like the authors' weights, it ranks sites and always gives one site quality 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import distance_transform_edt


def boundary_bands(masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The inner and outer boundary bands of every mask (FedA3I's ``region``).

    Args:
        masks: (N, L, H, W) binary masks.

    Returns:
        ``(inner, outer)``, two (N, L, H, W) boolean tensors on the masks' device: object pixels within
        distance ``d`` of the boundary and background pixels within ``d`` of it. Empty or full masks
        have empty bands.
    """
    if masks.ndim != 4:
        raise ValueError(f"masks must be (N, L, H, W), got shape {tuple(masks.shape)}")
    array = masks.detach().cpu().numpy() > 0.5
    inner = np.zeros_like(array)
    outer = np.zeros_like(array)
    for n in range(array.shape[0]):
        for c in range(array.shape[1]):
            m = array[n, c]
            if not m.any() or m.all():
                continue
            depth = distance_transform_edt(m)  # inside: distance to the nearest background pixel
            reach = distance_transform_edt(~m)  # outside: distance to the nearest object pixel
            d = min(depth.max(), reach.max())
            inner[n, c] = m & (depth <= d)
            outer[n, c] = ~m & (reach <= d)
    return torch.from_numpy(inner).to(masks.device), torch.from_numpy(outer).to(masks.device)


def band_losses(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of the predictions in the inner and outer boundary band, per label.

    Args:
        logits: (N, L, H, W) model outputs.
        masks: (N, L, H, W) the site's annotations.

    Returns:
        (L, 2) tensor: ``[:, 0]`` the inner band, ``[:, 1]`` the outer band; each the mean over images
        of the per-image band mean (images without a band are skipped; NaN if none has one).
    """
    if logits.shape != masks.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and masks {tuple(masks.shape)} must have the same shape")
    loss = F.binary_cross_entropy_with_logits(logits.float(), masks.float(), reduction="none")  # (N, L, H, W)
    out = []
    for band in boundary_bands(masks):
        band = band.float()
        pixels = band.sum(dim=(2, 3))  # (N, L)
        per_image = (loss * band).sum(dim=(2, 3)) / pixels  # NaN where an image has no band
        out.append(per_image.nanmean(dim=0))  # (L,)
    return torch.stack(out, dim=1)  # (L, 2)


def noise_scores(reports: Sequence[torch.Tensor]) -> np.ndarray:
    """Each site's distance from the federation's typical boundary asymmetry.

    Args:
        reports: One (L, 2) :func:`band_losses` report per site.

    Returns:
        (K,) scores ``|a_k - median_j a_j|`` with ``a_k`` = the site's inner minus outer band loss summed
        over labels; larger = the site's boundaries disagree more with the shared model than the others' do.
    """
    if not reports:
        raise ValueError("noise_scores needs at least one report")
    asym = np.array([float((r[:, 0] - r[:, 1]).nansum()) for r in reports])
    return np.abs(asym - np.median(asym))


def quality_weights(reports: Sequence[torch.Tensor]) -> np.ndarray:
    """Quality in [0, 1] per site: ``1 - (s_k - min s) / (max s - min s)`` of the :func:`noise_scores`.

    All sites get 1 when their scores are equal (nothing to tell them apart).
    """
    scores = noise_scores(reports)
    spread = scores.max() - scores.min()
    if not math.isfinite(spread):
        raise ValueError(f"noise scores must be finite, got {scores.tolist()}; a site reported no boundary band")
    if spread == 0:
        return np.ones_like(scores)
    return 1.0 - (scores - scores.min()) / spread


def layer_mix(keys: Sequence[str]) -> dict[str, float]:
    """FedA3I's layer-wise share of the quality weights: 0 for the first layer, 1 for the last, linear between.

    A layer is the module owning a tensor (the key without its last part); layers are taken in the order the
    keys list them, which for fedlab's U-Net (encoder, decoder, head) is input-to-output order. The authors
    use ``alpha_l = l / (L - 1)`` over the ten stages of their U-Net (options ``weight=1, power=1, bias=0``).

    Returns:
        ``{key: alpha}``; the aggregation weight of site k for that key is
        ``alpha * q_k / sum q + (1 - alpha) * n_k / n``.
    """
    layers: list[str] = []
    for key in keys:
        layer = key.rsplit(".", 1)[0]
        if layer not in layers:
            layers.append(layer)
    last = max(len(layers) - 1, 1)
    position = {layer: i / last for i, layer in enumerate(layers)}
    return {key: position[key.rsplit(".", 1)[0]] if len(layers) > 1 else 1.0 for key in keys}


__all__ = ["band_losses", "boundary_bands", "layer_mix", "noise_scores", "quality_weights"]
