"""Random star-shaped objects and smooth random fields, generated for many images at once (NumPy).

An object is star-shaped about its centre: in polar coordinates ``(rho, theta)`` around the centre
(pixels), it is ``{rho <= R(theta)}`` with

    R(theta) = r * ellipse(theta - angle; elongation) * (1 + sum_k a_k cos(k theta) + b_k sin(k theta)),

a rotated ellipse with a smooth random boundary perturbation (harmonics k = 2..5). Because the shape
is described by its boundary radius, an annotator who draws ``m`` pixels outside the boundary is
simply ``{rho <= R(theta) + m}`` (see :func:`object_mask`), and a nested object (the optic cup in
the disc) is ``{rho <= c * R(theta)}`` with ``c < 1``.

Random draws never depend on the style values (they are standard normals scaled afterwards), so two
styles with the same seed and the same dataset size describe the same patients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter
from torch.nn import functional as F

from fedlab.data.synthetic.styles import SiteStyle

HARMONICS = (2, 3, 4, 5)


@dataclass(frozen=True)
class Objects:
    """Geometry of one object per image (arrays of length N; lengths in pixels).

    Attributes:
        centre: (N, 2) centre ``(row, col)``.
        radius: (N,) mean radius.
        elongation: (N,) aspect ratio of the ellipse.
        angle: (N,) orientation (radians).
        coeffs: (N, K, 2) cosine / sine coefficients of the boundary harmonics ``HARMONICS``.
        slice_pos: (N,) position of the image within its case in [-1, 1] (0 for single images).
    """

    centre: np.ndarray
    radius: np.ndarray
    elongation: np.ndarray
    angle: np.ndarray
    coeffs: np.ndarray
    slice_pos: np.ndarray


def sample_objects(rng: np.random.Generator, style: SiteStyle, num_cases: int, size: int,
                   slice_profile: float = 0.0, jitter: float = 0.0, slice_range: float = 0.8) -> Objects:
    """Draw one object per case and derive the object of each image of the case.

    Args:
        rng: Random generator (consumed the same way whatever the style values are).
        style: Site style (population fields are used).
        num_cases: Number of cases.
        size: Image side in pixels.
        slice_profile: How much the object shrinks towards the ends of a case (MR slices through an
            organ: radius ``* sqrt(1 - slice_profile * z**2)``); 0 keeps the size.
        jitter: Relative frame-to-frame change in centre and radius within a case (camera motion).
        slice_range: The images of a case sit at evenly spaced positions in ``[-slice_range, slice_range]``
            (``Objects.slice_pos``; -1 and 1 are the ends of the organ).

    Returns:
        Objects for ``num_cases * style.images_per_case`` images, case after case.
    """
    k = style.images_per_case
    n = num_cases * k
    z_case = rng.standard_normal((num_cases, 6))  # size, 2 x position, elongation, angle, spare
    coeff_z = rng.standard_normal((num_cases, len(HARMONICS), 2))
    z_img = rng.standard_normal((n, 4))  # per-image jitter: size, 2 x position, angle
    slice_pos = np.tile(np.linspace(-slice_range, slice_range, k) if k > 1 else np.zeros(1), num_cases)

    rep = np.repeat(np.arange(num_cases), k)
    radius = style.object_size * size * np.exp(style.size_spread * np.clip(z_case[rep, 0], -2.5, 2.5))
    radius = radius * np.sqrt(1 - slice_profile * slice_pos**2) * (1 + jitter * z_img[:, 0])
    shift = style.position_spread * np.clip(z_case[rep, 1:3], -2.5, 2.5)
    shake = jitter * 0.5 * style.object_size * z_img[:, 1:3]  # frame-to-frame motion
    centre = (np.asarray(style.position)[None, :] + shift + shake) * size
    margin = radius[:, None] * 1.3 + 1
    centre = np.clip(centre, margin, size - margin)  # keep the object inside the image
    elongation = style.elongation * np.exp(0.1 * z_case[rep, 3])
    angle = 0.35 * z_case[rep, 4] + jitter * z_img[:, 3]
    scale = style.irregularity / np.sqrt(np.asarray(HARMONICS, dtype=float))  # smoother: high k damped
    coeffs = np.clip(coeff_z[rep] * scale[None, :, None], -0.2, 0.2)
    return Objects(centre, radius, elongation, angle, coeffs, slice_pos)


def polar(objs: Objects, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Polar coordinates of every pixel about each object's centre, and the boundary radius there.

    Returns:
        ``rho`` (N, H, W) distance to the centre, ``theta`` (N, H, W) angle, and ``boundary``
        (N, H, W) the object's radius ``R(theta)`` in that direction (all float32, pixels).
    """
    coords = np.arange(size, dtype=np.float32) + 0.5
    dr = coords[None, :, None] - objs.centre[:, 0, None, None].astype(np.float32)  # (N, H, 1)
    dc = coords[None, None, :] - objs.centre[:, 1, None, None].astype(np.float32)  # (N, 1, W)
    rho = np.sqrt(dr**2 + dc**2)  # (N, H, W)
    theta = np.arctan2(dr, dc)
    phi = theta - objs.angle[:, None, None].astype(np.float32)
    e = np.sqrt(objs.elongation[:, None, None]).astype(np.float32)
    # polar radius of an ellipse with semi-axes r*sqrt(e), r/sqrt(e)
    ellipse = 1.0 / np.sqrt((np.cos(phi) / e) ** 2 + (np.sin(phi) * e) ** 2)
    wobble = np.ones_like(rho)
    for i, k in enumerate(HARMONICS):
        a = objs.coeffs[:, i, 0, None, None].astype(np.float32)
        b = objs.coeffs[:, i, 1, None, None].astype(np.float32)
        wobble += a * np.cos(k * theta) + b * np.sin(k * theta)
    boundary = objs.radius[:, None, None].astype(np.float32) * ellipse * wobble
    return rho, theta, boundary


def object_mask(rho: np.ndarray, boundary: np.ndarray, margin: float | np.ndarray = 0.0) -> np.ndarray:
    """Binary mask ``rho <= boundary + margin`` (float32 0/1).

    ``margin`` is in pixels and may be negative, a number or an array broadcastable to ``rho``
    (a margin that varies along the boundary, e.g. :func:`boundary_jitter`).
    """
    return (rho <= boundary + margin).astype(np.float32)


JITTER_HARMONICS = (0, 1, 2, 3)


def boundary_jitter(rng: np.random.Generator, theta: np.ndarray) -> np.ndarray:
    """Smooth random boundary offsets (N, H, W) with unit RMS, one independent draw per image.

    An annotator's random disagreement with the true outline: a constant offset plus slow
    variations around the object (harmonics ``JITTER_HARMONICS`` of the polar angle ``theta``),
    each harmonic carrying an equal share of the variance. Multiply by the RMS in pixels.
    """
    n = theta.shape[0]
    coef = rng.standard_normal((n, len(JITTER_HARMONICS), 2)).astype(np.float32)
    out = np.zeros_like(theta)
    for i, k in enumerate(JITTER_HARMONICS):
        if k == 0:
            out += coef[:, i, 0, None, None]  # constant offset, variance 1
        else:  # a cos + b sin with a, b ~ N(0, 1): variance 1 over the angle
            out += coef[:, i, 0, None, None] * np.cos(k * theta) + coef[:, i, 1, None, None] * np.sin(k * theta)
    return out / np.sqrt(len(JITTER_HARMONICS))


def soft_object(rho: np.ndarray, boundary: np.ndarray, edge: float = 0.7) -> np.ndarray:
    """Partial-volume occupancy in [0, 1] of the true object (a sigmoid of the distance to the edge)."""
    return 1.0 / (1.0 + np.exp(np.clip((rho - boundary) / edge, -60, 60)))


def coaxial_shading(rho: np.ndarray, boundary: np.ndarray, relief: np.ndarray | float) -> np.ndarray:
    """Brightness of a raised dome lit and seen from straight above (an endoscope's coaxial light).

    The dome over the object ``rho <= boundary`` is a half spheroid of height ``relief * boundary``:
    ``h = relief * sqrt(boundary**2 - rho**2)``. A matte surface lit from the camera is as bright as
    the cosine between its normal and the view direction, ``1 / sqrt(1 + |grad h|**2)``, which is
    ``sqrt((1 - s) / (1 - s + relief**2 * s))`` with ``s = (rho / boundary)**2``: 1 on the top, falling
    to 0 at the foot of the dome, the faster the higher the dome (``relief = 1`` is a hemisphere,
    ``sqrt(1 - s)``; ``relief = 0`` is flat, 1 everywhere inside). At and beyond the foot it is 0:
    use it inside the object only.

    Args:
        rho: (N, H, W) distance of every pixel to the object's centre (pixels).
        boundary: (N, H, W) the object's radius in that direction (pixels).
        relief: Height over radius, a number or an array broadcastable to ``rho``.

    Returns:
        (N, H, W) float32 cosines in [0, 1].
    """
    s = np.clip(rho / np.maximum(boundary, 1e-3), 0, 1) ** 2
    return np.sqrt((1 - s) / np.maximum(1 - s + np.square(relief) * s, 1e-6)).astype(np.float32)


def resize(images: np.ndarray, size: int, antialias: bool = False) -> np.ndarray:
    """Bilinear resize of (N, C, h, w) float32 arrays to (N, C, size, size) (torch, multithreaded)."""
    out = F.interpolate(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)), size=(size, size),
                        mode="bilinear", align_corners=False, antialias=antialias)
    return out.numpy()


def smooth_field(rng: np.random.Generator, n: int, size: int, sigma: float) -> np.ndarray:
    """Smooth random fields (N, H, W), zero mean and unit standard deviation per image.

    Args:
        rng: Random generator.
        n: Number of fields.
        size: Side in pixels.
        sigma: Correlation length in pixels (Gaussian filter width).
    """
    step = max(1, int(sigma // 2))  # filter on a coarser grid, then interpolate: same look, far cheaper
    coarse = -(-size // step)
    white = rng.standard_normal((n, coarse, coarse)).astype(np.float32)
    field = gaussian_filter(white, sigma=(0, sigma / step, sigma / step), mode="wrap")
    if coarse != size:
        field = resize(field[:, None], size)[:, 0]
    field -= field.mean(axis=(1, 2), keepdims=True)
    field /= field.std(axis=(1, 2), keepdims=True) + 1e-8
    return field


def ellipse_region(size: int, centre: np.ndarray, radii: np.ndarray, edge: float = 1.0) -> np.ndarray:
    """Soft axis-aligned ellipses (N, H, W) in [0, 1]; ``centre`` and ``radii`` are (N, 2) in pixels."""
    coords = np.arange(size, dtype=np.float32) + 0.5
    centre, radii = centre.astype(np.float32), radii.astype(np.float32)
    dr = (coords[None, :, None] - centre[:, 0, None, None]) / radii[:, 0, None, None]
    dc = (coords[None, None, :] - centre[:, 1, None, None]) / radii[:, 1, None, None]
    dist = (np.sqrt(dr**2 + dc**2) - 1) * radii.min(axis=1)[:, None, None]  # ~ pixels outside the edge
    return (1.0 / (1.0 + np.exp(np.clip(dist / edge, -60, 60)))).astype(np.float32)
