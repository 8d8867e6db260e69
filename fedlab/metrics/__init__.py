"""Evaluation metrics: segmentation (Dice, IoU, ASSD, HD95 via MONAI, per 2-D image or per 3-D volume) and
classification (ACC, SEN, SPE, AUC via scikit-learn), plus the footnote that says how scores were computed."""

from fedlab.metrics.classification import classification_scores
from fedlab.metrics.postprocess import POSTPROCESS, postprocess_masks
from fedlab.metrics.protocol import LCFED_PROTOCOL, describe
from fedlab.metrics.segmentation import HD95_VARIANTS, binarize, segmentation_scores, summarize
from fedlab.metrics.volumes import volume_scores, volume_slices

__all__ = [
    "HD95_VARIANTS",
    "LCFED_PROTOCOL",
    "POSTPROCESS",
    "binarize",
    "classification_scores",
    "describe",
    "postprocess_masks",
    "segmentation_scores",
    "summarize",
    "volume_scores",
    "volume_slices",
]
