"""The acquisition chain of a synthetic site: what the scanner or camera does to the true scene.

Applied to all images of a site at once, in the order a real device and its standard
preprocessing would:

resolution loss -> optical blur -> smooth multiplicative bias field -> endorectal-coil receive
profile (MR) -> colour cast (RGB) -> per-slice intensity normalisation (MR) -> intensity transfer
curve (gamma, contrast, brightness) -> additive noise -> clip to [0, 1].

MR intensities have no absolute scale, so MR pipelines rescale every slice; here, as in the LC-Fed
authors' preprocessing, each MR image is divided by its 99th percentile and clipped at 1. With an
endorectal coil the bright tissue next to the coil sets that percentile, so everything farther away
comes out darker and relatively noisier: the look of real endorectal-coil images.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from fedlab.data.synthetic.shapes import resize
from fedlab.data.synthetic.styles import SiteStyle

#: Fall-off length of an endorectal coil's receive profile, in pixels at 64 px (about 12 mm).
COIL_LENGTH = 7.0
#: MR images are divided by this percentile of their intensities (then clipped at 1).
NORMALISE_PERCENTILE = 99.0


def bias_fields(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Random smooth quadratic surfaces (N, H, W) with values of order 1 (zero at the centre)."""
    t = np.linspace(-1, 1, size, dtype=np.float32)
    r, c = np.meshgrid(t, t, indexing="ij")
    basis = np.stack([r, c, r * r - 1 / 3, c * c - 1 / 3, r * c])  # (5, H, W)
    coef = rng.standard_normal((n, 5)).astype(np.float32) / np.sqrt(2.0)
    return np.einsum("nk,khw->nhw", coef, basis)


def coil_profile(coil: np.ndarray, size: int, gain: float) -> np.ndarray:
    """Receive gain ``1 + gain * exp(-d / L)`` (N, H, W) of a coil at ``coil`` (N, 2) pixels (row, col)."""
    coords = np.arange(size, dtype=np.float32) + 0.5
    d = np.sqrt((coords[None, :, None] - coil[:, 0, None, None]) ** 2
                + (coords[None, None, :] - coil[:, 1, None, None]) ** 2)
    return (1.0 + gain * np.exp(-d / (COIL_LENGTH * size / 64.0))).astype(np.float32)


def normalise_slices(images: np.ndarray, percentile: float = NORMALISE_PERCENTILE) -> np.ndarray:
    """Divide each image (N, C, H, W) by its ``percentile``-th intensity and clip at 1."""
    scale = np.percentile(images.reshape(images.shape[0], -1), percentile, axis=1)
    return np.minimum(images / np.maximum(scale, 1e-6)[:, None, None, None], 1.0).astype(np.float32)


def degrade_resolution(images: np.ndarray, factor: float) -> np.ndarray:
    """Acquire at ``size / factor`` pixels (anti-aliased) and interpolate back to ``size``.

    Args:
        images: (N, C, H, W) with H == W.
        factor: Downsampling factor >= 1 (1 returns the input).
    """
    size = images.shape[-1]
    low = max(4, round(size / factor))
    if low >= size:
        return images
    return resize(resize(images, low, antialias=True), size)


def acquire(rng: np.random.Generator, scene: np.ndarray, style: SiteStyle, coil: np.ndarray | None = None,
            normalise: bool = False) -> np.ndarray:
    """Turn true scenes into the site's images.

    Args:
        rng: Random generator; consumed the same way for every style, so sites with the same seed
            differ only by their style.
        scene: (N, C, H, W) float32 true scene intensities in [0, 1].
        style: The site's acquisition fields (lengths are for 64 px and scaled with H).
        coil: (N, 2) position of an endorectal coil (pixels), used when ``style.endorectal_coil > 0``.
        normalise: Rescale each image by its 99th percentile (MR preprocessing).

    Returns:
        (N, C, H, W) float32 images in [0, 1].
    """
    n, channels, size, _ = scene.shape
    px = size / 64.0
    bias = bias_fields(rng, n, size)  # (N, H, W)
    noise = rng.standard_normal(scene.shape, dtype=np.float32)  # (N, C, H, W)

    img = degrade_resolution(scene, style.resolution)
    if style.blur > 0:
        img = gaussian_filter(img, sigma=(0, 0, style.blur * px, style.blur * px), mode="nearest")
    img = img * np.exp(style.bias_field * bias)[:, None]
    if style.endorectal_coil > 0 and coil is not None:
        img = img * coil_profile(coil, size, style.endorectal_coil)[:, None]
    if channels == 3:
        img = img * np.asarray(style.colour_gain, dtype=np.float32)[None, :, None, None]
    img = normalise_slices(img) if normalise else img
    img = np.clip(img, 0.0, 1.0) ** style.gamma
    img = 0.5 + style.contrast * (img - 0.5) + style.brightness
    img = img + style.noise * noise
    return np.clip(img, 0.0, 1.0).astype(np.float32)
