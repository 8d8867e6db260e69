"""LC-Fed's head calibration (HC): correct a site's prediction where the sites' heads disagree.

Every site k receives the segmentation heads of all K sites. On k's own decoder feature F:

1. each head i gives a probability map P_i (sigmoid per label channel);
2. the disagreement with k's own head, ``U = sqrt(sum_i (P_i - P_k)**2 / (K - 1))`` per pixel and
   label, is divided by its per-image, per-label maximum (plus a small epsilon);
3. its local peaks are kept: pixels equal to the max-pool of U over a ``window x window``
   neighbourhood and above ``threshold`` (0.2) become 1, all others 0;
4. the peaks and k's own prediction P_k are each blurred by a fixed Gaussian (31x31, sigma 6 at
   384 px), normalised to a peak of 1 as in the authors' code, so every isolated peak becomes a
   bump of height 1 (the blurred prediction is *not* a probability: inside a large object it sums
   many kernel values, up to about ``2 * pi * sigma**2``);
5. F is re-weighted by each map, ``F * A + F``; the two re-weighted features of every label are
   concatenated and a local 3x3 convolution gives the calibrated logits.

Window and sigma scale with the image side (:func:`calibration_geometry`): at 384 px they are the
paper's 31 and 6. The threshold is a fraction of the normalised map and does not scale.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.networks.layers.convutils import gaussian_1d
from monai.networks.layers.simplelayers import separable_filtering
from torch import nn

PAPER_IMAGE_SIZE = 384
PAPER_WINDOW = 31
PAPER_SIGMA = 6.0


def calibration_geometry(image_size: int) -> tuple[int, float]:
    """Peak window (odd, >= 3) and Gaussian sigma for ``image_size``, scaled from 31 and 6 at 384 px."""
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    scale = image_size / PAPER_IMAGE_SIZE
    window = max(3, round(PAPER_WINDOW * scale))
    window += 1 - window % 2  # odd, so the window is centred on the pixel
    return window, PAPER_SIGMA * scale


def peak_gaussian_1d(window: int, sigma: float) -> torch.Tensor:
    """Sampled 1D Gaussian of ``window`` taps with peak value 1 (its outer product is the 2D kernel)."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    k = gaussian_1d(torch.tensor(float(sigma)), truncated=(window // 2) / sigma, approx="sampled")
    if k.numel() != window:  # rounding in MONAI's tail length; never expected, checked anyway
        raise RuntimeError(f"Gaussian kernel has {k.numel()} taps, expected {window}")
    return k / k.max()


def disagreement_map(probs: torch.Tensor, site: int, eps: float = 1e-8) -> torch.Tensor:
    """Normalised disagreement of the heads with site ``site``'s head.

    Args:
        probs: (K, N, L, H, W) probabilities of the K heads on the same features.
        site: Index k of the site's own head in ``probs``.
        eps: Added to the per-image maximum so that total agreement gives 0, not NaN.

    Returns:
        (N, L, H, W) map in [0, 1]: ``sqrt(sum_i (P_i - P_k)^2 / (K-1)) / (max + eps)``.
    """
    k = probs.shape[0]
    if k < 2:
        raise ValueError(f"the disagreement map needs the heads of at least 2 sites, got {k}")
    if not 0 <= site < k:
        raise ValueError(f"site {site} is outside [0, {k})")
    u = ((probs - probs[site]).pow(2).sum(dim=0) / (k - 1)).sqrt()  # (N, L, H, W)
    return u / (u.amax(dim=(2, 3), keepdim=True) + eps)


def disagreement_peaks(u: torch.Tensor, window: int, threshold: float = 0.2) -> torch.Tensor:
    """1 where ``u`` (N, L, H, W) is the maximum of its ``window`` neighbourhood and above ``threshold``."""
    pooled = F.max_pool2d(u, kernel_size=window, stride=1, padding=window // 2)
    return ((u == pooled) & (u > threshold)).to(u.dtype)


class HeadCalibration(nn.Module):
    """Calibrate a site's prediction with the disagreement of all sites' heads.

    Args:
        num_labels: L, label channels.
        feature_channels: Channels of the decoder feature (32 for the paper's U-Net).
        image_size: Image side in pixels; sets window and sigma unless given.
        window: Max-pool window of the peak test and side of the Gaussian (31 at 384 px).
        sigma: Gaussian sigma in pixels (6 at 384 px).
        threshold: Minimum normalised disagreement of a peak.
        eps: Stabiliser of the per-image normalisation.
    """

    def __init__(self, num_labels: int, feature_channels: int, image_size: int = PAPER_IMAGE_SIZE,
                 window: int | None = None, sigma: float | None = None, threshold: float = 0.2,
                 eps: float = 1e-8) -> None:
        super().__init__()
        auto_window, auto_sigma = calibration_geometry(image_size)
        self.num_labels = num_labels
        self.window = auto_window if window is None else window
        self.sigma = auto_sigma if sigma is None else sigma
        self.threshold = threshold
        self.eps = eps
        # Fixed kernel, derived from (window, sigma): not a parameter and not saved.
        self.register_buffer("kernel", peak_gaussian_1d(self.window, self.sigma), persistent=False)
        self.conv = nn.Conv2d(2 * num_labels * feature_channels, num_labels, kernel_size=3, padding=1)

    def blur(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-padded 2D blur of (N, 1, H, W) maps with the peak-1 Gaussian."""
        return separable_filtering(x, [self.kernel, self.kernel], mode="zeros")

    def forward(self, feature: torch.Tensor, probs: torch.Tensor, site: int, return_maps: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Calibrated logits.

        Args:
            feature: (N, Cf, H, W) decoder feature of site ``site`` (detach it to keep the U-Net frozen).
            probs: (K, N, L, H, W) probabilities of every site's head on ``feature``; ``probs[site]``
                is the site's own prediction.
            site: The site's index k.
            return_maps: Also return the intermediate maps (for teaching and plots).

        Returns:
            (N, L, H, W) logits, and with ``return_maps`` a dict of (N, L, H, W) maps: "disagreement",
            "peaks", "attention_disagreement", "attention_prediction".
        """
        if probs.ndim != 5 or probs.shape[2] != self.num_labels:
            raise ValueError(f"probs must be (K, N, {self.num_labels}, H, W), got {tuple(probs.shape)}")
        with torch.no_grad():
            u = disagreement_map(probs, site, self.eps)  # (N, L, H, W)
            peaks = disagreement_peaks(u, self.window, self.threshold)
        n, labels, h, w = peaks.shape
        att_u = self.blur(peaks.reshape(n * labels, 1, h, w)).reshape(n, labels, h, w)
        att_p = self.blur(probs[site].reshape(n * labels, 1, h, w)).reshape(n, labels, h, w)
        parts = []
        for c in range(labels):
            parts.append(feature * att_u[:, c:c + 1] + feature)  # (N, Cf, H, W)
            parts.append(feature * att_p[:, c:c + 1] + feature)
        logits = self.conv(torch.cat(parts, dim=1))  # (N, 2*L*Cf, H, W) -> (N, L, H, W)
        if return_maps:
            return logits, {"disagreement": u, "peaks": peaks, "attention_disagreement": att_u,
                            "attention_prediction": att_p}
        return logits
