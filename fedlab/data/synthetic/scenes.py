"""True scenes of the three synthetic tasks: what is in front of the scanner, before acquisition.

Each ``*_scene`` function draws ``num_cases`` cases for one site and returns a :class:`Scene`:

* ``image``: (N, C, H, W) float32 true intensities in [0, 1] (drawn from the TRUE objects),
* ``true``: (N, L, H, W) float32 0/1 true object masks,
* ``annotated``: (N, L, H, W) float32 0/1 masks as the site's annotators draw them (true boundary
  moved by ``style.annotation_margin`` plus ``style.annotation_jitter`` times a smooth random
  per-image offset, in pixels at 64 px),
* ``coil``: (N, 2) position of an endorectal receive coil, or None (prostate only).

What makes each task hard, and its real counterpart:

* **prostate MR** (1 channel; the central ~105 mm of an axial T2 slice; anterior is up). The gland
  has zonal anatomy: a bright peripheral zone (PZ), a darker nodular transition zone whose size
  varies between patients (benign hyperplasia), a dark anterior fibromuscular stroma and a thin
  dark capsule that is visible only along parts of the outline. Around it lie periprostatic fat
  (a little darker than the PZ), the dark levator ani sling and obturator muscles (as dark as the
  transition zone and stroma), the rectum (air or content; the balloon of an endorectal coil where
  the site uses one), the pubic bones, and towards the base the bright bladder and the seminal
  vesicles, which look like PZ but are not prostate. Intensities of every tissue vary from patient
  to patient, some patients have dark PZ lesions, and the gland shrinks towards apex and base.
  So the outline must be inferred from shape and context, as on real T2 images. The tissue
  intensities are set so that the outline contrast (mean of a 2-px band inside minus a 2-px band
  outside, over the SD inside the gland) has a median of about 0.8, as measured on the real
  two-site sample (0.86; the old blob-in-noise generator had about 4).
* **polyp endoscopy** (RGB): pink mucosa with haustral folds (curved ridges that look like polyp
  edges), fine submucosal vessels, a dark lumen, vignetting and specular highlights. The polyp's
  colour is close to the mucosa's and varies by patient; what shows it is what an endoscopist sees:
  its relief and its surface. The endoscope lights the scene from the camera (coaxial light), so a
  raised surface is as bright as the cosine between its normal and the view: a polyp's top is
  bright and its steep sides dark. How much depends on its Paris class: flat elevated 0-IIa
  (relief 0.15 of its radius, a faint outline: the lesions most often missed in real colonoscopy),
  sessile 0-Is (0.5) or pedunculated 0-Ip (1.0). Normal mucosa shows its vessel network and the
  polyp's surface does not (the lost vascular pattern of adenomas, used in the NICE classification).
* **fundus** (RGB; disc-centred crop): orange retina, vessels that leave the disc and cross its rim,
  a pale peripapillary atrophy crescent beside the disc in some eyes (a bright distractor at the
  disc boundary), and a cup whose pallor fades into the rim (the cup outline is the least
  visible of the three tasks, and real experts disagree most about it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedlab.data.synthetic.shapes import (
    boundary_jitter,
    coaxial_shading,
    ellipse_region,
    object_mask,
    polar,
    sample_objects,
    smooth_field,
    soft_object,
)
from fedlab.data.synthetic.styles import SiteStyle

#: How much the prostate shrinks towards apex and base: radius * sqrt(1 - PROFILE * z**2).
PROSTATE_PROFILE = 0.75


@dataclass(frozen=True)
class Scene:
    """The true scene of every image of a site (see the module docstring for shapes)."""

    image: np.ndarray
    true: np.ndarray
    annotated: np.ndarray
    coil: np.ndarray | None = None


def _case_index(num_cases: int, per_case: int) -> np.ndarray:
    return np.repeat(np.arange(num_cases), per_case)


def _col(v: np.ndarray) -> np.ndarray:
    """(N,) -> (N, 1, 1) for broadcasting over images."""
    return np.asarray(v, dtype=np.float32)[:, None, None]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))).astype(np.float32)


def _annotate(rho: np.ndarray, boundary: np.ndarray, margin: float, jitter_rms: float, jitter: np.ndarray,
              px: float) -> np.ndarray:
    """The site's annotation of the object ``rho <= boundary``: shifted by the margin plus random jitter."""
    return object_mask(rho, boundary, (margin + jitter_rms * jitter) * px)


def prostate_scene(rng: np.random.Generator, style: SiteStyle, num_cases: int, size: int) -> Scene:
    """Prostate-like axial T2 MR slices (1 channel, label "prostate")."""
    objs = sample_objects(rng, style, num_cases, size, slice_profile=PROSTATE_PROFILE, jitter=0.04,
                          slice_range=0.9)
    rep = _case_index(num_cases, style.images_per_case)
    n, px = rep.size, size / 64.0
    rho, theta, boundary = polar(objs, size)  # (N, H, W) each
    z = rng.standard_normal((num_cases, 10)).astype(np.float32)[rep]  # case-level anatomy and tissue
    u = rng.uniform(0, 1, (num_cases, 3)).astype(np.float32)[rep]
    tex_case = smooth_field(rng, num_cases, size, 3 * px)[rep]  # coarse texture, same along a case
    tex_img = smooth_field(rng, n, size, 1.0 * px)  # fine texture, new on every slice
    nodules = smooth_field(rng, n, size, 0.8 * px)  # transition-zone nodules
    capsule_seen = smooth_field(rng, n, size, 8 * px)  # where the capsule is visible
    jitter = boundary_jitter(rng, theta)

    c = objs.centre.astype(np.float32)  # (N, 2) gland centre (row, col)
    r = objs.radius.astype(np.float32)  # (N,) gland radius on this slice
    sp = objs.slice_pos.astype(np.float32)  # (N,) -0.9 apex ... 0.9 base
    rm = r / np.sqrt(1 - PROSTATE_PROFILE * sp**2)  # mid-gland radius: the anatomy around does not shrink
    rows = (np.arange(size, dtype=np.float32) + 0.5)[None, :, None]

    def at(dr: np.ndarray, dc: np.ndarray) -> np.ndarray:  # positions relative to the gland, in mid-gland radii
        return c + np.stack([dr * rm, dc * rm], axis=1)

    def radii(a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
        return np.stack([np.broadcast_to(a * rm, rm.shape), np.broadcast_to(b * rm, rm.shape)], axis=1)

    # tissue intensities of each patient (T2, before the scanner's intensity curve)
    fat = 0.45 + 0.05 * z[:, 0]
    muscle = 0.24 + 0.04 * z[:, 1]
    pz = np.clip(0.72 + 0.08 * z[:, 2], 0.45, 0.95)
    tz = 0.40 + 0.05 * z[:, 3]
    tz_frac = np.clip(0.55 + 0.12 * z[:, 4], 0.3, 0.8)

    img = _col(fat) * (1 + 0.15 * tex_case + 0.06 * tex_img)  # periprostatic and pelvic fat
    for side in (-1.0, 1.0):  # obturator internus muscles
        m = ellipse_region(size, at(0.1 + 0 * sp, side * (2.3 + 0.15 * z[:, 5])), radii(1.9, 0.75), edge=0.8 * px)
        img = img * (1 - m) + _col(muscle) * (1 + 0.1 * tex_img) * m
    gap = (rho - boundary) / _col(rm)  # distance outside the gland, in mid-gland radii
    posterior = _sigmoid(4 * np.sin(theta))
    sling = _sigmoid((gap - 0.22) / 0.05) * _sigmoid((0.5 - gap) / 0.05) * posterior  # levator ani
    img = img * (1 - sling) + _col(muscle) * sling
    for side in (-1.0, 1.0):  # pubic bones (dark cortex, grey marrow), above the gland
        centre = at(-2.2 + 0 * sp, side * 0.5 + 0 * sp)
        bone = ellipse_region(size, centre, radii(0.55, 0.45), edge=0.6 * px)
        marrow = ellipse_region(size, centre, radii(0.4, 0.3), edge=0.6 * px)
        img = img * (1 - bone) + (0.1 * (bone - marrow) + 0.45 * marrow)

    coil = style.endorectal_coil > 0
    rect_c = at(1.55 + 0.08 * z[:, 6], 0 * sp)
    rect_r = radii(0.65, 1.0) if coil else radii(0.5 * np.exp(0.15 * z[:, 7]), 0.75)
    wall = ellipse_region(size, rect_c, rect_r * 1.35, edge=0.6 * px)
    lumen = ellipse_region(size, rect_c, rect_r, edge=0.6 * px)
    content = np.where(u[:, 0] < 0.5, 0.05, 0.45).astype(np.float32)  # air or stool
    if coil:
        content = np.full_like(content, 0.02)  # the coil's air-filled balloon: no signal
    img = img * (1 - wall) + 0.3 * (wall - lumen) + _col(content) * lumen

    base = np.clip((sp - 0.3) / 0.5, 0, 1)  # towards the base: bladder and seminal vesicles
    bladder = ellipse_region(size, at(-1.5 + 0 * sp, 0 * sp), radii(0.8, 1.3), edge=0.8 * px) * _col(base)
    img = img * (1 - bladder) + 0.9 * bladder
    for side in (-1.0, 1.0):
        sv = ellipse_region(size, at(0.95 + 0 * sp, side * 0.75 + 0 * sp), radii(0.3, 0.65), edge=0.6 * px)
        sv = sv * _col(np.clip((sp - 0.35) / 0.45, 0, 1))
        img = img * (1 - sv) + 0.72 * (1 + 0.08 * tex_img) * sv

    # the gland: PZ, transition zone, anterior stroma, lesions, urethra, capsule
    gland = soft_object(rho, boundary, edge=0.5 * px)  # partial volume at the outline
    inner = _col(pz) * (1 + 0.06 * tex_img)
    tz_mask = ellipse_region(size, c - np.stack([0.15 * r, 0 * r], axis=1),
                             np.stack([0.85 * tz_frac * r, 1.1 * tz_frac * r], axis=1), edge=0.7 * px)
    inner = inner * (1 - tz_mask) + _col(tz) * (1 + 0.18 * nodules) * tz_mask
    stroma = _sigmoid(((_col(c[:, 0]) - rows) / _col(r) - 0.6) / 0.12)  # anterior fibromuscular stroma
    inner = inner * (1 - stroma) + 0.3 * stroma
    has_lesion = (u[:, 1] < 0.35) & (np.abs(sp - (u[:, 2] * 1.2 - 0.6)) < 0.45)
    side = np.where(z[:, 8] > 0, 1.0, -1.0)
    lesion = ellipse_region(size, c + np.stack([0.55 * r, side * 0.35 * r], axis=1), radii(0.25, 0.25),
                            edge=0.5 * px) * _col(has_lesion)
    inner = inner * (1 - lesion) + 0.3 * lesion
    urethra = ellipse_region(size, c - np.stack([0.1 * r, 0 * r], axis=1), radii(0.1, 0.1), edge=0.4 * px)
    inner = inner * (1 - urethra) + 0.6 * urethra
    img = img * (1 - gland) + inner * gland
    rim = np.exp(-(((rho - boundary) / (0.6 * px)) ** 2)) * np.clip(0.5 + 0.5 * capsule_seen, 0, 1)
    img = img * (1 - 0.45 * rim)

    true = object_mask(rho, boundary)[:, None]
    annotated = _annotate(rho, boundary, style.annotation_margin, style.annotation_jitter, jitter, px)[:, None]
    coil_at = (rect_c - np.stack([0.5 * rect_r[:, 0], 0 * r], axis=1)) if coil else None  # anterior balloon wall
    return Scene(np.clip(img, 0, 1)[:, None].astype(np.float32), true, annotated, coil_at)


def polyp_scene(rng: np.random.Generator, style: SiteStyle, num_cases: int, size: int) -> Scene:
    """Polyp-like colonoscopy frames (RGB, label "polyp")."""
    objs = sample_objects(rng, style, num_cases, size, jitter=0.08)
    rep = _case_index(num_cases, style.images_per_case)
    n, px = rep.size, size / 64.0
    rho, theta, boundary = polar(objs, size)
    folds = smooth_field(rng, num_cases, size, 5 * px)[rep] + 0.3 * smooth_field(rng, n, size, 2 * px)
    z = rng.standard_normal((num_cases, 8)).astype(np.float32)
    u = rng.uniform(0, 1, (num_cases, 2)).astype(np.float32)[rep]
    spots = rng.uniform(0, size, (n, 4, 2)).astype(np.float32)
    ridge_field = smooth_field(rng, num_cases, size, 6 * px)[rep]  # haustral folds: its level lines
    vessel_field = smooth_field(rng, n, size, 1.5 * px)  # the mucosa's fine vessels: its level lines
    jitter = boundary_jitter(rng, theta)

    mucosa = np.array([0.80, 0.45, 0.38], dtype=np.float32) * np.exp(0.05 * z[:, None, :3])  # (cases, 1, 3)
    mucosa = mucosa[rep, 0, :, None, None] * (1 + 0.15 * folds[:, None])  # (N, 3, H, W)
    lumen_c = np.clip(0.5 + 0.25 * z[rep, 3:5], 0.1, 0.9) * size
    lumen = ellipse_region(size, lumen_c, np.full((n, 2), 0.12 * size, np.float32), edge=4 * px)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    vignette = 1 - 0.9 * (grid[:, None] ** 2 + grid[None, :] ** 2)
    # haustral folds: thin bright ridges with a shadow on one side, curved like a polyp's edge
    ridge = np.exp(-((ridge_field / 0.12) ** 2))
    shadow = np.exp(-(((ridge_field - 0.2) / 0.12) ** 2))
    # submucosal vessels: thin dark-red lines on normal mucosa (absent on the polyp's surface)
    vessels = np.exp(-((vessel_field / 0.1) ** 2))[:, None] * np.array([0.15, 0.35, 0.35], np.float32)[:, None, None]
    tissue = mucosa * (1 - 0.75 * lumen[:, None]) * (1 + 0.18 * ridge[:, None] - 0.2 * shadow[:, None]) * vignette
    tissue = tissue * (1 - vessels)

    # the polyp: a dome of height relief * R lit by the endoscope's coaxial light, so its surface is
    # as bright as the cosine between normal and view (dark steep sides, bright top). Paris classes:
    # flat elevated 0-IIa (relief 0.15), sessile 0-Is (0.5), pedunculated 0-Ip (1.0)
    relief = np.select([u[:, 0] < 0.25, u[:, 0] < 0.75], [0.15, 0.5], 1.0)[:, None, None].astype(np.float32)
    facing = coaxial_shading(rho, boundary, relief)  # (N, H, W) cos(normal, view) in [0, 1]
    polyp_col = np.array([0.84, 0.48, 0.40], dtype=np.float32) * np.exp(0.07 * z[rep, None, 5:8])  # (N, 1, 3)
    # light: 0.45 scattered (reaches every surface) + 0.6 direct, so a polyp's top is lit like the flat mucosa
    polyp = polyp_col[:, 0, :, None, None] * (0.45 + 0.6 * facing[:, None]) * (1 + 0.05 * folds[:, None]) * vignette
    occ = soft_object(rho, boundary, edge=0.8 * px)[:, None]
    scene = tissue * (1 - occ) + polyp * occ

    coords = np.arange(size, dtype=np.float32) + 0.5
    for s in range(spots.shape[1]):  # specular highlights, some on the polyp
        d2 = (coords[None, :, None] - spots[:, s, 0, None, None]) ** 2 + \
             (coords[None, None, :] - spots[:, s, 1, None, None]) ** 2
        scene = scene + 0.6 * np.exp(-d2 / (2 * (0.8 * px) ** 2))[:, None]
    true = object_mask(rho, boundary)[:, None]
    annotated = _annotate(rho, boundary, style.annotation_margin, style.annotation_jitter, jitter, px)[:, None]
    return Scene(np.clip(scene, 0, 1).astype(np.float32), true, annotated)


def fundus_scene(rng: np.random.Generator, style: SiteStyle, num_cases: int, size: int) -> Scene:
    """Disc-centred fundus crops (RGB, labels "disc" and "cup"; the cup lies inside the disc)."""
    objs = sample_objects(rng, style, num_cases, size)
    rep = _case_index(num_cases, style.images_per_case)
    px = size / 64.0
    rho, theta, boundary = polar(objs, size)
    shade = smooth_field(rng, num_cases, size, 8 * px)[rep]
    z = rng.standard_normal((num_cases, 6)).astype(np.float32)
    u = rng.uniform(0, 1, (num_cases, 2)).astype(np.float32)[rep]
    cup_ratio = (0.5 + 0.1 * np.clip(z[rep, 0], -2, 2))[:, None, None]  # vertical cup-to-disc ratio ~0.5
    vessel_angle = rng.uniform(-np.pi, np.pi, (num_cases, 8)).astype(np.float32)[rep]
    vessel_bend = rng.normal(0, 2.0, (num_cases, 8)).astype(np.float32)[rep]
    jitter_disc = boundary_jitter(rng, theta)
    jitter_cup = boundary_jitter(rng, theta)

    grid = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    falloff = 1 - 0.8 * (grid[:, None] ** 2 + grid[None, :] ** 2)
    retina = np.array([0.72, 0.32, 0.12], dtype=np.float32)[None, :, None, None] * (
        (1 + 0.12 * shade) * falloff)[:, None]
    # peripapillary atrophy: a pale crescent just outside the disc, on one side, in some eyes
    ppa_dir = np.where(z[rep, 1] > 0, 0.0, np.pi).astype(np.float32)[:, None, None]
    ppa_w = (u[:, 0] < 0.4).astype(np.float32)[:, None, None] * np.clip(np.cos(theta - ppa_dir), 0, 1) ** 2
    ppa = ppa_w * _sigmoid((rho - boundary) / (0.5 * px)) * _sigmoid((boundary * 1.35 - rho) / (0.7 * px))
    ppa_col = np.array([0.90, 0.68, 0.45], dtype=np.float32)[None, :, None, None]
    retina = retina * (1 - 0.8 * ppa[:, None]) + 0.8 * ppa_col * ppa[:, None]

    disc = soft_object(rho, boundary, edge=0.7 * px)[:, None]
    pallor = _sigmoid((cup_ratio * boundary - rho) / (1.6 * px))[:, None]  # the cup fades into the rim
    disc_col = (np.array([0.93, 0.66, 0.40], dtype=np.float32) * np.exp(0.05 * z[rep, 2:5]))[:, :, None, None]
    cup_col = np.array([1.0, 0.86, 0.66], dtype=np.float32)[None, :, None, None]
    scene = retina * (1 - disc) + disc_col * disc
    scene = scene * (1 - 0.8 * pallor) + 0.8 * cup_col * pallor

    vessels = np.zeros_like(rho)
    width = np.clip(1.1 * px * (1 - rho / (0.9 * size)), 0.3 * px, None)
    for k in range(vessel_angle.shape[1]):  # vessels leave the disc centre, cross the rim, and bend
        phase = theta - vessel_angle[:, k, None, None] - vessel_bend[:, k, None, None] * rho / size
        dist = np.abs(np.sin(phase)) * rho  # distance to the vessel's centre line
        outward = (np.cos(phase) > 0) & (rho > 0.3 * cup_ratio * boundary)
        vessels = np.maximum(vessels, np.exp(-((dist / width) ** 2)) * outward)
    scene = scene * (1 - 0.5 * vessels[:, None])

    true = np.stack([object_mask(rho, boundary), object_mask(rho, cup_ratio * boundary)], axis=1)
    disc_ann = _annotate(rho, boundary, style.annotation_margin, style.annotation_jitter, jitter_disc, px)
    cup_ann = _annotate(rho, cup_ratio * boundary, style.cup_margin, style.annotation_jitter, jitter_cup, px)
    annotated = np.stack([disc_ann, cup_ann * disc_ann], axis=1)  # annotators keep the cup inside the disc
    return Scene(np.clip(scene, 0, 1).astype(np.float32), true, annotated)
