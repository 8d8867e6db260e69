"""True scenes of the three synthetic tasks: what is in front of the scanner, before acquisition.

Each ``*_scene`` function draws ``num_cases`` cases for one site and returns

* ``scene``: (N, C, H, W) float32 true intensities in [0, 1] (drawn from the TRUE objects),
* ``true``: (N, L, H, W) float32 0/1 true object masks,
* ``annotated``: (N, L, H, W) float32 0/1 masks as the site's annotators draw them
  (true boundary moved by ``style.annotation_margin`` pixels at 64 px).

Looks (made up, only meant to be plausible and learnable):

* prostate MR (1 channel): a pelvis of smooth soft-tissue texture on dark air, a slightly brighter
  gland with a brighter periphery, a dark rectum below it, a bright bladder above it near the base,
  and two lateral blobs of gland-like intensity as distractors; the gland shrinks towards the ends
  of each case (slices through an organ).
* polyp endoscopy (RGB): pink mucosa with folds, a dark lumen, vignetting, specular highlights, and
  an irregular dome-shaded polyp whose colour is close to the mucosa's.
* fundus (RGB): orange retina in a circular field of view, darker macula, vessels radiating from a
  bright optic disc that contains a brighter cup (label channels "disc", "cup"; cup inside disc).
"""

from __future__ import annotations

import numpy as np

from fedlab.data.synthetic.shapes import (
    ellipse_region,
    object_mask,
    polar,
    sample_objects,
    smooth_field,
    soft_object,
)
from fedlab.data.synthetic.styles import SiteStyle

Scene = tuple[np.ndarray, np.ndarray, np.ndarray]


def _case_index(num_cases: int, per_case: int) -> np.ndarray:
    return np.repeat(np.arange(num_cases), per_case)


def prostate_scene(rng: np.random.Generator, style: SiteStyle, num_cases: int, size: int) -> Scene:
    """Prostate-like axial MR slices (1 channel, label "prostate")."""
    objs = sample_objects(rng, style, num_cases, size, slice_profile=0.6, jitter=0.04)
    rep = _case_index(num_cases, style.images_per_case)
    n, px = rep.size, size / 64.0
    rho, _, boundary = polar(objs, size)  # (N, H, W) each
    z_body = rng.standard_normal((num_cases, 4)).astype(np.float32)
    z_blob = rng.standard_normal((num_cases, 4)).astype(np.float32)
    tex_case = smooth_field(rng, num_cases, size, 4 * px)[rep]
    tex_img = smooth_field(rng, n, size, 1.2 * px)

    body_c = (0.5 + 0.02 * z_body[rep, :2]) * size
    body_r = np.array([0.40, 0.47], dtype=np.float32) * np.exp(0.05 * z_body[rep, 2:]) * size
    body = ellipse_region(size, body_c, body_r, edge=1.5 * px)
    tissue = 0.30 + 0.06 * tex_case + 0.02 * tex_img

    r = objs.radius.astype(np.float32)
    below = objs.centre + np.stack([1.3 * r + 0.45 * r, 0 * r], axis=1)  # rectum under the gland
    rect_r = np.stack([0.45 * r, 0.6 * r], axis=1)
    rect_out = ellipse_region(size, below, rect_r * 1.35, edge=0.8 * px)
    rect_in = ellipse_region(size, below, rect_r, edge=0.8 * px)
    tissue = tissue * (1 - rect_out) + 0.42 * (rect_out - rect_in) + 0.08 * rect_in

    bladder_w = np.clip(objs.slice_pos + 0.4, 0, 1)[:, None, None].astype(np.float32)  # near the base
    above = objs.centre - np.stack([1.9 * r, 0 * r], axis=1)
    bladder = ellipse_region(size, above, np.stack([0.9 * r, 1.4 * r], axis=1), edge=1.0 * px) * bladder_w
    tissue = tissue * (1 - bladder) + 0.8 * bladder

    for side in (-1.0, 1.0):  # lateral distractors with gland-like intensity
        offset = np.stack([0.3 * r * z_blob[rep, 0], side * (1.9 + 0.2 * z_blob[rep, 1]) * r], axis=1)
        lateral = objs.centre + offset
        blob = ellipse_region(size, lateral, np.stack([0.55 * r, 0.35 * r], axis=1), edge=1.0 * px)
        tissue = tissue * (1 - blob) + (0.5 + 0.03 * tex_img) * blob

    gland = soft_object(rho, boundary, edge=0.6 * px)
    gland_tex = 0.50 + 0.10 * np.clip(rho / np.maximum(boundary, 1e-3), 0, 1) ** 2 + 0.04 * tex_img
    scene = (tissue * (1 - gland) + gland_tex * gland) * body + 0.03 * (1 - body)
    true = object_mask(rho, boundary)[:, None]
    annotated = object_mask(rho, boundary, style.annotation_margin * px)[:, None]
    return np.clip(scene, 0, 1)[:, None].astype(np.float32), true, annotated


def polyp_scene(rng: np.random.Generator, style: SiteStyle, num_cases: int, size: int) -> Scene:
    """Polyp-like colonoscopy frames (RGB, label "polyp")."""
    objs = sample_objects(rng, style, num_cases, size, jitter=0.08)
    rep = _case_index(num_cases, style.images_per_case)
    n, px = rep.size, size / 64.0
    rho, _, boundary = polar(objs, size)
    folds = smooth_field(rng, num_cases, size, 5 * px)[rep] + 0.3 * smooth_field(rng, n, size, 2 * px)
    z = rng.standard_normal((num_cases, 6)).astype(np.float32)
    spots = rng.uniform(0, size, (n, 4, 2)).astype(np.float32)

    mucosa = np.array([0.80, 0.45, 0.38], dtype=np.float32) * np.exp(0.05 * z[:, None, :3])  # (cases, 1, 3)
    mucosa = mucosa[rep, 0, :, None, None] * (1 + 0.15 * folds[:, None])  # (N, 3, H, W)
    lumen_c = np.clip(0.5 + 0.25 * z[rep, 3:5], 0.1, 0.9) * size
    lumen = ellipse_region(size, lumen_c, np.full((n, 2), 0.12 * size, np.float32), edge=4 * px)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    vignette = 1 - 0.9 * (grid[:, None] ** 2 + grid[None, :] ** 2)
    tissue = mucosa * (1 - 0.75 * lumen[:, None]) * vignette

    polyp_col = np.array([0.86, 0.50, 0.42], dtype=np.float32) * np.exp(0.05 * z[rep, None, 5:6])  # (N,1,3)
    dome = 0.85 + 0.3 * np.sqrt(np.clip(1 - rho / np.maximum(boundary, 1e-3), 0, 1))  # (N, H, W)
    polyp = polyp_col[:, 0, :, None, None] * dome[:, None] * (1 + 0.05 * folds[:, None]) * vignette
    occ = soft_object(rho, boundary, edge=0.8 * px)[:, None]
    scene = tissue * (1 - occ) + polyp * occ

    coords = np.arange(size, dtype=np.float32) + 0.5
    for s in range(spots.shape[1]):  # specular highlights, some on the polyp
        d2 = (coords[None, :, None] - spots[:, s, 0, None, None]) ** 2 + \
             (coords[None, None, :] - spots[:, s, 1, None, None]) ** 2
        scene = scene + 0.6 * np.exp(-d2 / (2 * (0.8 * px) ** 2))[:, None]
    true = object_mask(rho, boundary)[:, None]
    annotated = object_mask(rho, boundary, style.annotation_margin * px)[:, None]
    return np.clip(scene, 0, 1).astype(np.float32), true, annotated


def fundus_scene(rng: np.random.Generator, style: SiteStyle, num_cases: int, size: int) -> Scene:
    """Fundus-like photographs (RGB, labels "disc" and "cup"; the cup lies inside the disc)."""
    objs = sample_objects(rng, style, num_cases, size)
    rep = _case_index(num_cases, style.images_per_case)
    n, px = rep.size, size / 64.0
    rho, theta, boundary = polar(objs, size)
    shade = smooth_field(rng, num_cases, size, 8 * px)[rep]
    z = rng.standard_normal((num_cases, 4)).astype(np.float32)
    cup_ratio = (0.5 + 0.08 * np.clip(z[rep, 0], -2, 2))[:, None, None]  # vertical cup-to-disc ratio ~0.5
    vessel_angle = rng.uniform(-np.pi, np.pi, (num_cases, 8)).astype(np.float32)[rep]
    vessel_bend = rng.normal(0, 2.0, (num_cases, 8)).astype(np.float32)[rep]

    half = np.full((n, 2), size / 2, np.float32)
    fov = ellipse_region(size, half, np.full((n, 2), 0.48 * size, np.float32), edge=1.0 * px)
    grid = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    falloff = 1 - 1.2 * (grid[:, None] ** 2 + grid[None, :] ** 2)
    retina = np.array([0.72, 0.32, 0.12], dtype=np.float32)[None, :, None, None] * (
        (1 + 0.1 * shade) * falloff)[:, None]
    side = np.where(z[rep, 1] > 0, 1.0, -1.0)[:, None]  # macula left or right of the disc
    macula_c = objs.centre + np.concatenate([0 * side, side * 0.3 * size], axis=1)
    macula = ellipse_region(size, macula_c, np.full((n, 2), 0.1 * size, np.float32), edge=3 * px)
    retina = retina * (1 - 0.35 * macula[:, None])

    disc = soft_object(rho, boundary, edge=0.7 * px)[:, None]
    cup = soft_object(rho, cup_ratio * boundary, edge=1.2 * px)[:, None]
    disc_col = np.array([0.95, 0.70, 0.40], dtype=np.float32)[None, :, None, None]
    cup_col = np.array([1.0, 0.90, 0.70], dtype=np.float32)[None, :, None, None]
    scene = retina * (1 - disc) + disc_col * disc
    scene = scene * (1 - cup) + cup_col * cup

    vessels = np.zeros_like(rho)
    width = np.clip(1.1 * px * (1 - rho / (0.7 * size)), 0.3 * px, None)
    for k in range(vessel_angle.shape[1]):  # vessels radiating from the disc centre, slightly bent
        phase = theta - vessel_angle[:, k, None, None] - vessel_bend[:, k, None, None] * rho / size
        dist = np.abs(np.sin(phase)) * rho  # distance to the vessel's centre line
        outward = (np.cos(phase) > 0) & (rho > 0.4 * boundary)  # one ray, starting inside the disc
        vessels = np.maximum(vessels, np.exp(-((dist / width) ** 2)) * outward)
    scene = scene * (1 - 0.45 * vessels[:, None]) * fov[:, None]

    m = style.annotation_margin * px
    true = np.stack([object_mask(rho, boundary), object_mask(rho, cup_ratio * boundary)], axis=1)
    disc_ann = object_mask(rho, boundary, m)
    annotated = np.stack([disc_ann, object_mask(rho, cup_ratio * boundary, m) * disc_ann], axis=1)
    return np.clip(scene, 0, 1).astype(np.float32), true, annotated
