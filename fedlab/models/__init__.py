"""Networks: the MONAI-block U-Net and its variants (LC-Fed's PCS and head calibration)."""

from fedlab.models.hc import HeadCalibration
from fedlab.models.lcfed import LCFedNet, LCFedOutput, LCFedSiteModel
from fedlab.models.pcs import PersonalizedChannelSelection, contrastive_site_loss, gate_spread, site_code
from fedlab.models.unet import UNet, build_unet

__all__ = ["HeadCalibration", "LCFedNet", "LCFedOutput", "LCFedSiteModel", "PersonalizedChannelSelection", "UNet",
           "build_unet", "contrastive_site_loss", "gate_spread", "site_code"]
