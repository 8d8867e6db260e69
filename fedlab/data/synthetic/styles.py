"""What makes one synthetic site different from another: :class:`SiteStyle` and the per-dataset defaults.

A real multi-site federation differs in three ways, and each one is a field of :class:`SiteStyle`:

* **acquisition** (the scanner / camera): intensity transfer curve, contrast, brightness, noise,
  blur, smooth multiplicative bias field, colour cast, resolution;
* **population** (who the site's patients are): object size, position and shape distribution,
  number of cases and images per case;
* **annotation style** (who drew the masks): labels systematically looser or tighter than the
  true object boundary.

Lengths are given for a 64-pixel image and scaled with the image size, so a style means the same at
32 or 384 pixels. ``SITE_STYLES[dataset]`` holds the default sites, ``REFERENCE_STYLES[dataset]``
the neutral style that ``heterogeneity=0`` collapses every site onto (see :meth:`SiteStyle.blend`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields, replace
from types import MappingProxyType


@dataclass(frozen=True)
class SiteStyle:
    """Everything that distinguishes one synthetic site.

    Attributes:
        name: Site name (column label in every table).
        cases: Number of cases (patients / eyes / videos) at ``cases_scale=1``.
        images_per_case: Images per case (MR slices, video frames). Splits never separate them.
        object_size: Mean object radius as a fraction of the image side.
        size_spread: Relative standard deviation of the object radius across cases.
        position: Mean object centre ``(row, col)`` as fractions of the image side.
        position_spread: Standard deviation of the centre, as a fraction of the image side.
        elongation: Mean aspect ratio of the object (1 = round).
        irregularity: Amplitude of the smooth random boundary perturbation (relative radius).
        gamma: Intensity transfer curve ``I -> I ** gamma`` (1 = linear).
        contrast: Contrast stretch about mid-grey ``I -> 0.5 + contrast * (I - 0.5)``.
        brightness: Additive intensity offset.
        noise: Standard deviation of additive Gaussian noise (intensity units).
        blur: Gaussian blur sigma in pixels (at 64 px).
        bias_field: Amplitude of the smooth multiplicative bias field ``exp(bias_field * f)``,
            ``f`` a random quadratic surface with values of order 1.
        colour_gain: Per-channel RGB gains (colour cast); ignored for single-channel images.
        resolution: Acquisition downsampling factor (>= 1): the image is acquired at
            ``size / resolution`` pixels and interpolated back.
        annotation_margin: Annotation boundary offset in pixels (at 64 px): > 0 the site's
            annotators draw looser masks (object dilated), < 0 tighter (eroded). Images always show
            the true object.
    """

    name: str
    # population
    cases: int = 20
    images_per_case: int = 1
    object_size: float = 0.16
    size_spread: float = 0.15
    position: tuple[float, float] = (0.5, 0.5)
    position_spread: float = 0.04
    elongation: float = 1.2
    irregularity: float = 0.08
    # acquisition
    gamma: float = 1.0
    contrast: float = 1.0
    brightness: float = 0.0
    noise: float = 0.03
    blur: float = 0.5
    bias_field: float = 0.1
    colour_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resolution: float = 1.0
    # annotation
    annotation_margin: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "cases": self.cases >= 1, "images_per_case": self.images_per_case >= 1,
            "object_size": 0 < self.object_size < 0.5, "size_spread": self.size_spread >= 0,
            "position_spread": self.position_spread >= 0, "elongation": self.elongation > 0,
            "irregularity": 0 <= self.irregularity < 0.5, "gamma": self.gamma > 0,
            "contrast": self.contrast > 0, "noise": self.noise >= 0, "blur": self.blur >= 0,
            "bias_field": self.bias_field >= 0, "resolution": self.resolution >= 1,
            "colour_gain": len(self.colour_gain) == 3 and min(self.colour_gain) > 0,
            "position": len(self.position) == 2 and all(0 <= p <= 1 for p in self.position),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(f"SiteStyle {self.name!r}: invalid {shown}; see the SiteStyle docstring "
                             "for the valid ranges.")

    def blend(self, reference: SiteStyle, heterogeneity: float) -> SiteStyle:
        """Move every style effect towards ``reference``: ``ref + heterogeneity * (self - ref)``.

        ``heterogeneity=0`` gives the reference style (all sites identical in style), 1 this style,
        > 1 exaggerates the differences. Name and dataset size (``cases``, ``images_per_case``)
        are kept: they are facts about the site, not about its style.
        """
        if heterogeneity < 0:
            raise ValueError(f"heterogeneity must be >= 0, got {heterogeneity!r}")
        out = {}
        for f in fields(self):
            if f.name in ("name", "cases", "images_per_case"):
                continue
            mine, ref = getattr(self, f.name), getattr(reference, f.name)
            if isinstance(mine, tuple):
                out[f.name] = tuple(r + heterogeneity * (m - r) for m, r in zip(mine, ref, strict=True))
            else:
                out[f.name] = ref + heterogeneity * (mine - ref)
        # keep blended values inside their valid ranges when heterogeneity > 1
        out["resolution"] = max(1.0, out["resolution"])
        for k in ("noise", "blur", "bias_field", "size_spread", "position_spread", "irregularity"):
            out[k] = max(0.0, out[k])
        out["colour_gain"] = tuple(max(0.05, g) for g in out["colour_gain"])
        return replace(self, **out)

    def to_dict(self) -> dict:
        """Plain dict (for site metadata and tables)."""
        return dataclasses.asdict(self)


REFERENCE_STYLES: MappingProxyType[str, SiteStyle] = MappingProxyType({
    "prostate": SiteStyle("reference", object_size=0.15, elongation=1.25, irregularity=0.06, noise=0.03,
                          blur=0.5, bias_field=0.15),
    "polyp": SiteStyle("reference", object_size=0.15, size_spread=0.3, position_spread=0.14,
                       elongation=1.2, irregularity=0.15, noise=0.02, blur=0.6, bias_field=0.1),
    "fundus": SiteStyle("reference", object_size=0.13, size_spread=0.12, position=(0.5, 0.5),
                        position_spread=0.06, elongation=1.1, irregularity=0.05, noise=0.02, blur=0.5,
                        bias_field=0.1),
})

_P, _Y, _F = REFERENCE_STYLES["prostate"], REFERENCE_STYLES["polyp"], REFERENCE_STYLES["fundus"]

# Case counts of the six prostate sites follow the multi-site prostate MR benchmark (30/30/19/13/12/12
# cases); five slices per case. The acquisition settings are made up to imitate the kind of differences
# seen between scanners (field strength, coil, vendor), not measured from real data.
SITE_STYLES: MappingProxyType[str, tuple[SiteStyle, ...]] = MappingProxyType({
    "prostate": (
        replace(_P, name="A", cases=30, images_per_case=5, gamma=1.0, contrast=1.1, noise=0.02,
                bias_field=0.10),
        replace(_P, name="B", cases=30, images_per_case=5, gamma=1.4, contrast=0.8, brightness=-0.05,
                noise=0.05, bias_field=0.35, object_size=0.14, annotation_margin=1.5),
        replace(_P, name="C", cases=19, images_per_case=5, gamma=0.75, contrast=1.0, brightness=0.08,
                noise=0.03, blur=1.0, object_size=0.17, elongation=1.4),
        replace(_P, name="D", cases=13, images_per_case=5, gamma=1.1, contrast=0.9, noise=0.06,
                resolution=2.0, position=(0.53, 0.5), annotation_margin=-1.5),
        replace(_P, name="E", cases=12, images_per_case=5, gamma=0.9, contrast=1.2, brightness=-0.08,
                noise=0.025, bias_field=0.45, object_size=0.13, irregularity=0.1),
        replace(_P, name="F", cases=12, images_per_case=5, gamma=1.25, contrast=0.7, brightness=0.05,
                noise=0.08, blur=1.2, resolution=1.5, object_size=0.18, annotation_margin=2.0),
    ),
    # Four endoscopy sites; polyps are irregular blobs anywhere in the view, frames come in short clips.
    "polyp": (
        replace(_Y, name="A", cases=100, images_per_case=1, object_size=0.17, colour_gain=(1.0, 1.0, 1.0)),
        replace(_Y, name="B", cases=20, images_per_case=3, object_size=0.10, size_spread=0.2, noise=0.04,
                colour_gain=(1.1, 0.9, 0.85), gamma=1.2, blur=1.0, annotation_margin=1.5),
        replace(_Y, name="C", cases=25, images_per_case=3, object_size=0.14, colour_gain=(0.9, 1.0, 1.1),
                contrast=0.8, resolution=1.8, bias_field=0.3, annotation_margin=-1.0),
        replace(_Y, name="D", cases=40, images_per_case=3, object_size=0.19, colour_gain=(1.05, 1.05, 0.9),
                gamma=0.85, brightness=0.05, noise=0.03, irregularity=0.2),
    ),
    # Four fundus sites (optic disc with the cup inside it), one image per eye.
    "fundus": (
        replace(_F, name="A", cases=60, object_size=0.12, colour_gain=(1.0, 0.95, 0.9), gamma=1.0),
        replace(_F, name="B", cases=90, object_size=0.15, colour_gain=(0.9, 1.0, 1.15), contrast=0.8,
                noise=0.04, blur=1.0, annotation_margin=1.5),
        replace(_F, name="C", cases=160, object_size=0.11, position=(0.5, 0.6), colour_gain=(1.15, 0.9, 0.8),
                gamma=1.3, brightness=-0.04, bias_field=0.3),
        replace(_F, name="D", cases=160, object_size=0.13, colour_gain=(1.0, 1.05, 1.0), gamma=0.8,
                resolution=1.6, position_spread=0.09, annotation_margin=-1.0),
    ),
})

del _P, _Y, _F
