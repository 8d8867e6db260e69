"""Plots of the federation lessons (01-03): sites, curves, per-site bars, cross-site heatmaps, sharing strips."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from torch import nn

from fedlab.data.federation import Federation
from fedlab.federation.params import ParamSplit

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
                              ax: plt.Axes | None = None, log: bool = True) -> Figure:
    """Per-site histograms of image intensities (mean over channels), one line per site.

    Sites whose curves differ show the acquisition shift between them (cf. Fig. 3 of Guan and Liu's
    survey of FL for medical image analysis).

    Args:
        federation: A segmentation federation.
        split: "train", "val" or "test".
        bins: Histogram bins over [0, 1].
        ax: Axes to draw into (a new figure when None).
        log: Logarithmic density axis (shows the tails; dark background pixels dominate otherwise).

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
    if log:
        ax.set_yscale("log")
    ax.legend(title="site", fontsize=8)
    ax.set_title(f"{federation.title}: intensity distribution per site ({split})", fontsize=9)
    fig.tight_layout()
    return fig


# --- training ---
def plot_learning_curves(histories, metric: str = "dice", split: str = "test", title: str = "", ax=None):
    """Mean-over-sites curve of ``metric`` per round for each run (one line per method).

    Args:
        histories: Iterable of :class:`fedlab.federation.History`.
        metric: Curve metric recorded during training (Dice for segmentation).
        split: "val" or "test".
        title: Figure title; include the data's provenance, e.g. ``federation.title``.
        ax: Optional matplotlib Axes to draw on.

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    for h in histories:
        df = h.to_dataframe("curve")
        df = df[(df["metric"] == metric) & (df["split"] == split)]
        mean = df.groupby("round")["value"].mean()
        lo, hi = df.groupby("round")["value"].min(), df.groupby("round")["value"].max()
        line, = ax.plot(mean.index, mean.values, marker="o", ms=3, label=h.method)
        ax.fill_between(mean.index, lo.values, hi.values, color=line.get_color(), alpha=0.12)
    ax.set_xlabel("communication round")
    ax.set_ylabel(f"{split} {metric} (mean over sites; band = min..max)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_metric_vs_bytes(histories, metric: str = "dice", split: str = "test", title: str = "", ax=None,
                         direction: str = "both", log_x: bool = False):
    """Mean-over-sites curve ``metric`` against cumulative bytes communicated, one line per run.

    Args:
        histories: A list of Histories (labelled by ``info["label"]``, else the method) or ``{label: History}``.
        metric: A curve metric (Dice for segmentation).
        split: "val" or "test".
        title: Title.
        ax: Optional Axes.
        direction: "both" (uploads and downloads, in MiB) or "up" (uploads only, in MB, as lesson 09's
            compression table counts them).
        log_x: A symmetric-log x axis (for uploads that differ by orders of magnitude).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if direction not in ("both", "up"):
        raise ValueError(f"direction must be 'both' or 'up', got {direction!r}")
    runs = histories.items() if isinstance(histories, dict) else [(h.info.get("label", h.method), h) for h in histories]
    unit, size = ("MiB", 2**20) if direction == "both" else ("MB", 1e6)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6.4, 4))
    for label, h in runs:
        per_round = [row["bytes_up"] + (row["bytes_down"] if direction == "both" else 0) for row in h.ledger]
        cum = np.cumsum([0, *per_round]) / size  # cum[r] = bytes after round r (round 0 = before training)
        df = h.to_dataframe("curve")
        mean = df[(df["metric"] == metric) & (df["split"] == split)].groupby("round")["value"].mean()
        ax.plot(cum[mean.index.to_numpy()], mean.to_numpy(), marker="o", ms=3, label=label)
    if log_x:
        ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel(f"{unit} {'communicated (up + down' if direction == 'both' else 'uploaded (all sites'}, cumulative)")
    ax.set_ylabel(f"{split} {metric} (mean over sites)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def legend_outside(ax: plt.Axes, title: str | None = None, fontsize: int = 8) -> Figure:
    """Move ``ax``'s legend to the right of the axes, where it cannot cover data, and re-fit the figure.

    Args:
        ax: Axes with labelled artists (lines, bars).
        title: Legend title.
        fontsize: Legend font size.

    Returns:
        The axes' figure.
    """
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        raise ValueError("legend_outside: the axes have no labelled lines or bars to put in a legend")
    ax.legend(handles, labels, title=title, fontsize=fontsize, title_fontsize=fontsize, loc="upper left",
              bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, frameon=False)
    ax.figure.tight_layout()
    return ax.figure


# --- personalization ---

SHARED_COLOR, LOCAL_COLOR = "#3b75af", "#ef8636"
METRIC_LABELS = {"dice": "Dice", "iou": "IoU", "assd": "ASSD (px)", "hd95": "HD95 (px)"}


def plot_cross_site(matrices: Mapping[str, pd.DataFrame], metric: str = "dice", title: str = "",
                    vmin: float = 0.0, vmax: float = 1.0) -> Figure:
    """One heatmap per method: model of site i (rows) on the test data of site j (columns).

    Args:
        matrices: ``{method: cross_site_matrix(...)}``.
        metric: Name of the score in the cells (for the colour bar).
        title: Figure title.
        vmin, vmax: Colour range shared by all panels.

    Returns:
        The figure.
    """
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices), 3.4), squeeze=False,
                             layout="constrained")
    image = None
    for ax, (name, table) in zip(axes[0], matrices.items(), strict=True):
        values = table.to_numpy(dtype=float)
        image = ax.imshow(values, vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set_xticks(range(values.shape[1]), table.columns, rotation=45, ha="right", fontsize="small")
        ax.set_yticks(range(values.shape[0]), table.index, fontsize="small")
        ax.set_xlabel("test data of site")
        ax.set_title(name)
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if v < (vmin + vmax) / 2 else "black")
    axes[0][0].set_ylabel("model of site")
    fig.colorbar(image, ax=axes[0].tolist(), label=METRIC_LABELS.get(metric, metric), shrink=0.8)
    fig.suptitle(title)
    return fig


def _block(key: str) -> str:
    """Top-level block of a state_dict key: ``encoder.0``, ``decoder.1``, ``head``, ..."""
    parts = key.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]


def plot_layer_sharing(splits: Mapping[str, ParamSplit], model: nn.Module, notes: Mapping[str, str] | None = None,
                       title: str = "Which tensors leave the site") -> Figure:
    """One strip per method, one thin bar per ``state_dict`` tensor, coloured shared or local.

    Drawn from each method's :class:`ParamSplit` itself (``strategy.param_split(model)``), so the
    picture is exactly what the code sends. Tensors are grouped by block (encoder stages, decoder
    stages, head), in the model's order.

    Args:
        splits: ``{method: ParamSplit}`` for ``model``'s state_dict.
        model: The network the splits describe (its key order is used).
        notes: Optional one-line note per method, written at the right of its strip.
        title: Figure title.

    Returns:
        The figure.
    """
    keys = list(model.state_dict().keys())
    blocks = list(dict.fromkeys(_block(k) for k in keys))
    gap = 2
    xs, x = {}, 0
    for b in blocks:
        for k in (k for k in keys if _block(k) == b):
            xs[k] = x
            x += 1
        x += gap
    fig, ax = plt.subplots(figsize=(11, 0.6 * len(splits) + 1.4), layout="constrained")
    for row, (name, split) in enumerate(splits.items()):
        split.check_covers(keys)
        local = set(split.local)
        y = len(splits) - 1 - row
        for k in keys:
            ax.add_patch(Rectangle((xs[k], y + 0.1), 0.9, 0.8, color=LOCAL_COLOR if k in local else SHARED_COLOR))
        if notes and name in notes:
            ax.text(x + 1, y + 0.5, notes[name], va="center", fontsize="small")
    centres = [np.mean([xs[k] for k in keys if _block(k) == b]) for b in blocks]
    ax.set_xticks(centres, blocks, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(np.arange(len(splits)) + 0.5, list(reversed(list(splits))))
    ax.set_xlim(-1, x + (30 if notes else 1))
    ax.set_ylim(0, len(splits))
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.legend(handles=[Patch(color=SHARED_COLOR, label="shared (sent to the server)"),
                       Patch(color=LOCAL_COLOR, label="local (never leaves the site)")],
              loc="upper left", bbox_to_anchor=(0, -0.35 if len(splits) < 4 else -0.2), ncols=2, frameon=False)
    ax.set_title(title)
    return fig
