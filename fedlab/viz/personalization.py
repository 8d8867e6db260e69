"""Plots of the personalisation lesson (02): per-site scores in the paper's units, and the heterogeneity sweep."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

#: metric -> (axis label, scale): IoU and Dice in percent, distances in pixels, as in the paper's tables.
UNITS = {"iou": ("IoU (%)", 100.0), "dice": ("Dice (%)", 100.0), "assd": ("ASSD (px)", 1.0),
         "hd95": ("HD95 (px)", 1.0)}


def plot_site_scores(results: pd.DataFrame, metrics: Sequence[str] = ("iou", "assd"), title: str = "") -> Figure:
    """Grouped bars per site (one bar per method), one panel per metric, axes from 0, legend beside the panels.

    Args:
        results: Tidy rows with columns method, site, metric, value (e.g. from ``results_frame``).
        metrics: Which metrics, one panel each (IoU / Dice in %, ASSD / HD95 in pixels).
        title: Figure title (say whether the data are synthetic).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.2 * len(metrics) + 1.6, 3.6), squeeze=False,
                             layout="constrained")
    handles = labels = None
    for ax, metric in zip(axes[0], metrics, strict=True):
        label, scale = UNITS.get(metric, (metric, 1.0))
        wide = results[results["metric"] == metric].pivot_table(index="site", columns="method", values="value",
                                                               sort=False) * scale
        wide.plot.bar(ax=ax, rot=0, width=0.85, legend=False)
        ax.set_ylim(bottom=0)
        ax.set_ylabel(label + (" (lower is better)" if scale == 1.0 else ""))
        ax.set_xlabel("site")
        ax.grid(axis="y", alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small", title="method")
    fig.suptitle(title)
    return fig


def plot_sweep_gain(gain: pd.DataFrame, scale: float = 100.0, unit: str = "IoU points",
                    baseline: str = "FedAvg", title: str = "") -> Figure:
    """Gain of each method over the baseline against the heterogeneity level, one panel per axis.

    Args:
        gain: From :func:`fedlab.experiments.personalization_sweep.sweep_gain` (index (axis, level)).
        scale: Factor applied to the gains (100: IoU in points).
        unit: Unit of the scaled gains (y label).
        baseline: The method subtracted (y label).
        title: Figure title (say whether the data are synthetic).
    """
    axes_names = list(dict.fromkeys(gain.index.get_level_values("axis")))
    fig, axes = plt.subplots(1, len(axes_names), figsize=(4.2 * len(axes_names) + 1.6, 3.4), squeeze=False,
                             sharey=True, layout="constrained")
    for ax, axis in zip(axes[0], axes_names, strict=True):
        block = gain.xs(axis, level="axis").sort_index() * scale
        for method in block.columns:
            ax.plot(block.index, block[method], marker="o", label=method)
        ax.axhline(0, color="0.4", lw=0.8, ls="--")
        ax.set_xticks(list(block.index))
        ax.set_xlabel(f"{axis} heterogeneity (0 = none, 1 = default sites)")
        ax.set_title(axis)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"gain over {baseline} ({unit}, site mean)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize="small", title="method")
    fig.suptitle(title)
    return fig
