"""Plots used by the notebooks. matplotlib only; every function returns its Figure (no plt.show()).

Sections: "data" (sites and their heterogeneity). Other sections append below their own header.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from fedlab.data.federation import Federation

LABEL_COLOURS = ("#00e5ff", "#ffea00", "#ff4081", "#76ff03")

# --- data ---


def _image_for_display(x: np.ndarray) -> tuple[np.ndarray, str | None]:
    """(C, H, W) image -> what imshow wants, and its colour map."""
    if x.shape[0] == 1:
        return x[0], "gray"
    if x.shape[0] == 3:
        return np.clip(np.moveaxis(x, 0, -1), 0, 1), None
    return x.mean(axis=0), "gray"


def plot_site_samples(federation: Federation, n: int = 4, split: str = "train", fig: Figure | None = None,
                      seed: int = 0) -> Figure:
    """Sample images of every site with the outlines of their masks: one row per site.

    Args:
        federation: A segmentation federation.
        n: Images per site (columns).
        split: "train", "val" or "test".
        fig: Figure to draw into (a new one when None).
        seed: Which images are shown (evenly spaced ones, shifted by the seed).

    Returns:
        The figure; its title names the federation and whether it is synthetic.
    """
    if federation.task != "segmentation":
        raise ValueError(f"plot_site_samples needs a segmentation federation, got task {federation.task!r}")
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    rows = len(federation)
    fig = fig or plt.figure(figsize=(1.8 * n + 0.8, 1.8 * rows + 0.6))
    axes = np.asarray(fig.subplots(rows, n, squeeze=False))
    for r, site in enumerate(federation):
        data = getattr(site, split)
        count = len(data) if data is not None else 0
        picks = (np.linspace(0, count, n, endpoint=False).astype(int) + seed) % count if count else []
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(site.name)
            if c >= len(picks):
                ax.set_axis_off()
                continue
            x = data.x[picks[c]].detach().cpu().numpy()  # (C, H, W)
            y = data.y[picks[c]].detach().cpu().numpy()  # (L, H, W)
            img, cmap = _image_for_display(x)
            ax.imshow(img, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            for lab in range(y.shape[0]):
                if y[lab].any() and not y[lab].all():
                    ax.contour(y[lab], levels=[0.5], colors=LABEL_COLOURS[lab % len(LABEL_COLOURS)],
                               linewidths=0.8)
    labels = ", ".join(f"{name} ({LABEL_COLOURS[i % len(LABEL_COLOURS)]})"
                       for i, name in enumerate(federation.labels))
    fig.suptitle(f"{federation.title}: {split} samples per site; outlines: {labels}", fontsize=9)
    return fig


def plot_intensity_histograms(federation: Federation, split: str = "train", bins: int = 64,
                              ax: plt.Axes | None = None) -> Figure:
    """Per-site histograms of image intensities (mean over channels), one line per site.

    Sites whose curves differ show the acquisition shift between them (cf. Fig. 3 of Guan and Liu's
    survey of FL for medical image analysis).

    Args:
        federation: A segmentation federation.
        split: "train", "val" or "test".
        bins: Histogram bins over [0, 1].
        ax: Axes to draw into (a new figure when None).

    Returns:
        The figure.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    edges = np.linspace(0, 1, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    for site in federation:
        data = getattr(site, split)
        if data is None or not len(data):
            continue
        values = data.x.detach().float().mean(dim=1).cpu().numpy().ravel()  # (N*H*W,)
        hist, _ = np.histogram(np.clip(values, 0, 1), bins=edges, density=True)
        ax.plot(centres, hist, label=site.name, linewidth=1.2)
    ax.set_xlabel("intensity (mean over channels)")
    ax.set_ylabel("density")
    ax.set_yscale("log")
    ax.legend(title="site", fontsize=8)
    ax.set_title(f"{federation.title}: intensity distribution per site ({split})", fontsize=9)
    fig.tight_layout()
    return fig
