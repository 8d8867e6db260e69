"""Segmentation metrics: Dice, IoU, ASSD and HD95 per image and label, computed by MONAI.

Masks are binary tensors of shape (N, L, H, W): N images, L foreground labels (one channel per
label, no background channel; prostate and polyp have L = 1, fundus disc + cup has L = 2).

Empty masks. MONAI leaves these undefined (nan or inf); fedlab fixes them so that averages stay
finite and the penalty for a missed or hallucinated object is explicit:

==========================  ============  ================================================
case                        dice, iou     assd, hd95
==========================  ============  ================================================
both masks empty            1             0 (nothing to find, nothing found: perfect)
exactly one mask empty      0             the image diagonal, the worst possible distance
==========================  ============  ================================================

Distances are in pixels (as LC-Fed reports ASSD) unless ``spacing`` is given; the image diagonal
is ``sqrt((H * dy) ** 2 + (W * dx) ** 2)`` with ``spacing = (dy, dx)``, default 1.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_dice,
    compute_hausdorff_distance,
    compute_iou,
)

Spacing = float | Sequence[float] | None


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
) -> dict[str, torch.Tensor]:
    """Dice, IoU, ASSD and HD95 of every image and label.

    Dice and IoU are vectorised over the batch (MONAI ``compute_dice`` / ``compute_iou``).
    ASSD is MONAI's symmetric average surface distance (mean over the boundary pixels of both
    masks); HD95 is MONAI's 95th-percentile Hausdorff distance (the larger of the two directed
    95th percentiles). Boundaries are the mask pixels with a 4-neighbour outside the mask.
    Surface distances run on the CPU whatever the input device. Empty masks follow the table
    in the module docstring.

    Args:
        pred: Binary prediction (N, L, H, W), e.g. from :func:`binarize`. CPU or CUDA.
        target: Binary ground truth (N, L, H, W), on any device.
        spacing: Pixel size, a number or ``(dy, dx)``; ``None`` means distances in pixels.
        distances: Also compute ``"assd"`` and ``"hd95"`` (the slow part); set ``False`` for
            quick per-round evaluation with Dice and IoU only.

    Returns:
        ``{"dice", "iou", "assd", "hd95"}`` (the last two only with ``distances``), each a
        float32 CPU tensor of shape (N, L).

    Raises:
        TypeError: If an input is not a torch.Tensor.
        ValueError: If a shape is not (N, L, H, W), the shapes differ, a mask is not binary,
            or ``spacing`` is malformed.
    """
    _check_mask(pred, "pred")
    _check_mask(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same shape, got pred {tuple(pred.shape)} and "
            f"target {tuple(target.shape)}."
        )
    pred, target = pred.float(), target.to(pred.device).float()
    scores = {
        "dice": compute_dice(pred, target, include_background=True, ignore_empty=False),
        "iou": compute_iou(pred, target, include_background=True, ignore_empty=False),
    }  # each (N, L); ignore_empty=False gives 1 for both empty and 0 for one empty
    scores = {name: value.float().cpu() for name, value in scores.items()}
    if distances:
        scores.update(_surface_distances(pred.cpu(), target.cpu(), spacing))
    return scores


def summarize(scores: dict[str, torch.Tensor], label_names: Sequence[str] | None = None) -> dict[str, float]:
    """Average per-image scores into one number per metric (and per label when L > 1).

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


def _surface_distances(pred: torch.Tensor, target: torch.Tensor, spacing: Spacing) -> dict[str, torch.Tensor]:
    """ASSD and HD95 (N, L) with the empty-mask convention applied."""
    height, width = pred.shape[-2:]
    dy, dx = _spacing_2d(spacing)
    spacing = None if spacing is None else [dy, dx]
    with warnings.catch_warnings():  # MONAI warns about empty masks; we define those cases below
        warnings.filterwarnings("ignore", message=".*is all 0, this may result in nan/inf distance")
        warnings.filterwarnings("ignore", message=".*always_return_as_numpy", category=FutureWarning)
        kwargs = {"include_background": True, "spacing": spacing}
        assd = compute_average_surface_distance(pred, target, symmetric=True, **kwargs)
        hd95 = compute_hausdorff_distance(pred, target, percentile=95, **kwargs)
    pred_empty = pred.flatten(2).sum(-1) == 0  # (N, L)
    target_empty = target.flatten(2).sum(-1) == 0
    worst = torch.tensor(math.hypot(height * dy, width * dx))
    out = {}
    for name, value in (("assd", assd), ("hd95", hd95)):
        value = torch.where(pred_empty ^ target_empty, worst, value.float().cpu())
        out[name] = torch.where(pred_empty & target_empty, torch.tensor(0.0), value)
    return out


def _spacing_2d(spacing: Spacing) -> tuple[float, float]:
    """(dy, dx) from ``None``, a number or a pair; clear error otherwise."""
    if spacing is None:
        return 1.0, 1.0
    if isinstance(spacing, (int, float)):
        values = (float(spacing), float(spacing))
    else:
        values = tuple(float(s) for s in spacing)
    if len(values) != 2 or min(values) <= 0:
        raise ValueError(f"spacing must be a positive number or a pair (dy, dx) of them, got {spacing!r}.")
    return values


def _check_mask(mask: torch.Tensor, name: str) -> None:
    """Raise a clear error unless ``mask`` is a binary (N, L, H, W) tensor."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N, L, H, W), got {type(mask).__name__}.")
    if mask.ndim != 4:
        raise ValueError(
            f"{name} must have shape (N, L, H, W) (images, labels, height, width), got "
            f"{tuple(mask.shape)}; add a label axis with {name}.unsqueeze(1) if it is (N, H, W)."
        )
    not_binary = (mask != 0) & (mask != 1)
    if not_binary.any():
        example = mask[not_binary].flatten()[0].item()
        raise ValueError(
            f"{name} must be a binary mask of 0s and 1s, found the value {example:g}; threshold "
            "network outputs first with fedlab.metrics.binarize()."
        )
