"""Lesson 01's experiment: the sites, Local vs FedAvg vs Mix, client optimiser state, rounds vs local steps.

* :func:`mechanism_table` lists, per synthetic site, what makes it differ (data scarcity, acquisition,
  annotation style) and the real site it imitates, read from the federation itself.
* :func:`equal_budget_schedules` gives distinct (rounds, local steps) schedules with the same total number
  of local steps per site.
* :func:`score_table` turns final History rows into a site x method table in the units of the LC-Fed paper
  (IoU and Dice in %, ASSD in pixels).
* ``describe_*`` build the lesson's sentences about outcomes from the numbers, so that no sentence can
  contradict the run it describes. They state facts; the lesson's fixed prose explains concepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from fedlab.data.federation import Federation
from fedlab.data.synthetic.styles import PIXEL_MM
from fedlab.federation.history import History

#: Metrics reported in percent (the LC-Fed paper's IoU convention); the others keep their unit.
PERCENT_METRICS = ("dice", "iou")
UNITS = {"dice": "Dice (%)", "iou": "IoU (%)", "assd": "ASSD (px)", "hd95": "HD95 (px)"}


def mechanism_table(federation: Federation) -> pd.DataFrame:
    """One row per synthetic site: its data volume, acquisition and annotation style, and its real counterpart.

    Lengths of the style (blur, margins) are in pixels of a 64-pixel image, as in
    :class:`fedlab.data.synthetic.styles.SiteStyle`; the margin is also given in millimetres where the task
    has a physical pixel size (:data:`fedlab.data.synthetic.styles.PIXEL_MM`).

    Args:
        federation: A synthetic segmentation federation (``fedlab.data.synthetic.make_federation``).

    Returns:
        DataFrame indexed by site with columns "modelled on", "cases", "train", "val", "test" (images),
        "gamma", "contrast", "noise", "blur (px@64)", "resolution loss", "endorectal coil",
        "annotation margin (px@64)", "annotation margin (mm)", "annotation jitter (px@64)".

    Raises:
        ValueError: if the federation is not synthetic (real sites carry no style).
    """
    if not federation.synthetic:
        raise ValueError(f"mechanism_table needs a synthetic federation; {federation.title!r} is real data, whose "
                         "sites have no generator style. Describe real sites from their manifest instead.")
    mm = PIXEL_MM.get(federation.name)
    rows = {}
    for site in federation:
        style = site.metadata.get("style") or {}
        margin = float(style.get("annotation_margin", 0.0))
        rows[site.name] = {
            "modelled on": site.metadata.get("modelled_on") or "",
            "cases": int(site.metadata.get("num_cases", 0)),
            "train": len(site.train),
            "val": len(site.val) if site.val is not None else 0,
            "test": len(site.test),
            "gamma": style.get("gamma"),
            "contrast": style.get("contrast"),
            "noise": style.get("noise"),
            "blur (px@64)": style.get("blur"),
            "resolution loss": style.get("resolution"),
            "endorectal coil": style.get("endorectal_coil"),
            "annotation margin (px@64)": margin,
            "annotation margin (mm)": margin * mm if mm is not None else np.nan,
            "annotation jitter (px@64)": style.get("annotation_jitter"),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "site"
    return table


def equal_budget_schedules(rounds: int, local_steps: int, factors: Sequence[int] = (1, 3, 6)) -> list[tuple[int, int]]:
    """Distinct (rounds, local steps) schedules with exactly ``rounds * local_steps`` local steps per site.

    Schedule ``f`` communicates ``f`` times less often and trains ``f`` times longer in between:
    ``(rounds / f, local_steps * f)``. Only factors that divide ``rounds`` are kept, so every schedule has
    the same budget, and duplicates are dropped (a short run may offer fewer schedules than factors).

    Args:
        rounds: Rounds of the reference schedule.
        local_steps: Local steps per round of the reference schedule.
        factors: Communication reductions to try (1 = the reference schedule).

    Returns:
        Schedules, most rounds first.

    Raises:
        ValueError: for non-positive rounds, steps or factors.
    """
    if rounds < 1 or local_steps < 1:
        raise ValueError(f"rounds and local_steps must be >= 1, got {rounds!r} and {local_steps!r}")
    if not factors or any(int(f) < 1 for f in factors):
        raise ValueError(f"factors must be positive integers, got {factors!r}")
    kept = {(rounds // int(f), local_steps * int(f)) for f in factors if rounds % int(f) == 0}
    return sorted(kept, reverse=True)


def score_table(final: pd.DataFrame, metrics: Sequence[str] = ("iou", "assd"),
                methods: Sequence[str] | None = None) -> pd.DataFrame:
    """Site x (metric, method) table of final test scores, plus an "avg" row; IoU and Dice in %.

    Args:
        final: Tidy final rows (``History.to_dataframe("final")`` of several runs): method, site, metric, value.
        metrics: Metrics to show, in order.
        methods: Methods to show, in order (default: in order of appearance).

    Returns:
        DataFrame with columns ``(unit label, method)``, e.g. ``("IoU (%)", "FedAvg")``.
    """
    missing = [m for m in metrics if m not in set(final["metric"])]
    if missing:
        raise ValueError(f"metrics {missing} are not in the results; available: {sorted(set(final['metric']))}")
    methods = list(methods) if methods is not None else list(dict.fromkeys(final["method"]))
    blocks = []
    for metric in metrics:
        wide = final[final["metric"] == metric].pivot_table(index="site", columns="method", values="value",
                                                            sort=False)[methods]
        if metric in PERCENT_METRICS:
            wide = wide * 100
        wide.loc["avg"] = wide.mean()
        wide.columns = pd.MultiIndex.from_product([[UNITS.get(metric, metric)], methods], names=["metric", "method"])
        blocks.append(wide)
    return pd.concat(blocks, axis=1)


def _signed(x: float, digits: int = 1) -> str:
    return f"{x:+.{digits}f}"


def _list(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def describe_comparison(iou: pd.DataFrame, train_sizes: Mapping[str, int], federation: Federation | None = None,
                        paper: pd.DataFrame | None = None, seeds: int = 1) -> list[str]:
    """Markdown bullets stating who wins, by how much and where, computed from a per-site IoU (%) table.

    Args:
        iou: Site x method test IoU in % (sites as rows, no "avg" row), with columns Local, FedAvg and Mix.
        train_sizes: Training images per site (the data-scarcity axis).
        federation: The federation (its synthetic styles name each site's annotation margin), or None.
        paper: The LC-Fed paper's table (:func:`fedlab.experiments.lcfed.reference_table`), or None.
        seeds: Number of seeds the numbers are averaged over (1: the sentence says it is one run).

    Returns:
        One Markdown line per finding.
    """
    for method in ("Local", "FedAvg", "Mix"):
        if method not in iou.columns:
            raise ValueError(f"describe_comparison needs a {method!r} column; got {list(iou.columns)}")
    iou = iou.drop(index="avg", errors="ignore")
    avg = iou.mean()
    local, fedavg, mix = avg["Local"], avg["FedAvg"], avg["Mix"]
    order = " > ".join(avg[["Local", "FedAvg", "Mix"]].sort_values(ascending=False).index)
    lines = [f"* Average test IoU over the {len(iou)} sites: Local {local:.1f} %, FedAvg {fedavg:.1f} %, "
             f"Mix {mix:.1f} % (order: {order}; {'one seed' if seeds == 1 else f'mean of {seeds} seeds'})."]
    if min(local, mix) < fedavg < max(local, mix):
        where = "between Local and Mix"
    elif fedavg >= max(local, mix):
        where = "above both Local and Mix"
    else:
        where = "below both Local and Mix"
    lines.append(f"* FedAvg is {where}: {_signed(fedavg - local)} points against Local, "
                 f"{_signed(fedavg - mix)} against Mix.")
    gain = (iou["FedAvg"] - iou["Local"]).sort_values(ascending=False)
    winners, losers = gain[gain > 0], gain[gain <= 0]
    site_list = ", ".join(f"{s} {_signed(g)}" for s, g in gain.items())
    lines.append(f"* FedAvg beats Local at {len(winners)} of {len(gain)} sites (FedAvg minus Local, IoU points: "
                 f"{site_list}).")
    sizes = pd.Series({s: int(train_sizes[s]) for s in iou.index})
    smallest = sizes[sizes == sizes.min()].index.tolist()
    rank = {s: int(gain.index.get_loc(s)) + 1 for s in smallest}
    small_text = _list([f"{s} ({sizes[s]} training images; gain {_signed(gain[s])}, rank {rank[s]} of {len(gain)})"
                        for s in smallest])
    lines.append(f"* The smallest site{'s' if len(smallest) > 1 else ''}: {small_text}.")
    median = sizes.median()
    small, large = gain[sizes[gain.index] < median], gain[sizes[gain.index] >= median]
    if len(small) and len(large):
        verdict = "more" if small.mean() > large.mean() else "less"
        lines.append(f"* Sites with fewer than {median:g} training images gained {small.mean():+.1f} points on "
                     f"average, the larger ones {large.mean():+.1f}: here the small sites gained {verdict} than the "
                     "large ones.")
    if len(losers) and federation is not None and federation.synthetic:
        margins = {s.name: float((s.metadata.get("style") or {}).get("annotation_margin", 0.0)) for s in federation}
        lines.append("* Sites where FedAvg did not beat Local, with their annotation margin (px at 64 px): "
                     + ", ".join(f"{s} ({margins.get(s, float('nan')):+.1f})" for s in losers.index) + ".")
    if paper is not None and {"Local Train", "FedAvg"} <= set(paper.index):
        p_gain = paper["IoU (%)"].loc["FedAvg"] - paper["IoU (%)"].loc["Local Train"]
        top = gain.index[0]  # the site that gained most in this run
        shared = [s for s in dict.fromkeys([*smallest, top]) if s in p_gain.index]
        at = "".join(f"; at site {s}: paper {_signed(p_gain[s])}, this run {_signed(gain[s])}" for s in shared)
        verdict = "smaller than" if gain.mean() < p_gain["avg"] else "at least"
        data = paper.attrs.get("dataset", "")
        lines.append(f"* The LC-Fed paper (real {data} data, 384 px, 300 rounds) reports FedAvg "
                     f"{_signed(p_gain['avg'])} IoU points above Local on average, this run {_signed(gain.mean())} "
                     f"({verdict} the paper's gain){at}.")
    return lines


def curve_means(history: History, metric: str = "dice", split: str = "test") -> pd.Series:
    """Site-mean curve score per evaluated round (index: round)."""
    df = history.to_dataframe("curve")
    df = df[(df["metric"] == metric) & (df["split"] == split)]
    if df.empty:
        raise ValueError(f"{history.method}'s history has no {split} {metric} curve")
    return df.groupby("round")["value"].mean()


def describe_optimizer_state(fresh: History, persistent: History, metric: str = "dice") -> list[str]:
    """Markdown bullets comparing FedAvg with a fresh and with a persistent client optimiser.

    Args:
        fresh: FedAvg with ``optimizer_state="fresh"`` (each round starts with a new optimiser).
        persistent: The same run with ``optimizer_state="persistent"``.
        metric: Curve metric (site-mean test score per evaluated round).

    Returns:
        One line per comparison: the first evaluated round, the middle one, and the final (selected) models.
    """
    a, b = curve_means(fresh, metric), curve_means(persistent, metric)
    rounds = [r for r in a.index if r > 0 and r in b.index]
    if not rounds:
        raise ValueError("the two runs share no evaluated round after round 0")
    picks = list(dict.fromkeys([rounds[0], rounds[len(rounds) // 2], rounds[-1]]))
    lines = [f"* Round {r}: site-mean test {metric} {a[r]:.3f} with a fresh optimiser, {b[r]:.3f} with a persistent "
             f"one ({_signed(a[r] - b[r], 3)})." for r in picks]
    fa = fresh.to_dataframe("final")
    fb = persistent.to_dataframe("final")
    ia = fa[fa["metric"] == "iou"]["value"].mean() * 100
    ib = fb[fb["metric"] == "iou"]["value"].mean() * 100
    lines.append(f"* Kept models (best validation round per site): test IoU {ia:.1f} % fresh, {ib:.1f} % persistent "
                 f"({_signed(ia - ib)} points).")
    return lines


def describe_schedules(table: pd.DataFrame, preset: str, requested: int = 3) -> list[str]:
    """Markdown bullets on the rounds-vs-local-steps table.

    Args:
        table: One row per schedule with columns rounds, local_steps, MiB and test_iou (%).
        preset: The preset's name (a short preset is said to offer few schedules).
        requested: How many schedules were asked for.

    Returns:
        Lines naming each schedule's bytes and score, and which schedule scored best.
    """
    lines = []
    if len(table) < requested:
        lines.append(f"* The {preset} preset's {int(table['rounds'].max())} rounds allow only {len(table)} distinct "
                     f"schedule{'s' if len(table) != 1 else ''} with the same budget (of {requested} asked for).")
    if len(table) < 2:
        lines.append("* With one schedule there is nothing to compare: use a longer preset.")
        return lines
    for _, row in table.iterrows():
        lines.append(f"* {int(row['rounds'])} rounds x {int(row['local_steps'])} steps: {row['MiB']:.1f} MiB "
                     f"communicated, test IoU {row['test_iou']:.1f} %.")
    best = table.loc[table["test_iou"].idxmax()]
    most = table.loc[table["rounds"].idxmax()]
    fewest = table.loc[table["rounds"].idxmin()]
    lines.append(f"* Best: {int(best['rounds'])} rounds. The most frequent communication cost "
                 f"{most['MiB'] / fewest['MiB']:.0f}x the bytes of the least frequent and scored "
                 f"{_signed(most['test_iou'] - fewest['test_iou'])} IoU points against it.")
    return lines
