"""Networks: the MONAI-block U-Net and its variants; logistic regression for tabular lessons."""

from fedlab.models.logistic import LogisticRegression, Standardized, sklearn_C
from fedlab.models.unet import UNet, build_unet

__all__ = ["LogisticRegression", "Standardized", "UNet", "build_unet", "sklearn_C"]
