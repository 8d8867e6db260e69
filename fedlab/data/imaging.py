"""Real image loaders: any multi-site folder tree of PNG / JPG / NIfTI files becomes a Federation.

The layout a teacher brings is::

    ROOT/
      SITE_A/train/image/*   SITE_A/train/mask/*
      SITE_A/test/image/*    SITE_A/test/mask/*
      SITE_B/...

Images and masks are paired by file stem (``case01.png`` <-> ``case01.png`` or ``case01.jpg``;
``.nii.gz`` counts as one extension). 2D files give one sample each; 3D NIfTI volumes are cut
into axial slices (the last array axis, shown as rows = y, columns = x).

The building blocks (:func:`read_pair`, :func:`load_pairs`, :class:`MaskCoding`) are shared
with :mod:`fedlab.data.prepare`, which applies a dataset manifest's preprocessing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fedlab.data.federation import Federation, Site, Split

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".nii", ".nii.gz")
NORMALIZATIONS = ("auto", "scale255", "minmax", "percentile", "zscore", "none")
EXPECTED_LAYOUT = (
    "ROOT/<SITE>/train/image/<name>.png|.jpg|.nii.gz and ROOT/<SITE>/train/mask/<name>.<ext>, "
    "the same for ROOT/<SITE>/test/..., one folder per site"
)


class DataError(ValueError):
    """A problem with files on disk; the message names the file and says how to fix it."""


def file_stem(path: str | Path) -> str:
    """File name without its extension (``.nii.gz`` counts as one extension)."""
    name = Path(path).name
    if name.lower().endswith(".nii.gz"):
        return name[: -len(".nii.gz")]
    return Path(name).stem


def is_nifti(path: str | Path) -> bool:
    """True for ``.nii`` and ``.nii.gz`` files."""
    name = str(path).lower()
    return name.endswith(".nii") or name.endswith(".nii.gz")


def list_images(folder: Path) -> list[Path]:
    """Image files (known extensions, no hidden files) in ``folder``, sorted by name."""
    files = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(p for p in files if p.name.lower().endswith(IMAGE_EXTENSIONS))


def read_array(path: str | Path, kind: str = "image", channels: int | None = None) -> np.ndarray:
    """Decode one file fully (so corrupt or truncated files fail here).

    Args:
        path: PNG / JPG / BMP / TIFF (read with Pillow) or NIfTI (read with nibabel).
        kind: "image" or "mask". Masks are read as one grey channel.
        channels: For 2D images: 1 (greyscale), 3 (RGB) or None (keep: grey stays 1, colour becomes 3).

    Returns:
        2D files: ``(H, W)`` or ``(H, W, 3)``. NIfTI: the raw array ``(X, Y[, Z])``.

    Raises:
        DataError: when the file cannot be decoded (the message names it).
    """
    path = Path(path)
    try:
        if is_nifti(path):
            import nibabel as nib

            arr = np.asanyarray(nib.load(str(path)).dataobj)
            while arr.ndim > 3 and arr.shape[-1] == 1:
                arr = arr[..., 0]
            if arr.ndim not in (2, 3):
                raise DataError(f"{path}: expected a 2D or 3D NIfTI, got shape {arr.shape}")
            return np.asarray(arr)
        from PIL import Image

        with Image.open(path) as im:
            im.load()
            grey = im.mode in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
            if kind == "mask" or channels == 1 or (channels is None and grey):
                mode = "L" if im.mode in ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr") else None
                im2 = im.convert(mode) if mode and im.mode != "L" else im
            else:
                im2 = im.convert("RGB") if im.mode != "RGB" else im
            return np.asarray(im2).copy()
    except DataError:
        raise
    except Exception as exc:  # Pillow / nibabel / zlib raise many types for broken files
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {exc}. The file is corrupt or "
                        "truncated: download or export it again.") from exc


def _slices(arr: np.ndarray, nifti: bool) -> list[np.ndarray]:
    """Split a decoded file into 2D samples: NIfTI (X, Y[, Z]) -> Z axial slices of (Y, X)."""
    if not nifti:
        return [arr]
    if arr.ndim == 2:
        return [arr.T]
    return [arr[:, :, k].T for k in range(arr.shape[2])]


def spatial_shape(arr: np.ndarray, nifti: bool) -> tuple[int, ...]:
    """Shape without the colour axis: (H, W) for 2D files, the full array shape for NIfTI."""
    return tuple(arr.shape[:2]) if (not nifti and arr.ndim == 3) else tuple(arr.shape)


@dataclass(frozen=True)
class MaskCoding:
    """How raw mask values become binary label channels.

    Two modes:

    * binary (``levels`` is None): one channel, ``fg = raw >= threshold`` (``raw < threshold``
      when ``invert``). ``threshold=None`` means 128 for 8-bit image files and 0.5 for NIfTI
      label maps (any label > 0 is foreground).
    * levels: each label channel is the set of raw values listed for it, e.g. fundus
      ``{"disc": (128, 0), "cup": (0,)}`` with background 255 (the disc channel includes the cup).

    Raw values outside the coding (levels mode) or outside ``values`` (binary mode, when given,
    e.g. ``(0, 255)``) are an error naming the file, so a non-binary mask is never thresholded silently.

    Attributes:
        labels: Channel names, in order.
        threshold: Binary threshold on raw values (see above).
        invert: Foreground is below the threshold (e.g. masks saved with prostate = 0).
        levels: Label name -> raw values belonging to that label.
        background: Raw background value (levels mode).
        values: Raw values a binary mask may hold (None: any value is thresholded).
    """

    labels: tuple[str, ...] = ("foreground",)
    threshold: float | None = None
    invert: bool = False
    levels: Mapping[str, tuple[float, ...]] | None = None
    background: float | None = None
    values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.values is not None:
            object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        if self.levels is not None:
            levels = {str(k): tuple(float(v) for v in vals) for k, vals in dict(self.levels).items()}
            object.__setattr__(self, "levels", levels)
            if tuple(levels) != self.labels:
                object.__setattr__(self, "labels", tuple(levels))
        elif len(self.labels) != 1:
            raise ValueError(f"a binary MaskCoding has one label, got {self.labels}; "
                             "pass levels={label: raw values} for several labels")

    def allowed_values(self) -> set[float] | None:
        """Raw values a mask may hold; None when any value is allowed."""
        if self.levels is None:
            return None if self.values is None else set(self.values)
        allowed = {v for vals in self.levels.values() for v in vals}
        if self.background is not None:
            allowed.add(float(self.background))
        return allowed

    def unexpected_values(self, raw: np.ndarray) -> list[float]:
        """Raw values present in ``raw`` that the coding does not allow (empty when all are fine)."""
        allowed = self.allowed_values()
        if allowed is None:
            return []
        return [v for v in np.unique(raw).tolist() if float(v) not in allowed]

    def encode(self, raw: np.ndarray, path: str | Path = "mask", nifti: bool = False) -> np.ndarray:
        """Raw 2D mask ``(H, W)`` -> binary label channels ``(L, H, W)`` uint8.

        Raises:
            DataError: the mask holds values the coding does not allow (file and values named).
        """
        bad = self.unexpected_values(raw)
        if bad:
            shown = [int(v) if float(v).is_integer() else v for v in sorted(self.allowed_values())]
            kind = f"the label coding {dict(self.levels)}" if self.levels else "a binary mask"
            raise DataError(f"{path}: mask values {bad[:5]} are not among the allowed {shown} ({kind}); "
                            "fix the mask file, or pass the coding / threshold that matches your data.")
        if self.levels is not None:
            return np.stack([np.isin(raw, vals) for vals in self.levels.values()]).astype(np.uint8)
        threshold = self.threshold if self.threshold is not None else (0.5 if nifti else 128.0)
        fg = raw < threshold if self.invert else raw >= threshold
        return fg[None].astype(np.uint8)


def normalize_image(x: np.ndarray, method: str, source_dtype: np.dtype) -> np.ndarray:
    """Per-image intensity normalisation of ``(C, H, W)``.

    Methods: ``scale255`` (x / 255), ``minmax`` (per channel to [0, 1]), ``percentile`` (clip to
    [min, 99th percentile] and scale to [0, 1], as LC-Fed's MR slices), ``zscore`` (per channel),
    ``none``; ``auto`` is ``scale255`` for 8-bit files and ``percentile`` otherwise.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {method!r}")
    if method == "auto":
        method = "scale255" if source_dtype == np.uint8 else "percentile"
    x = x.astype(np.float32)
    if method == "scale255":
        return x / np.float32(255.0)
    if method == "none":
        return x
    flat = x.reshape(x.shape[0], -1)
    if method == "zscore":
        mean, std = flat.mean(1)[:, None, None], flat.std(1)[:, None, None]
        return ((x - mean) / np.maximum(std, 1e-8)).astype(np.float32)
    lo = flat.min(1)
    if method == "percentile":  # value at index int(0.99 n) of the sorted pixels
        hi = np.sort(flat, axis=1)[:, int(flat.shape[1] * 0.99)]
        x = np.clip(x, lo[:, None, None], hi[:, None, None])
    else:
        hi = flat.max(1)
    scale = np.where(hi > lo, hi - lo, 1.0)
    return ((x - lo[:, None, None]) / scale[:, None, None]).astype(np.float32)


def resize_pair(image: np.ndarray, mask: np.ndarray, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Resize ``(C, H, W)`` image and ``(L, H, W)`` mask to ``size x size`` with MONAI.

    Images: area averaging when shrinking (anti-aliased), bilinear when enlarging.
    Masks: nearest neighbour (labels stay binary).
    """
    if size is None or image.shape[1:] == (size, size):
        return image, mask
    from monai.transforms import Resize

    shrink = image.shape[1] >= size and image.shape[2] >= size
    img_mode = "area" if shrink else "bilinear"
    img = Resize((size, size), mode=img_mode)(torch.from_numpy(np.ascontiguousarray(image)))
    msk = Resize((size, size), mode="nearest")(torch.from_numpy(mask.astype(np.float32)))
    return (np.asarray(torch.as_tensor(img), dtype=np.float32),
            np.asarray(torch.as_tensor(msk)).round().astype(np.uint8))


@dataclass(frozen=True)
class Preprocessing:
    """What is done to every image/mask pair before it enters a Federation.

    Attributes:
        image_size: Output side in pixels (None keeps the native size; then all files must agree).
        channels: 1, 3 or None (keep: grey files give 1 channel, colour files 3).
        normalize: Per-image intensity normalisation, see :func:`normalize_image`.
        coding: How masks become label channels.
        foreground_slices_only: Keep only samples whose mask has some foreground (LC-Fed prostate).
    """

    image_size: int | None = 64
    channels: int | None = None
    normalize: str = "auto"
    coding: MaskCoding = field(default_factory=MaskCoding)
    foreground_slices_only: bool = False

    def __post_init__(self) -> None:
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1, 3 or None, got {self.channels!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.image_size is not None and self.image_size <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")


def read_pair(image_path: Path, mask_path: Path, prep: Preprocessing) -> list[tuple[np.ndarray, np.ndarray]]:
    """Decode, check and preprocess one image/mask file pair.

    Returns:
        One ``(image (C, S, S) float32, mask (L, S, S) uint8)`` per 2D sample (per slice for volumes).

    Raises:
        DataError: unreadable file, image/mask shape mismatch (both shapes named), bad mask values.
    """
    img_raw = read_array(image_path, "image", prep.channels)
    msk_raw = read_array(mask_path, "mask")
    img_nifti, nifti = is_nifti(image_path), is_nifti(mask_path)
    img_spatial = spatial_shape(img_raw, img_nifti)
    if img_spatial != spatial_shape(msk_raw, nifti):
        raise DataError(f"shape mismatch: image {image_path} is {tuple(img_spatial)} but mask {mask_path} "
                        f"is {tuple(msk_raw.shape)}; the mask must have the image's size.")
    out = []
    for img2d, msk2d in zip(_slices(img_raw, img_nifti), _slices(msk_raw, nifti), strict=True):
        y = prep.coding.encode(msk2d, mask_path, nifti=nifti)  # (L, H, W)
        if prep.foreground_slices_only and not y.any():
            continue
        x = img2d[None] if img2d.ndim == 2 else np.moveaxis(img2d, -1, 0)  # (C, H, W)
        if prep.channels == 3 and x.shape[0] == 1:
            x = np.repeat(x, 3, axis=0)
        x = normalize_image(x, prep.normalize, img_raw.dtype)
        out.append(resize_pair(x, y, prep.image_size))
    return out


def load_pairs(pairs: Sequence[tuple[Path, Path]],
               prep: Preprocessing) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Preprocess many pairs into stacked arrays.

    Returns:
        ``x (N, C, S, S)`` float32, ``y (N, L, S, S)`` uint8 and, per sample, the index of its file pair
        (so splits can be made by file or case, never by slice).
    """
    xs, ys, owner = [], [], []
    for i, (img, msk) in enumerate(pairs):
        for x, y in read_pair(img, msk, prep):
            xs.append(x)
            ys.append(y)
            owner.append(i)
    if not xs:
        return np.zeros((0, 0, 0, 0), np.float32), np.zeros((0, 0, 0, 0), np.uint8), []
    shapes = {(x.shape, y.shape) for x, y in zip(xs, ys, strict=True)}
    if len(shapes) > 1:
        raise DataError(f"samples have different shapes {sorted(shapes)[:3]}; set image_size to resize them "
                        "to one size, or channels=1/3 to make channel counts agree.")
    return np.stack(xs), np.stack(ys), owner


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


def split_by_owner(n_files: int, val_fraction: float, seed: int) -> np.ndarray:
    """Deterministic boolean mask over files: True = validation (at least one file kept for training)."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    n_val = int(round(val_fraction * n_files))
    n_val = min(max(n_val, 1 if val_fraction > 0 else 0), n_files - 1)
    order = np.random.default_rng(seed).permutation(n_files)
    is_val = np.zeros(n_files, dtype=bool)
    is_val[order[:n_val]] = True
    return is_val


def make_site(name: str, train: tuple[np.ndarray, np.ndarray, list[int]],
              test: tuple[np.ndarray, np.ndarray], *, val_fraction: float, seed: int, device: str,
              metadata: dict) -> Site:
    """Build a Site from arrays, carving the validation split from training by file / case."""
    x, y, owner = train
    val = None
    if val_fraction > 0:
        owners = np.asarray(owner)
        files = np.unique(owners)
        is_val_file = split_by_owner(len(files), val_fraction, seed)
        in_val = np.isin(owners, files[is_val_file])
        val = _split(x[in_val], y[in_val], device)
        x, y = x[~in_val], y[~in_val]
    return Site(name=name, train=_split(x, y, device), test=_split(*test, device), val=val, metadata=metadata)


def _split(x: np.ndarray, y: np.ndarray, device: str) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x)).float().to(device),
                 torch.from_numpy(np.ascontiguousarray(y)).float().to(device))


def load_folder_federation(
    root: str | Path,
    name: str = "custom",
    image_size: int | None = 64,
    invert_mask: bool = False,
    mask_threshold: float | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
    device: str = "cpu",
    *,
    label_coding: Mapping[str, Sequence[float]] | None = None,
    background: float | None = None,
    mask_values: Sequence[float] | None = None,
    channels: int | None = None,
    normalize: str = "auto",
    foreground_slices_only: bool = False,
    sites: Sequence[str] | None = None,
    image_dir: str = "image",
    mask_dir: str = "mask",
) -> Federation:
    """Load ``ROOT/SITE/{train,test}/{image,mask}/*`` into a real-data Federation in one call.

    Args:
        root: Folder with one sub-folder per site.
        name: Dataset name shown in titles.
        image_size: Output side in pixels (images: area/bilinear, masks: nearest); None keeps native size.
        invert_mask: Foreground is *below* the threshold (masks saved with the object = 0).
        mask_threshold: Binary threshold on raw mask values; None = 128 for 8-bit files, 0.5 for NIfTI.
        val_fraction: Fraction of each site's training *files* (volumes count as one) held out
            for validation, chosen deterministically from ``seed``.
        seed: Seed of the validation split.
        device: Where the tensors are put.
        label_coding: Several labels from raw values, e.g. fundus ``{"disc": [128, 0], "cup": [0]}``.
        background: Raw background value with ``label_coding`` (fundus: 255).
        mask_values: Raw values a binary mask may hold, e.g. ``(0, 255)``; any other value is an error
            naming the file (None: every value is thresholded).
        channels: 1, 3 or None (None keeps the files' own: grey -> 1, colour -> 3).
        normalize: Per-image intensity normalisation (see :func:`normalize_image`).
        foreground_slices_only: Drop samples with an empty mask (LC-Fed's prostate protocol).
        sites: Site folder names to load (default: every sub-folder of root that has ``train/``).
        image_dir: Name of the image folder inside each split folder (DoFE fundus: ``ROIs/image``).
        mask_dir: Name of the mask folder inside each split folder.

    Returns:
        ``Federation(synthetic=False)`` with sites in sorted folder order (or the order of ``sites``).

    Raises:
        DataError: no sites / missing folder / unpaired files / unreadable files / shape mismatch /
            mask values outside the coding; each message names the file and the fix.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; expected layout: {EXPECTED_LAYOUT}")
    if sites is None:
        sites = sorted(p.name for p in root.iterdir()
                       if (p / "train").is_dir() and not p.name.startswith("."))
    if not sites:
        raise DataError(f"no sites found in {root}: no sub-folder has a train/ folder. "
                        f"Expected layout: {EXPECTED_LAYOUT}")
    if label_coding is not None:
        coding = MaskCoding(levels={k: tuple(v) for k, v in label_coding.items()}, background=background)
    else:
        coding = MaskCoding(threshold=mask_threshold, invert=invert_mask, values=mask_values)
    prep = Preprocessing(image_size=image_size, channels=channels, normalize=normalize, coding=coding,
                         foreground_slices_only=foreground_slices_only)
    built = []
    for k, site in enumerate(sites):
        arrays = {}
        for split in ("train", "test"):
            pairs = pair_folder(root / site / split / image_dir, root / site / split / mask_dir)
            arrays[split] = (load_pairs(pairs, prep), len(pairs))
        (train, n_train_files), (test, n_test_files) = arrays["train"], arrays["test"]
        if not len(train[0]):
            raise DataError(f"site {site!r}: no training samples left (all masks empty with "
                            "foreground_slices_only=True?)")
        meta = {"folder": str(root / site), "files": {"train": n_train_files, "test": n_test_files},
                "source": "folder"}
        test_xy = test[:2] if len(test[0]) else (train[0][:0], train[1][:0])
        built.append(make_site(site, train, test_xy, val_fraction=val_fraction, seed=seed + k,
                               device=device, metadata=meta))
    shapes = {s.train.x.shape[1:] for s in built}
    if len(shapes) > 1:
        raise DataError(f"sites have different image shapes {sorted(map(tuple, shapes))}; pass image_size "
                        "and channels so that every site is resized to one shape.")
    return Federation(name=name, sites=tuple(built), task="segmentation", labels=coding.labels,
                      synthetic=False, source=f"folder:{root}")
