"""Per-volume scoring: the 2-D slices of each case grouped back into a 3-D volume and scored in 3-D.

Slice-based federations (prostate MR) train and predict on 2-D slices, but papers such as LC-Fed report
one score per 3-D case: its slices are stacked into a volume, scored once with 3-D surface distances, and
the site's number is the mean over its volumes. A per-slice mean weights every slice equally instead and
measures distances within slices only, so the two protocols give different numbers for the same model.
"""

from __future__ import annotations

import torch

from fedlab.metrics.segmentation import Spacing, segmentation_scores


def volume_slices(groups: torch.Tensor) -> list[torch.Tensor]:
    """The slice indices of each volume.

    Args:
        groups: Case id of every slice (N,), integers. The slices of a case need not be contiguous.

    Returns:
        One index tensor (CPU, long) per case, cases in order of first appearance in ``groups`` and the
        slices of each case in their stored order (which must be the anatomical order for the 3-D
        surface distances to mean anything).

    Raises:
        ValueError: If ``groups`` is not a 1-D integer tensor.
    """
    if not isinstance(groups, torch.Tensor) or groups.ndim != 1 or groups.is_floating_point() or groups.is_complex():
        shape = tuple(groups.shape) if isinstance(groups, torch.Tensor) else type(groups).__name__
        raise ValueError(f"groups must be a 1-D integer tensor of case ids (N,), got {shape}.")
    groups = groups.cpu()
    ids, first = [], {}
    for i, case in enumerate(groups.tolist()):
        if case not in first:
            first[case] = []
            ids.append(case)
        first[case].append(i)
    return [torch.tensor(first[case], dtype=torch.long) for case in ids]


def volume_scores(
    pred: torch.Tensor,
    target: torch.Tensor,
    groups: torch.Tensor,
    spacing: Spacing = None,
    distances: bool = True,
    hd95: str = "directed",
    postprocess: str | None = None,
) -> dict[str, torch.Tensor]:
    """Dice, IoU, ASSD and HD95 of every volume and label, from 2-D slices and their case ids.

    Each case's slices (in stored order, see :func:`volume_slices`) are stacked into a (1, L, D, H, W)
    volume and scored by :func:`fedlab.metrics.segmentation_scores`, so the result equals scoring the
    stacked volumes directly. The metric definitions and the empty-mask rule (now per volume) are those
    of :mod:`fedlab.metrics.segmentation`.

    Args:
        pred: Binary slice predictions (N, L, H, W).
        target: Binary slice ground truth (N, L, H, W).
        groups: Case id of every slice (N,), integers.
        spacing: Voxel size, one number or ``(dz, dy, dx)`` with ``dz`` the slice gap; ``None``
            means 1 on every axis (distances in pixels, the slice gap counted as one pixel).
        distances: Also compute ``"assd"`` and ``"hd95"``.
        hd95: ``"directed"`` or ``"pooled"``; see :mod:`fedlab.metrics.segmentation`.
        postprocess: ``None``, ``"largest_component"`` (the largest 3-D component of each volume),
            ``"lcfed"`` (LC-Fed's per-slice rule) or ``"lcfed_polyp"``; see :mod:`fedlab.metrics.postprocess`.

    Returns:
        ``{"dice", "iou", "assd", "hd95"}`` (the last two only with ``distances``), float32 CPU tensors
        of shape (V, L), one row per case in order of first appearance in ``groups``.

    Raises:
        TypeError: If a mask is not a torch.Tensor.
        ValueError: If the masks are not (N, L, H, W), ``groups`` is not (N,) integers, or another argument
            is malformed.
    """
    for name, mask in (("pred", pred), ("target", target)):
        if not isinstance(mask, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor of slices (N, L, H, W), got {type(mask).__name__}.")
        if mask.ndim != 4:
            raise ValueError(f"{name} must hold 2-D slices (N, L, H, W) to be grouped into volumes, got "
                             f"{tuple(mask.shape)}; score 3-D volumes directly with segmentation_scores().")
    index = volume_slices(groups)
    if len(groups) != len(pred) or len(groups) != len(target):
        raise ValueError(f"groups has {len(groups)} case ids but pred has {len(pred)} and target "
                         f"{len(target)} slices; give one case id per slice.")
    if not index:  # no slices, no volumes
        names = ("dice", "iou", "assd", "hd95") if distances else ("dice", "iou")
        return {name: torch.zeros(0, pred.shape[1]) for name in names}
    per_volume = []
    for rows in index:
        rows = rows.to(pred.device)
        volume_pred = pred[rows].movedim(0, 1).unsqueeze(0)  # (D, L, H, W) -> (1, L, D, H, W)
        volume_target = target[rows.to(target.device)].movedim(0, 1).unsqueeze(0)
        per_volume.append(segmentation_scores(volume_pred, volume_target, spacing, distances, hd95, postprocess))
    return {name: torch.cat([scores[name] for scores in per_volume]) for name in per_volume[0]}
