"""What notebook 03's LC-Fed runs found, as numbers and as sentences built from those numbers.

Every sentence a lesson prints about an outcome (which method ranks where, what a module changed, at which
sites) comes from one of these functions, so the prose cannot contradict the tables beside it:

* :func:`gate_structure` / :func:`describe_gates`: how the PCS gates of the site codes differ (their
  correlation matrix and how many directions their differences span), and :func:`pcs_hidden_units`,
  through how many hidden units of PCS's scoring MLP the site code acts at all;
* :func:`calibration_change` / :func:`describe_calibration`: per site, a score with and without head
  calibration, and :func:`describe_selected_rounds`, which sites' validation selection kept a calibrated round;
* :func:`calibration_transient` / :func:`describe_calibration_transient`: the site-averaged validation and test
  scores from the last evaluation before the calibration stage on, and which sites kept its first round;
* :func:`describe_ablation` and :func:`describe_ranking`: the ablation rows' effects and a method's rank in
  our table and in the paper's;
* :func:`describe_protocols` and :func:`volume_table`: which metric protocol produced our numbers and which
  the paper's, and our numbers under the paper's per-volume protocol when the test splits carry case ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from monai.networks.utils import eval_mode
from scipy import ndimage

from fedlab.data.federation import Federation
from fedlab.federation.evaluation import evaluate
from fedlab.federation.history import History
from fedlab.metrics.protocol import LCFED_PROTOCOL, describe
from fedlab.models.pcs import PersonalizedChannelSelection, gate_spread, site_code

#: Differences smaller than this (in the score's own units, e.g. Dice 0..1) count as "unchanged".
UNCHANGED = 5e-4
#: Gate deviations (gates lie in 0..1) below this change no channel weight by as much as 0.1%: negligible.
NEGLIGIBLE_GATE = 1e-3


def _names(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def gate_structure(gates: torch.Tensor | np.ndarray, site_names: Sequence[str]) -> dict:
    """How the sites' gates differ: their deviations from the mean gate, correlated and decomposed.

    Args:
        gates: (K, C) one (mean) gate per site code, e.g. from :meth:`fedlab.models.LCFedNet.mean_site_gates`.
        site_names: The K site names.

    Returns:
        ``{"spread"}``: mean pairwise MSE between the gates (:func:`fedlab.models.pcs.gate_spread`);
        ``"correlation"``: (K, K) DataFrame, Pearson correlation of the sites' deviations
        ``M_k - mean_j M_j`` over the C channels (NaN for a site whose deviation is constant);
        ``"max_deviation"``: the largest ``|M_k - mean_j M_j|`` over sites and channels; ``"level"``: the mean
        gate value; ``"shares"``: share of the deviations' total variance along each principal direction (singular
        values squared, normalised; sums to 1); ``"scores"``: Series, each site's coordinate along the first
        direction (sign chosen so that the largest one is positive); ``"most_similar"`` / ``"most_opposed"``:
        ``(site, site, correlation)`` of the largest and smallest off-diagonal correlation.

    Raises:
        ValueError: If ``gates`` is not (K, C) with K >= 2 matching ``site_names``.
    """
    g = torch.as_tensor(gates).detach().double().cpu()
    if g.ndim != 2 or g.shape[0] < 2 or g.shape[0] != len(site_names):
        raise ValueError(f"gates must be (K, C) with K = len(site_names) = {len(site_names)} >= 2 sites, "
                         f"got shape {tuple(g.shape)}")
    centred = (g - g.mean(dim=0, keepdim=True)).numpy()  # (K, C)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(centred)
    correlation = pd.DataFrame(corr, index=list(site_names), columns=list(site_names))
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    total = float((s ** 2).sum())
    shares = s ** 2 / total if total > 0 else np.zeros_like(s)
    scores = u[:, 0] * s[0]
    if scores[np.argmax(np.abs(scores))] < 0:
        scores = -scores
    pairs = [(site_names[i], site_names[j], float(corr[i, j]))
             for i in range(len(site_names)) for j in range(i + 1, len(site_names)) if np.isfinite(corr[i, j])]
    most_similar = max(pairs, key=lambda p: p[2]) if pairs else None
    most_opposed = min(pairs, key=lambda p: p[2]) if pairs else None
    return {"spread": float(gate_spread(g)), "max_deviation": float(np.abs(centred).max()),
            "level": float(g.mean()), "correlation": correlation, "shares": shares,
            "scores": pd.Series(scores, index=list(site_names), name="first direction"),
            "most_similar": most_similar, "most_opposed": most_opposed}


@torch.no_grad()
def pcs_hidden_units(pcs: PersonalizedChannelSelection, bottleneck: torch.Tensor, tol: float = 1e-6) -> pd.DataFrame:
    """Which hidden units of PCS's scoring MLP carry the site code into the gate.

    The site code reaches the gate only through the scoring MLP's hidden ReLU units
    (``2C -> hidden -> C``): a unit that never fires, or fires the same way under every code, passes no
    site-specific signal, so the sites' gates can differ in at most as many directions (before the
    sigmoid) as there are units that respond to the code.

    Args:
        pcs: The trained PCS module.
        bottleneck: (N, C, h, w) bottleneck features (the U-Net encoder's last output) of some images.
        tol: Spreads below this count as "no response".

    Returns:
        One row per hidden unit: ``active`` (share of image x code x pooling branch where it fires),
        ``code_spread`` (mean over images and both branches of the standard deviation of its activation
        across the K site codes) and ``responds`` (``code_spread > tol``).
    """
    with eval_mode(pcs):
        n, k = bottleneck.shape[0], pcs.num_sites
        first, relu = pcs.score[0], pcs.score[1]
        acts = []
        for pooled in (bottleneck.mean(dim=(2, 3)), bottleneck.amax(dim=(2, 3))):  # (N, C) each
            per_code = [relu(first(torch.cat([pooled, pcs.embed(site_code(j, k, n, bottleneck.device))], dim=1)))
                        for j in range(k)]
            acts.append(torch.stack(per_code))  # (K, N, hidden)
        a = torch.stack(acts).double().cpu()  # (2, K, N, hidden)
    spread = a.std(dim=1, unbiased=False).mean(dim=(0, 1))
    frame = pd.DataFrame({"active": (a > 0).double().mean(dim=(0, 1, 2)).numpy(), "code_spread": spread.numpy()})
    frame["responds"] = frame["code_spread"] > tol
    frame.index.name = "hidden unit"
    return frame


def describe_gates(structures: Mapping[str, dict], with_loss: str, without_loss: str,
                   hidden: pd.DataFrame | None = None, channels: int | None = None) -> str:
    """Markdown: how far apart the sites' gates are, whether they form groups, and why.

    Args:
        structures: ``{variant: gate_structure(...)}`` for (at least) the two variants named next.
        with_loss: The variant trained with the contrastive loss (its structure is described).
        without_loss: The variant trained without it (only its spread is used).
        hidden: :func:`pcs_hidden_units` of the ``with_loss`` model, to say through how many units the
            site code acts.
        channels: C, the bottleneck channels (said beside the hidden width).
    """
    s_with, s_without = structures[with_loss], structures[without_loss]
    a, b = s_with["spread"], s_without["spread"]
    text = (f"The mean pairwise MSE between the sites' gates is {a:.2e} with the contrastive loss and {b:.2e} "
            "without it" + (f" ({a / b:.3g} times as large)" if b > 0 else ""))
    if s_with["max_deviation"] < NEGLIGIBLE_GATE:
        text += (". With the loss, no site's gate differs from the mean gate by more than "
                 f"{s_with['max_deviation']:.1e} "
                 f"in any channel (gates lie between 0 and 1; their mean is {s_with['level']:.3f}): in this run the "
                 "site code has practically **no effect** on the channel selection, and whatever pattern the tiny "
                 "differences form below carries no weight")
    first = float(s_with["shares"][0])
    text += (f". {first:.0%} of the variance of the sites' deviations from the mean gate lies along "
             "one direction in channel space")
    scores = s_with["scores"]
    if first >= 0.9:
        plus = [s for s, v in scores.items() if v > 0]
        minus = [s for s, v in scores.items() if v <= 0]
        biggest = scores.abs().idxmax()
        text += (": the site codes do **not** give each site its own channel selection. They move one shared "
                 f"pattern of channels up or down, by different amounts (most at site {biggest}), so the sites fall "
                 f"into two groups, {{{_names(plus)}}} and {{{_names(minus)}}}")
    elif first >= 0.6:
        text += ", so one shared pattern dominates the sites' differences, with smaller site-specific parts"
    else:
        text += ", so the sites' deviations point in several directions: each site code selects channels of its own"
    if s_with["most_similar"] and s_with["most_opposed"]:
        (p, q, hi), (r, t, lo) = s_with["most_similar"], s_with["most_opposed"]
        text += (f". Correlations between the sites' deviations range from {lo:+.2f} ({r} vs {t}) to {hi:+.2f} "
                 f"({p} vs {q}); deviations from a mean over sites sum to zero, so some negative correlation is "
                 "built in.")
    else:
        text += "."
    if hidden is not None:
        units, responding = len(hidden), int(hidden["responds"].sum())
        width = (f" (max(16, C/16) units with C = {channels} bottleneck channels here; the paper's 256 channels "
                 "give 16)") if channels else ""
        text += (f" Why: the site code reaches the gate only through the scoring MLP's "
                 f"{units} hidden ReLU units{width}, and {responding} of them "
                 f"{'responds' if responding == 1 else 'respond'} to the code at all "
                 "(the others never fire or fire the same way for every site).")
    return text


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of a 2-D mask with a 4-neighbour outside it (the image border counts as outside)."""
    padded = np.pad(mask, 1, constant_values=False)
    return mask & ~ndimage.binary_erosion(padded)[1:-1, 1:-1]


@torch.no_grad()
def peak_positions(models: Sequence[torch.nn.Module], federation: Federation, distance: float = 2.0,
                   device: str | torch.device = "cpu") -> pd.DataFrame:
    """Where HC's disagreement peaks fall on each site's test images: near a boundary, or elsewhere.

    Args:
        models: One :class:`fedlab.models.LCFedSiteModel` per site, with head calibration.
        federation: The sites.
        distance: A peak within this many pixels of the boundary of the ground truth or of the site's own
            (uncalibrated) prediction counts as "near a boundary".
        device: Where to run the models.

    Returns:
        Rows = sites, columns ``images``, ``peaks``, ``near_boundary`` and ``share`` (near / peaks; NaN
        without peaks).
    """
    rows = {}
    for model, site in zip(models, federation, strict=True):
        test = site.test.to(device)
        _, maps = model.calibrate(test.x, return_maps=True)
        peaks = maps["peaks"].cpu().numpy() > 0  # (N, L, H, W)
        own = maps["before"].cpu().numpy() > 0  # logits > 0 <=> probability > 0.5
        truth = test.y.cpu().numpy() > 0.5
        total = near = 0
        for n in range(peaks.shape[0]):
            for lab in range(peaks.shape[1]):
                p = peaks[n, lab]
                if not p.any():
                    continue
                edges = _boundary(truth[n, lab]) | _boundary(own[n, lab])
                total += int(p.sum())
                if edges.any():
                    near += int((ndimage.distance_transform_edt(~edges)[p] <= distance).sum())
        rows[site.name] = {"images": len(test), "peaks": total, "near_boundary": near,
                           "share": near / total if total else float("nan")}
    frame = pd.DataFrame(rows).T
    frame.index.name = "site"
    return frame


def describe_peaks(positions: pd.DataFrame, distance: float = 2.0, window: int | None = None) -> str:
    """Markdown: how many of the disagreement peaks sit on boundaries (from :func:`peak_positions`)."""
    total, near = int(positions["peaks"].sum()), int(positions["near_boundary"].sum())
    if total == 0:
        return "No pixel passed the peak test on any test image: the heads agree everywhere."
    share = near / total
    text = (f"Over all {int(positions['images'].sum())} test images, {near} of the {total} disagreement peaks "
            f"({share:.0%}) lie within {distance:g} px of the boundary of the ground truth or of the site's own "
            "prediction")
    if share >= 0.8:
        text += ": the heads disagree where the boundary is, as HC assumes."
    elif share >= 0.5:
        text += "; the rest sit elsewhere, where HC's attention adds nothing about boundaries."
    else:
        text += (": most peaks sit away from any boundary, so HC's first attention map marks noise rather than "
                 "ambiguous boundaries (heads that have not yet learned the object disagree faintly everywhere, and "
                 "every local maximum above the threshold counts)")
        text += "." if window is None else f", with a peak window of only {window} px at this image size."
    return text


def calibration_change(models: Sequence[torch.nn.Module], federation: Federation, metric: str = "dice",
                       device: str | torch.device = "cpu") -> pd.DataFrame:
    """Each site's test score with its calibration switched off and on (same backbone, head and HC module).

    Args:
        models: One :class:`fedlab.models.LCFedSiteModel` per site, with a trained calibration.
        federation: The sites.
        metric: A segmentation metric of :func:`fedlab.federation.evaluation.evaluate`.
        device: Where to evaluate.

    Returns:
        Rows = sites, columns ``before`` (no calibration), ``after`` (calibrated), ``change`` (after - before).
    """
    rows = {}
    for model, site in zip(models, federation, strict=True):
        test = site.test.to(device)
        was = bool(model.calibrated)
        try:
            model.calibrated.fill_(False)
            before = evaluate(model, test, "segmentation", (metric,))[metric]
            model.calibrated.fill_(True)
            after = evaluate(model, test, "segmentation", (metric,))[metric]
        finally:
            model.calibrated.fill_(was)
        rows[site.name] = {"before": before, "after": after}
    frame = pd.DataFrame(rows).T
    frame["change"] = frame["after"] - frame["before"]
    frame.index.name = "site"
    return frame


def describe_calibration(change: pd.DataFrame, metric: str = "Dice", tolerance: float = UNCHANGED,
                         trained_through: bool = False) -> str:
    """Markdown: at how many sites calibration raised / lowered the score, by how much, and the average.

    Args:
        change: From :func:`calibration_change`.
        metric: The score's name in the sentence.
        tolerance: Changes smaller than this count as unchanged.
        trained_through: The U-Net and head were trained through the calibration module (``LCFed``'s default
            ``hc_stage="joint"``): switching the module off then measures how much the final prediction relies
            on it, not what calibration added to a fixed model, and the sentence says so.
    """
    up = change[change["change"] >= tolerance]["change"]
    down = change[change["change"] <= -tolerance]["change"]
    same = len(change) - len(up) - len(down)
    parts = []
    if len(up):
        parts.append(f"raised test {metric} at {len(up)} of {len(change)} sites ({_names(list(up.index))}; "
                     f"by {up.min():.3f} to {up.max():.3f})" if len(up) > 1 else
                     f"raised test {metric} at 1 of {len(change)} sites ({up.index[0]}, by {up.iloc[0]:.3f})")
    if len(down):
        what = f"test {metric}" if not parts else "it"
        parts.append(f"lowered {what} at {len(down)} of {len(change)} sites ({_names(list(down.index))}; by "
                     f"{-down.max():.3f} to {-down.min():.3f})" if len(down) > 1 else
                     f"lowered {what} at 1 of {len(change)} sites ({down.index[0]}, by {-down.iloc[0]:.3f})")
    if same:
        what = "it" if parts else f"test {metric}"
        parts.append(f"left {what} within {tolerance:g} at {same} of {len(change)} sites")
    if not parts:
        return "No site to describe."
    before, after = change["before"].mean(), change["after"].mean()
    if trained_through:
        reliance = ("the final models rely on their calibration module" if after - before >= tolerance else
                    "the final models score better with their calibration module switched off"
                    if after - before <= -tolerance else "the final predictions barely depend on the module")
        return (f"Switched on in the final models (against off, same U-Net and head), the calibration module "
                f"{'; '.join(parts)}. The site average is {before:.4f} without it and {after:.4f} with it "
                f"({after - before:+.4f}): {reliance}. The U-Net and head were trained through the module, so "
                "this is not what calibration added; the ablation's \"+ contrast\" row is LC-Fed without it.")
    verdict = ("helped on average" if after - before >= tolerance else
               "hurt on average" if after - before <= -tolerance else "made no difference on average")
    return (f"Head calibration {'; '.join(parts)}. The site average moved from {before:.4f} to {after:.4f} "
            f"({after - before:+.4f}): on these data, at this preset, calibration {verdict}.")


def describe_selected_rounds(selected: Mapping[str, int], backbone_rounds: int) -> str:
    """Markdown: which sites kept a calibrated round (after ``backbone_rounds``) by validation Dice."""
    calibrated = [s for s, r in selected.items() if r > backbone_rounds]
    if not calibrated:
        return (f"Validation selection kept a backbone round (at most {backbone_rounds}) at every site, so the "
                "LC-Fed rows of the ablation and comparison tables are uncalibrated everywhere.")
    if len(calibrated) == len(selected):
        return (f"Validation selection kept a calibrated round (after round {backbone_rounds}) at every site.")
    others = [s for s in selected if s not in calibrated]
    return (f"Validation selection kept a calibrated round (after round {backbone_rounds}) at "
            f"{len(calibrated)} of {len(selected)} sites ({_names(calibrated)}); {_names(others)} kept an "
            "uncalibrated backbone round, so there LC-Fed's rows in the ablation and comparison tables are "
            "uncalibrated.")


def calibration_transient(history: History, backbone_rounds: int, metric: str = "dice") -> pd.DataFrame:
    """Site-averaged validation and test score at every evaluation from the last one before calibration on.

    Args:
        history: An LC-Fed run with head calibration.
        backbone_rounds: The rounds before the calibration stage (``rounds - hc_rounds``).
        metric: A curve metric (Dice for segmentation).

    Returns:
        Index = round (the last evaluated round <= ``backbone_rounds``, then every later evaluation), columns
        ``val`` and ``test`` (means over the sites).
    """
    curve = history.to_dataframe("curve")
    curve = curve[curve["metric"] == metric]
    table = curve.pivot_table(index="round", columns="split", values="value", aggfunc="mean")[["val", "test"]]
    before = table.index[table.index <= backbone_rounds]
    if not len(before):
        raise ValueError(f"no evaluation at or before round {backbone_rounds} in this run")
    return table.loc[before.max():]


def describe_calibration_transient(history: History, backbone_rounds: int, trained_through: bool = False,
                                   metric: str = "dice", name: str = "Dice", tolerance: float = 0.02) -> str:
    """Markdown: did the first calibration round disturb the model, and which sites kept that round?

    Args:
        history: An LC-Fed run with head calibration (its curves and selected rounds).
        backbone_rounds: The rounds before the calibration stage.
        trained_through: The U-Net trains through the calibration module (``hc_stage="joint"``).
        metric: Curve metric; ``name`` is its name in the sentence.
        name: The metric's name in the sentence.
        tolerance: A drop of the site-averaged test score smaller than this counts as no disturbance.
    """
    table = calibration_transient(history, backbone_rounds, metric)
    if len(table) < 2:
        return "No evaluation after the calibration stage began, so its course cannot be described."
    r0, r1, rn = (int(r) for r in (table.index[0], table.index[1], table.index[-1]))
    before, first, last = table.loc[r0], table.loc[r1], table.loc[rn]
    shown = [r0, r1] + ([rn] if rn != r1 else [])
    course = (f"site-averaged test {name} " + ", ".join(f"{table.loc[r, 'test']:.3f} at round {r}" for r in shown)
              + f" (round {r0} is the last evaluation before calibration; validation: "
              + ", ".join(f"{table.loc[r, 'val']:.3f}" for r in shown) + ")")
    if before["test"] - first["test"] < tolerance:
        return f"The calibration stage began without disturbing the model: {course}."
    why = ("the calibration module starts untrained, and the U-Net and head train through it from its first step"
           if trained_through else "the calibration module starts untrained")
    outcome = ("" if rn == r1 else " before it recovered" if last["test"] >= before["test"] - tolerance
               else f", which had not recovered by round {rn}")
    text = (f"The first calibration round{'s' if r1 - backbone_rounds > 1 else ''} disturbed the model{outcome}: "
            f"{course}; {why}.")
    kept = [s for s, r in history.selected_round.items() if r == r1]
    if kept:
        curve = history.to_dataframe("curve")
        at = curve[(curve["metric"] == metric) & (curve["round"] == r1)].pivot_table(
            index="site", columns="split", values="value")
        detail = "; ".join(f"{s}: validation {at.loc[s, 'val']:.3f}, test {at.loc[s, 'test']:.3f}" for s in kept)
        text += (f" Validation selection kept round {r1} at {_names(kept)} ({detail}), so there LC-Fed's rows hold "
                 "that disturbed model: a small validation split can rank a transient round first.")
    return text


def describe_ablation(table: pd.DataFrame, column: tuple[str, str] = ("IoU (%)", "avg"), unit: str = "points") -> str:
    """Markdown: what each ablation row added over the row above it (average and per site).

    Args:
        table: From :func:`fedlab.experiments.lcfed.paper_table`, rows in ablation order.
        column: The average column; the per-site columns are the other columns of the same metric.
        unit: Unit of the differences in the sentence.
    """
    metric, avg = column
    sites = [c for c in table[metric].columns if c != avg]
    rows = list(table.index)
    parts = []
    for prev, row in zip(rows, rows[1:], strict=False):
        d = table.loc[row, column] - table.loc[prev, column]
        per_site = table.loc[row, metric][sites] - table.loc[prev, metric][sites]
        better = int((per_site > 0).sum())
        parts.append(f"**{row}** {d:+.2f} {unit} over *{prev}* (better at {better} of {len(sites)} sites)")
    total = table.loc[rows[-1], column] - table.loc[rows[0], column]
    return (f"Average test {metric}: " + "; ".join(parts) + f". In total the full model is {total:+.2f} {unit} "
            f"against the {rows[0]}.")


def rank_of(table: pd.DataFrame, method: str, column: tuple[str, str], higher_is_better: bool = True) -> int:
    """1-based rank of ``method`` in ``table[column]`` (ties share the better rank)."""
    values = table[column].dropna()
    if method not in values.index:
        raise ValueError(f"{method!r} is not a row of the table; rows: {list(values.index)}")
    v = values[method]
    return int((values > v).sum() + 1) if higher_is_better else int((values < v).sum() + 1)


def describe_ranking(ours: pd.DataFrame, reference: pd.DataFrame | None, method: str = "LC-Fed",
                     baseline: str = "FedRep") -> str:
    """Markdown: ``method``'s rank by average IoU and ASSD in our table and in the paper's, and its gap to ``baseline``.

    Args:
        ours: From :func:`fedlab.experiments.lcfed.paper_table` (columns ("IoU (%)", "avg"), ("ASSD (px)", "avg")).
        reference: From :func:`fedlab.experiments.lcfed.reference_table`, or None.
        method: The method to place.
        baseline: The method it builds on.
    """
    iou, assd = ("IoU (%)", "avg"), ("ASSD (px)", "avg")
    n = len(ours)
    best = ours[iou].idxmax()
    text = (f"**{method}** ranks **{rank_of(ours, method, iou)} of {n}** by average test IoU in our run "
            f"({ours.loc[method, iou]:.1f}%; best {best}, {ours.loc[best, iou]:.1f}%) and "
            f"{rank_of(ours, method, assd, higher_is_better=False)} of {n} by average ASSD "
            f"({ours.loc[method, assd]:.2f} px). Against {baseline}, the backbone it builds on: "
            f"{ours.loc[method, iou] - ours.loc[baseline, iou]:+.1f} IoU points.")
    if reference is not None and method in reference.index:
        ref = reference.loc[[m for m in ours.index if m in reference.index]]
        text += (f" In the paper (real data, the same methods) it ranks {rank_of(ref, method, iou)} of {len(ref)} "
                 f"by IoU ({ref.loc[method, iou]:.1f}%)")
        if baseline in ref.index:
            text += f", {ref.loc[method, iou] - ref.loc[baseline, iou]:+.1f} points against {baseline}"
        text += "."
    return text


def describe_protocols(paper_dataset: str | None, has_volumes: bool, metrics: Sequence[str] = ("iou", "assd"),
                       ours: Mapping[str, object] | None = None) -> str:
    """Markdown: the protocol of our scores, the paper's for this dataset, and whether ours can be re-scored per volume.

    Args:
        paper_dataset: The paper's dataset these data are compared with ("prostate", "polyp", "fundus"), or None.
        has_volumes: Whether every test split carries case ids (``Split.groups``).
        metrics: The metrics the tables show.
        ours: Our options for :func:`fedlab.metrics.describe` (default: per slice, directed HD95, no post-processing).
    """
    text = f"**Ours:** {describe(metrics, **dict(ours or {}))}"
    if paper_dataset in LCFED_PROTOCOL:
        paper = describe(metrics, **LCFED_PROTOCOL[paper_dataset])
        text += f"\n\n**Paper ({paper_dataset}, released test code):** {paper}"
    else:
        text += "\n\n**Paper:** LC-Fed does not report these data, so there is no published protocol to match."
    if paper_dataset in LCFED_PROTOCOL and LCFED_PROTOCOL[paper_dataset]["per"] == "volume":
        if has_volumes:
            text += ("\n\nThe test splits carry case ids, so the table below also scores our models under the "
                     "paper's per-volume protocol.")
        else:
            text += ("\n\nThese test splits carry **no case ids** (`Split.groups` is None): their images are not "
                     "slices of known 3-D cases, so our numbers exist per slice only and cannot be re-scored under "
                     "the paper's per-volume protocol.")
    return text


def volume_table(histories: Mapping[str, History], federation: Federation, protocol: Mapping[str, object],
                 device: str | torch.device = "cpu") -> pd.DataFrame:
    """Each method's kept models scored per 3-D case under ``protocol``, in the paper's table layout.

    Args:
        histories: ``{method: History}`` with ``site_models`` (the validation-selected models).
        federation: The sites; every test split must carry case ids (``Split.groups``).
        protocol: Options of :func:`fedlab.federation.evaluation.evaluate`, e.g. ``LCFED_PROTOCOL["prostate"]``.
        device: Where to evaluate.

    Returns:
        Rows = methods, columns ("IoU (%)", site) and ("ASSD (px)", site) plus "avg" (mean over sites).

    Raises:
        ValueError: If a test split has no case ids, or a history has no kept models.
    """
    options = {k: v for k, v in protocol.items() if k in ("per", "spacing", "hd95", "postprocess")}
    blocks: dict[str, dict] = {"IoU (%)": {}, "ASSD (px)": {}}
    for name, history in histories.items():
        if len(history.site_models) != len(federation):
            raise ValueError(f"{name}: the history holds {len(history.site_models)} kept models for "
                             f"{len(federation)} sites; run it with run_federation (which keeps them)")
        iou, assd = {}, {}
        for model, site in zip(history.site_models, federation, strict=True):
            scores = evaluate(model, site.test.to(device), "segmentation", ("iou", "assd"), **options)
            iou[site.name], assd[site.name] = 100 * scores["iou"], scores["assd"]
        blocks["IoU (%)"][name], blocks["ASSD (px)"][name] = iou, assd
    parts = []
    for label, rows in blocks.items():
        frame = pd.DataFrame(rows).T[list(federation.site_names)]
        frame["avg"] = frame.mean(axis=1)
        frame.columns = pd.MultiIndex.from_product([[label], frame.columns], names=["metric", "site"])
        parts.append(frame)
    out = pd.concat(parts, axis=1)
    out.index.name = "method"
    return out
