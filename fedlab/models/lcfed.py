"""LC-Fed's network: a U-Net with PCS on the bottleneck and (optionally) head calibration.

* :class:`LCFedNet` is what every client trains. PCS is a registered sub-module (``net.pcs``), so
  its weights are in ``state_dict``, receive gradients, are averaged by the server and are saved.
  (The authors' released network kept its PCS blocks in a plain Python list: never registered,
  never trained, aggregated or saved, and re-drawn at random when a checkpoint was loaded.)
* :class:`LCFedSiteModel` is how site k is served: ``forward(x)`` applies k's site code and, once
  the calibration stage has trained, the head calibration with the K heads k received. It has the
  plain ``x -> logits`` interface that evaluation and the cross-site matrix expect.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from monai.networks.utils import eval_mode
from torch import nn

from fedlab.models.hc import HeadCalibration
from fedlab.models.pcs import PersonalizedChannelSelection, site_code
from fedlab.models.unet import UNet


@dataclass
class LCFedOutput:
    """Everything one forward pass of :class:`LCFedNet` computes.

    Attributes:
        feature: (N, Cf, H, W) full-resolution decoder feature read by the heads.
        logits: (N, L, H, W) output of the site's own head.
        gate: (N, C, 1, 1) PCS gate, or None without PCS.
        bottleneck: (N, C, h, w) bottleneck feature *before* PCS.
    """

    feature: torch.Tensor
    logits: torch.Tensor
    gate: torch.Tensor | None
    bottleneck: torch.Tensor


class LCFedNet(nn.Module):
    """U-Net + personalized channel selection on the bottleneck (+ optional head calibration).

    Args:
        unet: The backbone (its ``head`` is the site's personal segmentation head).
        num_sites: K, the length of the site code.
        use_pcs: Add PCS (False gives the plain FedRep-style backbone).
        calibration: A :class:`HeadCalibration` to hold (local to the site), or None.
    """

    def __init__(self, unet: UNet, num_sites: int, use_pcs: bool = True,
                 calibration: HeadCalibration | None = None) -> None:
        super().__init__()
        if num_sites < 1:
            raise ValueError(f"num_sites must be positive, got {num_sites}")
        self.unet = unet
        self.num_sites = num_sites
        self.pcs = PersonalizedChannelSelection(unet.bottleneck_channels, num_sites) if use_pcs else None
        self.hc = calibration

    @property
    def head(self) -> nn.Conv2d:
        """The segmentation head (the U-Net's), kept local by LC-Fed."""
        return self.unet.head

    def forward_all(self, x: torch.Tensor, site: int | torch.Tensor) -> LCFedOutput:
        """Decoder feature, own-head logits and PCS gate of ``x`` (N, C_in, H, W) at ``site``."""
        feats = self.unet.encode(x)
        bottleneck = feats[-1]  # (N, C, h, w)
        gate = None
        if self.pcs is not None:
            code = site_code(site, self.num_sites, x.shape[0], x.device)  # (N, K)
            feats[-1], gate = self.pcs(bottleneck, code)
        feature = self.unet.decode(feats)  # (N, Cf, H, W)
        return LCFedOutput(feature, self.unet.head(feature), gate, bottleneck)

    def forward(self, x: torch.Tensor, site: int | torch.Tensor) -> torch.Tensor:
        """Own-head logits (N, L, H, W) of ``x`` at ``site`` (no calibration)."""
        return self.forward_all(x, site).logits

    def site_gates(self, bottleneck: torch.Tensor) -> torch.Tensor:
        """Gates of one bottleneck under every site code: (K, N, C, 1, 1)."""
        if self.pcs is None:
            raise ValueError("this LCFedNet has no PCS (use_pcs=False), so it has no gates")
        n = bottleneck.shape[0]
        return torch.stack([self.pcs.gate(bottleneck, site_code(j, self.num_sites, n, bottleneck.device))
                            for j in range(self.num_sites)])

    def mean_site_gates(self, x: torch.Tensor) -> torch.Tensor:
        """(K, C) gates of every site code, averaged over the images ``x`` (for plots)."""
        with eval_mode(self):
            gates = self.site_gates(self.unet.encode(x)[-1])  # (K, N, C, 1, 1)
        return gates.mean(dim=1).flatten(1)


class LCFedSiteModel(nn.Module):
    """Site ``site``'s model as ``x -> logits``: its site code, and calibration when active.

    Args:
        net: The site's :class:`LCFedNet` (shared by reference, not copied).
        site: The site's index k.
        heads: The K heads received from all sites (copied); required when ``net`` has HC.
        calibrated: Whether to apply the calibration (stored as a buffer, so a checkpoint of this
            module restores whether it was calibrated).
    """

    def __init__(self, net: LCFedNet, site: int, heads: Sequence[nn.Module] | None = None,
                 calibrated: bool = False) -> None:
        super().__init__()
        if not 0 <= site < net.num_sites:
            raise ValueError(f"site {site} is outside [0, {net.num_sites})")
        self.net = net
        self.site = site
        self.heads = None
        if net.hc is not None:
            if heads is None or len(heads) != net.num_sites:
                raise ValueError(f"a calibrated LC-Fed model needs the heads of all {net.num_sites} sites, got "
                                 f"{None if heads is None else len(heads)}")
            self.heads = nn.ModuleList(copy.deepcopy(h) for h in heads)
        elif calibrated:
            raise ValueError("calibrated=True needs an LCFedNet with a HeadCalibration")
        self.register_buffer("calibrated", torch.tensor(bool(calibrated)))

    def head_probabilities(self, feature: torch.Tensor) -> torch.Tensor:
        """(K, N, L, H, W) sigmoid outputs of every site's head on ``feature``; index k is the live own head."""
        heads = [self.net.head if i == self.site else h for i, h in enumerate(self.heads)]
        return torch.stack([torch.sigmoid(h(feature)) for h in heads])

    def calibrate(self, x: torch.Tensor, return_maps: bool = False):
        """Calibrated logits of ``x`` with the U-Net frozen.

        The features come from the U-Net in inference mode and without gradient (so training the
        calibration never touches the U-Net, not even BatchNorm statistics); only ``net.hc`` is
        differentiable. With ``return_maps`` also returns a dict of intermediate maps: the heads'
        probabilities ("head_probs", (K, N, L, H, W)), "before" (own-head logits) and the calibration maps.
        """
        if self.heads is None:
            raise ValueError("this site model has no head calibration (net.hc is None)")
        with eval_mode(self.net):  # inference mode and no gradient for everything but the calibration
            out = self.net.forward_all(x, self.site)
            probs = self.head_probabilities(out.feature)
        result = self.net.hc(out.feature, probs, self.site, return_maps=return_maps)
        if return_maps:
            logits, maps = result
            return logits, {"head_probs": probs, "before": out.logits, **maps}
        return result

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, L, H, W): calibrated when the calibration stage has trained, else the own head's."""
        if self.heads is not None and bool(self.calibrated):
            return self.calibrate(x)
        return self.net(x, self.site)
