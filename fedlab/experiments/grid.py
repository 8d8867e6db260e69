"""Run several strategies on several federations and seeds, and gather the results as one tidy table.

Lessons 08 and 09 compare methods across *scenarios* (a clean federation, one with a noisy site, one under
attack; one federation per heterogeneity axis; several compression rates). :func:`run_grid` runs every
(scenario, method, seed) once through :func:`~fedlab.federation.simulation.run_federation` (with the run
cache, so a rerun or another notebook reuses finished runs) and returns the final scores with a
``scenario`` column, the bytes each run sent, and the histories.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd
import torch

from fedlab.config import Config
from fedlab.data.federation import Federation
from fedlab.federation.history import History
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies.base import Strategy
from fedlab.notebook import RESULT_COLUMNS
from fedlab.progress import progress_bar

#: A federation per scenario, or a function of the seed that builds it.
Scenario = Federation | Callable[[int], Federation]


@dataclass
class GridResult:
    """What :func:`run_grid` ran.

    Attributes:
        results: Final test scores, results.csv's columns plus ``scenario``.
        ledger: One row per run: scenario, method, seed, rounds, bytes up and down (totals), seconds.
        histories: ``{(scenario, method, seed): History}``.
    """

    results: pd.DataFrame
    ledger: pd.DataFrame
    histories: dict[tuple[str, str, int], History] = field(default_factory=dict)

    def history(self, scenario: str, method: str, seed: int | None = None) -> History:
        """One run's History (the first seed when ``seed`` is None)."""
        seed = seed if seed is not None else min(s for (sc, m, s) in self.histories if (sc, m) == (scenario, method))
        return self.histories[(scenario, method, seed)]


def run_grid(scenarios: Mapping[str, Scenario], methods: Mapping[str, Callable[[str], Strategy | None]],
             config: Config, seeds: Sequence[int] = (0,), *, device: str | torch.device = "auto",
             progress: bool | None = None, **kwargs: object) -> GridResult:
    """Every method on every scenario for every seed.

    Args:
        scenarios: ``{name: federation}``, or ``{name: seed -> federation}`` when the data depend on the seed.
        methods: ``{name: scenario -> strategy}``: a fresh strategy for a scenario (e.g. wrapped by an attack
            there), or None to skip that method in that scenario.
        config: Run settings shared by every run.
        seeds: Run seeds.
        device: Compute device.
        progress: Show one bar over the runs (default: tqdm's ``TQDM_DISABLE`` decides).
        **kwargs: Passed on to ``run_federation`` (e.g. ``cache=run.cache``, ``select="last"``).

    Returns:
        The :class:`GridResult`; ``results["method"]`` is the method's name in ``methods``.
    """
    jobs = [(sc, m, s) for s in seeds for sc in scenarios for m in methods]
    switch = {} if progress is None else {"disable": not progress}
    frames, ledger, histories = [], [], {}
    built: dict[tuple[str, int], Federation] = {}
    for scenario, method, seed in progress_bar(jobs, desc="runs", leave=False, **switch):
        strategy = methods[method](scenario)
        if strategy is None:
            continue
        key = (scenario, seed)
        if key not in built:
            source = scenarios[scenario]
            built[key] = source if isinstance(source, Federation) else source(seed)
        history = run_federation(strategy, built[key], config, seed=seed, device=device, progress=False, **kwargs)
        histories[(scenario, method, seed)] = history
        frames.append(history.to_dataframe("final").assign(method=method, scenario=scenario))
        ledger.append({"scenario": scenario, "method": method, "seed": seed, "rounds": len(history.ledger),
                       "bytes_up": sum(r["bytes_up"] for r in history.ledger),
                       "bytes_down": sum(r["bytes_down"] for r in history.ledger),
                       "seconds": history.info.get("seconds")})
    results = pd.concat(frames, ignore_index=True)[[*RESULT_COLUMNS, "scenario"]] if frames else \
        pd.DataFrame(columns=[*RESULT_COLUMNS, "scenario"])
    return GridResult(results, pd.DataFrame(ledger), histories)


def site_means(results: pd.DataFrame, metric: str, exclude: Mapping[str, Sequence[str]] | None = None,
               ) -> pd.DataFrame:
    """Mean over sites of ``metric`` per scenario, method and seed (``exclude``: sites left out per scenario).

    Returns:
        Columns ``scenario, method, seed, value``.
    """
    rows = results[results["metric"] == metric]
    if exclude:
        drop = pd.Series(False, index=rows.index)
        for scenario, sites in exclude.items():
            drop |= (rows["scenario"] == scenario) & rows["site"].isin(list(sites))
        rows = rows[~drop]
    return rows.groupby(["scenario", "method", "seed"], sort=False)["value"].mean().reset_index()


def over_seeds(means: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation and number of seeds per scenario and method (rows: method, columns: scenario)."""
    stats = means.groupby(["scenario", "method"], sort=False)["value"].agg(["mean", "std", "count"])
    return stats.unstack("scenario")


__all__ = ["GridResult", "Scenario", "over_seeds", "run_grid", "site_means"]
