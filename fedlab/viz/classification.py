"""Plots of the tabular classification lesson (notebook 04): settings diagram, metrics, communication, cross-site.

Every function takes tidy DataFrames from :mod:`fedlab.experiments.adni` and returns the figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

SETTING_COLORS = {"Cross": "#9e9e9e", "Single": "#4c72b0", "Mix": "#dd8452", "FedAvg": "#55a868",
                  "FedSGD": "#c44e52", "FedProx": "#8172b3"}


def _box(ax, x, y, text, color, w=0.26, h=0.14):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02", fc=color, ec="k", lw=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=7.5)


def _arrow(ax, a, b, label="", color="k", style="-|>"):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle=style, mutation_scale=9, color=color, lw=1.0))
    if label:
        ax.text((a[0] + b[0]) / 2, (a[1] + b[1]) / 2, label, fontsize=6.5, ha="center", va="center",
                bbox={"fc": "white", "ec": "none", "pad": 0.5})


def plot_settings_diagram(sites: Sequence[str] = ("ADNI-1", "ADNI-2")) -> plt.Figure:
    """The six settings as small diagrams (after the survey's Fig. 6)."""
    a, b = sites[0], sites[1]
    fig, axes = plt.subplots(1, 6, figsize=(16, 3.0))
    site_c, model_c, server_c = "#e8eef7", "#fde6cf", "#dff0df"
    for ax, name in zip(axes, SETTING_COLORS, strict=True):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")
        ax.set_title(name, fontsize=11, color=SETTING_COLORS[name], fontweight="bold")
    ax = axes[0]  # Cross
    _box(ax, 0.2, 0.8, f"{a}\ntrain", site_c)
    _box(ax, 0.2, 0.2, f"{b}\ntest", site_c)
    _box(ax, 0.8, 0.5, "model", model_c)
    _arrow(ax, (0.33, 0.78), (0.67, 0.55), "fit")
    _arrow(ax, (0.67, 0.45), (0.33, 0.22), "test")
    ax = axes[1]  # Single
    for y, s in ((0.78, a), (0.22, b)):
        _box(ax, 0.2, y, f"{s}\n80% / 20%", site_c)
        _box(ax, 0.8, y, f"model {s[-1]}", model_c)
        _arrow(ax, (0.33, y), (0.67, y), "fit + test", style="<|-|>")
    ax = axes[2]  # Mix
    _box(ax, 0.2, 0.8, a, site_c)
    _box(ax, 0.2, 0.2, b, site_c)
    _box(ax, 0.8, 0.5, "pooled\nmodel", model_c)
    _arrow(ax, (0.33, 0.78), (0.67, 0.55), "raw data!", color="#c44e52")
    _arrow(ax, (0.33, 0.22), (0.67, 0.45), "raw data!", color="#c44e52")
    labels = {"FedAvg": ("weights", "w_avg"), "FedSGD": ("gradient", "w (1 step)"), "FedProx": ("weights", "w_avg")}
    local = {"FedAvg": "10 local SGD steps", "FedSGD": "1 full-batch gradient",
             "FedProx": "1 local pass on\nF_k(w) + mu/2 ||w - w_g||^2"}
    for ax, name in zip(axes[3:], ("FedAvg", "FedSGD", "FedProx"), strict=True):
        _box(ax, 0.5, 0.82, "server", server_c)
        _box(ax, 0.2, 0.2, a, site_c)
        _box(ax, 0.8, 0.2, b, site_c)
        up, down = labels[name]
        for x, side in ((0.2, -1), (0.8, 1)):  # each client: its message up (black), the global model down (grey)
            _arrow(ax, (x - 0.04, 0.3), (0.5 + side * 0.05 - 0.03, 0.73), up if side < 0 else "")
            _arrow(ax, (0.5 + side * 0.05 + 0.03, 0.73), (x + 0.04, 0.3), down if side > 0 else "", color="#777777")
        ax.text(0.5, 0.01, f"at each client: {local[name]}", ha="center", va="bottom", fontsize=6.5,
                style="italic")  # local computation, not a message
    fig.suptitle("The six settings of the comparison (no raw data leaves a site except in Mix; arrows are messages)",
                 fontsize=11)
    fig.tight_layout()
    return fig


def plot_metrics_by_setting(summary: pd.DataFrame, title: str = "") -> plt.Figure:
    """Bar chart of ACC, SEN, SPE, AUC per setting, one row of panels per client, with ± std error bars.

    Bars start at 0. Each client's Cross bars are labelled with the client they were trained on. A metric
    flagged unreliable (a test class with fewer than 5 cases, ``{metric}_unreliable``) is hatched and marked
    with a dagger; an undefined one is left out.

    Args:
        summary: :func:`fedlab.experiments.adni.summary_table` output.
        title: Figure title (say "synthetic" when it is).
    """
    metrics = ("acc", "sen", "spe", "auc")
    clients = list(dict.fromkeys(summary.index.get_level_values(0)))
    fig, axes = plt.subplots(len(clients), 4, figsize=(16, 2.9 * len(clients) + 0.6), sharey=True, squeeze=False)
    for row, client in zip(axes, clients, strict=True):
        sub = summary.loc[client]
        labels = list(sub.index)
        colors = [SETTING_COLORS.get(lab.split(" ")[0], "#777777") for lab in labels]
        xs = np.arange(len(sub))
        for ax, m in zip(row, metrics, strict=True):
            unreliable = sub.get(f"{m}_unreliable", pd.Series(False, index=sub.index)).fillna(False).to_numpy(bool)
            values = sub[m].to_numpy(dtype=float)
            bars = ax.bar(xs, np.nan_to_num(values), yerr=sub[f"{m}_std"].fillna(0).to_numpy(), capsize=2,
                          color=colors, edgecolor="k", lw=0.5)
            for bar, bad, v in zip(bars, unreliable, values, strict=True):
                if bad:
                    bar.set_hatch("///")
                    bar.set_alpha(0.5)
                    ax.text(bar.get_x() + bar.get_width() / 2, 0.03, "†", ha="center", fontsize=10)
                if np.isnan(v):
                    ax.text(bar.get_x() + bar.get_width() / 2, 0.03, "n/a", ha="center", fontsize=7, rotation=90)
            ax.set_xticks(xs)
            ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=8)
            ax.set_title(f"{m.upper()}, tested on {client}", fontsize=9)
            ax.set_ylim(0.0, 1.05)
            ax.grid(axis="y", alpha=0.3)
        row[0].set_ylabel("mean over splits (± std)")
    if any(summary.get(f"{m}_unreliable", pd.Series(False)).any() for m in metrics):
        fig.text(0.5, 0.005, "† hatched: a test class has fewer than 5 cases, the value is unreliable",
                 ha="center", va="bottom", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    return fig


def plot_communication(curves: pd.DataFrame, target: pd.DataFrame | None = None, title: str = "") -> plt.Figure:
    """Distance to the optimum against rounds and against bytes, and the test AUC against rounds.

    Args:
        curves: :func:`fedlab.experiments.adni.communication_curves` output.
        target: :func:`fedlab.experiments.adni.rounds_to_target` output (``metric="gap"``): a dashed line
            and a dot where each method reaches it.
        title: Figure title.
    """
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8), layout="constrained")
    for method, c in curves.groupby("method", sort=False):
        color = SETTING_COLORS.get(method)
        c = c[c["round"] > 0]
        axes[0].plot(c["round"], c["gap"], "o-", ms=3, label=method, color=color)
        axes[1].plot(c["bytes"], c["gap"], "o-", ms=3, label=method, color=color)
        axes[2].plot(c["round"], c["auc"], "o-", ms=3, label=method, color=color)
    if target is not None and len(target) and (target["metric"] == "gap").all():
        t = float(target["target"].iloc[0])
        for ax in axes[:2]:
            ax.axhline(t, ls="--", color="k", lw=0.8)
        for _, r in target.iterrows():
            if not pd.isna(r["rounds"]):
                axes[0].plot(r["rounds"], t, "s", ms=7, mfc="none", color=SETTING_COLORS.get(r["method"]))
                axes[1].plot(r["bytes"], t, "s", ms=7, mfc="none", color=SETTING_COLORS.get(r["method"]))
    for ax, xlabel in zip(axes, ("communication round", "bytes sent (up + down, all clients)",
                                 "communication round"), strict=True):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3, which="both")
    axes[0].set_yscale("log")
    axes[1].set_yscale("log")
    axes[0].set_ylabel("objective gap F(theta) - F(theta*)")
    axes[1].set_ylabel("objective gap F(theta) - F(theta*)")
    axes[2].set_ylabel("mean test AUC (illustration only)")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside right center")
    fig.suptitle(title)
    return fig


def cross_matrix(results: pd.DataFrame, metric: str = "acc") -> pd.DataFrame:
    """Site-by-site matrix: rows = trained on, columns = tested on; off-diagonal from Cross, diagonal = Single."""
    cross = results[(results.method == "Cross") & (results.metric == metric)]
    single = results[(results.method == "Single") & (results.metric == metric)]
    sites = list(dict.fromkeys(single["site"])) or list(dict.fromkeys(cross["site"]))
    mat = pd.DataFrame(np.nan, index=pd.Index(sites, name="trained on"), columns=pd.Index(sites, name="tested on"))
    for (tr, te), v in cross.groupby(["trained_on", "site"])["value"].mean().items():
        mat.loc[tr, te] = v
    for s, v in single.groupby("site")["value"].mean().items():
        mat.loc[s, s] = v
    return mat


def plot_cross_matrix(results: pd.DataFrame, metric: str = "acc", title: str = "") -> plt.Figure:
    """Heatmap of :func:`cross_matrix` (diagonal: Single, the site's own test split)."""
    mat = cross_matrix(results, metric)
    fig, ax = plt.subplots(figsize=(1.4 * len(mat) + 2, 1.2 * len(mat) + 1.2))
    im = ax.imshow(mat.to_numpy(dtype=float), cmap="viridis", vmin=np.nanmin(mat.to_numpy()), vmax=1.0)
    ax.set_xticks(range(len(mat)), mat.columns, rotation=30, ha="right")
    ax.set_yticks(range(len(mat)), mat.index)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    for i in range(len(mat)):
        for j in range(len(mat)):
            v = mat.iloc[i, j]
            if not pd.isna(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.8 else "k", fontsize=9)
    fig.colorbar(im, ax=ax, label=metric.upper())
    ax.set_title(title or f"Cross-site {metric.upper()} (diagonal: Single)")
    fig.tight_layout()
    return fig
