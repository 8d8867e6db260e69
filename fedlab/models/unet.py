"""The 2D U-Net used by every segmentation lesson, built from MONAI blocks.

The network is split into named roles so that federated strategies can share or keep parts of it
by *module*, never by parameter-name substrings:

* ``encoder``: ``levels`` stages of two 3x3 conv-norm-ReLU blocks (MONAI ``Convolution``), each
  stage after the first starting with a 2x2 max-pool. Widths ``base_width * 2**i``.
* ``decoder``: ``levels - 1`` stages of (transposed-conv upsampling, concatenation with the skip,
  two conv blocks). The last stage outputs ``2 * base_width`` channels at full resolution: the
  "decoder feature" that LC-Fed's heads read (32 channels for the paper's base width 16).
* ``head``: a 1x1 convolution from the decoder feature to one logit per label channel. Apply a
  sigmoid per channel for probabilities (labels may overlap, e.g. optic disc contains cup).

Shapes for ``levels=5, base_width=16`` and a 384x384 input: encoder features
(16, 384) -> (32, 192) -> (64, 96) -> (128, 48) -> (256, 24) [bottleneck]; decoder feature
(32, 384, 384); logits (L, 384, 384).
"""

from __future__ import annotations

import math

import torch
from monai.networks.blocks import Convolution
from torch import nn

from fedlab.config import HEAD_INITS

NORMS = {
    "instance": ("instance", {"affine": False}),  # as in the LC-Fed U-Net: no affine, no running stats
    "batch": ("batch", {"affine": True, "track_running_stats": True}),
}
#: Mean of ReLU(z) for z ~ N(0, 1): what each channel of a freshly initialised decoder feature (conv -> norm ->
#: ReLU, the norm giving every channel zero mean and unit variance) averages to.
RELU_NORMAL_MEAN = 1 / math.sqrt(2 * math.pi)


def _conv_block(in_ch: int, out_ch: int, norm: str) -> nn.Sequential:
    """Two 3x3 conv -> norm -> ReLU blocks."""
    return nn.Sequential(
        Convolution(2, in_ch, out_ch, kernel_size=3, norm=NORMS[norm], act="RELU"),
        Convolution(2, out_ch, out_ch, kernel_size=3, norm=NORMS[norm], act="RELU"),
    )


class DecoderStage(nn.Module):
    """Upsample the deeper feature, concatenate the skip, then two conv blocks."""

    def __init__(self, deep_ch: int, skip_ch: int, out_ch: int, norm: str) -> None:
        super().__init__()
        self.up = Convolution(2, deep_ch, skip_ch, strides=2, kernel_size=2, padding=0, output_padding=0,
                              is_transposed=True,
                              norm=NORMS[norm], act="RELU")
        self.conv = _conv_block(2 * skip_ch, out_ch, norm)

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # deep: (N, deep_ch, h, w); skip: (N, skip_ch, 2h, 2w) -> (N, out_ch, 2h, 2w)
        return self.conv(torch.cat([skip, self.up(deep)], dim=1))


class UNet(nn.Module):
    """2D U-Net with separable encoder, decoder and segmentation head.

    Args:
        in_channels: Image channels (1 for MR, 3 for RGB).
        out_channels: Label channels (one logit each).
        base_width: Channels of the first level.
        levels: Resolution levels (the paper uses 5).
        norm: "instance" (paper) or "batch" (FedBN).
        head_init: How the 1x1 head starts. "kaiming_fan_out": the LC-Fed authors' U-Net (Kaiming normal,
            fan_out). "kaiming_fan_out_centred" (default): the same weights with each bias set to
            ``-RELU_NORMAL_MEAN * sum(weights)``, so that no output channel starts with an image-wide logit offset
            (the decoder feature's channels all average about ``RELU_NORMAL_MEAN``). "pytorch_default":
            ``nn.Conv2d``'s own (uniform, about 6x smaller weights).
    """

    def __init__(self, in_channels: int, out_channels: int, base_width: int = 16, levels: int = 5,
                 norm: str = "instance", head_init: str = "kaiming_fan_out_centred") -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {sorted(NORMS)}, got {norm!r}")
        if head_init not in HEAD_INITS:
            raise ValueError(f"head_init must be one of {HEAD_INITS}, got {head_init!r}")
        if levels < 2:
            raise ValueError(f"levels must be >= 2, got {levels}")
        widths = [base_width * 2**i for i in range(levels)]
        self.levels = levels
        self.feature_channels = 2 * base_width
        self.bottleneck_channels = widths[-1]
        self.pool = nn.MaxPool2d(2)
        self.encoder = nn.ModuleList(
            [_conv_block(in_channels, widths[0], norm)]
            + [_conv_block(widths[i - 1], widths[i], norm) for i in range(1, levels)]
        )
        # decoder[0] is the deepest stage; the last one outputs 2 * base_width channels.
        self.decoder = nn.ModuleList(
            DecoderStage(widths[i + 1], widths[i], widths[i] if i > 0 else self.feature_channels, norm)
            for i in reversed(range(levels - 1))
        )
        self.head = nn.Conv2d(self.feature_channels, out_channels, kernel_size=1)
        # The head's weights start as in the LC-Fed authors' U-Net (Kaiming normal, fan_out), so its logits have a
        # useful scale from the start: with PyTorch's default (about 6x smaller) head weights, schedules that train
        # the head in few steps (FedRep, LC-Fed) stay soft for many rounds, since the normalised features before the
        # head cannot supply the scale. But every channel of that feature is ReLU of a normalised map, mean about
        # 1/sqrt(2 pi), so Kaiming weights alone give each label an image-wide logit offset (SD about 1.3 with 16
        # feature channels); a label that starts "on" everywhere can stay there under the Dice loss (the fundus cup
        # failure, bench/fundus_cup_collapse.py). The default, "kaiming_fan_out_centred", keeps the weights and sets
        # the biases that cancel that offset. Measured on all three embedded federations: bench/results/head_init/.
        # The normalised body keeps the default initialisation.
        if head_init != "pytorch_default":
            nn.init.kaiming_normal_(self.head.weight, mode="fan_out", nonlinearity="relu")
        if head_init == "kaiming_fan_out_centred":
            with torch.no_grad():  # weight (L, Cf, 1, 1) -> bias (L,)
                self.head.bias.copy_(-RELU_NORMAL_MEAN * self.head.weight.sum(dim=(1, 2, 3)))

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Encoder features, shallowest first; the last one is the bottleneck."""
        feats = []
        for i, stage in enumerate(self.encoder):
            x = stage(x if i == 0 else self.pool(x))  # (N, widths[i], H / 2**i, W / 2**i)
            feats.append(x)
        return feats

    def decode(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Decoder feature (N, 2 * base_width, H, W) from the encoder features."""
        y = feats[-1]
        for stage, skip in zip(self.decoder, reversed(feats[:-1]), strict=True):
            y = stage(y, skip)
        return y

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The full-resolution decoder feature that the head reads."""
        return self.decode(self.encode(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, out_channels, H, W)."""
        return self.head(self.features(x))


def build_unet(in_channels: int, out_channels: int, config) -> UNet:
    """The U-Net sized by a :class:`fedlab.config.Config`."""
    return UNet(in_channels, out_channels, base_width=config.base_width, levels=config.levels, norm=config.norm,
                head_init=config.head_init)
