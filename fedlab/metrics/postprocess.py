"""Post-processing of predicted masks before they are scored.

Scoring normally uses the thresholded prediction as it is (``postprocess=None``). Some papers clean it
first, and their numbers can only be reproduced with the same cleaning:

``"largest_component"``
    Keep the largest connected component of each mask (per image and label for 2-D input, per volume and
    label for 3-D input). Components are face-connected (4-neighbours in 2-D, 6 in 3-D), which is
    ``scipy.ndimage.label``'s default. Ties go to the component met first in scan (C) order. An empty
    prediction stays empty.

``"lcfed"``
    What the released LC-Fed test code (Wang, Jin, Wang, ECCV 2022; ``utils/util.py``,
    ``_connectivity_region_analysis``, called in ``scripts/tester_utils.py`` for prostate and fundus) does to
    every prediction: on each 2-D slice and label (also when the input is 3-D: their prostate volumes are
    stacks of slices post-processed one by one), keep the largest 4-connected component; a slice whose
    prediction is empty becomes **all foreground**. The second rule is a side effect of their code (the
    background "component" 0 wins the arg-max when there is no other) rather than a stated choice: it turns a
    missed slice into a false positive over the whole slice, and it keeps medpy's surface distances, which
    raise on empty masks, defined.

``"lcfed_polyp"``
    What the same test code does to polyp predictions of the baselines (``test_normal_unet``): no component
    analysis, and an empty prediction gets its top-left pixel ``[0, 0]`` set to foreground (a fixed one-pixel
    prediction that keeps medpy's distances defined). Their test of LC-Fed itself on polyp
    (``test_lc_unet``) applies neither rule.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

#: The accepted values of ``postprocess`` (None = score the prediction as it is).
POSTPROCESS = (None, "largest_component", "lcfed", "lcfed_polyp")


def postprocess_masks(mask: torch.Tensor, method: str | None) -> torch.Tensor:
    """Apply one of the :data:`POSTPROCESS` rules to binary masks.

    Args:
        mask: Binary prediction (N, L, H, W) or (N, L, D, H, W), any device.
        method: One of :data:`POSTPROCESS`; see the module docstring for what each does.

    Returns:
        A tensor with the shape, dtype and device of ``mask`` (``mask`` itself when ``method`` is None).

    Raises:
        ValueError: For an unknown ``method``.
    """
    if method is None:
        return mask
    if method not in POSTPROCESS:
        raise ValueError(f"postprocess must be one of {POSTPROCESS}, got {method!r}.")
    array = mask.detach().cpu().numpy() != 0
    if method == "largest_component":
        out = np.stack([keep_largest_component(m) for m in array.reshape(-1, *array.shape[2:])])
    else:
        slices = array.reshape(-1, *array.shape[-2:])  # every 2-D slice of every image / volume and label
        rule = _lcfed_slice if method == "lcfed" else _fill_corner_if_empty
        out = np.stack([rule(s) for s in slices])
    return torch.from_numpy(out.reshape(array.shape)).to(device=mask.device, dtype=mask.dtype)


def keep_largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest face-connected component of one binary mask (2-D or 3-D); empty stays empty.

    Args:
        mask: Boolean array (H, W) or (D, H, W).

    Returns:
        Boolean array of the same shape holding only the largest component (the first in scan order when
        several are equally large).
    """
    labels, count = ndimage.label(mask)  # default structure: face connectivity
    if count <= 1:
        return labels > 0
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # background
    return labels == int(np.argmax(sizes))  # argmax: the lowest label among ties


def _lcfed_slice(mask: np.ndarray) -> np.ndarray:
    """LC-Fed's rule on one 2-D slice: largest 4-connected component; empty -> all foreground."""
    if not mask.any():
        return np.ones_like(mask)
    return keep_largest_component(mask)


def _fill_corner_if_empty(mask: np.ndarray) -> np.ndarray:
    """LC-Fed's polyp rule on one 2-D image: an empty prediction gets pixel [0, 0] set."""
    if mask.any():
        return mask
    out = mask.copy()
    out[0, 0] = True
    return out
