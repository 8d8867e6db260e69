"""How a table's segmentation scores were computed, in words: the footnote printed under result tables.

The same model gets different numbers under different protocols (per slice or per volume, the HD95
variant, the units of distance, post-processing of the prediction), so every table of scores says which
one produced it: ``fedlab.metrics.describe(metrics, **options)`` with the options given to
:func:`fedlab.metrics.segmentation_scores` / :func:`fedlab.metrics.volume_scores` (or to ``evaluate``).
"""

from __future__ import annotations

from collections.abc import Sequence

from fedlab.metrics.postprocess import POSTPROCESS
from fedlab.metrics.segmentation import HD95_VARIANTS, Spacing, _spacing

#: Segmentation metric -> its name in a footnote.
METRIC_NAMES = {"dice": "Dice", "iou": "IoU", "assd": "ASSD", "hd95": "HD95"}
#: The scoring units: each 2-D image, or each 3-D case rebuilt from its slices.
PER = ("slice", "volume")

#: The options under which the released LC-Fed test code (``scripts/tester_utils.py``) scores each dataset:
#: medpy's ``dc``, ``jc``, ``assd``, ``hd95`` without voxel spacing; prostate per 3-D case (the case's slices
#: stacked), fundus and polyp per 2-D image; the post-processing described in :mod:`fedlab.metrics.postprocess`
#: (for polyp the rule applied to the baselines; LC-Fed's own polyp predictions get none).
LCFED_PROTOCOL = {
    "prostate": {"per": "volume", "hd95": "pooled", "spacing": None, "postprocess": "lcfed"},
    "fundus": {"per": "slice", "hd95": "pooled", "spacing": None, "postprocess": "lcfed"},
    "polyp": {"per": "slice", "hd95": "pooled", "spacing": None, "postprocess": "lcfed_polyp"},
}

_POSTPROCESS_TEXT = {
    None: "predictions scored as thresholded (no post-processing)",
    "largest_component": "only the largest connected component of each predicted mask kept",
    "lcfed": ("predictions post-processed as in the released LC-Fed test code (the largest 4-connected "
              "component of each slice kept, an empty slice prediction made all foreground)"),
    "lcfed_polyp": ("predictions post-processed as in the released LC-Fed test code for polyp (an empty "
                    "prediction gets its top-left pixel set to foreground)"),
}


def describe(metrics: Sequence[str], per: str = "slice", hd95: str = "directed", spacing: Spacing = None,
             postprocess: str | None = None) -> str:
    """A short footnote that states how the given segmentation scores were computed.

    Args:
        metrics: The metrics the table shows, from ``"dice"``, ``"iou"``, ``"assd"``, ``"hd95"``.
        per: ``"slice"`` (every 2-D image scored, mean over images) or ``"volume"`` (every case's slices
            stacked and scored in 3-D, mean over cases).
        hd95: ``"directed"`` or ``"pooled"`` (see :mod:`fedlab.metrics.segmentation`).
        spacing: The ``spacing`` the scores were computed with (``None``: pixels).
        postprocess: The ``postprocess`` option (see :mod:`fedlab.metrics.postprocess`).

    Returns:
        Two or three sentences, e.g. for ``describe(["iou", "assd"])``: "Scores per 2-D image, averaged
        over each site's images; predictions scored as thresholded (no post-processing). Distances in
        pixels: ASSD is the mean boundary-to-boundary distance, both directions pooled. Empty masks: ..."

    Raises:
        ValueError: For an unknown metric, ``per``, ``hd95`` or ``postprocess``, or a malformed ``spacing``.
    """
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty list from {list(METRIC_NAMES)}, got {metrics!r}.")
    if per not in PER:
        raise ValueError(f"per must be one of {PER}, got {per!r}.")
    if hd95 not in HD95_VARIANTS:
        raise ValueError(f"hd95 must be one of {HD95_VARIANTS}, got {hd95!r}.")
    if postprocess not in POSTPROCESS:
        raise ValueError(f"postprocess must be one of {POSTPROCESS}, got {postprocess!r}.")
    ndim = 2 if per == "slice" else 3
    axes = _spacing(spacing, ndim)

    if per == "slice":
        scope = "Scores per 2-D image, averaged over each site's images"
    else:
        scope = "Scores per 3-D case (its slices stacked in stored order), averaged over each site's cases"
    sentences = [f"{scope}; {_POSTPROCESS_TEXT[postprocess]}."]

    distance_parts = []
    if "assd" in metrics:
        distance_parts.append("ASSD is the mean boundary-to-boundary distance, both directions pooled")
    if "hd95" in metrics:
        distance_parts.append(
            "HD95 is the larger of the two directed 95th percentiles (as MONAI)" if hd95 == "directed" else
            "HD95 is the 95th percentile of both directions' distances pooled (as medpy's hd95)")
    if distance_parts:
        if spacing is None:
            unit = "in pixels" + (", the slice gap counted as one pixel" if ndim == 3 else "")
        else:
            names = "(dy, dx)" if ndim == 2 else "(dz, dy, dx)"
            unit = f"in the units of the spacing {names} = ({', '.join(f'{a:g}' for a in axes)})"
        sentences.append(f"Distances {unit}: {'; '.join(distance_parts)}.")

    overlap = "/".join(METRIC_NAMES[m] for m in metrics if m in ("dice", "iou"))
    distance = "/".join(METRIC_NAMES[m] for m in metrics if m in ("assd", "hd95"))
    region = "image" if ndim == 2 else "volume"
    both, one = [], []
    if overlap:
        both.append(f"{overlap} 1")
        one.append(f"{overlap} 0")
    if distance:
        both.append(f"{distance} 0")
        one.append(f"{distance} the {region} diagonal")
    sentences.append(f"Empty masks: both empty gives {', '.join(both)}; exactly one empty gives {', '.join(one)}.")
    return " ".join(sentences)
