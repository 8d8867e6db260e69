"""Tiny datasets in the real formats (PNG/JPG with Pillow, NIfTI with nibabel), built in tmp folders.

Each builder returns the root and, where it matters, the intended foreground of every mask, so tests can
compare the decoded labels with it pixel for pixel.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import yaml


def disc_mask(size: int, cx: float, cy: float, r: float) -> np.ndarray:
    """Boolean disc of radius r at (cx, cy)."""
    yy, xx = np.mgrid[:size, :size]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


def make_png_tree(root: Path, sites: dict[str, tuple[int, int]], size: int = 16, rgb: bool = False,
                  seed: int = 0, invert: bool = False, image_dir: str = "image",
                  mask_dir: str = "mask") -> Path:
    """ROOT/SITE/{train,test}/{image,mask}/kk.png with disc masks; sites: name -> (n_train, n_test).

    Masks are 0 background / 255 object, or 255 background / 0 object with ``invert`` (the SAML PNG slices).
    """
    return make_png_tree_with_truth(root, sites, size, rgb, seed, invert, image_dir, mask_dir)[0]


def make_png_tree_with_truth(root: Path, sites: dict[str, tuple[int, int]], size: int = 16, rgb: bool = False,
                             seed: int = 0, invert: bool = False, image_dir: str = "image",
                             mask_dir: str = "mask") -> tuple[Path, dict[str, np.ndarray]]:
    """:func:`make_png_tree` plus the intended foreground of each mask, keyed by "SITE/split/kk"."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    truth = {}
    for site, counts in sites.items():
        for split, n in zip(("train", "test"), counts, strict=True):
            for sub in (image_dir, mask_dir):
                (root / site / split / sub).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                fg = disc_mask(size, rng.uniform(5, size - 5), rng.uniform(5, size - 5), rng.uniform(2, 4))
                img = (rng.uniform(0, 80, (size, size)) + 150 * fg).astype(np.uint8)
                if rgb:
                    img = np.stack([img, img // 2, 255 - img], axis=-1)
                Image.fromarray(img).save(root / site / split / image_dir / f"{k:02d}.png")
                raw = np.where(fg, 0, 255) if invert else np.where(fg, 255, 0)
                Image.fromarray(raw.astype(np.uint8)).save(root / site / split / mask_dir / f"{k:02d}.png")
                truth[f"{site}/{split}/{k:02d}"] = fg
    return root, truth


def make_fundus_tree(root: Path, sites: dict[str, tuple[int, int]], size: int = 24,
                     seed: int = 0) -> tuple[Path, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """DoFE layout ROOT/SITE/{train,test}/ROIs/{image,mask}/kk.png, masks 255 background / 128 disc rim / 0 cup.

    Returns the root and, per "SITE/split/kk", the intended (disc, cup) masks; the disc includes the cup.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    truth = {}
    for site, counts in sites.items():
        for split, n in zip(("train", "test"), counts, strict=True):
            for sub in ("ROIs/image", "ROIs/mask"):
                (root / site / split / sub).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                cx, cy = rng.uniform(9, size - 9, 2)
                disc = disc_mask(size, cx, cy, 6)
                cup = disc_mask(size, cx, cy, 3)
                raw = np.full((size, size), 255, np.uint8)
                raw[disc] = 128
                raw[cup] = 0
                img = np.stack([rng.uniform(0, 90, (size, size)) + 120 * disc] * 3, axis=-1).astype(np.uint8)
                Image.fromarray(img).save(root / site / split / "ROIs/image" / f"{k:02d}.png")
                Image.fromarray(raw).save(root / site / split / "ROIs/mask" / f"{k:02d}.png")
                truth[f"{site}/{split}/{k:02d}"] = (disc, cup)
    return root, truth


def make_nifti_site(folder: Path, n_cases: int, shape: tuple[int, int, int] = (12, 10, 6), seed: int = 0,
                    suffix: str = "_segmentation") -> Path:
    """CaseXX.nii.gz + CaseXX<suffix>.nii.gz volumes; foreground only in slices 1..3 of each case."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for c in range(n_cases):
        vol = rng.uniform(0, 1000, shape).astype(np.float32)
        seg = np.zeros(shape, np.uint8)
        seg[3:8, 2:6, 1:4] = 1
        nib.save(nib.Nifti1Image(vol, np.eye(4)), str(folder / f"Case{c:02d}.nii.gz"))
        nib.save(nib.Nifti1Image(seg, np.eye(4)), str(folder / f"Case{c:02d}{suffix}.nii.gz"))
    return folder


def make_pranet_tree(root: Path, per_folder: int = 3, size: int = 16) -> Path:
    """PraNet's TrainDataset / TestDataset folders with a few valid RGB images and 0/255 masks each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    folders = {"TrainDataset": [f"c{i:04d}" for i in range(per_folder)] + [str(i) for i in range(1, per_folder + 1)]}
    for sub in ("Kvasir", "CVC-ClinicDB"):
        folders[f"TestDataset/{sub}"] = [f"t{i}" for i in range(per_folder)]
    # a few files of each numbered range LC-Fed's split reads (ColonDB 1-220 / 221-272 / 273-379, ETIS 1-170 / 171-196)
    folders["TestDataset/CVC-ColonDB"] = [str(i) for i in (1, 2, 221, 222, 273, 274)]
    folders["TestDataset/ETIS-LaribPolypDB"] = [str(i) for i in (1, 2, 171, 172)]
    for folder, names in folders.items():
        for kind in ("images", "masks"):
            (root / folder / kind).mkdir(parents=True, exist_ok=True)
        for name in names:
            fg = disc_mask(size, 8, 8, 3)
            img = np.stack([rng.uniform(0, 90, (size, size)) + 100 * fg] * 3, axis=-1).astype(np.uint8)
            Image.fromarray(img).save(root / folder / "images" / f"{name}.png")
            Image.fromarray((fg * 255).astype(np.uint8)).save(root / folder / "masks" / f"{name}.png")
    return root


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tree_digest(folder: Path) -> dict[str, tuple[int, str]]:
    """Every entry under ``folder`` (hidden ones too): relative path -> (size, sha256); folders get (-1, "")."""
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        rel = str(path.relative_to(folder))
        out[rel] = (-1, "") if path.is_dir() else (path.stat().st_size, sha256(path))
    return out


def write_manifest(path: Path, sites: dict[str, tuple[int, int]], *, checksums: dict | None = None,
                   kind: str = "split_folders", channels: int = 1, mask: dict | None = None,
                   preprocessing: dict | None = None, labels: tuple[str, ...] = ("foreground",),
                   letters: dict[str, str] | None = None, reference: dict | None = None) -> Path:
    """A minimal valid manifest for a fixture tree."""
    data = {
        "schema_version": 1, "name": path.stem, "title": "fixture", "task": "segmentation",
        "source": {"url": "https://example.org", "access": "public", "licence": "CC0"},
        "citation": ["nobody"], "labels": list(labels), "channels": channels,
        "mask": mask or {"coding": "binary", "threshold": 128, "values": [0, 255]},
        "layout": {"kind": kind, "splits": ["train", "test"]},
        "sites": [{"name": s, "counts": {"train": a, "test": b},
                   **({"checksums": checksums[s]} if checksums and s in checksums else {}),
                   **({"paper_site": letters[s]} if letters and s in letters else {})}
                  for s, (a, b) in sites.items()],
        "preprocessing": preprocessing or {"normalize": "scale255"},
    }
    if reference:
        data["reference"] = reference
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
