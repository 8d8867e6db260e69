"""Segmentation metrics: Dice, IoU, ASSD and HD95 per image (2-D) or per volume (3-D) and label.

Masks are binary tensors of shape (N, L, H, W) (N images) or (N, L, D, H, W) (N volumes of D slices),
with L foreground labels (one channel per label, no background channel; prostate and polyp have
L = 1, fundus disc + cup has L = 2). MONAI computes everything: ``compute_dice`` / ``compute_iou``
for the overlaps, ``get_mask_edges`` and ``get_surface_distance`` for the surface distances.

Definitions. For one mask pair, the boundary of a mask is its foreground pixels (voxels) with a
face-neighbour (4 in 2-D, 6 in 3-D) outside the mask or outside the image. ``d(p -> t)`` is the
distance of every boundary pixel of the prediction to the nearest boundary pixel of the target, and
``d(t -> p)`` the other way round; distances are Euclidean, in pixels unless ``spacing`` is given.

* Dice ``2|P & T| / (|P| + |T|)``, IoU ``|P & T| / |P | T|``.
* ASSD: the mean of all distances of both directions pooled, ``mean(d(p -> t) + d(t -> p))`` (the
  concatenation), which is medpy's ``assd`` and MONAI's symmetric average surface distance.
* HD95, ``hd95="directed"`` (the default, MONAI's ``compute_hausdorff_distance(percentile=95)``): the
  larger of the two directed 95th percentiles, ``max(P95(d(p -> t)), P95(d(t -> p)))``.
* HD95, ``hd95="pooled"`` (medpy's ``hd95``, used by the LC-Fed code): the 95th percentile of both
  directions pooled, ``P95(d(p -> t) + d(t -> p))``. The two variants differ on most imperfect
  predictions; the directed one is usually the larger, by up to a pixel or a few (with interpolated
  percentiles it can also be slightly smaller).

Percentiles interpolate linearly (numpy's default, as medpy and MONAI).

Empty masks. MONAI and medpy leave these undefined (nan, inf, or an error); fedlab fixes them so that
averages stay finite and the penalty for a missed or hallucinated object is explicit:

==========================  ============  ================================================
case                        dice, iou     assd, hd95
==========================  ============  ================================================
both masks empty            1             0 (nothing to find, nothing found: perfect)
exactly one mask empty      0             the image (volume) diagonal, the worst distance
==========================  ============  ================================================

For comparison, medpy 0.5 gives ``dc`` = nan and ``jc`` = 1 when both masks are empty and raises for
``assd`` / ``hd95`` when either is empty.

Spacing. ``spacing`` is the size of a pixel, ``(dy, dx)`` for 2-D masks and ``(dz, dy, dx)`` for 3-D
masks (``dz`` the distance between slices), or one number for all axes; ``None`` means 1 on every axis,
so distances are in pixels, and in 3-D the slice gap counts as one pixel (what medpy does without
``voxelspacing``, and so what LC-Fed reports). The diagonal above is ``sqrt(sum((size * spacing) ** 2))``.

Post-processing. By default the thresholded prediction is scored as it is; ``postprocess`` can first keep
its largest connected component, or apply the rules of the released LC-Fed test code
(:mod:`fedlab.metrics.postprocess`). Per-volume scores of slice data: :mod:`fedlab.metrics.volumes`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from monai.metrics import compute_dice, compute_iou
from monai.metrics.utils import get_mask_edges, get_surface_distance

from fedlab.metrics.postprocess import postprocess_masks

Spacing = float | Sequence[float] | None
#: The HD95 variants: "directed" (max of the two directed 95th percentiles, MONAI) and "pooled" (medpy).
HD95_VARIANTS = ("directed", "pooled")


def binarize(x: torch.Tensor, threshold: float = 0.5, from_logits: bool = True) -> torch.Tensor:
    """Turn network outputs into a binary mask.

    Each label channel is treated independently (sigmoid, not softmax), which suits both
    single-label tasks and overlapping labels such as optic disc and cup.

    Args:
        x: Logits (``from_logits=True``) or probabilities, any shape, e.g. (N, L, H, W).
        threshold: Probability threshold in (0, 1); a pixel is foreground when its
            probability is strictly greater than it.
        from_logits: Apply a sigmoid to ``x`` first.

    Returns:
        Float tensor of 0s and 1s with the shape, dtype and device of ``x``.

    Raises:
        ValueError: If ``threshold`` is not in (0, 1).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be a probability in (0, 1), got {threshold}.")
    probs = torch.sigmoid(x) if from_logits else x
    return (probs > threshold).to(x.dtype if x.is_floating_point() else torch.float32)


def segmentation_scores(
    pred: torch.Tensor,
    target: torch.Tensor,
    spacing: Spacing = None,
    distances: bool = True,
    hd95: str = "directed",
    postprocess: str | None = None,
) -> dict[str, torch.Tensor]:
    """Dice, IoU, ASSD and HD95 of every image (or volume) and label.

    The definitions, the empty-mask rule and the meaning of ``spacing`` are in the module docstring.
    Dice and IoU are vectorised over the batch (on the input's device); surface distances run on the
    CPU, one mask pair at a time.

    Args:
        pred: Binary prediction (N, L, H, W) or (N, L, D, H, W), e.g. from :func:`binarize`. CPU or CUDA.
        target: Binary ground truth of the same shape, on any device.
        spacing: Pixel size, a number or ``(dy, dx)`` (2-D) / ``(dz, dy, dx)`` (3-D); ``None`` means
            distances in pixels.
        distances: Also compute ``"assd"`` and ``"hd95"`` (the slow part); set ``False`` for
            quick per-round evaluation with Dice and IoU only.
        hd95: ``"directed"`` (default; the larger of the two directed 95th percentiles, as MONAI) or
            ``"pooled"`` (the 95th percentile of both directions' distances together, as medpy).
        postprocess: Clean ``pred`` before scoring: ``None`` (default), ``"largest_component"``,
            ``"lcfed"`` or ``"lcfed_polyp"``; see :mod:`fedlab.metrics.postprocess`.

    Returns:
        ``{"dice", "iou", "assd", "hd95"}`` (the last two only with ``distances``), each a
        float32 CPU tensor of shape (N, L).

    Raises:
        TypeError: If an input is not a torch.Tensor.
        ValueError: If a shape is not (N, L, H, W) or (N, L, D, H, W), the shapes differ, a mask is not
            binary, ``spacing`` is malformed, or ``hd95`` / ``postprocess`` is unknown.
    """
    _check_mask(pred, "pred")
    _check_mask(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {tuple(pred.shape)} and "
            f"target {tuple(target.shape)}."
        )
    if hd95 not in HD95_VARIANTS:
        raise ValueError(f"hd95 must be one of {HD95_VARIANTS}, got {hd95!r}.")
    axes = _spacing(spacing, pred.ndim - 2)  # validated even when distances are not computed
    pred = postprocess_masks(pred, postprocess)
    pred, target = pred.float(), target.to(pred.device).float()
    scores = {
        "dice": compute_dice(pred, target, include_background=True, ignore_empty=False),
        "iou": compute_iou(pred, target, include_background=True, ignore_empty=False),
    }  # each (N, L); ignore_empty=False gives 1 for both empty and 0 for one empty
    scores = {name: value.float().cpu() for name, value in scores.items()}
    if distances:
        scores.update(_surface_distances(pred, target, axes, spacing is not None, hd95))
    return scores


def summarize(scores: dict[str, torch.Tensor], label_names: Sequence[str] | None = None) -> dict[str, float]:
    """Average per-image (or per-volume) scores into one number per metric (and per label when L > 1).

    Args:
        scores: Output of :func:`segmentation_scores`, tensors of shape (N, L).
        label_names: Names for the L labels (e.g. ``["disc", "cup"]``); default ``"0"``, ``"1"``...

    Returns:
        ``{metric: mean over images and labels}``, plus ``{f"{metric}_{label}": mean over
        images}`` for each label when L > 1.

    Raises:
        ValueError: If a score tensor is not 2-D or ``label_names`` has the wrong length.
    """
    summary: dict[str, float] = {}
    for metric, values in scores.items():
        if values.ndim != 2:
            raise ValueError(f"scores[{metric!r}] must have shape (N, L), got {tuple(values.shape)}.")
        summary[metric] = values.float().mean().item()
        n_labels = values.shape[1]
        if n_labels == 1:
            continue
        names = [str(i) for i in range(n_labels)] if label_names is None else list(label_names)
        if len(names) != n_labels:
            raise ValueError(f"label_names has {len(names)} names but the scores have {n_labels} labels.")
        for i, name in enumerate(names):
            summary[f"{metric}_{name}"] = values[:, i].float().mean().item()
    return summary


def _surface_distances(pred: torch.Tensor, target: torch.Tensor, axes: tuple[float, ...], spaced: bool,
                       hd95: str) -> dict[str, torch.Tensor]:
    """ASSD and HD95 (N, L) with the empty-mask convention applied; one edge extraction per mask pair."""
    pred_np = pred.detach().cpu().numpy() != 0  # (N, L, *spatial) bool
    target_np = target.detach().cpu().numpy() != 0
    worst = math.sqrt(sum((size * step) ** 2 for size, step in zip(pred_np.shape[2:], axes, strict=True)))
    out = np.zeros((2, *pred_np.shape[:2]), dtype=np.float32)  # (assd / hd95, N, L)
    for n, label in np.ndindex(*pred_np.shape[:2]):
        p, t = pred_np[n, label], target_np[n, label]
        p_any, t_any = p.any(), t.any()
        if not (p_any and t_any):
            out[:, n, label] = 0.0 if p_any == t_any else worst
            continue
        p, t = _crop_to_union(p, t)
        edges_p, edges_t = get_mask_edges(p, t, crop=False)  # mask minus its erosion (face connectivity)
        spacing = list(axes) if spaced else None
        p_to_t = np.asarray(get_surface_distance(edges_p, edges_t, spacing=spacing), dtype=np.float64)
        t_to_p = np.asarray(get_surface_distance(edges_t, edges_p, spacing=spacing), dtype=np.float64)
        both = np.concatenate([p_to_t, t_to_p])
        out[0, n, label] = both.mean()
        if hd95 == "pooled":
            out[1, n, label] = np.percentile(both, 95)
        else:
            out[1, n, label] = max(np.percentile(p_to_t, 95), np.percentile(t_to_p, 95))
    return {"assd": torch.from_numpy(out[0]), "hd95": torch.from_numpy(out[1])}


def _crop_to_union(p: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both masks cut to the bounding box of their union (both must be non-empty).

    Exact: the erosion counts everything outside the array as background, as it is outside the box,
    and distances do not change under the common shift. It saves work on large, mostly empty volumes.
    """
    box = []
    for axis in range(p.ndim):
        other = tuple(a for a in range(p.ndim) if a != axis)
        hits = np.flatnonzero(p.any(axis=other) | t.any(axis=other))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    box = tuple(box)
    return p[box], t[box]


def _spacing(spacing: Spacing, ndim: int) -> tuple[float, ...]:
    """Spacing per spatial axis from ``None``, a number or a sequence of ``ndim``; clear error otherwise."""
    names = "(dy, dx)" if ndim == 2 else "(dz, dy, dx)"
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, (int, float)):
        values = (float(spacing),) * ndim
    else:
        values = tuple(float(s) for s in spacing)
    if len(values) != ndim or min(values) <= 0 or not all(map(math.isfinite, values)):
        raise ValueError(
            f"spacing must be a positive number or a sequence {names} of {ndim} positive numbers for "
            f"{ndim}-D masks, got {spacing!r}."
        )
    return values


def _check_mask(mask: torch.Tensor, name: str) -> None:
    """Raise a clear error unless ``mask`` is a binary (N, L, H, W) or (N, L, D, H, W) tensor."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape (N, L, H, W) or (N, L, D, H, W), got {type(mask).__name__}."
        )
    if mask.ndim not in (4, 5):
        raise ValueError(
            f"{name} must have shape (N, L, H, W) (images, labels, height, width) or (N, L, D, H, W) "
            f"(volumes, labels, slices, height, width), got {tuple(mask.shape)}; add a label axis with "
            f"{name}.unsqueeze(1) if it is (N, H, W)."
        )
    not_binary = (mask != 0) & (mask != 1)
    if not_binary.any():
        example = mask[not_binary].flatten()[0].item()
        raise ValueError(
            f"{name} must be a binary mask of 0s and 1s, found the value {example:g}; threshold "
            "network outputs first with fedlab.metrics.binarize()."
        )

