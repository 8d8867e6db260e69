"""Plots of lesson 05 (deployment): the processes of a local Flower deployment, and what a round costs there.

Both take plain data (the rows of :meth:`fedlab.deploy.local.LocalDeployment.describe`, Histories), so they need
no Flower themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

from fedlab.federation.history import History

_COLORS = {"superlink": "#dff0df", "supernode": "#e8eef7", "executor": "#fde6cf", "flwr": "#eeeeee"}


def _box(ax: plt.Axes, x: float, y: float, w: float, h: float, text: str, color: str) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.01", facecolor=color,
                                edgecolor="#555555", linewidth=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float], label: str = "",
           color: str = "#333333", style: str = "-|>") -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": style, "color": color, "lw": 1.1})
    if label:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, label, fontsize=7, ha="center", va="center",
                color=color, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})


def plot_deployment(processes: Sequence[Mapping[str, object]], data: Mapping[str, str] | None = None,
                    title: str = "") -> plt.Figure:
    """Draw a local deployment from its process table: the SuperLink, one SuperNode per site, the executor.

    Args:
        processes: :meth:`~fedlab.deploy.local.LocalDeployment.describe` rows (``process``, ``pid``, ``port``).
        data: What each site's node holds, by site (e.g. its data folder); default "synthetic".
        title: Figure title.
    """
    rows = {str(r["process"]): r for r in processes}
    nodes = [name for name in rows if name.startswith("supernode-")]
    executors = [name for name in rows if name == "executor" or name.startswith("superexec")]
    fig, ax = plt.subplots(figsize=(max(7.0, 2.1 * len(nodes) + 2.5), 4.4))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    link = rows.get("superlink", {})
    _box(ax, 0.5, 0.86, 0.42, 0.13, f"SuperLink (server)\nruns the ServerApp: configure / aggregate\n"
         f"127.0.0.1:{link.get('port')}  pid {link.get('pid')}", _COLORS["superlink"])
    if "flwr run" in rows:
        _box(ax, 0.1, 0.86, 0.16, 0.1, "flwr run\n(submits a run)", _COLORS["flwr"])
        _arrow(ax, (0.18, 0.86), (0.29, 0.86), "Control API")
    width = 0.8 / max(len(nodes), 1)
    for i, name in enumerate(nodes):
        x = 0.1 + width * (i + 0.5)
        site = name.removeprefix("supernode-")
        held = (data or {}).get(site) or "synthetic data"
        _box(ax, x, 0.42, width * 0.9, 0.2, f"SuperNode {site}\nClientApp: client_update\nholds: {held}\n"
             f"127.0.0.1:{rows[name].get('port')}  pid {rows[name].get('pid')}", _COLORS["supernode"])
        _arrow(ax, (x, 0.53), (0.5 + (x - 0.5) * 0.3, 0.79), "", style="<|-|>")
    if nodes:
        ax.text(0.5, 0.66, "Fleet API (HTTP): messages down, replies up; nothing else leaves a node", ha="center",
                fontsize=7.5, style="italic", bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    if executors:
        labels = ", ".join(f"{e} (pid {rows[e].get('pid')})" for e in executors[:3])
        labels += f" and {len(executors) - 3} more" if len(executors) > 3 else ""
        _box(ax, 0.5, 0.1, 0.8, 0.1, f"executor: runs each ServerApp / ClientApp task in its own process\n{labels}",
             _COLORS["executor"])
        _arrow(ax, (0.5, 0.15), (0.5, 0.31), "Runtime API: tasks", style="<|-|>")
    ax.set_title(title or f"A local Flower deployment: {len(rows) - ('flwr run' in rows)} processes on 127.0.0.1",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_round_times(histories: Mapping[str, History], title: str = "") -> plt.Figure:
    """Seconds per round of several runs of the same method (e.g. simulation vs deployment), round by round.

    Args:
        histories: Label -> History (its ledger's ``seconds``).
        title: Figure title.
    """
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    labels = list(histories)
    rounds = sorted({row["round"] for h in histories.values() for row in h.ledger})
    width = 0.8 / max(len(labels), 1)
    for i, label in enumerate(labels):
        seconds = {row["round"]: row["seconds"] for row in histories[label].ledger}
        ax.bar([r + (i - (len(labels) - 1) / 2) * width for r in rounds], [seconds.get(r, 0.0) for r in rounds],
               width=width, label=label)
    ax.set_xticks(rounds)
    ax.set_xlabel("round")
    ax.set_ylabel("seconds")
    ax.legend(fontsize=8)
    ax.set_title(title or "Time per round", fontsize=10)
    fig.tight_layout()
    return fig
