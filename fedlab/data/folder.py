"""The generic folder layout: any multi-site tree of PNG / JPG / NIfTI image and mask files becomes a Federation.

The layout a teacher brings is::

    ROOT/
      SITE_A/train/image/*   SITE_A/train/mask/*
      SITE_A/test/image/*    SITE_A/test/mask/*
      SITE_B/...

The image and mask folders may also be called ``images`` / ``masks`` (or ``ROIs/image`` / ``ROIs/mask`` as
in DoFE's fundus release); :func:`find_folder_layout` finds which. The mask coding is not in the files:
pass it (``polarity="dark"`` for masks with the object = 0, ``label_coding`` for several labels coded
by grey level). A coding that does not fit the masks stops the load with the file and the option named.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from fedlab.data.coding import MAX_FOREGROUND, MaskCoding
from fedlab.data.errors import DataError
from fedlab.data.federation import Federation
from fedlab.data.imaging import Preprocessing, file_stem, list_images, load_pairs, make_site

SPLITS = ("train", "test")
IMAGE_DIRS = ("image", "images", "img", "ROIs/image")
MASK_DIRS = ("mask", "masks", "label", "labels", "ROIs/mask")
EXPECTED_LAYOUT = (
    "ROOT/<SITE>/train/image/<name>.png|.jpg|.nii.gz and ROOT/<SITE>/train/mask/<name>.<ext>, "
    "the same for ROOT/<SITE>/test/..., one folder per site (image/mask folders may also be called "
    "images/masks or ROIs/image and ROIs/mask)"
)
POLARITY_FIX = "polarity='dark' (notebook parameter MASK_POLARITY = \"dark\")"


@dataclass(frozen=True)
class FolderLayout:
    """A folder that follows the generic layout.

    Attributes:
        root: The folder.
        sites: Site folder names, sorted.
        image_dir: Name of the image folder inside each split folder.
        mask_dir: Name of the mask folder inside each split folder.
        counts: Site -> split -> number of image files.
    """

    root: Path
    sites: tuple[str, ...]
    image_dir: str
    mask_dir: str
    counts: Mapping[str, Mapping[str, int]]

    def describe(self) -> str:
        """E.g. "2 site folders (BMC, RUNMC) with train|test/image|mask".
        """
        files = sum(n for c in self.counts.values() for n in c.values())
        return (f"{len(self.sites)} site folder(s) ({', '.join(self.sites)}) with {{train,test}}/"
                f"{{{self.image_dir},{self.mask_dir}}}, {files} images")


def _first_dir(root: Path, sites: Sequence[str], names: Sequence[str]) -> str | None:
    """The first candidate folder name present in every site's train folder."""
    for name in names:
        if all((root / site / "train" / name).is_dir() for site in sites):
            return name
    return None


def find_folder_layout(root: str | Path, image_dir: str | None = None,
                       mask_dir: str | None = None) -> FolderLayout | None:
    """The generic layout of ``root``, or None when ``root`` does not follow it (names only, nothing decoded).

    Sites are the sub-folders (not hidden) that hold a ``train/`` folder; the image and mask folder names are
    the given ones or the first of :data:`IMAGE_DIRS` / :data:`MASK_DIRS` that every site has.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        return None
    sites = sorted(p.name for p in root.iterdir()
                   if p.is_dir() and not p.name.startswith(".") and (p / "train").is_dir())
    if not sites:
        return None
    image_dir = image_dir or _first_dir(root, sites, IMAGE_DIRS)
    mask_dir = mask_dir or _first_dir(root, sites, MASK_DIRS)
    if image_dir is None or mask_dir is None:
        return None
    counts = {site: {split: len(list_images(root / site / split / image_dir))
                     if (root / site / split / image_dir).is_dir() else 0 for split in SPLITS} for site in sites}
    return FolderLayout(root, tuple(sites), image_dir, mask_dir, counts)


def pair_folder(image_dir: Path, mask_dir: Path) -> list[tuple[Path, Path]]:
    """Pair every image in ``image_dir`` with the mask of the same stem in ``mask_dir``.

    Raises:
        DataError: missing folder, an image without a mask or a mask without an image (named).
    """
    for folder in (image_dir, mask_dir):
        if not folder.is_dir():
            raise DataError(f"missing folder {folder}; expected layout: {EXPECTED_LAYOUT}")
    images = list_images(image_dir)
    masks = {file_stem(p): p for p in list_images(mask_dir)}
    if not images:
        raise DataError(f"no images (.png, .jpg, .nii.gz, ...) in {image_dir}")
    pairs = []
    for img in images:
        mask = masks.pop(file_stem(img), None)
        if mask is None:
            raise DataError(f"image {img} has no mask: expected {mask_dir / file_stem(img)}.<ext> "
                            "(masks are paired with images by file name); add it or remove the image.")
        pairs.append((img, mask))
    if masks:
        extra = sorted(masks.values())[0]
        raise DataError(f"mask {extra} has no image in {image_dir}; add the image or remove the mask.")
    return pairs


def load_folder_federation(
    root: str | Path,
    name: str | None = None,
    image_size: int | None = 64,
    *,
    polarity: str = "bright",
    label_coding: Mapping[str, object] | None = None,
    mask_threshold: float | None = None,
    mask_values: Sequence[float] | None = None,
    max_foreground: float | None = MAX_FOREGROUND,
    val_fraction: float = 0.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    channels: int | None = None,
    normalize: str = "auto",
    foreground_slices_only: bool = False,
    sites: Sequence[str] | None = None,
    image_dir: str | None = None,
    mask_dir: str | None = None,
) -> Federation:
    """Load ``ROOT/SITE/{train,test}/{image,mask}/*`` into a real-data Federation in one call.

    Args:
        root: Folder with one sub-folder per site.
        name: Dataset name shown in titles (default: the folder's name).
        image_size: Output side in pixels (images: area/bilinear, masks: nearest); None keeps native size.
        polarity: "bright" (the object has the high mask value, e.g. 255 or 1) or "dark" (object = 0,
            background = 255: inverted masks such as the SAML prostate PNG slices).
        label_coding: Several labels from raw mask values, e.g. DoFE fundus
            ``{"background": [255], "disc": [128, 0], "cup": [0]}`` (the disc includes the cup); replaces
            ``polarity``.
        mask_threshold: Binary threshold on raw mask values; None = 0.5 for 0/1 label maps, else 128.
        mask_values: Raw values a binary mask may hold, e.g. ``(0, 255)``; any other value is an error naming
            the file. None refuses only grey plateaus that look like a multi-level coding.
        max_foreground: Largest median fraction of the image a site's masks may cover (larger means the masks
            are probably inverted); None switches the check off.
        val_fraction: Fraction of each site's training *files* (volumes count as one) held out for validation.
        seed: Seed of the validation split.
        device: Where the tensors are put.
        channels: 1, 3 or None (None keeps the files' own: grey -> 1, colour -> 3).
        normalize: Per-image intensity normalisation (see :func:`fedlab.data.imaging.normalize_image`).
        foreground_slices_only: Drop samples with an empty mask (LC-Fed's prostate protocol).
        sites: Site folder names to load (default: every sub-folder of root that has ``train/``).
        image_dir: Name of the image folder inside each split folder (default: found, see :data:`IMAGE_DIRS`).
        mask_dir: Name of the mask folder inside each split folder (default: found, see :data:`MASK_DIRS`).

    Returns:
        ``Federation(synthetic=False)`` with sites in sorted folder order (or the order of ``sites``).

    Raises:
        DataError: no sites / missing folder / unpaired files / unreadable files / shape mismatch / mask values
            outside the coding / masks covering most of their images; each message names the file and the fix.
        ValueError: contradictory options (a label coding and a polarity).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; expected layout: {EXPECTED_LAYOUT}")
    found = find_folder_layout(root, image_dir, mask_dir)
    if found is None and sites is None:
        raise DataError(f"no sites found in {root}: no sub-folder has a train/ folder with image and mask folders. "
                        f"Expected layout: {EXPECTED_LAYOUT}")
    sites = list(found.sites if sites is None else sites)
    image_dir = image_dir or (found.image_dir if found else IMAGE_DIRS[0])
    mask_dir = mask_dir or (found.mask_dir if found else MASK_DIRS[0])
    coding = MaskCoding.from_options(polarity, label_coding, mask_threshold, mask_values)
    prep = Preprocessing(image_size=image_size, channels=channels, normalize=normalize, coding=coding,
                         foreground_slices_only=foreground_slices_only, max_foreground=max_foreground)
    built = []
    for k, site in enumerate(sites):
        arrays, n_files = {}, {}
        for split in SPLITS:
            pairs = pair_folder(root / site / split / image_dir, root / site / split / mask_dir)
            arrays[split] = load_pairs(pairs, prep, f"site {site} ({split})", POLARITY_FIX)
            n_files[split] = len(pairs)
        train, test = arrays["train"], arrays["test"]
        if not len(train[0]):
            raise DataError(f"site {site!r}: no training samples left (all masks empty with "
                            "foreground_slices_only=True?)")
        meta = {"folder": str(root / site), "files": n_files, "source": "folder"}
        test_xy = test if len(test[0]) else (train[0][:0], train[1][:0], [])
        built.append(make_site(site, train, test_xy, val_fraction=val_fraction, seed=seed + k, device=device,
                               metadata=meta))
    shapes = {s.train.x.shape[1:] for s in built}
    if len(shapes) > 1:
        raise DataError(f"sites have different image shapes {sorted(map(tuple, shapes))}; pass image_size "
                        "and channels so that every site is resized to one shape.")
    provenance = {"dataset": "folder", "data_dir": str(root), "layout": f"{{train,test}}/{{{image_dir},{mask_dir}}}",
                  "mask_coding": coding.describe()}
    return Federation(name=name or root.name, sites=tuple(built), task="segmentation", labels=coding.labels,
                      synthetic=False, source=f"folder:{root}", provenance=provenance)
