"""Tiny datasets in the real formats (PNG/JPG with Pillow, NIfTI with nibabel), built in tmp folders."""

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
                  seed: int = 0) -> Path:
    """ROOT/SITE/{train,test}/{image,mask}/kk.png with 0/255 disc masks; sites: name -> (n_train, n_test)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for site, counts in sites.items():
        for split, n in zip(("train", "test"), counts, strict=True):
            for sub in ("image", "mask"):
                (root / site / split / sub).mkdir(parents=True, exist_ok=True)
            for k in range(n):
                fg = disc_mask(size, rng.uniform(5, size - 5), rng.uniform(5, size - 5), rng.uniform(2, 4))
                img = (rng.uniform(0, 80, (size, size)) + 150 * fg).astype(np.uint8)
                if rgb:
                    img = np.stack([img, img // 2, 255 - img], axis=-1)
                Image.fromarray(img).save(root / site / split / "image" / f"{k:02d}.png")
                mask = Image.fromarray((fg * 255).astype(np.uint8))
                mask.save(root / site / split / "mask" / f"{k:02d}.png")
    return root


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


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def write_manifest(path: Path, sites: dict[str, tuple[int, int]], *, checksums: dict | None = None,
                   kind: str = "split_folders", channels: int = 1, mask: dict | None = None,
                   preprocessing: dict | None = None, labels: tuple[str, ...] = ("foreground",)) -> Path:
    """A minimal valid manifest for a fixture tree."""
    data = {
        "schema_version": 1, "name": path.stem, "title": "fixture", "task": "segmentation",
        "source": {"url": "https://example.org", "access": "public", "licence": "CC0"},
        "citation": ["nobody"], "labels": list(labels), "channels": channels,
        "mask": mask or {"coding": "binary", "threshold": 128, "values": [0, 255]},
        "layout": {"kind": kind, "splits": ["train", "test"]},
        "sites": [{"name": s, "counts": {"train": a, "test": b}, **({"checksums": checksums[s]}
                   if checksums and s in checksums else {})} for s, (a, b) in sites.items()],
        "preprocessing": preprocessing or {"normalize": "scale255"},
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
