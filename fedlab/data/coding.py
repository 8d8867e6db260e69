"""Mask coding: how the raw values of a mask file become binary label channels, and the checks that stop a
run before it trains on the wrong labels.

Public releases code their masks differently:

* binary, object bright: background 0, object 255 (or 1 in NIfTI label maps);
* binary, object dark ("inverted"): object 0, background 255 (the SAML prostate PNG slices);
* several labels from grey levels: DoFE fundus ROIs are 255 background, 128 optic disc rim, 0 optic cup,
  and the disc label includes the cup.

A dataset's manifest says which coding it uses; the generic folder loader takes the same facts as options
(``polarity``, ``label_coding``). Two checks catch a wrong choice instead of training on it:
:meth:`MaskCoding.encode` refuses values the coding does not allow (and, for a binary mask of unknown
coding, grey plateaus that look like a label level), and :func:`check_foreground` refuses a site whose
masks mostly cover the image (the signature of an inverted mask).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedlab.data.errors import DataError

POLARITIES = ("bright", "dark")
#: Largest median fraction of an image a site's masks may cover before the run stops (see check_foreground).
MAX_FOREGROUND = 0.5
#: A grey value between a binary mask's two extremes that covers more than this fraction of the pixels is a
#: label level (fundus 128), not an anti-aliased edge or JPEG noise.
LEVEL_PLATEAU = 0.01


def format_values(values: Sequence[float]) -> list:
    """Values for a message: integers without a decimal point."""
    return [int(v) if float(v).is_integer() else float(v) for v in values]


@dataclass(frozen=True)
class MaskCoding:
    """How raw mask values become binary label channels.

    Two modes:

    * binary (``levels`` is None): one channel, ``fg = raw >= threshold`` (``raw < threshold`` when
      ``invert``). ``threshold=None`` means 0.5 for NIfTI label maps and for masks whose values are all
      0 or 1, else 128 (8-bit masks saved as 0 / 255).
    * levels: each label channel is the set of raw values listed for it, e.g. fundus
      ``{"disc": (128, 0), "cup": (0,)}`` with background 255 (the disc channel includes the cup).

    Attributes:
        labels: Channel names, in order.
        threshold: Binary threshold on raw values (see above).
        invert: Foreground is below the threshold (object = 0, background = 255).
        levels: Label name -> raw values belonging to that label.
        background: Raw background value (levels mode); other values not listed are an error.
        values: Raw values a binary mask may hold (None: any value is thresholded).
        reject_levels: Binary mode without ``values``: refuse masks with a grey plateau between their two
            extremes (a multi-level coding that thresholding would silently merge). The generic folder
            loader sets it; manifests state their values instead.
    """

    labels: tuple[str, ...] = ("foreground",)
    threshold: float | None = None
    invert: bool = False
    levels: Mapping[str, tuple[float, ...]] | None = None
    background: float | None = None
    values: tuple[float, ...] | None = None
    reject_levels: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        if self.values is not None:
            object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        if self.levels is not None:
            levels = {str(k): tuple(float(v) for v in vals) for k, vals in dict(self.levels).items()}
            if not levels:
                raise ValueError("a levels MaskCoding needs at least one label, e.g. {'disc': [128, 0]}")
            object.__setattr__(self, "levels", levels)
            object.__setattr__(self, "labels", tuple(levels))
        elif len(self.labels) != 1:
            raise ValueError(f"a binary MaskCoding has one label, got {self.labels}; "
                             "pass levels={label: raw values} for several labels")

    @classmethod
    def from_options(cls, polarity: str = "bright", label_coding: Mapping[str, object] | None = None,
                     threshold: float | None = None, values: Sequence[float] | None = None,
                     labels: Sequence[str] = ("foreground",)) -> MaskCoding:
        """The coding of a user's own masks, from the options a notebook exposes.

        Args:
            polarity: "bright" (the object has the high value, e.g. 255 or 1) or "dark" (object = 0,
                background = 255: inverted masks).
            label_coding: Several labels from raw values, e.g. ``{"background": [255], "disc": [128, 0],
                "cup": [0]}``; the optional "background" entry lists values that belong to no label.
                Replaces ``polarity``.
            threshold: Binary threshold (default 128 for image files, 0.5 for NIfTI).
            values: Raw values a binary mask may hold; None refuses only grey plateaus (``reject_levels``).
            labels: Name of the binary label.

        Raises:
            ValueError: unknown polarity, or both a label coding and a non-default polarity.
        """
        if polarity not in POLARITIES:
            raise ValueError(f"mask polarity must be one of {POLARITIES} ('dark' = the object is 0 in the mask), "
                             f"got {polarity!r}")
        if label_coding:
            if polarity != "bright":
                raise ValueError("pass either a label coding or a mask polarity, not both: the label coding lists "
                                 "the raw values of every label already")
            coding = {str(k): v for k, v in label_coding.items()}
            background = coding.pop("background", None)
            if isinstance(background, Sequence) and not isinstance(background, str):
                if len(background) != 1:
                    raise ValueError(f"label_coding['background'] must be one raw value, got {background!r}")
                background = background[0]
            for name, vals in coding.items():
                if isinstance(vals, str) or not isinstance(vals, Sequence):
                    raise ValueError(f"label_coding[{name!r}] must be a list of raw mask values, got {vals!r}")
            return cls(levels={k: tuple(v) for k, v in coding.items()},
                       background=None if background is None else float(background))
        return cls(labels=tuple(labels), threshold=threshold, invert=polarity == "dark", values=values,
                   reject_levels=values is None)

    def describe(self) -> str:
        """One line for messages, e.g. "binary, object dark (raw < 128)"."""
        if self.levels is not None:
            parts = [f"{k} = {format_values(v)}" for k, v in self.levels.items()]
            bg = "" if self.background is None else f", background = {format_values([self.background])[0]}"
            return "levels: " + ", ".join(parts) + bg
        t = "128 (0.5 for 0/1 label maps)" if self.threshold is None else format_values([self.threshold])[0]
        return f"binary, object {'dark' if self.invert else 'bright'} (raw {'<' if self.invert else '>='} {t})"

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

    def level_plateaus(self, raw: np.ndarray) -> list[float]:
        """Grey values strictly between the mask's extremes (outside 10% bands at each end) that each cover more
        than 1% of the pixels: label levels, not anti-aliased edges or JPEG noise."""
        values, counts = np.unique(raw, return_counts=True)
        if len(values) <= 2:
            return []
        lo, hi = float(values[0]), float(values[-1])
        band = 0.1 * (hi - lo)
        mid = (values > lo + band) & (values < hi - band) & (counts > LEVEL_PLATEAU * raw.size)
        return values[mid].tolist()

    def encode(self, raw: np.ndarray, path: str | Path = "mask", nifti: bool = False) -> np.ndarray:
        """Raw 2D mask ``(H, W)`` -> binary label channels ``(L, H, W)`` uint8.

        Raises:
            DataError: the mask holds values the coding does not allow, or (``reject_levels``) grey plateaus
                of a multi-level coding; the file, the values and the option to set are named.
        """
        bad = self.unexpected_values(raw)
        if bad:
            shown = format_values(sorted(self.allowed_values()))
            raise DataError(f"{path}: mask values {format_values(bad[:5])} are not among the allowed {shown} "
                            f"({self.describe()}); fix the mask file, or pass the label coding that matches your "
                            "data (label_coding=..., notebook parameter LABEL_CODING; or the manifest's mask "
                            "section).")
        if self.levels is not None:
            return np.stack([np.isin(raw, vals) for vals in self.levels.values()]).astype(np.uint8)
        if self.reject_levels and self.values is None:
            plateaus = self.level_plateaus(raw)
            if plateaus:
                found = format_values(np.unique(raw).tolist()[:8])
                raise DataError(
                    f"{path}: the mask holds the grey level(s) {format_values(plateaus[:5])} besides its extremes "
                    f"(values {found}): it looks like a multi-level label coding, not a binary mask, and "
                    "thresholding would merge the labels. Pass label_coding (notebook parameter LABEL_CODING), "
                    "e.g. {'background': [255], 'disc': [128, 0], 'cup': [0]} for DoFE fundus masks, or "
                    "mask_values=[...] to threshold these values knowingly.")
        threshold = self.threshold
        if threshold is None:  # 0/1 label maps (NIfTI, or image files saved with values 0 and 1) vs 8-bit 0/255
            threshold = 0.5 if nifti or float(raw.max(initial=0)) <= 1 else 128.0
        fg = raw < threshold if self.invert else raw >= threshold
        return fg[None].astype(np.uint8)


def check_foreground(y: np.ndarray, files: Sequence[str | Path], owner: Sequence[int], where: str,
                     fix: str, limit: float = MAX_FOREGROUND) -> None:
    """Stop when a site's masks mostly cover their images: they are almost certainly inverted.

    The median, over the site's samples, of the fraction of pixels in any label must not exceed ``limit``
    (small objects such as a prostate or an optic disc cover a few percent; a few large polyps are fine).

    Args:
        y: Label channels ``(N, L, H, W)`` of one site and split.
        files: The mask file of each file index.
        owner: For each sample, the index of its file in ``files``.
        where: "site X (train)", for the message.
        fix: What to set, e.g. "polarity='dark' (notebook parameter MASK_POLARITY)".
        limit: Largest allowed median fraction.

    Raises:
        DataError: naming the file whose mask covers most, the median fraction and ``fix``.
    """
    if not len(y):
        return
    covered = y.reshape(len(y), y.shape[1], -1).any(axis=1).mean(axis=1)  # (N,) fraction in any label
    median = float(np.median(covered))
    if median > limit:
        worst = int(np.argmax(covered))
        raise DataError(
            f"{where}: the masks cover a median {median:.0%} of their images (mask {files[owner[worst]]} covers "
            f"{float(covered[worst]):.0%}); the foreground is probably the background, i.e. the masks are "
            f"inverted (object = 0). Set {fix}. If the objects really fill most of each image, raise the limit "
            f"(max_foreground, now {limit}).")
