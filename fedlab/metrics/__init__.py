"""Evaluation metrics: segmentation (Dice, IoU, ASSD, HD95 via MONAI) and classification
(ACC, SEN, SPE, AUC via scikit-learn)."""

from fedlab.metrics.classification import classification_scores
from fedlab.metrics.segmentation import binarize, segmentation_scores, summarize

__all__ = ["binarize", "classification_scores", "segmentation_scores", "summarize"]
