"""How the gain of personalisation over FedAvg depends on heterogeneity, one axis at a time.

A personalised method (FT, FedRep, FedBN, ...) can only beat one shared model when the sites want
different things from it. The synthetic federations let us turn each mechanism up or down alone:
``make_federation(..., heterogeneity={axis: level})`` scales one axis's style differences
(``0`` = every site has the neutral reference style on that axis, ``1`` = the default sites, ``1.5``
= exaggerated) while the other axes keep their defaults (scale 1) and every site keeps its patients and
its number of cases (data scarcity never changes).

* :func:`sweep_points` lists the (axis, level) points of a sweep and the heterogeneity mapping of each;
* :func:`heterogeneity_sweep` trains every method on every point's federation and returns the final
  (validation-selected) test scores as tidy rows with the columns ``axis, level`` beside results.csv's;
* :func:`sweep_gain` is each method's site-mean score minus the baseline's at every point;
* :func:`describe_sweep` says in words, computed from those gains, whether each gain grows with the
  level and whether it vanishes at level 0.

Every point at level 1 is the default federation, so with a run cache those runs are the ones a lesson
already trained on the default sites (same data, config, seed and code give the same cache key).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import torch

from fedlab.config import Config
from fedlab.data.synthetic import make_federation
from fedlab.data.synthetic.styles import AXES
from fedlab.experiments.lcfed import results_frame, run_methods

#: The default sweep: annotation style and acquisition, each from none to exaggerated.
DEFAULT_AXES: Mapping[str, tuple[float, ...]] = {"annotation": (0.0, 1.0, 1.5), "acquisition": (0.0, 1.0, 1.5)}
SWEEP_COLUMNS = ["axis", "level", "method", "site", "metric", "value", "split", "seed", "round"]


def sweep_points(axes: Mapping[str, Sequence[float]] | None = None) -> list[tuple[str, float, dict[str, float]]]:
    """The (axis, level, heterogeneity mapping) of every point of a sweep, axis by axis, levels sorted.

    Args:
        axes: ``{axis: levels}`` with axes among ``"acquisition"``, ``"population"``, ``"annotation"``;
            default :data:`DEFAULT_AXES`. The axes not being swept keep scale 1 (the default sites).

    Raises:
        ValueError: for an unknown axis, no levels, or a negative level.
    """
    axes = DEFAULT_AXES if axes is None else axes
    if not axes:
        raise ValueError("axes is empty; give at least one axis, e.g. {'annotation': (0, 1, 1.5)}")
    points = []
    for axis, levels in axes.items():
        if axis not in AXES:
            raise ValueError(f"unknown heterogeneity axis {axis!r}; use some of {list(AXES)}")
        levels = sorted({float(level) for level in levels})
        if not levels:
            raise ValueError(f"axis {axis!r} has no levels; give e.g. (0, 1, 1.5)")
        if levels[0] < 0:
            raise ValueError(f"heterogeneity levels must be >= 0, got {levels[0]} on axis {axis!r}")
        points += [(axis, level, {**dict.fromkeys(AXES, 1.0), axis: level}) for level in levels]
    return points


def heterogeneity_sweep(methods: Sequence[str], config: Config, axes: Mapping[str, Sequence[float]] | None = None,
                        dataset: str = "prostate", seed: int = 0, device: str | torch.device = "auto",
                        verbose: bool = False, **kwargs: object) -> pd.DataFrame:
    """Train every method on the synthetic federation of every sweep point.

    Args:
        methods: Strategy names, e.g. ``["FedAvg", "FT"]`` (put the baseline first).
        config: Run settings shared by every run (its ``image_size`` and ``cases_scale`` size the data).
        axes: ``{axis: levels}`` (see :func:`sweep_points`); default :data:`DEFAULT_AXES`.
        dataset: Synthetic dataset, "prostate", "polyp" or "fundus".
        seed: Seed of the data and of every run (the same patients at every point).
        device: Compute device.
        verbose: Print one line per sweep point, and pass ``verbose`` on to each run (one line per run).
        **kwargs: Passed on to :func:`fedlab.federation.simulation.run_federation` (e.g. ``cache``).

    Returns:
        Tidy rows: ``axis, level`` and results.csv's columns (method, site, metric, value, split, seed,
        round), the final validation-selected test scores of every run.
    """
    if not methods:
        raise ValueError("methods is empty; give e.g. ['FedAvg', 'FT']")
    points = sweep_points(axes)
    frames = []
    for k, (axis, level, heterogeneity) in enumerate(points, start=1):
        if verbose:
            print(f"sweep point {k}/{len(points)}: {axis} = {level:g} (other axes at 1)")
        federation = make_federation(dataset, config=config, seed=seed, heterogeneity=heterogeneity)
        histories = run_methods(methods, federation, config, seed=seed, device=device, verbose=verbose, **kwargs)
        frames.append(results_frame(histories).assign(axis=axis, level=level))
    return pd.concat(frames, ignore_index=True)[SWEEP_COLUMNS]


def sweep_gain(sweep: pd.DataFrame, baseline: str = "FedAvg", metric: str = "iou") -> pd.DataFrame:
    """Each method's site-mean ``metric`` minus the baseline's, at every (axis, level).

    Args:
        sweep: From :func:`heterogeneity_sweep`.
        baseline: The method subtracted (it is dropped from the columns).
        metric: Which final score.

    Returns:
        Rows indexed by (axis, level), one column per other method; positive = the method beats the
        baseline on average over the sites (for distances such as ASSD, negative is better).

    Raises:
        ValueError: when the baseline or the metric is missing.
    """
    sub = sweep[sweep["metric"] == metric]
    if sub.empty:
        raise ValueError(f"no {metric!r} rows in the sweep; metrics present: {sorted(set(sweep['metric']))}")
    mean = sub.pivot_table(index=["axis", "level"], columns="method", values="value", aggfunc="mean", sort=False)
    if baseline not in mean.columns:
        raise ValueError(f"baseline {baseline!r} not among the sweep's methods {list(mean.columns)}")
    return mean.sub(mean[baseline], axis=0).drop(columns=baseline)


def describe_sweep(gain: pd.DataFrame, baseline: str = "FedAvg", scale: float = 100.0, unit: str = "IoU points",
                   tolerance: float = 1.0) -> str:
    """Markdown saying, per axis and method, how the gain over the baseline moves with the level.

    A change smaller than ``tolerance`` (in ``unit``) is called "about the same", and a gain of magnitude
    below ``tolerance`` at level 0 "vanishes": single runs of one seed do not show smaller effects reliably.

    Args:
        gain: From :func:`sweep_gain` (values in the metric's own scale).
        baseline: Name used in the sentences.
        scale: Factor applied to the gains before they are written (100: IoU in points).
        unit: Unit of the scaled gains.
        tolerance: Smallest change (in ``unit``) called an increase or a decrease.
    """
    lines = []
    for axis in dict.fromkeys(gain.index.get_level_values("axis")):
        block = gain.xs(axis, level="axis").sort_index() * scale
        for method in block.columns:
            values = block[method].dropna()
            if len(values) < 2:
                continue
            steps = ", ".join(f"{v:+.2f} at {lvl:g}" for lvl, v in values.items())
            first, last = float(values.iloc[0]), float(values.iloc[-1])
            change = last - first
            if change >= tolerance:
                trend = "**grows** with the level"
            elif change <= -tolerance:
                trend = "**shrinks** as the level grows"
            else:
                trend = "**does not grow** with the level (it moves by less than the tolerance)"
            monotone = values.is_monotonic_increasing or values.is_monotonic_decreasing
            if len(values) > 2 and not monotone:
                if abs(change) < tolerance:  # level at both ends, but not in between
                    up = values.max() - first >= first - values.min()
                    peak = values.idxmax() if up else values.idxmin()
                    trend += (f"; in between it is {'largest' if up else 'smallest'} at level "
                              f"{peak:g} ({values[peak]:+.2f})")
                else:
                    peak = values.idxmax() if change >= 0 else values.idxmin()
                    trend += (f", though not steadily: it is {'largest' if change >= 0 else 'smallest'} at level "
                              f"{peak:g} ({values[peak]:+.2f})")
            zero = ""
            if values.index[0] == 0:
                zero = (f" Without {axis} differences (level 0) the gain is {first:+.2f}: it "
                        + ("**vanishes** (|gain| below the tolerance)." if abs(first) < tolerance
                           else "does **not** vanish (other differences between the sites remain)."))
            lines.append(f"* **{axis}**, {method} minus {baseline} ({unit}, site mean): {steps}; the gain {trend} "
                         f"({change:+.2f} from the lowest to the highest level).{zero}")
    if not lines:
        return "The sweep has fewer than two levels per axis: nothing to compare."
    return (f"Tolerance ({unit}): {tolerance:g}; smaller changes are not called a trend, because these are single runs "
            "of one seed.\n\n" + "\n".join(lines))
