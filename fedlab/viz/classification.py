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
    labels = {"FedAvg": ("weights\n(10 local it.)", "w_avg"), "FedSGD": ("gradient", "w (1 step)"),
              "FedProx": ("weights\n(+ mu/2||w-w_g||^2)", "w_avg")}
    for ax, name in zip(axes[3:], ("FedAvg", "FedSGD", "FedProx"), strict=True):
        _box(ax, 0.5, 0.82, "server", server_c)
        _box(ax, 0.2, 0.2, a, site_c)
        _box(ax, 0.8, 0.2, b, site_c)
        up, down = labels[name]
        for x, side in ((0.2, -1), (0.8, 1)):  # each client: its message up (black), the global model down (grey)
            _arrow(ax, (x - 0.04, 0.3), (0.5 + side * 0.05 - 0.03, 0.73), up if side < 0 else "")
            _arrow(ax, (0.5 + side * 0.05 + 0.03, 0.73), (x + 0.04, 0.3), down if side > 0 else "", color="#777777")
    fig.suptitle("The six settings of the comparison (no raw data leaves a site except in Mix)", fontsize=11)
    fig.tight_layout()
    return fig


def plot_metrics_by_setting(summary: pd.DataFrame, title: str = "") -> plt.Figure:
    """Bar chart of ACC, SEN, SPE, AUC per setting and client with ± std error bars.

    Args:
        summary: :func:`fedlab.experiments.adni.summary_table` output.
        title: Figure title (say "synthetic" when it is).
    """
    metrics = ("acc", "sen", "spe", "auc")
    clients = list(dict.fromkeys(summary.index.get_level_values(0)))
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6), sharey=True)
    alphas = [1.0 - 0.65 * ci / max(len(clients) - 1, 1) for ci in range(len(clients))]
    for ax, m in zip(axes, metrics, strict=True):
        for ci, client in enumerate(clients):
            sub = summary.loc[client]
            labels = [lab.split(" ")[0] for lab in sub.index]
            xs = np.arange(len(sub)) + (ci - (len(clients) - 1) / 2) * 0.8 / len(clients)
            ax.bar(xs, sub[m], width=0.8 / len(clients), yerr=sub[f"{m}_std"].fillna(0), capsize=2,
                   label=client, color=[SETTING_COLORS.get(lb, "#777777") for lb in labels],
                   alpha=alphas[ci], edgecolor="k", lw=0.5)
        ax.set_xticks(np.arange(len(labels)))
        ax.set_xticklabels(labels, rotation=45, ha="right")
        ax.set_title(m.upper())
        ax.set_ylim(0.4, 1.0)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("mean over splits (± std)")
    handles = [plt.Rectangle((0, 0), 1, 1, fc="#777777", alpha=a) for a in alphas]
    axes[-1].legend(handles, [f"tested on {c}" for c in clients], fontsize=8, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_communication(curves: pd.DataFrame, target: pd.DataFrame | None = None, title: str = "") -> plt.Figure:
    """Mean test AUC against communication rounds and against bytes, one line per method."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for method, c in curves.groupby("method", sort=False):
        color = SETTING_COLORS.get(method)
        axes[0].plot(c["round"], c["auc"], label=method, color=color)
        axes[1].plot(c["bytes"].clip(lower=1), c["auc"], label=method, color=color)
    if target is not None and len(target):
        t = float(target["target_auc"].iloc[0])
        for ax in axes:
            ax.axhline(t, ls="--", color="k", lw=0.8)
        for _, r in target.iterrows():
            if not pd.isna(r["rounds"]):
                axes[0].plot(r["rounds"], t, "o", color=SETTING_COLORS.get(r["method"]))
                axes[1].plot(r["bytes"], t, "o", color=SETTING_COLORS.get(r["method"]))
    axes[0].set_xscale("symlog")
    axes[0].set_xlabel("communication round")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("bytes sent (up + down, all clients)")
    for ax in axes:
        ax.set_ylabel("mean test AUC")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
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
