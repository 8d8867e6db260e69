"""Evaluate site models on site data: per-site scores, and the cross-site matrix."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch
from monai.networks.utils import eval_mode
from torch import nn

from fedlab.data.federation import Federation, Split
from fedlab.metrics import binarize, classification_scores, segmentation_scores, summarize, volume_scores
from fedlab.metrics.segmentation import Spacing

CURVE_METRICS = {"segmentation": ("dice",), "classification": ("auc",)}
FULL_METRICS = {"segmentation": ("dice", "iou", "assd", "hd95"), "classification": ("acc", "sen", "spe", "auc")}
SELECTION_METRIC = {"segmentation": "dice", "classification": "auc"}


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Model outputs (logits) for ``x`` in eval mode without gradients, in chunks of ``batch_size``."""
    with eval_mode(model):
        return torch.cat([model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def evaluate(model: nn.Module, split: Split, task: str, metrics: Sequence[str] | None = None,
             batch_size: int = 32, per: str = "slice", spacing: Spacing = None, hd95: str = "directed",
             postprocess: str | None = None) -> dict[str, float]:
    """Mean scores of ``model`` on one split.

    The segmentation options (``per``, ``spacing``, ``hd95``, ``postprocess``) are those of
    :func:`fedlab.metrics.segmentation_scores` / :func:`fedlab.metrics.volume_scores`, and
    ``fedlab.metrics.describe(metrics, per=..., ...)`` states them under a table.

    Args:
        model: Maps inputs to logits.
        split: The data.
        task: "segmentation" or "classification".
        metrics: Which scores; default all of the task's (Dice, IoU, ASSD, HD95 / ACC, SEN, SPE, AUC).
        batch_size: Inputs per forward pass.
        per: "slice" (mean over 2-D images) or "volume" (each case's slices, given by ``split.groups``,
            stacked and scored in 3-D; mean over cases). Segmentation only.
        spacing: Pixel size for the distances, ``(dy, dx)`` per slice or ``(dz, dy, dx)`` per volume;
            ``None`` means pixels.
        hd95: "directed" (MONAI's, default) or "pooled" (medpy's).
        postprocess: None, "largest_component", "lcfed" or "lcfed_polyp" (see :mod:`fedlab.metrics.postprocess`).

    Raises:
        ValueError: For an unknown ``per``, ``per="volume"`` on a split without case ids or on a
            classification task, or a segmentation option given for classification.
    """
    metrics = tuple(metrics or FULL_METRICS[task])
    if per not in ("slice", "volume"):
        raise ValueError(f"per must be 'slice' or 'volume', got {per!r}.")
    if task != "segmentation" and (per, spacing, hd95, postprocess) != ("slice", None, "directed", None):
        raise ValueError(f"per, spacing, hd95 and postprocess apply to segmentation only; this task is {task!r}.")
    if per == "volume" and split.groups is None:
        raise ValueError("per='volume' needs the case id of every slice, but this split has none (split.groups is "
                         "None); build it with Split(x, y, groups=case_ids), or score per='slice'.")
    logits = predict(model, split.x, batch_size)
    if task == "segmentation":
        distances = any(m in ("assd", "hd95") for m in metrics)
        options = {"spacing": spacing, "distances": distances, "hd95": hd95, "postprocess": postprocess}
        if per == "volume":
            scores = volume_scores(binarize(logits), split.y, split.groups, **options)
        else:
            scores = segmentation_scores(binarize(logits), split.y, **options)
        means = summarize(scores)
        return {m: means[m] for m in metrics}
    scores = classification_scores(split.y, torch.sigmoid(logits.reshape(-1)))
    return {m: scores[m] for m in metrics}


def cross_site_matrix(models: Sequence[nn.Module], federation: Federation, metric: str | None = None,
                      split: str = "test", batch_size: int = 32) -> pd.DataFrame:
    """Score of the model of site i (rows) on the ``split`` data of site j (columns).

    Args:
        models: One model per site, in federation order (a shared model may repeat).
        federation: The sites.
        metric: Score to tabulate; default Dice (segmentation) or AUC (classification).
        split: "test" or "val".
        batch_size: Inputs per forward pass.
    """
    metric = metric or SELECTION_METRIC[federation.task]
    names = federation.site_names
    table = pd.DataFrame(index=pd.Index(names, name="model of"), columns=pd.Index(names, name="data of"),
                         dtype=float)
    for i, model in enumerate(models):
        for site in federation:
            data = getattr(site, split)
            table.loc[names[i], site.name] = evaluate(model, data, federation.task, (metric,), batch_size)[metric]
    return table
