"""Plots of the privacy lessons (06-07): reconstructions, leakage sweeps, masked uploads, privacy-utility, epsilon.

Every function takes tensors or tidy DataFrames from :mod:`fedlab.experiments.leakage`,
:mod:`fedlab.experiments.differential_privacy` or :mod:`fedlab.privacy` and returns its figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

SWEEP_TITLES = {"batch": "batch size (images per update)", "noise": "noise norm / update norm",
                "top-k": "fraction of coordinates sent (top-k)"}
METHOD_STYLE = {"DLG": {"marker": "o", "color": "#c44e52"}, "IG": {"marker": "s", "color": "#4c72b0"}}


def plot_reconstructions(panels: Mapping[str, torch.Tensor], captions: Mapping[str, Sequence[str]] | None = None,
                         title: str = "", max_images: int = 4) -> Figure:
    """Columns of images side by side: e.g. the truth, the attacker's prior, and each reconstruction.

    Args:
        panels: Column title -> images ``(B, 1, H, W)`` in [0, 1] (a ``(1, ...)`` image is repeated for every row).
        captions: Column title -> one caption per row (e.g. "PSNR 54 dB").
        title: Figure title.
        max_images: Rows shown at most.
    """
    rows = min(max(len(v) for v in panels.values()), max_images)
    cols = len(panels)
    fig, axes = plt.subplots(rows, cols, figsize=(1.9 * cols, 1.9 * rows + 0.5), squeeze=False)
    for c, (name, images) in enumerate(panels.items()):
        for r in range(rows):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            img = images[min(r, len(images) - 1), 0].detach().float().cpu().numpy()  # (H, W)
            ax.imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if r == 0:
                ax.set_title(name, fontsize=8)
            if captions and name in captions and r < len(captions[name]):
                ax.set_xlabel(captions[name][r], fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_leakage_sweep(sweep: pd.DataFrame, metric: str = "relative_leakage", title: str = "") -> Figure:
    """One panel per defence (batch size, noise, top-k): the attacks' leakage score against the defence's strength.

    Args:
        sweep: Rows of :func:`fedlab.experiments.leakage.defence_sweep` (columns sweep, setting, method, ``metric``).
        metric: "relative_leakage" (0 = no better than the prior) or "psnr".
        title: Figure title.
    """
    kinds = [k for k in SWEEP_TITLES if k in set(sweep["sweep"])]
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        part = sweep[sweep["sweep"] == kind]
        for method, rows in part.groupby("method", sort=False):
            rows = rows.sort_values("setting")
            ax.plot(rows["setting"], rows[metric], label=method, **METHOD_STYLE.get(method, {}))
        if kind == "noise":
            ax.set_xscale("symlog", linthresh=0.01)
        elif kind == "top-k":
            ax.set_xscale("log")
            ax.invert_xaxis()
        else:
            ax.set_xscale("log", base=2)
        if metric == "relative_leakage":
            ax.axhline(0, color="k", lw=0.8, ls="--")
            ax.text(ax.get_xlim()[0], 0, " prior (site-mean image)", va="bottom", fontsize=7)
        ax.set_xlabel(SWEEP_TITLES[kind])
        ax.set_ylabel({"relative_leakage": "relative leakage (SSIM gain over prior)", "psnr": "PSNR (dB)"}.get(
            metric, metric))
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_masked_upload(update: torch.Tensor, received: torch.Tensor, title: str = "",
                       max_points: int = 4000) -> Figure:
    """What a site computed against what the server received (decoded), for the same coordinates.

    Args:
        update: The site's weighted upload before masking, flattened.
        received: The masked upload, decoded to real numbers, flattened.
        title: Figure title.
        max_points: Coordinates drawn (evenly spaced).
    """
    a = update.reshape(-1).double().cpu().numpy()
    b = received.reshape(-1).double().cpu().numpy()
    pick = np.linspace(0, len(a) - 1, min(max_points, len(a))).astype(int)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    axes[0].scatter(a[pick], b[pick], s=2, alpha=0.4)
    axes[0].set_xlabel("the site's upload (weighted, before masking)")
    axes[0].set_ylabel("what the server receives (decoded)")
    axes[1].hist(a, bins=60, color="#4c72b0")
    axes[1].set_xlabel("the site's upload: values")
    axes[2].hist(b, bins=60, color="#c44e52")
    axes[2].set_xlabel("what the server receives: values (note the scale)")
    for ax in axes[1:]:
        ax.set_ylabel("coordinates")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_privacy_utility(summary: pd.DataFrame, metric: str, reference: float | None = None, title: str = "",
                         ax: plt.Axes | None = None) -> Figure:
    """Utility against the noise multiplier, with the epsilon each point costs written next to it.

    Args:
        summary: :func:`fedlab.experiments.differential_privacy.summary_by_method` (rows with a noise multiplier).
        metric: The utility column (e.g. "dice", "auc").
        reference: The non-private FedAvg value (a dashed line).
        title: Axes title.
        ax: Axes to draw into.
    """
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.2, 3.4))
    ax = ax or fig.add_subplot(1, 1, 1)
    rows = summary.dropna(subset=["noise_multiplier"]).sort_values("noise_multiplier")
    ax.plot(rows["noise_multiplier"], rows[metric], marker="o", color="#4c72b0", label="DP-SGD at every site")
    for _, r in rows.iterrows():
        if np.isfinite(r["epsilon_max"]):
            label = f"eps {r['epsilon_min']:.3g}-{r['epsilon_max']:.3g}"
        else:
            label = "eps = inf"
        ax.annotate(label, (r["noise_multiplier"], r[metric]), textcoords="offset points", xytext=(4, 6), fontsize=7)
    if reference is not None:
        ax.axhline(reference, color="k", ls="--", lw=0.8, label="FedAvg (no DP)")
    ax.set_xlabel("noise multiplier sigma (0 = clipping only)")
    ax.set_ylabel(f"site-mean test {metric}")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_epsilon_ledger(ledger: pd.DataFrame, title: str = "", ax: plt.Axes | None = None) -> Figure:
    """Epsilon spent so far, per site, after every round (from :func:`fedlab.privacy.dp.privacy_ledger`)."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.2, 3.4))
    ax = ax or fig.add_subplot(1, 1, 1)
    for site, rows in ledger.groupby("site", sort=False):
        rows = rows.sort_values("round")
        ax.plot(rows["round"], rows["epsilon"], marker=".", label=str(site))
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(f"epsilon spent (delta = {ledger['delta'].iloc[0]:g})")
    ax.legend(fontsize=7, ncol=2)
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def plot_clipping(norms: torch.Tensor, clip: float, title: str = "", ax: plt.Axes | None = None) -> Figure:
    """The per-record gradient norms of a batch, and the clipping norm C that DP-SGD caps them at."""
    fig = ax.figure if ax is not None else plt.figure(figsize=(5.2, 3.2))
    ax = ax or fig.add_subplot(1, 1, 1)
    values = norms.detach().cpu().numpy()
    ax.hist(values, bins=min(30, max(5, len(values) // 2)), color="#8172b3", alpha=0.8, label="per-record norm")
    ax.axvline(clip, color="#c44e52", lw=1.5, label=f"clipping norm C = {clip:g}")
    ax.set_xlabel("norm of one record's gradient")
    ax.set_ylabel("records")
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return fig
