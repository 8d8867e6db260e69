"""Logistic regression as a network: one linear layer from features to the AD (positive-class) logit.

Choices (the survey leaves them open):

* The model outputs a logit ``(N, 1)``; the loss is binary cross-entropy on it (the engine's
  classification loss), averaged over the batch.
* L2 regularisation is the optimiser's ``weight_decay`` (``Config.weight_decay``): the gradient gets
  ``+ weight_decay * w``, i.e. the objective is ``mean BCE + weight_decay / 2 * ||w||^2``. It also
  penalises the bias (a negligible difference on standardised features); :func:`sklearn_C` gives
  the equivalent scikit-learn ``C``.
* Initial weights are zero by default: the problem is convex, and every setting then starts from
  the same point, independent of the seed.
* Features are standardised outside the model (:mod:`fedlab.data.standardize`); to deploy a model
  at another site (the "Cross" setting) wrap it with its training scaler, :class:`Standardized`.
"""

from __future__ import annotations

import torch
from torch import nn


class LogisticRegression(nn.Module):
    """``logit = x @ w + b``.

    Args:
        num_features: Input features F.
        zero_init: Start from ``w = 0, b = 0`` (default) instead of PyTorch's random init.
    """

    def __init__(self, num_features: int, zero_init: bool = True) -> None:
        super().__init__()
        if num_features <= 0:
            raise ValueError(f"num_features must be positive, got {num_features}")
        self.linear = nn.Linear(num_features, 1)
        if zero_init:
            nn.init.zeros_(self.linear.weight)
            nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 1)`` of features ``(N, F)``."""
        return self.linear(x)


class Standardized(nn.Module):
    """A model preceded by a fixed standardisation ``(x - mean) / std`` (its training site's scaler).

    Args:
        model: Maps standardised features ``(N, F)`` to logits.
        mean: Feature means ``(F,)``.
        std: Feature standard deviations ``(F,)`` (positive).
    """

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", mean.detach().clone())
        self.register_buffer("std", std.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of raw features ``(N, F)``."""
        return self.model((x - self.mean) / self.std)


def sklearn_C(weight_decay: float, num_samples: int) -> float:  # noqa: N802 (scikit-learn's name)
    """scikit-learn's ``C`` for the same L2 penalty: ``mean BCE + wd/2 ||w||^2`` <=> ``C = 1 / (n * wd)``."""
    if weight_decay <= 0 or num_samples <= 0:
        raise ValueError(f"need weight_decay > 0 and num_samples > 0, got {weight_decay}, {num_samples}")
    return 1.0 / (num_samples * weight_decay)
