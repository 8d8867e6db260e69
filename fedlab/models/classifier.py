"""A small slice classifier: the network of the gradient-inversion lesson (one logit per 2-D slice).

LeNet-shaped, after the network on which deep leakage from gradients was first shown (Zhu et al. 2019): three
5x5 convolutions (strides 2, 2, 1) with smooth activations and one linear layer to a single logit. No
normalisation layer, so it is also what DP-SGD can train. Shapes for a 32x32 input and ``width=12``:
(1, 32, 32) -> (12, 16, 16) -> (12, 8, 8) -> (12, 8, 8) -> 768 features -> 1 logit.
"""

from __future__ import annotations

import torch
from monai.networks.blocks import Convolution
from torch import nn

ACTIVATIONS = ("sigmoid", "relu")


class SliceClassifier(nn.Module):
    """``logit = linear(features(x))`` for images ``(N, C, H, W)``.

    Args:
        in_channels: Image channels.
        image_size: Side of the square input (divisible by 4).
        width: Channels of every convolution.
        activation: "sigmoid" (smooth; gradients of gradients are informative, as in DLG) or "relu".
    """

    def __init__(self, in_channels: int = 1, image_size: int = 32, width: int = 12,
                 activation: str = "sigmoid") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if image_size % 4 or image_size <= 0:
            raise ValueError(f"image_size must be a positive multiple of 4, got {image_size}")
        act = activation.upper()
        self.features = nn.Sequential(
            Convolution(2, in_channels, width, strides=2, kernel_size=5, act=act, norm=None),
            Convolution(2, width, width, strides=2, kernel_size=5, act=act, norm=None),
            Convolution(2, width, width, strides=1, kernel_size=5, act=act, norm=None),
        )
        self.head = nn.Linear(width * (image_size // 4) ** 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, 1)``."""
        return self.head(self.features(x).flatten(1))  # (N, width, H/4, W/4) -> (N, width*H*W/16) -> (N, 1)
