"""Plots of LC-Fed's two modules (notebook 03): PCS gates per site, head calibration step by step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from fedlab.models.pcs import gate_spread

OVERLAY_CMAP = "autumn"


def _to_numpy(t: torch.Tensor | np.ndarray) -> np.ndarray:
    return t.detach().float().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t, dtype=float)


def _display_image(x: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) image in [0, 1] -> something imshow can draw (grey for one channel)."""
    if x.shape[0] == 1:
        return x[0], "gray"
    return np.clip(np.moveaxis(x[:3], 0, -1), 0, 1), None


def plot_site_gates(gates: Mapping[str, torch.Tensor | np.ndarray], site_names: Sequence[str],
                    title: str = "") -> Figure:
    """Heatmaps of how each site code moves the PCS gates, one panel per model variant.

    Every channel's gate is shown as its deviation from the mean over the site codes
    (``M_k - mean_j M_j``), on one symmetric colour scale shared by all panels, so that panels are
    comparable and the site-specific part is visible next to the much larger per-channel level.

    Args:
        gates: ``{variant: (K, C) gates}``, e.g. from :meth:`fedlab.models.LCFedNet.mean_site_gates`.
        site_names: The K site names (rows).
        title: Figure title (say whether the data are synthetic).

    Returns:
        The figure; each panel's title gives the mean squared distance between the sites' gates.
    """
    centred = {name: _to_numpy(g) - _to_numpy(g).mean(axis=0, keepdims=True) for name, g in gates.items()}
    vmax = max(max(float(np.abs(c).max()) for c in centred.values()), 1e-8)
    fig, axes = plt.subplots(1, len(gates), figsize=(5 * len(gates), 0.45 * len(site_names) + 1.8), squeeze=False)
    for ax, (name, g) in zip(axes[0], gates.items(), strict=True):
        im = ax.imshow(centred[name], aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
        ax.set_yticks(range(len(site_names)), site_names)
        ax.set_xlabel("bottleneck channel")
        spread = float(gate_spread(torch.as_tensor(_to_numpy(g))))
        ax.set_title(f"{name}\nmean pairwise MSE between sites {spread:.2e}", fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.04, label="gate minus mean over sites")
    axes[0][0].set_ylabel("site code")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_gate_correlation(correlation: pd.DataFrame, title: str = "") -> Figure:
    """Heatmap of the correlation between the sites' gate deviations (from the mean gate), with a colourbar.

    Args:
        correlation: (K, K) from :func:`fedlab.experiments.lcfed_findings.gate_structure` (``"correlation"``).
        title: Figure title (say whether the data are synthetic).
    """
    names = list(correlation.index)
    k = len(names)
    fig, ax = plt.subplots(figsize=(0.6 * k + 2.4, 0.6 * k + 1.4))
    im = ax.imshow(correlation.to_numpy(dtype=float), cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks(range(k), names)
    ax.set_yticks(range(k), names)
    for i in range(k):
        for j in range(k):
            v = correlation.iat[i, j]
            if np.isfinite(v):
                ax.text(j, i, f"{v:+.2f}", ha="center", va="center", fontsize=8,
                        color="white" if abs(v) > 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="correlation of gate deviations")
    ax.set_xlabel("site code")
    ax.set_ylabel("site code")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _crop_box(masks: Sequence[np.ndarray], shape: tuple[int, int], margin: int) -> tuple[slice, slice]:
    """The square region (with ``margin``) around everything set in ``masks``; the whole image if nothing is."""
    any_set = np.zeros(shape, dtype=bool)
    for m in masks:
        any_set |= m
    if not any_set.any():
        return slice(0, shape[0]), slice(0, shape[1])
    rows, cols = np.nonzero(any_set)
    r0, r1 = rows.min() - margin, rows.max() + 1 + margin
    c0, c1 = cols.min() - margin, cols.max() + 1 + margin
    side = min(max(r1 - r0, c1 - c0), min(shape))
    rc, cc = (r0 + r1) // 2, (c0 + c1) // 2
    r0 = int(np.clip(rc - side // 2, 0, shape[0] - side))
    c0 = int(np.clip(cc - side // 2, 0, shape[1] - side))
    return slice(r0, r0 + side), slice(c0, c0 + side)


def _overlay(ax: plt.Axes, image: np.ndarray, overlay: np.ndarray | None, target: np.ndarray | None, title: str,
             vmax: float = 1.0, cmap: str = OVERLAY_CMAP):
    img, grey = _display_image(image)
    ax.imshow(img, cmap=grey, interpolation="nearest")
    im = None
    if overlay is not None:
        im = ax.imshow(np.ma.masked_less_equal(overlay, 0.05 * vmax), cmap=cmap, alpha=0.6, vmin=0, vmax=vmax,
                       interpolation="nearest")
    if target is not None and target.any() and not target.all():
        ax.contour(target, levels=[0.5], colors="cyan", linewidths=1.0)
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    return im


def plot_calibration_steps(image: torch.Tensor, target: torch.Tensor, maps: Mapping[str, torch.Tensor],
                           calibrated: torch.Tensor, site_names: Sequence[str], site: int, label: int = 0,
                           title: str = "", margin: int = 3) -> Figure:
    """Head calibration on one image, step by step (ground truth outlined in cyan everywhere).

    Row 1: the image, then every site's head prediction on this site's decoder feature.
    Row 2: the normalised disagreement map U, its peaks (dots, with the site's own prediction outlined in
    yellow), the two blurred attention maps, and the site's prediction before and after calibration.
    All panels show the same square crop around the truth, the own prediction and every peak (plus
    ``margin`` pixels), so that no peak is cut off and the boundaries are large enough to see; the
    crop is given in the title. Every heatmap has a colourbar.

    Args:
        image: (C, H, W) input.
        target: (L, H, W) ground truth.
        maps: From :meth:`fedlab.models.LCFedSiteModel.calibrate` with ``return_maps=True`` for this
            one image (batch dimension 1).
        calibrated: (1, L, H, W) calibrated logits.
        site_names: The K site names.
        site: Index of the site whose data and model are shown.
        label: Which label channel to show.
        title: Figure title (say whether the data are synthetic).
        margin: Pixels around the crop.
    """
    img_full = _to_numpy(image)
    gt_full = _to_numpy(target)[label] > 0.5
    probs_full = _to_numpy(maps["head_probs"])[:, 0, label]  # (K, H, W)
    peaks_full = _to_numpy(maps["peaks"])[0, label] > 0
    own_full = probs_full[site] > 0.5
    h, w = gt_full.shape
    rs, cs = _crop_box([gt_full, own_full, peaks_full], (h, w), margin)
    img, gt, probs, peaks, own = img_full[:, rs, cs], gt_full[rs, cs], probs_full[:, rs, cs], peaks_full[rs, cs], \
        own_full[rs, cs]
    k = probs.shape[0]
    ncols = max(k + 1, 6)
    fig, axes = plt.subplots(2, ncols, figsize=(2.2 * ncols + 1.0, 5.4), layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    crop = f"rows {rs.start}-{rs.stop - 1}, columns {cs.start}-{cs.stop - 1} of {h}x{w}"
    _overlay(axes[0, 0], img, None, gt, f"site {site_names[site]}:\nimage + truth")
    prob_im = None
    for i in range(k):
        who = "own head" if i == site else f"head of {site_names[i]}"
        prob_im = _overlay(axes[0, i + 1], img, probs[i], gt, f"P ({who})")
    if prob_im is not None:
        fig.colorbar(prob_im, ax=axes[0, -1], fraction=0.046, pad=0.02, label="probability")

    u = _to_numpy(maps["disagreement"])[0, label][rs, cs]
    im = _overlay(axes[1, 0], img, u, gt, "disagreement U\n(normalised)", cmap="magma")
    fig.colorbar(im, ax=axes[1, 0], fraction=0.046, pad=0.02)
    ax = axes[1, 1]
    _overlay(ax, img, None, gt, f"{int(peaks_full.sum())} peaks of U (dots)\nown prediction in yellow")
    if own.any() and not own.all():
        ax.contour(own, levels=[0.5], colors="yellow", linewidths=1.0)
    rows, cols = np.nonzero(peaks)
    ax.scatter(cols, rows, s=14, c="magenta", edgecolors="white", linewidths=0.4)
    def sigmoid(logits: torch.Tensor) -> np.ndarray:
        return 1 / (1 + np.exp(-_to_numpy(logits)[0, label][rs, cs]))

    second = [
        ("blurred peaks\n(attention 1)", _to_numpy(maps["attention_disagreement"])[0, label][rs, cs], "magma"),
        ("blurred prediction\n(attention 2)", _to_numpy(maps["attention_prediction"])[0, label][rs, cs], "magma"),
        ("prediction\nbefore calibration", sigmoid(maps["before"]), OVERLAY_CMAP),
        ("prediction\nafter calibration", sigmoid(calibrated), OVERLAY_CMAP),
    ]
    for ax, (name, m, cmap) in zip(axes[1, 2:], second, strict=False):
        vmax = 1.0 if cmap == OVERLAY_CMAP else max(float(m.max()), 1e-6)
        im = _overlay(ax, img, m, gt, name, vmax=vmax, cmap=cmap)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    fig.suptitle(f"{title} (crop: {crop})" if title else f"crop: {crop}", fontsize=10)
    return fig
