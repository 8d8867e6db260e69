"""What makes one synthetic site different from another: :class:`SiteStyle` and the per-dataset defaults.

A real multi-site federation differs along three axes, and every field of :class:`SiteStyle` belongs
to exactly one of them (:data:`AXES`):

* **acquisition** (the scanner / camera and its protocol): intensity transfer curve, contrast,
  brightness, noise, blur, smooth multiplicative bias field, endorectal-coil receive profile,
  colour cast, resolution;
* **population** (who the site's patients are): object size, position and shape distribution;
  the number of cases and images per case are facts about the site (data scarcity) and never blended;
* **annotation style** (who drew the masks): labels systematically looser or tighter than the
  true object boundary, plus each annotator's random, case-to-case boundary disagreement.

Lengths are given in pixels of a 64-pixel image and scaled with the image size, so a style means
the same at 32 or 384 pixels. :data:`PIXEL_MM` says what one such pixel is in millimetres for each
task, which is how the annotation margins below were sized from published inter-observer
variability. ``SITE_STYLES[dataset]`` holds the default sites, ``REFERENCE_STYLES[dataset]`` the
neutral style that ``heterogeneity=0`` collapses every site onto (see :meth:`SiteStyle.blend`).

Real-world counterparts of the defaults (sizes and facts from the public benchmarks; acquisition
values are chosen to imitate the *kind* and rough size of the differences, not measured):

Prostate (six sites modelled on the multi-site T2 MR collection used by SAML / FedDG / LC-Fed):

* cases 30/30/19/13/12/12 as in that collection (RUNMC, BMC, I2CVB, UCL, BIDMC, HK); 10 slices
  per case (real volumes have 15-30 slices of 3-4 mm, of which roughly the 10-15 through the gland
  are kept; neighbouring slices are strongly correlated, so cases, not slices, measure data volume);
* the 64-px image is the central half of the 384-px crop the benchmark uses (about 105 mm across, so
  one pixel is about 1.65 mm); the mid-gland radius (0.17 of the side) matches real slices, where
  the gland's equivalent radius is 0.04-0.11 of the 384-px crop from apex to mid-gland;
* acquisition: A imitates a 3 T scanner without endorectal coil (RUNMC), B a 1.5 T scanner with
  an endorectal coil (BMC: lower SNR, a bright receive profile around the rectum), C a 3 T scanner
  of another vendor (different intensity curve), D a mixed 1.5/3 T site with coarser in-plane
  sampling (UCL), E a 3 T scanner with an endorectal coil (BIDMC), F a 1.5 T site with the lowest
  SNR and coarsest sampling (HK);
* annotation: systematic margins of -0.5 to +0.6 px (about -0.8 to +1 mm) and a random boundary
  disagreement of 0.4 px (about 0.7 mm) RMS, the size of the 1-2 mm mean boundary distances
  reported between expert prostate contours on T2 MR (whole-gland inter-observer studies, e.g. the
  second observer of PROMISE12). Sites therefore disagree by up to about 1.8 mm, i.e. ~1 px at 64
  px on a gland of radius ~11 px: a real but modest prediction-level inconsistency.

Polyp (four sites modelled on Kvasir-SEG, ETIS-Larib, CVC-ColonDB and CVC-ClinicDB):

* images per site as in those sets (1000, 196, 380, 612). Cases are distinct polyps / video
  sequences: Kvasir's images come from ~1000 different examinations (one frame each), ETIS from 34
  sequences (6 frames each, 204 images), ColonDB from 15 (25 frames, 375), ClinicDB from 29
  (21 frames, 609); frames of one sequence show the same polyp from a moving camera;
* one pixel at 64 px is about 8 px of the ~550-px original frames; annotation margins of
  -0.3 to +0.4 px (2.5-3.5 original px) imitate the looser polygon outlines of Kvasir-SEG and the
  tighter outlines of the CVC sets;
* acquisition: colour cast, gamma and sharpness of different endoscope generations; ETIS frames are
  high-resolution but small polyps, ColonDB frames are blurred (motion and defocus in video frames).
  ColonDB's frames are also the smallest (574 x 500 px), but that is still more than any training
  size here (32-384 px), so no polyp site is given a resolution loss: after resizing to the training
  size every site's frames are sampled alike.

Fundus (four sites modelled on Drishti-GS, RIM-ONE-r3, REFUGE-train and REFUGE-val; disc-centred
crops):

* images per site as in those sets (101, 159, 400, 400), one image per eye;
* one pixel at 64 px is about 0.07 mm of retina (a disc of ~1.8 mm diameter spans ~40% of the crop);
  disc margins of +-0.3 px and cup margins of up to +-1 px: published inter-observer variability
  is small for the disc outline and large for the cup (vertical cup-to-disc ratios of experts differ
  by ~0.1), and RIM-ONE-r3's cups are known to be drawn tighter than the other sets';
* acquisition: REFUGE-train and REFUGE-val were taken with different cameras (Zeiss Visucam 500,
  Canon CR-2), the others with yet other cameras: colour cast, gamma, blur and resolution differ.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from types import MappingProxyType

#: The three axes of heterogeneity and the SiteStyle fields that belong to each.
AXES: MappingProxyType[str, tuple[str, ...]] = MappingProxyType({
    "acquisition": ("gamma", "contrast", "brightness", "noise", "blur", "bias_field", "endorectal_coil",
                    "colour_gain", "resolution"),
    "population": ("object_size", "size_spread", "position", "position_spread", "elongation", "irregularity"),
    "annotation": ("annotation_margin", "cup_margin", "annotation_jitter"),
})

#: Millimetres per pixel of the 64-px reference image of each task (see the module docstring).
#: Endoscopy frames have no physical scale; one pixel at 64 px is about 8.6 px of a ~550-px frame.
PIXEL_MM: MappingProxyType[str, float] = MappingProxyType({"prostate": 1.65, "fundus": 0.07})

_FACTS = ("name", "cases", "images_per_case")


@dataclass(frozen=True)
class SiteStyle:
    """Everything that distinguishes one synthetic site.

    Attributes:
        name: Site name (column label in every table).
        cases: Number of cases (patients / eyes / video sequences) at ``cases_scale=1``.
        images_per_case: Images per case (MR slices, video frames). Splits never separate them.
        object_size: Mean object radius as a fraction of the image side (mid-gland for prostate).
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
        endorectal_coil: Peak relative gain of an endorectal receive coil (prostate MR only; 0 = no
            coil): the signal is multiplied by ``1 + endorectal_coil * exp(-d / L)`` with ``d`` the
            distance to the coil in the rectum, and the rectum holds the coil's air-filled balloon.
        colour_gain: Per-channel RGB gains (colour cast); ignored for single-channel images.
        resolution: Acquisition downsampling factor (>= 1): the image is acquired at
            ``size / resolution`` pixels and interpolated back.
        annotation_margin: Systematic annotation boundary offset in pixels (at 64 px): > 0 the site's
            annotators draw looser masks (object dilated), < 0 tighter (eroded). For fundus it
            applies to the optic disc. Images always show the true object.
        cup_margin: The same for the optic cup (fundus only).
        annotation_jitter: RMS of each annotator's random, smooth boundary disagreement in pixels
            (at 64 px), drawn anew for every image (inter-observer variability that is not a style).
    """

    name: str
    # population (cases and images_per_case are facts, never blended)
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
    endorectal_coil: float = 0.0
    colour_gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    resolution: float = 1.0
    # annotation
    annotation_margin: float = 0.0
    cup_margin: float = 0.0
    annotation_jitter: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "cases": self.cases >= 1, "images_per_case": self.images_per_case >= 1,
            "object_size": 0 < self.object_size < 0.5, "size_spread": self.size_spread >= 0,
            "position_spread": self.position_spread >= 0, "elongation": self.elongation > 0,
            "irregularity": 0 <= self.irregularity < 0.5, "gamma": self.gamma > 0,
            "contrast": self.contrast > 0, "noise": self.noise >= 0, "blur": self.blur >= 0,
            "bias_field": self.bias_field >= 0, "endorectal_coil": self.endorectal_coil >= 0,
            "resolution": self.resolution >= 1, "annotation_jitter": self.annotation_jitter >= 0,
            "colour_gain": len(self.colour_gain) == 3 and min(self.colour_gain) > 0,
            "position": len(self.position) == 2 and all(0 <= p <= 1 for p in self.position),
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            shown = ", ".join(f"{k}={getattr(self, k)!r}" for k in bad)
            raise ValueError(f"SiteStyle {self.name!r}: invalid {shown}; see the SiteStyle docstring "
                             "for the valid ranges.")

    def blend(self, reference: SiteStyle, heterogeneity: float | Mapping[str, float]) -> SiteStyle:
        """Move style effects towards ``reference``: ``ref + h * (self - ref)``, per axis.

        Args:
            reference: The neutral style (``REFERENCE_STYLES[dataset]``).
            heterogeneity: One scale for every axis, or a mapping ``{"acquisition": a,
                "population": p, "annotation": n}`` (missing axes keep 1). 0 gives the reference
                style on that axis (all sites identical), 1 this style, > 1 exaggerates the differences.

        Name and dataset size (``cases``, ``images_per_case``) are kept: they are facts about the
        site, not about its style.

        Raises:
            ValueError: for a negative scale or an unknown axis name.
        """
        scales = axis_scales(heterogeneity)
        out = {}
        for axis, names in AXES.items():
            h = scales[axis]
            for name in names:
                mine, ref = getattr(self, name), getattr(reference, name)
                if isinstance(mine, tuple):
                    out[name] = tuple(r + h * (m - r) for m, r in zip(mine, ref, strict=True))
                else:
                    out[name] = ref + h * (mine - ref)
        # keep blended values inside their valid ranges when a scale is > 1
        out["resolution"] = max(1.0, out["resolution"])
        for k in ("noise", "blur", "bias_field", "endorectal_coil", "size_spread", "position_spread",
                  "irregularity", "annotation_jitter"):
            out[k] = max(0.0, out[k])
        out["gamma"] = max(0.05, out["gamma"])
        out["contrast"] = max(0.05, out["contrast"])
        out["colour_gain"] = tuple(max(0.05, g) for g in out["colour_gain"])
        return replace(self, **out)

    def to_dict(self) -> dict:
        """Plain dict (for site metadata and tables)."""
        return dataclasses.asdict(self)


def axis_scales(heterogeneity: float | Mapping[str, float]) -> dict[str, float]:
    """``{axis: scale}`` for a global heterogeneity or a per-axis mapping (missing axes: 1).

    Raises:
        ValueError: for a negative scale or an unknown axis name.
    """
    if isinstance(heterogeneity, Mapping):
        unknown = sorted(set(heterogeneity) - set(AXES))
        if unknown:
            raise ValueError(f"heterogeneity has unknown axes {unknown}; use some of {list(AXES)}")
        scales = {axis: float(heterogeneity.get(axis, 1.0)) for axis in AXES}
    else:
        scales = dict.fromkeys(AXES, float(heterogeneity))
    bad = {k: v for k, v in scales.items() if v < 0}
    if bad:
        raise ValueError(f"heterogeneity must be >= 0 on every axis, got {bad}")
    return scales


def _check_axes() -> None:
    """Every style field except the facts belongs to exactly one axis."""
    assigned = [n for names in AXES.values() for n in names]
    expected = [f.name for f in fields(SiteStyle) if f.name not in _FACTS]
    if sorted(assigned) != sorted(expected):
        raise AssertionError(f"AXES must list every style field once: {sorted(assigned)} vs {sorted(expected)}")


_check_axes()

REFERENCE_STYLES: MappingProxyType[str, SiteStyle] = MappingProxyType({
    "prostate": SiteStyle("reference", object_size=0.17, size_spread=0.18, position=(0.5, 0.5),
                          position_spread=0.03, elongation=1.3, irregularity=0.07, noise=0.04, blur=0.4,
                          bias_field=0.15, annotation_jitter=0.4),
    "polyp": SiteStyle("reference", object_size=0.14, size_spread=0.45, position_spread=0.15,
                       elongation=1.2, irregularity=0.15, noise=0.02, blur=0.6, bias_field=0.1,
                       annotation_jitter=0.4),
    "fundus": SiteStyle("reference", object_size=0.2, size_spread=0.12, position=(0.5, 0.5),
                        position_spread=0.04, elongation=1.1, irregularity=0.05, noise=0.02, blur=0.5,
                        bias_field=0.1, annotation_jitter=0.3),
})

_P, _Y, _F = REFERENCE_STYLES["prostate"], REFERENCE_STYLES["polyp"], REFERENCE_STYLES["fundus"]

SITE_STYLES: MappingProxyType[str, tuple[SiteStyle, ...]] = MappingProxyType({
    # RUNMC, BMC, I2CVB, UCL, BIDMC, HK (see the module docstring for each choice).
    "prostate": (
        replace(_P, name="A", cases=30, images_per_case=10, noise=0.03, bias_field=0.10),
        replace(_P, name="B", cases=30, images_per_case=10, noise=0.06, endorectal_coil=1.5, gamma=1.2,
                contrast=0.9, object_size=0.16, annotation_margin=0.5),
        replace(_P, name="C", cases=19, images_per_case=10, gamma=0.8, contrast=1.1, brightness=0.04,
                noise=0.035, blur=0.3, object_size=0.18, elongation=1.4, annotation_margin=-0.3),
        replace(_P, name="D", cases=13, images_per_case=10, gamma=1.1, noise=0.05, resolution=1.6, blur=0.6,
                position=(0.52, 0.5), annotation_margin=0.3),
        replace(_P, name="E", cases=12, images_per_case=10, noise=0.04, endorectal_coil=2.0, gamma=0.9,
                contrast=1.15, blur=0.3, object_size=0.16, annotation_margin=-0.5),
        replace(_P, name="F", cases=12, images_per_case=10, gamma=1.25, contrast=0.8, noise=0.08, blur=0.9,
                resolution=2.0, bias_field=0.3, object_size=0.18, annotation_margin=0.6),
    ),
    # Kvasir-SEG, ETIS-Larib, CVC-ColonDB, CVC-ClinicDB.
    "polyp": (
        replace(_Y, name="A", cases=1000, images_per_case=1, object_size=0.18, size_spread=0.5,
                colour_gain=(1.0, 1.0, 1.0), annotation_margin=0.4),
        replace(_Y, name="B", cases=34, images_per_case=6, object_size=0.09, size_spread=0.4, noise=0.03,
                colour_gain=(1.1, 0.9, 0.85), gamma=1.2, blur=0.4),
        replace(_Y, name="C", cases=15, images_per_case=25, object_size=0.11, colour_gain=(0.9, 1.0, 1.1),
                contrast=0.8, blur=1.0, bias_field=0.3, noise=0.04, annotation_margin=-0.3),
        replace(_Y, name="D", cases=29, images_per_case=21, object_size=0.14, colour_gain=(1.05, 1.05, 0.9),
                gamma=0.85, brightness=0.04, noise=0.03, irregularity=0.2, annotation_margin=-0.2),
    ),
    # Drishti-GS, RIM-ONE-r3, REFUGE-train (Zeiss Visucam 500), REFUGE-val (Canon CR-2).
    "fundus": (
        replace(_F, name="A", cases=101, object_size=0.19, colour_gain=(1.0, 0.95, 0.9), annotation_margin=0.3,
                cup_margin=0.8),
        replace(_F, name="B", cases=159, object_size=0.22, colour_gain=(0.9, 1.0, 1.15), contrast=0.8,
                noise=0.04, blur=1.0, resolution=1.4, cup_margin=-1.0),
        replace(_F, name="C", cases=400, object_size=0.2, colour_gain=(1.15, 0.9, 0.8), gamma=1.3,
                brightness=-0.04, bias_field=0.3),
        replace(_F, name="D", cases=400, object_size=0.2, colour_gain=(1.0, 1.05, 1.0), gamma=0.8,
                resolution=1.6, position_spread=0.06, annotation_margin=-0.3),
    ),
})

del _P, _Y, _F
