"""Networks: the MONAI-block U-Net and its variants."""

from fedlab.models.unet import UNet, build_unet

__all__ = ["UNet", "build_unet"]
