"""Repeated random train/test splits of one site (the survey's five 80/20 splits).

The survey says "random split"; we stratify by label (``sklearn.model_selection.train_test_split``
with ``stratify``) so that each of the five test sets keeps the site's AD/NC ratio. With ~80 test
subjects an unstratified split can move the class ratio by several points and, with it, ACC, SEN
and SPE; stratifying removes that nuisance variance and changes nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import train_test_split


def stratified_split(labels: Sequence[int] | np.ndarray, test_fraction: float = 0.2, seed: int = 0,
                     stratify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a random train/test split, stratified by label.

    Args:
        labels: Class label of each sample, shape (n,).
        test_fraction: Fraction of samples in the test set, in (0, 1).
        seed: Split seed (split ``r`` of a repeated protocol uses ``seed + r``).
        stratify: Keep the class ratio in both parts (default) or draw a plain random split.

    Returns:
        ``(train_idx, test_idx)``, sorted integer arrays that partition ``range(n)``.

    Raises:
        ValueError: for a fraction outside (0, 1) or a class too small to appear in both parts.
    """
    labels = np.asarray(labels)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if stratify:
        values, counts = np.unique(labels, return_counts=True)
        if counts.min() < 2:
            raise ValueError(f"class {values[counts.argmin()]!r} has {counts.min()} sample(s); a stratified split "
                             "needs at least 2 per class (or pass stratify=False).")
    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=test_fraction, random_state=seed,
                                   stratify=labels if stratify else None)
    return np.sort(train), np.sort(test)
