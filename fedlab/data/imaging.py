"""Image files to arrays: read PNG / JPG / NIfTI once, code the masks, normalise, resize, build a Site.

2D files give one sample each; 3D NIfTI volumes are cut into axial slices (the last array axis, shown as
rows = y, columns = x). Images and masks are paired by file stem (``case01.png`` <-> ``case01.png`` or
``case01.jpg``; ``.nii.gz`` counts as one extension).

Used by the manifest-driven loader (:mod:`fedlab.data.prepare`, :mod:`fedlab.data.real`) and by the
generic folder loader (:mod:`fedlab.data.folder`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from fedlab.data.coding import MAX_FOREGROUND, MaskCoding, check_foreground
from fedlab.data.errors import DataError
from fedlab.data.federation import Site, Split
from fedlab.data.partition import train_val_split

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".nii", ".nii.gz")
NORMALIZATIONS = ("auto", "scale255", "minmax", "percentile", "zscore", "none")


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


def normalize_image(x: np.ndarray, method: str, source_dtype: np.dtype) -> np.ndarray:
    """Per-image intensity normalisation of ``(C, H, W)`` with MONAI's intensity transforms, channel by channel.

    Methods: ``scale255`` (x / 255), ``minmax`` (to [0, 1]), ``percentile`` (clip to [min, 99th percentile]
    and scale to [0, 1], as LC-Fed's MR slices; the percentile is interpolated linearly), ``zscore``
    (zero mean, unit variance), ``none``; ``auto`` is ``scale255`` for 8-bit files and ``percentile`` otherwise.
    A constant channel becomes 0.
    """
    from monai.transforms import NormalizeIntensity, ScaleIntensity, ScaleIntensityRange, ScaleIntensityRangePercentiles

    if method not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {method!r}")
    if method == "auto":
        method = "scale255" if source_dtype == np.uint8 else "percentile"
    x = np.ascontiguousarray(x, dtype=np.float32)
    if method == "none":
        return x
    transform = {
        "scale255": lambda: ScaleIntensityRange(a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0),
        "minmax": lambda: ScaleIntensity(minv=0.0, maxv=1.0, channel_wise=True),
        "percentile": lambda: ScaleIntensityRangePercentiles(lower=0, upper=99, b_min=0.0, b_max=1.0, clip=True,
                                                             channel_wise=True),
        "zscore": lambda: NormalizeIntensity(channel_wise=True),
    }[method]()
    with warnings.catch_warnings():  # a constant channel (an empty slice) is mapped to 0 on purpose
        warnings.filterwarnings("ignore", message="Divide by zero")
        out = transform(x)
    return np.asarray(torch.as_tensor(out), dtype=np.float32)


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
        max_foreground: Largest median fraction of the image a site's masks may cover (see
            :func:`fedlab.data.coding.check_foreground`); None switches the check off.
    """

    image_size: int | None = 64
    channels: int | None = None
    normalize: str = "auto"
    coding: MaskCoding = field(default_factory=MaskCoding)
    foreground_slices_only: bool = False
    max_foreground: float | None = MAX_FOREGROUND

    def __post_init__(self) -> None:
        if self.channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1, 3 or None, got {self.channels!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.image_size is not None and self.image_size <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if self.max_foreground is not None and not 0 < self.max_foreground <= 1:
            raise ValueError(f"max_foreground must be in (0, 1] or None, got {self.max_foreground!r}")


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


def load_pairs(pairs: Sequence[tuple[Path, Path]], prep: Preprocessing, where: str = "these files",
               fix: str = "the mask polarity") -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Preprocess the pairs of one site and split into stacked arrays, and check their masks' coverage.

    Args:
        pairs: ``(image, mask)`` file pairs.
        prep: What to do to each pair.
        where: The site and split, for messages (e.g. "site BMC (train)").
        fix: The option that corrects an inverted coding, for the message of
            :func:`fedlab.data.coding.check_foreground`.

    Returns:
        ``x (N, C, S, S)`` float32, ``y (N, L, S, S)`` uint8 and, per sample, the index of its file pair
        (so splits can be made by file or case, never by slice).

    Raises:
        DataError: a file cannot be used (see :func:`read_pair`), samples differ in shape, or the masks cover
            most of their images (inverted coding).
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
        raise DataError(f"{where}: samples have different shapes {sorted(shapes)[:3]}; set image_size to resize "
                        "them to one size, or channels=1/3 to make channel counts agree.")
    y = np.stack(ys)
    if prep.max_foreground is not None:
        check_foreground(y, [mask for _, mask in pairs], owner, where, fix, prep.max_foreground)
    return np.stack(xs), y, owner




def case_ids(owner: Sequence[int]) -> torch.Tensor | None:
    """The case of every sample, when its files are volumes: the slices one file gave are one case.

    Args:
        owner: Per sample, the index of the file it came from (slices of a file in their order in the volume).

    Returns:
        ``(N,)`` int64 case ids for :attr:`Split.groups` when some file gave several slices; None when every file
        gave one image (2-D files: which slices belong to one patient is not known).
    """
    ids = np.asarray(owner, dtype=np.int64)
    if ids.size == 0 or len(np.unique(ids)) == ids.size:
        return None
    return torch.from_numpy(ids)


def make_site(name: str, train: tuple[np.ndarray, np.ndarray, Sequence[int]],
              test: tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, Sequence[int]], *,
              val_fraction: float, seed: int, device: str | torch.device, metadata: dict) -> Site:
    """Build a Site from arrays, carving the validation split from training by file / case, never by slice.

    When the files are volumes (a file gave several slices), every split carries its slices' case ids
    (:func:`case_ids`), so the site can be scored per volume.

    Args:
        name: Site name.
        train: ``x (N, C, H, W)``, ``y (N, L, H, W)`` and, per sample, the index of its file (or case).
        test: ``x`` and ``y`` of the test split (may be empty), and optionally the index of each sample's file.
        val_fraction: Fraction of the training files held out for validation (none when the site has one file).
        seed: Seed of that split.
        device: Where the tensors are put.
        metadata: Site metadata.
    """
    x, y, owner = train
    split = _split(x, y, case_ids(owner))
    val = None
    if val_fraction > 0 and len(set(owner)) > 1:
        split, val = train_val_split(split, val_fraction, seed, groups=np.asarray(owner))
        val = val.to(device)
    test_split = _split(*test[:2], case_ids(test[2]) if len(test) > 2 else None)
    return Site(name=name, train=split.to(device), test=test_split.to(device), val=val, metadata=metadata)


def _split(x: np.ndarray, y: np.ndarray, groups: torch.Tensor | None = None) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x)).float(), torch.from_numpy(np.ascontiguousarray(y)).float(),
                 groups)
