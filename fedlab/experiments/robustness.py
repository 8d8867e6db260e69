"""Lesson 08's experiment: aggregation rules under three scenarios (clean, a noisy site, a malicious site).

* :func:`scenarios` builds the federations: the federation as given ("clean"), the same with one site's
  annotators drawing every boundary further out ("noisy", :func:`fedlab.data.label_noise.with_noisy_site`),
  and the clean one again for the attack (the attack is in the strategy, not the data).
* :func:`rule_factories` gives, per rule, a function of the scenario that returns a fresh strategy, wrapped
  in :class:`~fedlab.federation.strategies.SignFlip` in the "malicious" scenario; pass it to
  :func:`fedlab.experiments.grid.run_grid`.
* :func:`aggregate_points` applies every rule to points in a plane (the picture of what each rule does).
* :func:`decision_counts` and :func:`quality_table` read what the rules decided from the runs' histories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from fedlab.data.federation import Federation
from fedlab.data.label_noise import with_noisy_site
from fedlab.federation.history import History
from fedlab.federation.params import weighted_average
from fedlab.federation.robust import clip_by_norm, coordinate_median, krum_select, state_norm, trimmed_mean
from fedlab.federation.strategies import FedAvg, Krum, Median, NormClip, QualityWeighted, SignFlip, TrimmedMean
from fedlab.federation.strategies.base import Strategy

SCENARIOS = ("clean", "noisy site", "malicious site")
#: The rules compared, by the name used in tables.
RULES: Mapping[str, Callable[[], Strategy]] = {
    "FedAvg": FedAvg,
    "Median": Median,
    "TrimmedMean": TrimmedMean,
    "Krum": Krum,
    "NormClip": NormClip,
    "QualityWeighted": QualityWeighted,
}


def largest_site(federation: Federation) -> str:
    """The site with the most training samples (the first one on a tie)."""
    sizes = [len(s.train) for s in federation]
    return federation.site_names[int(np.argmax(sizes))]


def offset_pixels(offset_at_64: float, image_size: int) -> float:
    """A boundary offset given in pixels of a 64-pixel image (as the synthetic styles are), at ``image_size``."""
    return offset_at_64 * image_size / 64


def scenarios(federation: Federation, bad_site: str, offset: float) -> dict[str, Federation]:
    """``{"clean": federation, "noisy site": bad_site's train/val masks offset by ``offset`` px, "malicious site":
    federation}``."""
    return {"clean": federation, "noisy site": with_noisy_site(federation, bad_site, offset),
            "malicious site": federation}


def rule_factories(attacker: int, scale: float, rules: Mapping[str, Callable[[], Strategy]] = RULES,
                   extra: Mapping[str, tuple[Callable[[], Strategy], Sequence[str]]] | None = None,
                   ) -> dict[str, Callable[[str], Strategy | None]]:
    """Per rule, ``scenario -> strategy``: the rule itself, attacked by site ``attacker`` in "malicious site".

    Args:
        attacker: Index of the malicious site.
        scale: How much its flipped update is amplified.
        rules: ``{name: strategy factory}``.
        extra: ``{name: (factory, scenarios)}``: more methods run only in the named scenarios.
    """
    def make(factory: Callable[[], Strategy], only: Sequence[str] | None = None) -> Callable[[str], Strategy | None]:
        def build(scenario: str) -> Strategy | None:
            if only is not None and scenario not in only:
                return None
            strategy = factory()
            return SignFlip(strategy, attackers=[attacker], scale=scale) if scenario == "malicious site" else strategy
        return build

    out = {name: make(factory) for name, factory in rules.items()}
    for name, (factory, only) in (extra or {}).items():
        out[name] = make(factory, only)
    return out


def aggregate_points(points: np.ndarray, weights: Sequence[float] | None = None, trim: float = 0.2,
                     num_byzantine: int = 1) -> dict[str, np.ndarray]:
    """Where each rule puts the aggregate of 2-D updates (the same functions the strategies use).

    Args:
        points: (K, 2) updates, one per site.
        weights: FedAvg's weights (default uniform).
        trim: Trimmed mean's cut fraction.
        num_byzantine: Krum's ``f``.

    Returns:
        ``{rule: (2,) aggregate}`` for FedAvg's mean, the median, the trimmed mean, Krum and norm clipping
        (bound: the median norm, then the weighted mean).
    """
    states = [{"u": torch.as_tensor(p, dtype=torch.float64)} for p in np.asarray(points)]
    weights = list(weights) if weights is not None else [1.0] * len(states)
    bound = float(torch.stack([state_norm(s) for s in states]).median())
    out = {
        "FedAvg (mean)": weighted_average(states, weights),
        "Median": coordinate_median(states),
        "TrimmedMean": trimmed_mean(states, trim),
        "Krum": states[krum_select(states, num_byzantine)[0]],
        "NormClip": weighted_average([clip_by_norm(s, bound) for s in states], weights),
    }
    return {k: v["u"].numpy() for k, v in out.items()}


def decision_counts(histories: Mapping[str, History], decision: str, sites: Sequence[str]) -> pd.DataFrame:
    """How many rounds each site was concerned by a rule's decision (e.g. Krum's "selected", NormClip's
    "clipped"), one row per run label, one column per site."""
    rows = {}
    for label, h in histories.items():
        counts = (h.info.get("finish") or {}).get("decisions", {}).get(decision, {})
        rows[label] = {s: int(counts.get(s, 0)) for s in sites}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(sites))


def quality_table(history: History, federation: Federation) -> pd.DataFrame:
    """QualityWeighted's estimate per site: noise score, quality, and the site's share by quality and by size."""
    facts = history.info["finish"]
    sizes = pd.Series({s.name: len(s.train) for s in federation}, dtype=float)
    quality = pd.Series(facts["quality"], dtype=float).reindex(sizes.index)
    return pd.DataFrame({"noise score": pd.Series(facts["noise_score"], dtype=float).reindex(sizes.index),
                         "quality": quality, "share by quality": quality / quality.sum(),
                         "share by size": sizes / sizes.sum()}).rename_axis("site")


def _spread(std: pd.DataFrame | None, rule: str, scenario: str) -> str:
    if std is None or rule not in std.index or scenario not in std.columns or pd.isna(std.loc[rule, scenario]):
        return ""
    return f" ± {std.loc[rule, scenario]:.3f}"


def describe_scenarios(mean: pd.DataFrame, std: pd.DataFrame | None, num_seeds: int, bad: str, offset: float,
                       scale: float, tolerance: float = 0.05) -> str:
    """Markdown sentences about the scenario table, computed from it.

    Args:
        mean: Mean score per rule (rows) and scenario (columns :data:`SCENARIOS`), FedAvg among the rows.
        std: Standard deviation over seeds, same layout (None or NaN with one seed).
        num_seeds: How many seeds the means are over.
        bad: The noisy / malicious site.
        offset: The noisy site's boundary offset in pixels.
        scale: The attack's amplification.
        tolerance: A rule "holds" when it stays within this of its own clean score.
    """
    clean, noisy, attacked = SCENARIOS
    seeds = f"{num_seeds} seeds (mean ± standard deviation)" if num_seeds > 1 else \
        "one seed (no spread measured: differences of a few hundredths may change with the seed)"
    lines = [f"Dice on the sites other than {bad}, over {seeds}:", ""]
    best_clean = mean[clean].idxmax()
    lines.append(f"* **Clean.** FedAvg reaches {mean.loc['FedAvg', clean]:.3f}{_spread(std, 'FedAvg', clean)}; "
                 f"the rules range from {mean[clean].min():.3f} ({mean[clean].idxmin()}) to {mean[clean].max():.3f} "
                 f"({best_clean}).")
    drop = mean.loc["FedAvg", noisy] - mean.loc["FedAvg", clean]
    best_noisy = mean[noisy].idxmax()
    change = f"drops by {-drop:.3f}" if drop < 0 else f"rises by {drop:.3f}"
    lines.append(f"* **Noisy site.** With site {bad}'s boundaries drawn {offset:g} px further out, FedAvg's Dice "
                 f"{change} to {mean.loc['FedAvg', noisy]:.3f}; the best "
                 f"rule here is {best_noisy} at {mean.loc[best_noisy, noisy]:.3f}{_spread(std, best_noisy, noisy)}.")
    holds = [r for r in mean.index if mean.loc[r, clean] - mean.loc[r, attacked] <= tolerance]
    falls = [r for r in mean.index if r not in holds]
    attack = (f"* **Malicious site.** With site {bad} uploading its update flipped and ×{scale:g}, FedAvg ends at "
              f"{mean.loc['FedAvg', attacked]:.3f}{_spread(std, 'FedAvg', attacked)}. ")
    attack += (f"Within {tolerance:g} of their clean score: {', '.join(holds) if holds else 'none'}; "
               f"further below: {', '.join(f'{r} ({mean.loc[r, attacked]:.3f})' for r in falls) or 'none'}.")
    lines.append(attack)
    return "\n".join(lines)


def describe_price(per_site: pd.DataFrame, sizes: pd.Series, reference: str = "FedAvg") -> str:
    """Markdown sentences on what each rule costs per site on the clean federation, computed from ``per_site``.

    Args:
        per_site: Dice per method (rows, ``reference`` among them) and site (columns).
        sizes: Training samples per site.
        reference: The method the others are compared with.
    """
    gain = per_site.drop(index=reference) - per_site.loc[reference]
    small = sizes.sort_values().index[: max(1, len(sizes) // 2)].tolist()
    lines = []
    for method, row in gain.iterrows():
        worst, best = row.idxmin(), row.idxmax()
        lines.append(f"* **{method}** minus {reference}: mean {row.mean():+.3f}; smaller half of the sites "
                     f"({', '.join(small)}) {row[small].mean():+.3f}, larger half {row.drop(small).mean():+.3f}; "
                     f"lowest at {worst} ({row[worst]:+.3f}), highest at {best} ({row[best]:+.3f}).")
    return "\n".join(lines)


def describe_quality(table: pd.DataFrame, bad: str, label: str) -> str:
    """One sentence: which site the quality weighting ranked last, and whether it is the noisy one."""
    last = table["quality"].idxmin()
    rank = int(table["quality"].rank(method="min").loc[bad])
    verdict = ("it found the injected noisy site" if last == bad else
               f"the injected noisy site {bad} is ranked {rank} of {len(table)} (1 = lowest quality)")
    return (f"{label}: lowest quality at site **{last}** (noise score {table.loc[last, 'noise score']:.3f}); "
            f"{verdict}.")


__all__ = ["RULES", "SCENARIOS", "aggregate_points", "decision_counts", "describe_price", "describe_quality",
           "describe_scenarios", "largest_site", "offset_pixels", "quality_table", "rule_factories", "scenarios"]
