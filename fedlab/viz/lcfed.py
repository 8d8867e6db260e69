"""Plots of LC-Fed's two modules (notebook 03): PCS gates per site, head calibration step by step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
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


def _overlay(ax: plt.Axes, image: np.ndarray, overlay: np.ndarray | None, target: np.ndarray | None, title: str,
             vmax: float = 1.0, cmap: str = OVERLAY_CMAP) -> None:
    img, grey = _display_image(image)
    ax.imshow(img, cmap=grey, interpolation="nearest")
    if overlay is not None:
        ax.imshow(np.ma.masked_less_equal(overlay, 0.05 * vmax), cmap=cmap, alpha=0.6, vmin=0, vmax=vmax,
                  interpolation="nearest")
    if target is not None and target.any() and not target.all():
        ax.contour(target, levels=[0.5], colors="cyan", linewidths=0.8)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def plot_calibration_steps(image: torch.Tensor, target: torch.Tensor, maps: Mapping[str, torch.Tensor],
                           calibrated: torch.Tensor, site_names: Sequence[str], site: int, label: int = 0,
                           title: str = "") -> Figure:
    """Head calibration on one image, step by step (ground truth outlined in cyan everywhere).

    Row 1: the image, then every site's head prediction on this site's decoder feature.
    Row 2: the normalised disagreement map U, its peaks, the two blurred attention maps, and the
    site's prediction before and after calibration.

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
    """
    img = _to_numpy(image)
    gt = _to_numpy(target)[label] > 0.5
    probs = _to_numpy(maps["head_probs"])[:, 0, label]  # (K, H, W)
    k = probs.shape[0]
    ncols = max(k + 1, 6)
    fig, axes = plt.subplots(2, ncols, figsize=(2.0 * ncols, 5.0))
    for ax in axes.ravel():
        ax.axis("off")
    _overlay(axes[0, 0], img, None, gt, f"site {site_names[site]}: image + truth")
    for i in range(k):
        who = "own head" if i == site else f"head of {site_names[i]}"
        _overlay(axes[0, i + 1], img, probs[i], gt, f"P ({who})")
    second = [
        ("disagreement U\n(normalised)", _to_numpy(maps["disagreement"])[0, label], 1.0, "magma"),
        ("peaks of U\n(> threshold)", _to_numpy(maps["peaks"])[0, label], 1.0, "magma"),
        ("blurred peaks\n(attention 1)", _to_numpy(maps["attention_disagreement"])[0, label], None, "magma"),
        ("blurred prediction\n(attention 2)", _to_numpy(maps["attention_prediction"])[0, label], None, "magma"),
        ("prediction\nbefore calibration", 1 / (1 + np.exp(-_to_numpy(maps["before"])[0, label])), 1.0, OVERLAY_CMAP),
        ("prediction\nafter calibration", 1 / (1 + np.exp(-_to_numpy(calibrated)[0, label])), 1.0, OVERLAY_CMAP),
    ]
    for ax, (name, m, vmax, cmap) in zip(axes[1], second, strict=False):
        vmax = vmax if vmax is not None else max(float(m.max()), 1e-6)
        _overlay(ax, img, m, gt, f"{name} (max {m.max():.2g})", vmax=vmax, cmap=cmap)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
