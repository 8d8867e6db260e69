"""Lesson 09's experiment: which remedy addresses which kind of heterogeneity, and what communication costs.

* :func:`sweep_methods`: the methods run on every single-axis federation
  (:func:`fedlab.experiments.heterogeneity.sweep_federations`): Local, FedAvg, FedProx, SCAFFOLD, and FT as
  the personalised reference (notebooks 02-03 have the others); every one takes the config's local steps.
* :func:`compression_methods`: FedAvg and top-k sparsified FedAvg with and without error feedback.
* ``describe_*``: Markdown sentences computed from the result tables, so the notebook's prose follows the
  numbers of the run it sits in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pandas as pd

from fedlab.experiments.heterogeneity import TAXONOMY
from fedlab.federation.strategies import SCAFFOLD, FedAvg, FedProx, FineTune, Local, TopK
from fedlab.federation.strategies.base import Strategy

SWEEP_METHODS = ("Local", "FedAvg", "FedProx", "SCAFFOLD", "FT")
LABEL_SKEW_METHODS = ("Local", "FedAvg", "FedProx", "SCAFFOLD")


def sweep_methods(local_steps: int, names: Sequence[str] = SWEEP_METHODS) -> dict[str, Callable[[], Strategy]]:
    """``{name: factory}`` of the compared methods, each taking ``local_steps`` steps per round.

    FedProx's own default is one local epoch per round; here it takes the same ``local_steps`` as every other
    method, so that a difference between them is the proximal term's and not extra training.
    """
    factories: dict[str, Callable[[], Strategy]] = {
        "Local": Local, "FedAvg": FedAvg, "FedProx": lambda: FedProx(local_steps=local_steps),
        "SCAFFOLD": SCAFFOLD, "FT": FineTune,
    }
    unknown = [n for n in names if n not in factories]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {list(factories)}")
    return {name: factories[name] for name in names}


def every_scenario(factories: Mapping[str, Callable[[], Strategy]]) -> dict[str, Callable[[str], Strategy]]:
    """``{name: scenario -> fresh strategy}`` for :func:`fedlab.experiments.grid.run_grid` (same in every scenario)."""
    return {name: (lambda scenario, f=factory: f()) for name, factory in factories.items()}


def compression_methods(fractions: Sequence[float]) -> dict[str, Callable[[str], Strategy]]:
    """FedAvg, then top-k FedAvg at each fraction with and without error feedback (named by the strategy)."""
    out: dict[str, Callable[[str], Strategy]] = {"FedAvg": lambda scenario: FedAvg()}
    for fraction in fractions:
        for feedback in (True, False):
            name = TopK(FedAvg(), fraction, feedback).name
            out[name] = lambda scenario, f=fraction, e=feedback: TopK(FedAvg(), f, e)
    return out


def _seeds(num_seeds: int) -> str:
    return (f"mean over {num_seeds} seeds" if num_seeds > 1 else
            "one seed, so differences of a few hundredths may change with the seed")


def describe_axes(mean: pd.DataFrame, num_seeds: int, margin: float = 0.01) -> str:
    """What each axis does to FedAvg and which method helps there, from a table of mean scores.

    Args:
        mean: Rows = methods (Local, FedAvg, FedProx, SCAFFOLD, FT), columns = "none" and the axes.
        num_seeds: Seeds behind the means.
        margin: A difference smaller than this is called "about the same".
    """
    def compare(a: float, b: float) -> str:
        d = a - b
        return "about the same as" if abs(d) < margin else (f"{d:+.3f} above" if d > 0 else f"{-d:.3f} below")

    lines = [f"Test Dice, mean over sites ({_seeds(num_seeds)}). Without style differences FedAvg reaches "
             f"{mean.loc['FedAvg', 'none']:.3f} and Local {mean.loc['Local', 'none']:.3f}.", ""]
    for axis in [c for c in mean.columns if c != "none"]:
        col = mean[axis]
        cost = col["FedAvg"] - mean.loc["FedAvg", "none"]
        parts = [f"* **{axis}** ({TAXONOMY.get(axis, axis)}): FedAvg {col['FedAvg']:.3f} "
                 f"({cost:+.3f} against no differences), Local {col['Local']:.3f}"]
        for method in ("FedProx", "SCAFFOLD", "FT"):
            if method in col.index:
                parts.append(f"{method} {compare(col[method], col['FedAvg'])} FedAvg")
        best = col.idxmax()
        lines.append("; ".join(parts) + f". Best here: {best} ({col[best]:.3f}).")
    return "\n".join(lines)


def describe_label_skew(mean: pd.DataFrame, std: pd.DataFrame | None, num_seeds: int, metric: str = "AUC") -> str:
    """How much each method's score moves from the most balanced to the most skewed sites.

    Args:
        mean: Rows = methods, columns = settings ordered from balanced (first) to skewed (last).
        std: Standard deviations over seeds, same layout, or None.
        num_seeds: Seeds behind the means.
        metric: Name of the score, for the text.
    """
    first, last = mean.columns[0], mean.columns[-1]
    change = (mean[last] - mean[first]).sort_values()
    federated = [m for m in mean.index if m != "Local"]
    largest_fed = max(federated, key=lambda m: abs(change[m]))
    lines = [f"{metric} on the common test set ({_seeds(num_seeds)}), from {first} to {last}:", ""]
    for method, delta in change.items():
        spread = ""
        if std is not None and method in std.index and not pd.isna(std.loc[method, last]):
            spread = f" (± {std.loc[method, last]:.3f} over seeds at {last})"
        lines.append(f"* {method}: {mean.loc[method, first]:.3f} → {mean.loc[method, last]:.3f} ({delta:+.3f}){spread}")
    lines += ["", f"The largest change of a federated method is {largest_fed}'s ({change[largest_fed]:+.3f}); "
                  f"Local changes by {change['Local']:+.3f}."]
    return "\n".join(lines)


def describe_skew_data(summary: pd.DataFrame) -> str:
    """What the Dirichlet draws did to the sites, from :func:`fedlab.data.label_skew.skew_summary` rows per setting.

    Args:
        summary: Rows = settings (balanced first), columns = the skew summary's four numbers (means over seeds).
    """
    first, last = summary.index[0], summary.index[-1]
    row = summary.loc[last]
    return (f"At {first} the largest site holds {summary.loc[first, 'largest site share']:.0%} of the training "
            f"samples and every site's AD share lies between {summary.loc[first, 'positive share min']:.0%} and "
            f"{summary.loc[first, 'positive share max']:.0%}; at {last} the sites' AD shares range from "
            f"{row['positive share min']:.0%} to {row['positive share max']:.0%}, and the largest site holds "
            f"{row['largest site share']:.0%} of the samples with an AD share of "
            f"{row['largest site positive share']:.0%} (means over the partition seeds). A Dirichlet split skews "
            "site sizes too: with sample weighting, FedAvg then leans on that largest site.")


def describe_compression(table: pd.DataFrame) -> str:
    """Bytes against score for FedAvg and the top-k variants.

    Args:
        table: Rows = method names (FedAvg first), columns ``MB up`` and ``dice``.
    """
    base = table.loc["FedAvg"]
    lines = [f"FedAvg uploads {base['MB up']:.2f} MB in all and reaches {base['dice']:.3f} test Dice.", ""]
    for name, row in table.drop(index="FedAvg").iterrows():
        lines.append(f"* {name}: {row['MB up']:.2f} MB ({row['MB up'] / base['MB up']:.1%} of FedAvg's upload), "
                     f"Dice {row['dice']:.3f} ({row['dice'] - base['dice']:+.3f}).")
    feedback = [n for n in table.index if n.endswith(" EF")]
    pairs = [(n, n[: -len(" EF")]) for n in feedback if n[: -len(" EF")] in table.index]
    if pairs:
        lines.append("")
        lines.append("Error feedback, same bytes: " + "; ".join(
            f"{plain.split(' ', 1)[1]}: {table.loc[ef, 'dice'] - table.loc[plain, 'dice']:+.3f} Dice"
            for ef, plain in pairs) + ".")
    return "\n".join(lines)


__all__ = ["LABEL_SKEW_METHODS", "SWEEP_METHODS", "compression_methods", "describe_axes", "describe_compression",
           "describe_label_skew", "describe_skew_data", "every_scenario", "sweep_methods"]
