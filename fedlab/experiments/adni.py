"""The survey's logistic-regression comparison (Guan and Liu, section 6, Table 2) on the fedlab engine.

Six settings, each on five random 80/20 splits per client:

* **Single**: each client trains alone (``Local``) and is tested on its own test split.
* **Cross**: train on all of one client, test on all of another (one fixed model, no std, as in
  the paper); with more than two clients this is a site-by-site matrix.
* **Mix**: pooled training data (privacy-violating upper bound), tested on each client's test split.
* **FedAvg**: ``local_steps`` (10) local mini-batch iterations per round, sample-weighted averaging.
* **FedSGD**: one full-batch gradient per client per round, sample-weighted gradient averaging and
  a server optimiser step; ``rounds * local_steps`` rounds, so it takes as many optimiser steps as
  FedAvg (and ten times the messages).
* **FedProx**: ``mu = 0.1``, one local pass (epoch) of mini-batches per round.

Choices the paper leaves open are fields of :class:`LRSettings` (optimiser, learning rate, rounds,
L2 penalty, batch size, standardisation); the notebook prints them. Features are standardised with
training statistics only: Single and Cross use the training client's own statistics; Mix the pooled
training statistics; the federated settings by default use *federated* statistics (sample-weighted
mean and variance aggregated from per-client sums, see :mod:`fedlab.data.standardize`), which equal
the pooled ones. The final model of the last round is evaluated (no model selection on test data).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from fedlab.config import Config
from fedlab.data.federation import Federation
from fedlab.data.standardize import standardize
from fedlab.federation.evaluation import evaluate
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import STRATEGIES
from fedlab.models.logistic import LogisticRegression, Standardized
from fedlab.reference import read_reference

METHODS: tuple[str, ...] = ("Cross", "Single", "Mix", "FedAvg", "FedSGD", "FedProx")
METRICS: tuple[str, ...] = ("acc", "sen", "spe", "auc")
COLUMNS = ["method", "site", "metric", "value", "split", "seed", "round", "trained_on"]
REFERENCE_FILE = "adni_table2.csv"


@dataclass(frozen=True)
class LRSettings:
    """Settings of the logistic-regression comparison (every choice the paper leaves open).

    Attributes:
        preset: "smoke", "classroom" or "paper".
        rounds: Communication rounds of FedAvg / FedProx (and the matching training length of
            Single and Mix: ``rounds * local_steps`` mini-batches).
        local_steps: FedAvg's local iterations per round (paper: 10).
        batch_size: Mini-batch size of the local iterations.
        lr: Learning rate.
        optimizer: "adam" or "sgd" (clients; FedSGD's server uses the same).
        weight_decay: L2 penalty (objective ``mean BCE + wd/2 ||w||^2``).
        mu: FedProx proximal weight (paper: 0.1).
        fedsgd_rounds: FedSGD rounds; ``None`` = ``rounds * local_steps``.
        splits: Number of random 80/20 splits (paper: 5).
        test_fraction: Test fraction per client (paper: 0.2).
        standardize: Statistics of the federated settings: "federated" or "local".
    """

    preset: str = "classroom"
    rounds: int = 20
    local_steps: int = 10
    batch_size: int = 64
    lr: float = 0.1
    optimizer: str = "adam"
    weight_decay: float = 1e-3
    mu: float = 0.1
    fedsgd_rounds: int | None = None
    splits: int = 5
    test_fraction: float = 0.2
    standardize: str = "federated"

    @property
    def num_fedsgd_rounds(self) -> int:
        """Rounds of FedSGD."""
        return self.fedsgd_rounds or self.rounds * self.local_steps

    def config(self, eval_every: int | None = None) -> Config:
        """The engine Config these settings imply (the U-Net fields are unused)."""
        return Config(preset=self.preset, rounds=self.rounds, local_steps=self.local_steps,
                      batch_size=self.batch_size, lr=self.lr, optimizer=self.optimizer,
                      weight_decay=self.weight_decay, eval_every=eval_every or 10**9, eval_batch_size=4096,
                      head_steps=0)

    def replace(self, **changes: object) -> LRSettings:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain dict (for summary.json and the notebook's settings table)."""
        return {**asdict(self), "fedsgd_rounds": self.num_fedsgd_rounds}


LR_PRESETS: dict[str, LRSettings] = {
    "smoke": LRSettings(preset="smoke", rounds=10, splits=2),  # fewer rounds and splits: a quick check
    "classroom": LRSettings(preset="classroom"),
    "paper": LRSettings(preset="paper", rounds=100, batch_size=32, lr=0.05),  # longer, smaller steps
}


def get_lr_settings(preset: str = "classroom", **overrides: object) -> LRSettings:
    """The named preset of :data:`LR_PRESETS`, optionally with fields overridden."""
    if preset not in LR_PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {sorted(LR_PRESETS)}")
    return LR_PRESETS[preset].replace(**overrides)


@contextmanager
def cpu_threads(num_threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op CPU threads (restored on exit; ``None`` = leave as is).

    A logistic regression on a few hundred subjects is far too small for intra-op parallelism: on a
    busy 2-core machine, two OpenMP threads make each step many times slower than one thread.
    """
    old = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _strategy(method: str, settings: LRSettings):
    if method == "Single":
        return STRATEGIES["Local"]()
    if method == "FedProx":
        return STRATEGIES["FedProx"](mu=settings.mu)
    return STRATEGIES[method]()


def _rows(history, method: str, seed: int, trained_on: Sequence[str]) -> list[dict]:
    df = history.to_dataframe("final")
    by_site = dict(zip(history.sites, trained_on, strict=True))
    return [{"method": method, "site": r.site, "metric": r.metric, "value": float(r.value), "split": "test",
             "seed": seed, "round": int(r["round"]), "trained_on": by_site[r.site]} for _, r in df.iterrows()]


def run_setting(method: str, federation: Federation, settings: LRSettings, seed: int = 0,
                device: str | torch.device = "auto", eval_every: int | None = None):
    """Train one setting on a raw (unstandardised) federation; returns the History.

    Single uses each client's own statistics, Mix the pooled ones, the federated settings
    ``settings.standardize``.
    """
    mode = {"Single": "local", "Mix": "federated"}.get(method, settings.standardize)
    fed, _ = standardize(federation, mode)
    rounds = settings.num_fedsgd_rounds if method == "FedSGD" else settings.rounds
    config = settings.config(eval_every)
    return run_federation(_strategy(method, settings), fed, config, rounds=rounds, seed=seed, device=device,
                          model=lambda: LogisticRegression(fed.num_channels), select="last", progress=False)


def run_cross(federation_all: Federation, settings: LRSettings, seed: int = 0,
              device: str | torch.device = "auto") -> list[dict]:
    """Cross rows: the Single model trained on all of client i, with its own scaler, tested on all of client j."""
    fed, scalers = standardize(federation_all, "local")
    hist = run_federation(_strategy("Single", settings), fed, settings.config(), seed=seed, device=device,
                          model=lambda: LogisticRegression(fed.num_channels), select="last", progress=False)
    rows = []
    for i, (model, scaler) in enumerate(zip(hist.site_models, scalers, strict=True)):
        deployed = Standardized(model, scaler.mean.to(model.linear.weight.device),
                                scaler.std.to(model.linear.weight.device))
        for j, site in enumerate(federation_all.to(model.linear.weight.device)):
            if i == j:
                continue
            for metric, value in evaluate(deployed, site.test, "classification", METRICS, 4096).items():
                rows.append({"method": "Cross", "site": site.name, "metric": metric, "value": float(value),
                             "split": "all", "seed": seed, "round": settings.rounds,
                             "trained_on": federation_all.site_names[i]})
    return rows


def run_comparison(make_federation: Callable[[int, float | None], Federation], settings: LRSettings,
                   seed: int = 0, device: str | torch.device = "auto",
                   methods: Sequence[str] = METHODS, num_threads: int | None = 1) -> pd.DataFrame:
    """All settings x ``settings.splits`` random splits x clients, as a tidy DataFrame.

    Args:
        make_federation: ``(split_seed, test_fraction) -> Federation`` with raw features;
            ``test_fraction=None`` must return all of each client's data as train and test (Cross).
        settings: The comparison's settings.
        seed: Base seed; split ``r`` uses split seed and training seed ``seed + r``.
        device: Compute device.
        methods: Subset of :data:`METHODS`.
        num_threads: torch CPU threads during the run (see :func:`cpu_threads`).

    Returns:
        Columns ``method, site, metric, value, split, seed, round, trained_on``; ``split`` is
        "test" (or "all" for Cross), ``seed`` identifies the repeat, ``trained_on`` the data the
        model was trained on (the site itself for Single, "pooled" for Mix, "federation" for FL).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    rows: list[dict] = []
    with cpu_threads(num_threads):
        if "Cross" in methods:
            rows += run_cross(make_federation(seed, None), settings, seed, device)
        for r in range(settings.splits):
            fed = make_federation(seed + r, settings.test_fraction)
            for method in methods:
                if method == "Cross":
                    continue
                hist = run_setting(method, fed, settings, seed + r, device)
                trained = {"Single": fed.site_names, "Mix": ["pooled"] * len(fed)}.get(method,
                                                                                      ["federation"] * len(fed))
                rows += _rows(hist, method, seed + r, trained)
    return pd.DataFrame(rows, columns=COLUMNS)


# --- communication: rounds and bytes to a target AUC --------------------------------------------
def communication_curves(federation: Federation, settings: LRSettings, seed: int = 0,
                         device: str | torch.device = "auto",
                         methods: Sequence[str] = ("FedAvg", "FedSGD"), num_threads: int | None = 1) -> pd.DataFrame:
    """Mean test AUC over clients after every round, with cumulative bytes, for each method.

    The test AUC is used here only to draw the curves of this illustration, never to pick a model.

    Returns:
        Columns ``method, round, auc, bytes, gradient_steps`` (round 0 = initial model).
    """
    out = []
    for method in methods:
        with cpu_threads(num_threads):
            hist = run_setting(method, federation, settings, seed, device, eval_every=1)
        curve = hist.to_dataframe("curve")
        curve = curve[(curve["split"] == "test") & (curve["metric"] == "auc")].groupby("round")["value"].mean()
        ledger = hist.ledger_dataframe()
        cum = np.r_[0, np.cumsum(ledger["bytes_up"].to_numpy() + ledger["bytes_down"].to_numpy())]
        steps = 1 if method == "FedSGD" else settings.local_steps
        rounds = curve.index.to_numpy()
        out.append(pd.DataFrame({"method": method, "round": rounds, "auc": curve.to_numpy(), "bytes": cum[rounds],
                                 "gradient_steps": rounds * steps}))
    return pd.concat(out, ignore_index=True)


def rounds_to_target(curves: pd.DataFrame, target_auc: float | None = None, sustained: bool = True,
                     margin: float = 0.01) -> pd.DataFrame:
    """First round (and bytes) at which each method's mean test AUC reaches ``target_auc``.

    Args:
        curves: Output of :func:`communication_curves`.
        target_auc: The target; default ``margin`` below the lower of the methods' final AUCs, so
            that every curve reaches it.
        sustained: Count the first round from which the curve *stays* at or above the target
            (default; an oscillating curve that touches the target early does not count), else the
            first round that touches it.
        margin: Distance of the default target below the lower final AUC (mini-batch noise makes
            the curves wobble by about 0.005 near convergence).

    Returns:
        One row per method: ``method, target_auc, rounds, bytes, gradient_steps`` (NaN if never reached).
    """
    if target_auc is None:
        last = curves.sort_values("round").groupby("method")["auc"].last()
        target_auc = float(last.min()) - margin
    rows = []
    for method, c in curves.groupby("method", sort=False):
        c = c.sort_values("round")
        ok = c["auc"].to_numpy() >= target_auc
        if sustained:
            ok = np.flip(np.logical_and.accumulate(np.flip(ok)))  # at or above target from here on
        hit = c[ok]
        first = hit.iloc[0] if len(hit) else None
        rows.append({"method": method, "target_auc": round(target_auc, 4),
                     "rounds": int(first["round"]) if first is not None else np.nan,
                     "bytes": int(first["bytes"]) if first is not None else np.nan,
                     "gradient_steps": int(first["gradient_steps"]) if first is not None else np.nan})
    return pd.DataFrame(rows)


# --- the paper's table layout -------------------------------------------------------------------
def load_reference(path: str | Path | None = None) -> pd.DataFrame | None:
    """The survey's Table 2 (packaged with fedlab, see :mod:`fedlab.reference`), or the CSV at ``path``."""
    if path is None:
        return read_reference(REFERENCE_FILE)
    path = Path(path)
    return pd.read_csv(path, comment="#") if path.exists() else None


def _row_label(method: str, trained_on: str) -> str:
    if method != "Cross":
        return method
    short = trained_on.replace("ADNI-", "ADNI") if trained_on.startswith("ADNI-") else trained_on
    return f"Cross ({short}-tr)"


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over splits per (client, setting, metric); Cross rows have no std.

    Returns:
        Index ``(client, method)`` in the paper's order; columns ``acc, acc_std, ..., auc, auc_std``.
    """
    df = results.copy()
    df["label"] = [_row_label(m, t) for m, t in zip(df["method"], df["trained_on"], strict=True)]
    agg = df.groupby(["site", "label", "metric"], sort=False)["value"].agg(["mean", "std"]).reset_index()
    agg.loc[agg["label"].str.startswith("Cross"), "std"] = np.nan
    wide = agg.pivot_table(index=["site", "label"], columns="metric", values=["mean", "std"], dropna=False)
    wide = wide[wide[("mean", METRICS[0])].notna()] if ("mean", METRICS[0]) in wide else wide
    table = pd.DataFrame(index=wide.index)
    for m in METRICS:
        table[m] = wide[("mean", m)]
        table[f"{m}_std"] = wide[("std", m)]
    order = {m: i for i, m in enumerate(METHODS)}
    sites = list(dict.fromkeys(results.loc[results["method"] != "Cross", "site"])) or list(
        dict.fromkeys(results["site"]))
    keys = sorted(table.index, key=lambda k: (sites.index(k[0]), order[k[1].split(" ")[0]], k[1]))
    table = table.loc[keys]
    table.index = table.index.set_names(["client", "method"])
    return table


def paper_table(results: pd.DataFrame, reference: pd.DataFrame | None = None, digits: int = 3) -> pd.DataFrame:
    """The paper's layout: "mean ± std" per metric (Cross without std), with the paper's numbers beside ours.

    Args:
        results: Output of :func:`run_comparison`.
        reference: Table 2 as read by :func:`load_reference`; ``None`` = ours only.
        digits: Decimals.

    Returns:
        Index ``(client, method)``; columns ``(METRIC, "ours")`` and, with a reference, ``(METRIC, "paper")``.
    """
    ours = summary_table(results)

    def fmt(mean: float, std: float) -> str:
        if pd.isna(mean):
            return ""
        return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"

    ref = None if reference is None else reference.set_index(["client", "method"])
    cols = {}
    for m in METRICS:
        cols[(m.upper(), "ours")] = [fmt(r[m], r[f"{m}_std"]) for _, r in ours.iterrows()]
        if ref is not None:
            cols[(m.upper(), "paper")] = [fmt(ref.loc[k, m], ref.loc[k, f"{m}_std"]) if k in ref.index else ""
                                          for k in ours.index]
    return pd.DataFrame(cols, index=ours.index)


def calibration(results: pd.DataFrame, reference: pd.DataFrame, metric: str = "acc") -> pd.DataFrame:
    """Our mean vs the paper's for every (client, setting) in both, with the difference."""
    ours = summary_table(results)[metric].rename("ours")
    ref = reference.set_index(["client", "method"])[metric].rename("paper")
    df = pd.concat([ours, ref], axis=1, join="inner")
    df["diff"] = df["ours"] - df["paper"]
    return df
