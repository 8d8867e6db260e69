"""Binary classification metrics: accuracy, sensitivity, specificity and ROC AUC (scikit-learn).

Class 1 is the positive class (AD in the ADNI comparison, disease in UCI Heart), class 0 the
negative one (NC, healthy). Undefined cases give ``nan`` rather than an error, so that one
single-class test split does not stop a whole comparison:

- no positives in ``y_true``: ``sen`` is nan; no negatives: ``spe`` is nan;
- a single class in ``y_true``: ``auc`` is nan and a ``UserWarning`` says why.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.metrics import confusion_matrix, roc_auc_score

ArrayLike = np.ndarray | torch.Tensor | list


def classification_scores(y_true: ArrayLike, y_score: ArrayLike, threshold: float = 0.5) -> dict[str, float]:
    """ACC, SEN, SPE and AUC of a binary classifier.

    Args:
        y_true: True labels (n,) of 0s and 1s; numpy array, tensor (any device) or list.
        y_score: Scores (n,) for class 1, usually probabilities; higher means more likely positive.
        threshold: A sample is predicted positive when its score is strictly greater than
            ``threshold`` (with probabilities and 0.5, as scikit-learn's ``predict``).

    Returns:
        ``{"acc", "sen", "spe", "auc"}`` as floats; ``sen`` = TP / (TP + FN) (recall of class 1),
        ``spe`` = TN / (TN + FP) (recall of class 0), ``auc`` from ``roc_auc_score``. See the
        module docstring for the nan cases.

    Raises:
        ValueError: If an input is not 1-D, is empty, the lengths differ, ``y_true`` holds
            values other than 0 and 1, or ``y_score`` is not finite.
    """
    y_true, y_score = _as_1d(y_true, "y_true"), _as_1d(y_score, "y_score")
    if len(y_true) != len(y_score):
        raise ValueError(
            f"y_true and y_score must have the same length, got {len(y_true)} and {len(y_score)}."
        )
    if len(y_true) == 0:
        raise ValueError("y_true and y_score are empty; there is nothing to score.")
    labels = set(np.unique(y_true).tolist())
    if not labels <= {0, 1}:
        raise ValueError(
            f"y_true must hold binary labels 0 (negative, e.g. NC) and 1 (positive, e.g. AD), "
            f"found {sorted(labels, key=str)}; encode the labels as 0/1 first."
        )
    y_true, y_score = y_true.astype(int), y_score.astype(float)
    if not np.isfinite(y_score).all():
        raise ValueError("y_score contains nan or inf; check the model outputs.")

    y_pred = (y_score > threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    n_pos, n_neg = tp + fn, tn + fp
    if n_pos and n_neg:
        auc = float(roc_auc_score(y_true, y_score))
    else:
        warnings.warn(
            f"ROC AUC is undefined because y_true holds only class {int(y_true[0])} "
            f"({len(y_true)} samples); returning nan for auc.",
            UserWarning,
            stacklevel=2,
        )
        auc = float("nan")
    return {
        "acc": float((tp + tn) / len(y_true)),
        "sen": float(tp / n_pos) if n_pos else float("nan"),
        "spe": float(tn / n_neg) if n_neg else float("nan"),
        "auc": auc,
    }


def _as_1d(values: ArrayLike, name: str) -> np.ndarray:
    """A 1-D numpy copy of ``values``; (n, 1) columns are accepted and flattened."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D with shape (n,), got shape {array.shape}.")
    return array
