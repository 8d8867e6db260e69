"""Lesson 07's experiments: privacy-utility curves of DP-SGD at the sites, per-site epsilon, and DP at the server.

Every run goes through :func:`fedlab.federation.run_federation` (and the run cache) with the last round's model
(``select="last"``): choosing a round on the sites' validation data would spend privacy the accountant does not
count. Features and images are used as the sites hold them; a site's own standardisation statistics never leave it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from fedlab.config import PRESETS, Config
from fedlab.data.federation import Federation
from fedlab.federation.cache import RunCache
from fedlab.federation.history import History
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import FedAvg
from fedlab.privacy.accounting import schedule_epsilon
from fedlab.privacy.central_dp import CentralDP
from fedlab.privacy.dp import DPFedAvg

RESULT_COLUMNS = ["method", "site", "metric", "value", "split", "seed", "round", "noise_multiplier", "epsilon"]


def logistic_config(preset: str) -> Config:
    """Notebook 04's logistic-regression preset (the "tabular" family: plain SGD, learning rate 0.1, batches of 32,
    10 local steps, L2 penalty), read from the preset table directly (the notebook has already resolved the preset)."""
    if preset not in PRESETS["tabular"]:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {sorted(PRESETS['tabular'])}")
    return PRESETS["tabular"][preset]


def segmentation_config(config: Config) -> Config:
    """Lesson 07's segmentation runs: the preset's U-Net on 32x32 slices, half the preset's rounds (at least 3),
    evaluated once at the end. DP-SGD computes one gradient per image, which costs about twice a plain step on a CPU;
    this keeps the classroom notebook within its time budget."""
    rounds = max(config.rounds // 2, 3)
    return config.replace(image_size=32, rounds=rounds, eval_every=rounds)


def method_name(noise_multiplier: float | None) -> str:
    """Row label of a run: "FedAvg" (no DP), "DP clip only" (sigma 0) or "DP sigma=s"."""
    if noise_multiplier is None:
        return "FedAvg"
    return "DP clip only" if noise_multiplier == 0 else f"DP sigma={noise_multiplier:g}"


def _rows(history: History, method: str, sigma: float | None, epsilons: dict[str, float]) -> list[dict]:
    df = history.to_dataframe("final")
    return [{"method": method, "site": r.site, "metric": r.metric, "value": float(r.value), "split": "test",
             "seed": int(r.seed), "round": int(r["round"]), "noise_multiplier": np.nan if sigma is None else sigma,
             "epsilon": epsilons.get(r.site, np.nan)} for _, r in df.iterrows()]


def privacy_utility(federation: Federation, config: Config, noise_multipliers: Sequence[float], *,
                    max_grad_norm: float, delta: float, seed: int = 0, device: str | torch.device = "auto",
                    model: Callable[[], nn.Module] | None = None, cache: RunCache | None = None,
                    verbose: bool = False) -> tuple[pd.DataFrame, dict[str, History]]:
    """Non-private FedAvg and DP-FedAvg at every noise multiplier, on the same data, schedule and seed.

    Returns:
        Tidy final test scores (columns :data:`RESULT_COLUMNS`; ``epsilon`` is each site's epsilon at ``delta``,
        NaN for FedAvg and ``inf`` for clipping only) and the histories by method name.
    """
    histories: dict[str, History] = {}
    rows: list[dict] = []
    common = {"seed": seed, "device": device, "model": model, "select": "last", "cache": cache, "verbose": verbose,
              "progress": False}
    histories["FedAvg"] = run_federation(FedAvg(), federation, config, **common)
    rows += _rows(histories["FedAvg"], "FedAvg", None, {})
    for sigma in noise_multipliers:
        name = method_name(sigma)
        strategy = DPFedAvg(noise_multiplier=sigma, max_grad_norm=max_grad_norm, delta=delta)
        histories[name] = run_federation(strategy, federation, config, **common)
        eps = histories[name].info["finish"]["privacy"]["epsilon"]
        rows += _rows(histories[name], name, sigma, eps)
    return pd.DataFrame(rows, columns=RESULT_COLUMNS), histories


def central_runs(federation: Federation, config: Config, noise_multipliers: Sequence[float], *, clip_norm: float,
                 delta: float, seed: int = 0, device: str | torch.device = "auto",
                 model: Callable[[], nn.Module] | None = None, cache: RunCache | None = None,
                 verbose: bool = False) -> tuple[pd.DataFrame, dict[str, History]]:
    """:class:`~fedlab.privacy.central_dp.CentralDP` at every noise multiplier (site-level epsilon in the rows)."""
    histories: dict[str, History] = {}
    rows: list[dict] = []
    for sigma in noise_multipliers:
        name = f"Central DP sigma={sigma:g}"
        h = run_federation(CentralDP(noise_multiplier=sigma, clip_norm=clip_norm, delta=delta), federation, config,
                           seed=seed, device=device, model=model, select="last", cache=cache, verbose=verbose,
                           progress=False)
        histories[name] = h
        eps = next(iter(h.info["finish"]["privacy"]["epsilon"].values()))
        rows += _rows(h, name, sigma, {s: eps for s in h.sites})
    return pd.DataFrame(rows, columns=RESULT_COLUMNS), histories


def planned_epsilon(federation: Federation, config: Config, noise_multipliers: Sequence[float], delta: float,
                    rounds: int | None = None) -> pd.DataFrame:
    """Each site's epsilon after the whole run, computed before running it: the cost depends on
    ``(sigma, q_k = batch / n_k, steps = rounds x local_steps, delta)`` only, never on the data's values.

    Returns:
        One row per site: ``site, n_train, q, steps`` and one ``epsilon sigma=s`` column per noise multiplier.
    """
    rounds = config.rounds if rounds is None else rounds
    steps = rounds * config.local_steps
    rows = []
    for site in federation:
        q = min(1.0, config.batch_size / site.num_train)
        row = {"site": site.name, "n_train": site.num_train, "q": q, "steps": steps}
        for sigma in noise_multipliers:
            row[f"epsilon sigma={sigma:g}"] = schedule_epsilon(sigma, q, steps, delta)
        rows.append(row)
    return pd.DataFrame(rows)


def summary_by_method(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Site-mean of ``metric`` per method, with the noise multiplier and the largest and smallest site epsilon."""
    df = results[results["metric"] == metric]
    out = df.groupby("method", sort=False).agg(noise_multiplier=("noise_multiplier", "first"),
                                               value=("value", "mean"), epsilon_max=("epsilon", "max"),
                                               epsilon_min=("epsilon", "min"))
    return out.rename(columns={"value": metric})
