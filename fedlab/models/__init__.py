"""Networks: the MONAI-block U-Net and its variants (LC-Fed's PCS and head calibration); logistic
regression for tabular lessons; a small slice classifier for the gradient-inversion lesson."""

from fedlab.models.classifier import SliceClassifier
from fedlab.models.hc import HeadCalibration
from fedlab.models.lcfed import LCFedNet, LCFedOutput, LCFedSiteModel
from fedlab.models.logistic import LogisticRegression, Standardized, sklearn_C
from fedlab.models.pcs import PersonalizedChannelSelection, contrastive_site_loss, gate_spread, site_code
from fedlab.models.unet import UNet, build_unet

__all__ = ["HeadCalibration", "LCFedNet", "LCFedOutput", "LCFedSiteModel", "LogisticRegression",
           "PersonalizedChannelSelection", "SliceClassifier", "Standardized", "UNet", "build_unet",
           "contrastive_site_loss", "gate_spread", "site_code", "sklearn_C"]
