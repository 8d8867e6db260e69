"""Sentences of the personalisation lesson computed from its results, so its prose cannot contradict them.

Each function takes what the lesson computed (tables from :mod:`fedlab.experiments.lcfed`, the runs'
histories, the sites' styles) and returns Markdown; the lesson's fixed prose explains concepts only.

* :func:`describe_annotation_styles`: which sites draw looser / tighter masks, and by how many pixels;
* :func:`describe_site_gains`: where each personalised method beats FedAvg, and how that relates to
  the sites' annotation style;
* :func:`head_spread` / :func:`describe_heads`: whether the local heads of FedRep-style runs ended up
  different across sites;
* :func:`describe_selection_gap`: the measured inflation of "best round on the test set", per method;
* :func:`describe_outcome`: the lesson's "what we got and why": ranking, federation vs local training,
  personalisation vs FedAvg, and the paper's pattern beside ours.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from torch import nn

from fedlab.federation.history import History

#: Changes smaller than this (in IoU points, i.e. percent) are called "about the same" (single runs of one seed).
TOLERANCE = 1.0


def _sites(values: Mapping[str, float] | pd.Series, fmt: str = "{:+.1f}") -> str:
    items = list(values.items())
    return ", ".join(f"{site} ({fmt.format(v)})" for site, v in items) if items else "none"


def describe_annotation_styles(styles: pd.DataFrame, image_size: int, reference_size: int = 64) -> str:
    """Which sites draw looser or tighter masks than the true boundary, from their ``annotation_margin``.

    Args:
        styles: One row per site with an ``annotation_margin`` column (pixels at ``reference_size``), as the
            lesson builds it from ``site.metadata["style"]``; empty or without the column for real data.
        image_size: Side of the images actually trained on (margins scale with it).
        reference_size: Image side the margins are given at (the generator's 64 pixels).
    """
    if "annotation_margin" not in styles.columns or styles["annotation_margin"].isna().all():
        return "These sites carry no synthetic annotation style (real data): their annotators' habits are unknown."
    margin = styles["annotation_margin"].astype(float)
    looser, tighter = margin[margin > 0].sort_values(ascending=False), margin[margin < 0].sort_values()
    neutral = list(margin[margin == 0].index)
    largest = float(margin.abs().max()) * image_size / reference_size
    jitter = ""
    if "annotation_jitter" in styles.columns:
        rms = float(styles["annotation_jitter"].astype(float).mean()) * image_size / reference_size
        below = "every margin here is below one pixel" if largest < 1 else "here the largest margin exceeds a pixel"
        jitter = (f" For scale: each annotator's random boundary disagreement is {rms:.2f} px RMS at that size; "
                  f"{below}.")
    return (f"In this federation the sites that draw **looser** masks are {_sites(looser, '{:+.1f} px')}; "
            f"**tighter**: {_sites(tighter, '{:+.1f} px')}; on the true boundary: {', '.join(neutral) or 'none'} "
            f"(margins in pixels at {reference_size} px). At the {image_size}-pixel images trained here the "
            f"largest margin is {largest:.2f} px, the largest disagreement between two sites "
            f"{float(margin.max() - margin.min()) * image_size / reference_size:.2f} px." + jitter)


def describe_site_gains(gains: pd.DataFrame, styles: pd.DataFrame, methods: list[str] | None = None,
                        tolerance: float = TOLERANCE) -> str:
    """Where each method beats FedAvg, and whether its gain follows the size of the site's annotation margin.

    Args:
        gains: From :func:`fedlab.experiments.lcfed.gain_over`, in IoU points (rows = sites plus "avg").
        styles: Per-site styles (``annotation_margin`` used when present).
        methods: Columns to describe (default: all).
        tolerance: Gains within +-tolerance are "about the same as FedAvg".
    """
    per_site = gains.drop(index="avg", errors="ignore")
    margin = (styles["annotation_margin"].astype(float).abs().reindex(per_site.index)
              if "annotation_margin" in styles.columns else None)
    lines = []
    for method in methods or list(gains.columns):
        g = per_site[method].dropna()
        ahead, behind = g[g >= tolerance].sort_values(ascending=False), g[g <= -tolerance].sort_values()
        line = (f"* **{method}** vs FedAvg: {gains.loc['avg', method]:+.1f} on average; ahead by at least "
                f"{tolerance:g} at {_sites(ahead)}; behind at {_sites(behind)}")
        if margin is not None and margin.notna().all() and g.nunique() > 1 and margin.nunique() > 1:
            rho = float(spearmanr(margin.loc[g.index], g).statistic)
            line += (f"; rank correlation of its gain with the size of the site's annotation margin "
                     f"{rho:+.2f} over {len(g)} sites")
        lines.append(line + ".")
    return "\n".join(lines)


def head_spread(models: list[nn.Module], names: list[str], module: str = "head") -> pd.Series:
    """How far each site's ``module`` weights are from the sites' mean, relative to the mean's size.

    Args:
        models: One model per site (e.g. ``History.site_models``).
        names: Site names, same order.
        module: Attribute name of the sub-module compared (the U-Net's 1x1-convolution ``head``).

    Returns:
        Per site ``||w_k - mean_k w_k|| / ||mean_k w_k||`` over the module's parameters (0: every site has the
        same head).
    """
    flat = np.stack([np.concatenate([p.detach().cpu().double().numpy().ravel()
                                     for p in getattr(m, module).parameters()]) for m in models])  # (sites, P)
    mean = flat.mean(axis=0)
    scale = float(np.linalg.norm(mean)) or 1.0
    return pd.Series(np.linalg.norm(flat - mean, axis=1) / scale, index=names, name=f"{module} spread")


def describe_heads(histories: Mapping[str, History], methods: tuple[str, ...] = ("FedRep", "FedPer"),
                   reference: str = "Local") -> str:
    """Whether the local heads ended up different across sites, beside the heads of independent Local models."""
    spreads = {name: float(head_spread(histories[name].site_models, histories[name].sites).mean())
               for name in (*methods, reference) if name in histories and histories[name].site_models}
    if not spreads or reference not in spreads:
        return ""
    ref = spreads[reference]
    lines = []
    for name in methods:
        if name not in spreads:
            continue
        ratio = spreads[name] / ref if ref else float("nan")
        verdict = ("nearly identical across sites" if ratio < 0.1 else
                   "clearly different across sites" if ratio > 0.5 else "somewhat different across sites")
        lines.append(f"* **{name}**: each site's head is on average {100 * spreads[name]:.2f}% (of the mean head's "
                     f"size) away from the mean head, {ratio:.2f} times the spread of {reference}'s independently "
                     f"trained heads ({100 * ref:.2f}%): the heads are {verdict} (below 0.1 times Local's spread we "
                     "call them nearly identical, above 0.5 clearly different).")
    return "\n".join(lines)


def describe_selection_gap(gap: pd.DataFrame, histories: Mapping[str, History], tiny: float = 0.001) -> str:
    """The inflation of "best round on the test set" per method, in words, with why it is small when it is.

    Args:
        gap: From :func:`fedlab.experiments.lcfed.selection_gap` (Dice, rows (method, site)).
        histories: The runs (for the number of evaluated rounds and the methods that were skipped).
        tiny: Mean inflations below this (Dice) are called "about zero".
    """
    lines = []
    for name, h in histories.items():
        if name not in gap.index.get_level_values("method"):
            if "finetune" in h.info.get("finish", {}):
                lines.append(f"* **{name}**: not measured: its kept model is chosen among fine-tuning steps after "
                             "the last round (on validation), not among the rounds of the curve.")
            continue
        g = gap.loc[name]
        curve = h.to_dataframe("curve")
        evaluated = curve[curve["split"] == "test"]["round"].nunique()
        same = int((g["inflation"] <= 1e-12).sum())
        mean, worst = float(g["inflation"].mean()), float(g["inflation"].max())
        text = (f"* **{name}**: mean inflation {100 * mean:.2f} Dice points (largest {100 * worst:.2f} at site "
                f"{g['inflation'].idxmax()}); the validation-chosen round was also the best test round at {same} of "
                f"{len(g)} sites; {evaluated} evaluated rounds")
        if mean < tiny:
            why = ("only one or two evaluated rounds leave nothing to choose from" if evaluated <= 2 else
                   "validation and test agree on the best round, or the curves are flat near the end")
            text += f". About zero: {why}"
        lines.append(text + ".")
    return "\n".join(lines)


def _paper_avg(reference: pd.DataFrame | None, method: str) -> float | None:
    if reference is None or method not in reference.index or ("IoU (%)", "avg") not in reference.columns:
        return None
    value = reference.loc[method, ("IoU (%)", "avg")]
    return None if pd.isna(value) else float(value)


def _relation(difference: float, tolerance: float) -> str:
    return "ahead of" if difference >= tolerance else "behind" if difference <= -tolerance else "level with"


def describe_outcome(ours: pd.DataFrame, reference: pd.DataFrame | None, sizes: pd.Series, preset: str,
                     seed: int, tolerance: float = TOLERANCE) -> str:
    """The lesson's "what we got": ranking, FedAvg vs Local, each method vs FedAvg, and the paper's pattern.

    Args:
        ours: From :func:`fedlab.experiments.lcfed.paper_table` (IoU in percent; ``attrs["sites"]`` maps letters
            to site names).
        reference: The paper's table (:func:`fedlab.experiments.lcfed.reference_table`) or None.
        sizes: Training images per site name (the smallest site is named).
        preset: The preset run.
        seed: The seed run.
        tolerance: Differences within +-tolerance IoU points are "about the same".
    """
    iou = ours["IoU (%)"]
    avg = iou["avg"].sort_values(ascending=False)
    lines = [f"**One run, seed {seed}, preset `{preset}`** (average test IoU, %): "
             + ", ".join(f"{m} {v:.1f}" for m, v in avg.items()) + "."]
    letter = {name: col for col, name in ours.attrs.get("sites", {}).items()}
    fedavg = "FedAvg" if "FedAvg" in iou.index else None
    local = "Local Train" if "Local Train" in iou.index else None
    if fedavg and local:
        smallest = [site for site in sizes.index if sizes[site] == sizes.min()]
        at_small = ", ".join(f"{iou.loc[fedavg, letter.get(s, s)] - iou.loc[local, letter.get(s, s)]:+.1f} at "
                             f"{letter.get(s, s)}" for s in smallest)
        d_avg = iou.loc[fedavg, "avg"] - iou.loc[local, "avg"]
        lines.append(f"* **Federation vs training alone:** FedAvg minus Local is {d_avg:+.1f} IoU points on average; "
                     f"at the smallest site{'s' if len(smallest) > 1 else ''} ({int(sizes.min())} training images"
                     f"{' each' if len(smallest) > 1 else ''}): {at_small}.")
    if fedavg:
        for method in iou.index:
            if method in (fedavg, local):
                continue
            d = iou.loc[method, "avg"] - iou.loc[fedavg, "avg"]
            word = _relation(d, tolerance)
            text = f"* **{method}** is {word} FedAvg ({d:+.1f})"
            paper_m, paper_f = _paper_avg(reference, method), _paper_avg(reference, fedavg)
            if paper_m is not None and paper_f is not None:
                p = paper_m - paper_f
                same = _relation(p, tolerance) == word
                text += (f"; in the paper (real data) it is {_relation(p, tolerance)} FedAvg ({p:+.1f}): "
                         + ("the same pattern." if same else "**not the paper's pattern**."))
            else:
                text += "."
            lines.append(text)
    return "\n".join(lines)
