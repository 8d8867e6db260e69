"""Plots of lesson 09 (the heterogeneity taxonomy): client drift on a quadratic, label skew, bytes vs score."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from fedlab.data.federation import Federation
from fedlab.experiments.quadratic import QuadraticSite, global_loss


def plot_quadratic_paths(sites: Sequence[QuadraticSite], paths: Mapping[str, pd.DataFrame],
                         points: Mapping[str, np.ndarray], title: str = "") -> Figure:
    """Contours of the federation's loss and of each site's, the rounds of each method, and marked points.

    Args:
        sites: The quadratic sites.
        paths: ``{method: DataFrame with w0, w1 per round}`` (from :func:`~fedlab.experiments.quadratic.run_quadratic`).
        points: ``{label: (2,) point}``, e.g. the optimum and FedAvg's fixed point.
        title: Title.
    """
    every = np.concatenate([np.stack([s.b for s in sites])] + [p[["w0", "w1"]].to_numpy() for p in paths.values()]
                           + [np.stack(list(points.values()))])
    lo, hi = every.min(axis=0) - 0.4, every.max(axis=0) + 0.4
    g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 160), np.linspace(lo[1], hi[1], 160))
    grid = np.stack([g0.ravel(), g1.ravel()], axis=1)
    fig, ax = plt.subplots(figsize=(6.2, 5.2))
    total = np.array([global_loss(sites, w) for w in grid]).reshape(g0.shape)
    ax.contour(g0, g1, total, levels=12, colors="0.6", linewidths=0.7)
    for s, colour in zip(sites, ("#8c564b", "#9467bd", "#17becf", "#bcbd22"), strict=False):
        own = np.array([s.loss(w) for w in grid]).reshape(g0.shape)
        ax.contour(g0, g1, own, levels=4, colors=colour, linewidths=0.6, linestyles="dotted")
        ax.scatter(*s.b, color=colour, marker="o", s=40, label=f"site {s.name}'s own minimum")
    for name, path in paths.items():
        ax.plot(path["w0"], path["w1"], marker=".", ms=4, lw=1.2, label=f"{name}, round by round")
    for (label, point), marker in zip(points.items(), ("*", "X", "P", "D"), strict=False):
        ax.scatter(*point, marker=marker, s=160, edgecolors="k", zorder=4, label=label)
    ax.set_xlabel("w[0]")
    ax.set_ylabel("w[1]")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="best")
    ax.set_aspect("equal", adjustable="box")
    fig.tight_layout()
    return fig


def plot_axis_samples(federations: Mapping[str, Federation], index: int = 0, split: str = "train") -> Figure:
    """The same training image of every site in each federation: rows = sites, columns = federations.

    With one seed the federations of a sweep hold the same patients, so a row shows one patient as each
    heterogeneity axis alone renders (acquisition) or outlines (annotation) it.

    Args:
        federations: ``{name: segmentation federation}``, same sites in the same order.
        index: Which image of each site's split.
        split: "train", "val" or "test".
    """
    names = list(federations)
    sites = next(iter(federations.values())).site_names
    fig, axes = plt.subplots(len(sites), len(names), figsize=(1.7 * len(names) + 0.6, 1.7 * len(sites) + 0.5),
                             squeeze=False)
    for c, name in enumerate(names):
        for r, site in enumerate(federations[name]):
            data = getattr(site, split)
            x = data.x[index % len(data)].detach().cpu().numpy()  # (C, H, W)
            y = data.y[index % len(data)].detach().cpu().numpy()  # (L, H, W)
            ax = axes[r, c]
            ax.imshow(x[0] if x.shape[0] == 1 else np.clip(np.moveaxis(x, 0, -1), 0, 1), cmap="gray", vmin=0, vmax=1)
            for lab in range(y.shape[0]):
                if y[lab].any() and not y[lab].all():
                    ax.contour(y[lab], levels=[0.5], colors="#00e5ff", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0:
                ax.set_ylabel(site.name)
    synthetic = all(f.synthetic for f in federations.values())
    fig.suptitle(f"One {split} image per site, per federation ({'synthetic' if synthetic else 'real'}); "
                 "outline = the site's mask", fontsize=9)
    fig.tight_layout()
    return fig


def plot_label_counts(counts: Mapping[str, pd.DataFrame], title: str = "") -> Figure:
    """Stacked bars of class counts per site, one panel per setting (e.g. per Dirichlet alpha).

    Args:
        counts: ``{setting: DataFrame rows = sites, columns = classes}``
            (:func:`fedlab.data.label_skew.label_counts`).
        title: Figure title.
    """
    fig, axes = plt.subplots(1, len(counts), figsize=(2.6 * len(counts) + 0.6, 3), sharey=True, squeeze=False)
    for ax, (name, table) in zip(axes[0], counts.items(), strict=True):
        table.plot.bar(ax=ax, stacked=True, rot=0, width=0.8, legend=ax is axes[0][0], color=["#3b75af", "#ef8636"])
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("")
    axes[0][0].set_ylabel("training samples")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = ["plot_axis_samples", "plot_label_counts", "plot_quadratic_paths"]
