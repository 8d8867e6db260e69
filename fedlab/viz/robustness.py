"""Plots of lesson 08 (noisy and malicious sites): aggregation rules on a plane, scores per scenario, site weights."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

RULE_MARKERS = {"FedAvg (mean)": "s", "Median": "D", "TrimmedMean": "^", "Krum": "*", "NormClip": "P"}


def plot_aggregation_rules(honest: np.ndarray, attackers: np.ndarray, aggregates: Mapping[str, np.ndarray],
                           title: str = "") -> Figure:
    """Sites' updates as points in a plane, and where each rule puts the aggregate.

    Args:
        honest: (K, 2) honest updates.
        attackers: (M, 2) malicious updates.
        aggregates: ``{rule: (2,) aggregate}``.
        title: Figure title.

    Returns:
        The figure.
    """
    fig, ax = plt.subplots(figsize=(6.2, 4.6))
    ax.scatter(honest[:, 0], honest[:, 1], c="#3b75af", s=40, label="honest sites' updates")
    ax.scatter(attackers[:, 0], attackers[:, 1], c="#d62728", marker="x", s=70, label="malicious update")
    centre = honest.mean(axis=0)
    ax.scatter(*centre, facecolors="none", edgecolors="#3b75af", s=260, linewidths=1.2,
               label="mean of the honest updates")
    for name, point in aggregates.items():
        ax.scatter(*point, marker=RULE_MARKERS.get(name, "o"), s=110, edgecolors="k", linewidths=0.6, label=name,
                   zorder=3)
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.set_xlabel("update, coordinate 1")
    ax.set_ylabel("update, coordinate 2")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.2)
    fig.tight_layout()
    return fig


def plot_grouped_bars(mean: pd.DataFrame, std: pd.DataFrame | None = None, ylabel: str = "", title: str = "",
                      ax: plt.Axes | None = None) -> Figure:
    """One group of bars per column of ``mean`` (e.g. a scenario), one bar per row (e.g. a method).

    Args:
        mean: Values, rows = bars within a group, columns = groups.
        std: Same shape: error bars (a standard deviation over seeds); None or NaN: no bar.
        ylabel: Axis label.
        title: Title (say whether the data are synthetic).
        ax: Optional Axes.

    Returns:
        The figure.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(1.9 * len(mean.columns) + 3, 3.8))
    rows, cols = list(mean.index), list(mean.columns)
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(cols))
    for i, row in enumerate(rows):
        err = None if std is None else std.loc[row, cols].to_numpy(dtype=float)
        if err is not None and np.isnan(err).all():
            err = None
        ax.bar(x + (i - (len(rows) - 1) / 2) * width, mean.loc[row, cols].to_numpy(dtype=float), width, yerr=err,
               capsize=2, label=str(row))
    ax.set_xticks(x, [str(c) for c in cols])
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=min(len(rows), 6), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    return fig


def plot_site_weights(weights: pd.DataFrame, highlight: str | None = None, title: str = "",
                      ax: plt.Axes | None = None) -> Figure:
    """Bars of per-site values (e.g. quality weights), one group per site, one bar per column.

    Args:
        weights: Rows = sites, columns = what is shown (e.g. "quality", "sample share").
        highlight: A site whose label is drawn in red (e.g. the site whose labels were made noisy).
        title: Title.
        ax: Optional Axes.
    """
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3.2))
    weights.plot.bar(ax=ax, rot=0, width=0.8)
    for label in ax.get_xticklabels():
        if label.get_text() == highlight:
            label.set_color("#d62728")
            label.set_fontweight("bold")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


__all__ = ["plot_aggregation_rules", "plot_grouped_bars", "plot_site_weights"]
