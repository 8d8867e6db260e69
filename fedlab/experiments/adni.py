"""The survey's logistic-regression comparison (Guan and Liu, section 6, Table 2) on the fedlab engine.

Six settings, each on ``config.splits`` random 80/20 splits per client (a :class:`TabularConfig`):

* **Single**: each client's model on its own training data, tested on its own test split.
* **Cross**: the Single model trained on *all* of one client, tested on *all* of another (one fixed
  model, no std, as in the paper); with more than two clients a site-by-site matrix.
* **Mix**: one model on the pooled training data (privacy-violating), tested on each client's test split.
* **FedAvg**: ``local_steps`` (the survey: 10) local mini-batch SGD iterations per round, sample-weighted
  averaging of the weights.
* **FedSGD**: one full-batch gradient per client per round, sample-weighted averaging of the gradients
  and one plain gradient step on the server (``config.lr``): full-batch gradient descent on the pooled
  objective, one step per message. ``config.num_fedsgd_rounds`` rounds (default: as many as FedAvg).
* **FedProx**: ``mu`` (the survey: 0.1) proximal weight, one local pass (epoch) of mini-batches per round.

Every setting targets the same objective, the L2-penalised logistic loss
``mean BCE + weight_decay / 2 * ||(w, b)||^2`` (:func:`fedlab.models.logistic.penalized_loss`), on its
own training data. Single, Cross and Mix are **solved to their optimum** (:func:`fit_logistic`), so
that Mix is the upper bound the survey means and Single-vs-federated is not a matter of optimiser
budget. The federated settings run the survey's protocol on the engine for the preset's budget;
:attr:`Comparison.convergence` reports how far each ends from the optimum of its objective.

Features are standardised with training statistics only: Single and Cross with the training client's
own, Mix with the pooled ones, the federated settings with ``config.standardize`` ("federated":
sample-weighted statistics aggregated from per-client sums, equal to the pooled ones; see
:mod:`fedlab.data.standardize`). The model after the last round is evaluated: no model selection on
test data.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from fedlab.config import TabularConfig
from fedlab.data.federation import Federation
from fedlab.data.standardize import standardize
from fedlab.federation.evaluation import evaluate
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import STRATEGIES
from fedlab.models.logistic import (
    LogisticRegression,
    Standardized,
    fit_logistic,
    penalized_loss,
    smoothness_constant,
)
from fedlab.reference import read_reference
from fedlab.reproducibility import cpu_threads, select_device

METHODS: tuple[str, ...] = ("Cross", "Single", "Mix", "FedAvg", "FedSGD", "FedProx")
FEDERATED: tuple[str, ...] = ("FedAvg", "FedSGD", "FedProx")
METRICS: tuple[str, ...] = ("acc", "sen", "spe", "auc")
COLUMNS = ["method", "site", "metric", "value", "split", "seed", "round", "trained_on", "n_pos", "n_neg"]
CONVERGENCE_COLUMNS = ["method", "seed", "rounds", "objective", "optimum", "gap", "relative_distance"]
REFERENCE_FILE = "adni_table2.csv"
#: A metric computed on a test set with fewer cases of a class it depends on is flagged unreliable.
MIN_CLASS_CASES = 5
#: Which test-set classes each metric depends on (SEN: positives, SPE: negatives, AUC: both).
METRIC_CLASSES = {"acc": (), "sen": ("n_pos",), "spe": ("n_neg",), "auc": ("n_pos", "n_neg")}


@dataclass
class Comparison:
    """What :func:`run_comparison` returns.

    Attributes:
        results: Tidy rows ``method, site, metric, value, split, seed, round, trained_on, n_pos, n_neg``
            (``n_pos`` / ``n_neg``: the test set's class counts).
        convergence: One row per federated setting and split: the penalised training objective of the
            final global model, the optimum of the same objective (solved exactly), their difference
            ``gap`` and ``relative_distance`` ``||theta - theta*|| / ||theta*||``.
    """

    results: pd.DataFrame
    convergence: pd.DataFrame




def make_strategy(method: str, config: TabularConfig):
    """The engine strategy of a federated setting, with the survey's protocol.

    FedAvg: ``config.local_steps`` local iterations. FedSGD: full-batch gradients and a plain server
    gradient step of ``config.lr``. FedProx: ``config.mu`` and one local pass (epoch) per round
    (``config.fedprox_steps`` overrides it).
    """
    if method == "FedAvg":
        return STRATEGIES["FedAvg"]()
    if method == "FedSGD":
        return STRATEGIES["FedSGD"](server_optimizer="sgd", server_lr=config.lr)
    if method == "FedProx":
        return STRATEGIES["FedProx"](mu=config.mu, local_steps=config.fedprox_steps)
    raise ValueError(f"{method!r} is not a federated setting; choose one of {list(FEDERATED)}")


@dataclass
class Trained:
    """One trained setting on one split: the model serving each site and the data it is tested on.

    Attributes:
        models: One model per site (federation order), mapping standardised features to logits.
        federation: The standardised federation the models were trained and are tested on.
        rounds: Communication rounds (0 for the settings solved in one place).
        history: The engine's History (federated settings only).
    """

    models: list[nn.Module]
    federation: Federation
    rounds: int
    history: object | None = None


def _pooled_train(federation: Federation) -> tuple[torch.Tensor, torch.Tensor]:
    """All sites' training features ``(N, F)`` and labels ``(N,)``, concatenated."""
    return torch.cat([s.train.x for s in federation]), torch.cat([s.train.y for s in federation])


def train_setting(method: str, federation: Federation, config: TabularConfig, seed: int = 0,
                  device: str | torch.device = "auto", eval_every: int | None = None) -> Trained:
    """Train one setting (not Cross) on a raw (unstandardised) federation.

    Args:
        method: "Single", "Mix" or one of :data:`FEDERATED`.
        federation: Raw features; standardised here with training statistics only.
        config: The comparison's settings.
        seed: Training seed (mini-batch order of the federated settings; Single and Mix are exact).
        device: Compute device.
        eval_every: Federated settings: evaluate every this many rounds (curves); default only round 0
            and the last.
    """
    device = select_device(device)
    if method == "Single":
        fed, _ = standardize(federation, "local")
        fed = fed.to(device)
        models = [fit_logistic(s.train.x, s.train.y, config.weight_decay) for s in fed]
        return Trained(models, fed, 0)
    if method == "Mix":
        fed, _ = standardize(federation, "federated")
        fed = fed.to(device)
        model = fit_logistic(*_pooled_train(fed), config.weight_decay)
        return Trained([model] * len(fed), fed, 0)
    fed, _ = standardize(federation, config.standardize)
    rounds = config.num_fedsgd_rounds if method == "FedSGD" else config.rounds
    run_config = config.replace(eval_every=eval_every) if eval_every else config
    hist = run_federation(make_strategy(method, config), fed, run_config, rounds=rounds, seed=seed, device=device,
                          model=lambda: LogisticRegression(fed.num_channels), select="last", progress=False,
                          final_metrics=METRICS)
    return Trained(list(hist.site_models), fed.to(device), rounds, hist)


def _score_rows(trained: Trained, method: str, seed: int, trained_on: Sequence[str], split: str = "test",
                batch_size: int = 4096) -> list[dict]:
    """Test ACC, SEN, SPE, AUC of each site's model (the engine's final evaluation when there is one)."""
    final = None
    if trained.history is not None:
        df = trained.history.to_dataframe("final")
        final = df.set_index(["site", "metric"])["value"]
    rows = []
    for model, site, origin in zip(trained.models, trained.federation, trained_on, strict=True):
        y = site.test.y
        n_pos = int((y > 0.5).sum())
        if final is not None:
            scores = {m: float(final[(site.name, m)]) for m in METRICS}
        else:
            scores = evaluate(model, site.test, "classification", METRICS, batch_size)
        for metric, value in scores.items():
            rows.append({"method": method, "site": site.name, "metric": metric, "value": float(value), "split": split,
                         "seed": seed, "round": trained.rounds, "trained_on": origin, "n_pos": n_pos,
                         "n_neg": len(y) - n_pos})
    return rows


def _flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])


def _objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor, weight_decay: float) -> float:
    """The penalised training objective of ``model`` in float64 (the model is not changed)."""
    with torch.no_grad():
        return float(penalized_loss(copy.deepcopy(model).double(), x.double(), y.double(), weight_decay))


def _convergence_rows(trained: dict[str, Trained], optimum: nn.Module, config: TabularConfig,
                      seed: int) -> list[dict]:
    """Distance of each federated setting's final global model from the exact optimum of its objective."""
    rows = []
    for method, t in trained.items():
        x, y = _pooled_train(t.federation)  # the federated objective: sum_k n_k/n F_k = the pooled mean loss
        f, f_opt = _objective(t.models[0], x, y, config.weight_decay), _objective(optimum, x, y, config.weight_decay)
        theta, star = _flat(t.models[0]), _flat(optimum)
        rows.append({"method": method, "seed": seed, "rounds": t.rounds, "objective": f, "optimum": f_opt,
                     "gap": f - f_opt, "relative_distance": float((theta - star).norm() / star.norm())})
    return rows


def run_cross(federation_all: Federation, config: TabularConfig, seed: int = 0,
              device: str | torch.device = "auto") -> list[dict]:
    """Cross rows: the Single model solved on all of client i, with its own scaler, tested on all of client j."""
    device = select_device(device)
    fed, scalers = standardize(federation_all, "local")
    raw = federation_all.to(device)
    rows = []
    for i, (site_i, scaler) in enumerate(zip(fed.to(device), scalers, strict=True)):
        model = fit_logistic(site_i.train.x, site_i.train.y, config.weight_decay)
        deployed = Standardized(model, scaler.mean.to(device), scaler.std.to(device))
        for j, site in enumerate(raw):
            if i == j:
                continue
            n_pos = int((site.test.y > 0.5).sum())
            for metric, value in evaluate(deployed, site.test, "classification", METRICS, 4096).items():
                rows.append({"method": "Cross", "site": site.name, "metric": metric, "value": float(value),
                             "split": "all", "seed": seed, "round": 0, "trained_on": raw.site_names[i],
                             "n_pos": n_pos, "n_neg": len(site.test) - n_pos})
    return rows


def run_comparison(make_federation: Callable[[int, float | None], Federation], config: TabularConfig,
                   seed: int = 0, device: str | torch.device = "auto", methods: Sequence[str] = METHODS,
                   num_threads: int | None = 1) -> Comparison:
    """All settings x ``config.splits`` random splits x clients.

    Args:
        make_federation: ``(split_seed, test_fraction) -> Federation`` with raw features;
            ``test_fraction=None`` must return all of each client's data as train and test (Cross).
        config: The comparison's settings (:func:`fedlab.config.get_config` with ``family="tabular"``).
        seed: Base seed; split ``r`` uses split seed and training seed ``seed + r``.
        device: Compute device.
        methods: Subset of :data:`METHODS`.
        num_threads: torch CPU threads during the run (see :func:`cpu_threads`; ``None`` = unchanged).

    Returns:
        A :class:`Comparison`. In ``results``, ``split`` is "test" (or "all" for Cross), ``seed``
        identifies the repeat, ``trained_on`` the data the model was trained on (the site itself for
        Single, "pooled" for Mix, "federation" for the federated settings, the training site for Cross).
    """
    if not isinstance(config, TabularConfig):
        raise TypeError(f"config must be a TabularConfig (fedlab.get_config(preset, family='tabular')), "
                        f"got {type(config).__name__}")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    rows: list[dict] = []
    convergence: list[dict] = []
    with cpu_threads(num_threads):
        if "Cross" in methods:
            rows += run_cross(make_federation(seed, None), config, seed, device)
        for r in range(config.splits):
            fed = make_federation(seed + r, config.test_fraction)
            federated: dict[str, Trained] = {}
            for method in methods:
                if method == "Cross":
                    continue
                trained = train_setting(method, fed, config, seed + r, device)
                origin = {"Single": fed.site_names, "Mix": ["pooled"] * len(fed)}.get(method,
                                                                                   ["federation"] * len(fed))
                rows += _score_rows(trained, method, seed + r, origin)
                if method in FEDERATED:
                    federated[method] = trained
            if federated:
                target = next(iter(federated.values())).federation
                optimum = fit_logistic(*_pooled_train(target), config.weight_decay)
                convergence += _convergence_rows(federated, optimum, config, seed + r)
    return Comparison(pd.DataFrame(rows, columns=COLUMNS), pd.DataFrame(convergence, columns=CONVERGENCE_COLUMNS))


def run_over_cohorts(make_cohort: Callable[[int], Callable[[int, float | None], Federation]], config: TabularConfig,
                     cohorts: Sequence[int], device: str | torch.device = "auto", methods: Sequence[str] = METHODS,
                     num_threads: int | None = 1) -> pd.DataFrame:
    """:func:`run_comparison` on several synthetic cohorts (one draw of subjects each).

    Args:
        make_cohort: ``cohort_seed -> make_federation`` (as :func:`run_comparison` takes it).
        config: The comparison's settings.
        cohorts: Cohort seeds; cohort ``c`` uses split and training seeds ``c + r``.
        device: Compute device.
        methods: Settings to run.
        num_threads: torch CPU threads.

    Returns:
        The concatenated ``results`` with a ``cohort`` column.
    """
    out = [run_comparison(make_cohort(c), config, seed=c, device=device, methods=methods,
                          num_threads=num_threads).results.assign(cohort=c) for c in cohorts]
    return pd.concat(out, ignore_index=True)


def step_size_check(federation: Federation, config: TabularConfig) -> dict[str, float]:
    """The smoothness constant ``L`` of the pooled objective (federated statistics) against ``config.lr``.

    Gradient descent decreases the objective at every step for ``lr <= 1 / L`` and may diverge beyond
    ``2 / L`` (:func:`fedlab.models.logistic.smoothness_constant`).

    Returns:
        ``{"L", "lr", "lr_times_L", "one_over_L"}``.
    """
    fed, _ = standardize(federation, "federated")
    big_l = smoothness_constant(_pooled_train(fed)[0], config.weight_decay)
    return {"L": big_l, "lr": config.lr, "lr_times_L": config.lr * big_l, "one_over_L": 1.0 / big_l}


# --- communication: rounds and bytes to a target ------------------------------------------------
def communication_curves(federation: Federation, config: TabularConfig, seed: int = 0,
                         device: str | torch.device = "auto", methods: Sequence[str] = ("FedAvg", "FedSGD"),
                         rounds: int | None = None, points: int = 16, num_threads: int | None = 1) -> pd.DataFrame:
    """Distance to the optimum, test AUC and bytes sent after a log-spaced set of rounds, for each method.

    The engine keeps no per-round models, so the run is repeated for each number of rounds ``r`` of the grid;
    a run of ``r`` rounds is exactly the first ``r`` rounds of a longer run with the same seed (nothing in
    FedAvg or FedSGD depends on the total). The objective gap is ``F(theta_r) - F(theta*)`` on the pooled
    training data (the federated objective), ``theta*`` its exact optimum. The test AUC only illustrates; no
    model is selected on it.

    Args:
        federation: Raw features (one split).
        config: The comparison's settings.
        seed: Training seed.
        device: Compute device.
        methods: Federated settings to trace.
        rounds: Last round (default ``config.rounds * config.local_steps``, long enough for FedSGD).
        points: Number of log-spaced rounds between 1 and ``rounds``.
        num_threads: torch CPU threads.

    Returns:
        Columns ``method, round, gap, auc, bytes, gradient_steps`` (round 0 = the zero initial model).
    """
    rounds = rounds or config.rounds * config.local_steps
    grid = np.unique(np.round(np.geomspace(1, rounds, points)).astype(int))
    fed, _ = standardize(federation, config.standardize)
    x, y = _pooled_train(fed)
    optimum = _objective(fit_logistic(x, y, config.weight_decay), x, y, config.weight_decay)
    zero = _objective(LogisticRegression(fed.num_channels), x, y, config.weight_decay)
    out = []
    with cpu_threads(num_threads):
        for method in methods:
            steps = 1 if method == "FedSGD" else config.local_steps
            out.append({"method": method, "round": 0, "gap": zero - optimum, "auc": 0.5, "bytes": 0,
                        "gradient_steps": 0})
            for r in grid:
                t = train_setting(method, federation, config.replace(rounds=int(r), fedsgd_rounds=int(r)), seed,
                                  device)
                ledger = t.history.ledger_dataframe()
                final = t.history.to_dataframe("final")
                out.append({"method": method, "round": int(r),
                            "gap": _objective(t.models[0], x, y, config.weight_decay) - optimum,
                            "auc": float(final.loc[final["metric"] == "auc", "value"].mean()),
                            "bytes": int((ledger["bytes_up"] + ledger["bytes_down"]).sum()),
                            "gradient_steps": int(r) * steps})
    return pd.DataFrame(out)


def rounds_to_target(curves: pd.DataFrame, target: float | None = None, metric: str = "gap",
                     sustained: bool = True, margin: float = 0.01) -> pd.DataFrame:
    """First round (and bytes) from which each method's curve reaches ``target``.

    Args:
        curves: Output of :func:`communication_curves` (columns ``method, round, bytes, gradient_steps`` and
            ``metric``).
        target: The target; default: for ``metric="gap"`` the largest final gap of the methods (every
            curve reaches it), for ``metric="auc"`` ``margin`` below the lowest final AUC.
        metric: "gap" (lower is better) or "auc" (higher is better).
        sustained: Count the first round from which the curve *stays* at the target (default; a curve
            that touches it early and leaves again does not count), else the first round that touches it.
        margin: Distance of the default AUC target below the lowest final AUC.

    Returns:
        One row per method: ``method, metric, target, rounds, bytes, gradient_steps`` (NaN if never reached).
    """
    if metric not in ("gap", "auc"):
        raise ValueError(f"metric must be 'gap' or 'auc', got {metric!r}")
    last = curves.sort_values("round").groupby("method")[metric].last()
    if target is None:
        target = float(last.max()) if metric == "gap" else float(last.min()) - margin
    rows = []
    for method, c in curves.groupby("method", sort=False):
        c = c.sort_values("round")
        values = c[metric].to_numpy()
        ok = values <= target * (1 + 1e-9) if metric == "gap" else values >= target
        if sustained:
            ok = np.flip(np.logical_and.accumulate(np.flip(ok)))  # at the target from here on
        hit = c[ok]
        first = hit.iloc[0] if len(hit) else None
        rows.append({"method": method, "metric": metric, "target": target,
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


def row_label(method: str, trained_on: str) -> str:
    """The table's row label: the method, and for Cross the training client (``Cross (ADNI1-tr)``)."""
    if method != "Cross":
        return method
    short = trained_on.replace("ADNI-", "ADNI") if trained_on.startswith("ADNI-") else trained_on
    return f"Cross ({short}-tr)"


def summary_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over splits per (client, setting, metric); Cross rows have no std.

    Undefined values (NaN, e.g. the AUC of a test set with one class) are left out of the mean and
    counted in ``{metric}_undefined``.

    Returns:
        Index ``(client, method)`` in the paper's order; columns ``acc, acc_std, ..., auc, auc_std``,
        the smallest test class counts over the splits ``n_pos``, ``n_neg``, and ``{metric}_unreliable``
        (True when the metric depends on a class with fewer than :data:`MIN_CLASS_CASES` test cases).
    """
    df = results.copy()
    df["label"] = [row_label(m, t) for m, t in zip(df["method"], df["trained_on"], strict=True)]
    agg = df.groupby(["site", "label", "metric"], sort=False)["value"].agg(["mean", "std", "size", "count"])
    agg = agg.reset_index()
    agg.loc[agg["label"].str.startswith("Cross"), "std"] = np.nan
    agg["undefined"] = agg["size"] - agg["count"]
    wide = agg.pivot_table(index=["site", "label"], columns="metric", values=["mean", "std", "undefined"],
                           dropna=False, aggfunc="first")
    wide = wide.reindex(columns=pd.MultiIndex.from_product([["mean", "std", "undefined"], METRICS]))  # absent: NaN
    counts = df.groupby(["site", "label"])[["n_pos", "n_neg"]].min()
    keep = [k for k in wide.index if k in counts.index]
    table = pd.DataFrame(index=pd.MultiIndex.from_tuples(keep))
    for m in METRICS:
        table[m] = wide.loc[keep, ("mean", m)].to_numpy(dtype=float)
        table[f"{m}_std"] = wide.loc[keep, ("std", m)].to_numpy(dtype=float)
    table[["n_pos", "n_neg"]] = counts.loc[keep].to_numpy()
    for m in METRICS:
        needed = METRIC_CLASSES[m]
        table[f"{m}_unreliable"] = (table[list(needed)].min(axis=1) < MIN_CLASS_CASES) if needed else False
        table[f"{m}_undefined"] = wide.loc[keep, ("undefined", m)].fillna(0).to_numpy(dtype=int)
    order = {m: i for i, m in enumerate(METHODS)}
    sites = list(dict.fromkeys(results.loc[results["method"] != "Cross", "site"])) or list(
        dict.fromkeys(results["site"]))
    keys = sorted(table.index, key=lambda k: (sites.index(k[0]), order[k[1].split(" ")[0]], k[1]))
    table = table.loc[keys]
    table.index = table.index.set_names(["client", "method"])
    return table


UNRELIABLE_MARK = " †"


def paper_table(results: pd.DataFrame, reference: pd.DataFrame | None = None, digits: int = 3) -> pd.DataFrame:
    """The paper's layout: "mean ± std" per metric (Cross without std), with the paper's numbers beside ours.

    A metric computed on test sets with fewer than :data:`MIN_CLASS_CASES` cases of a class it depends
    on is marked with a dagger (†): it is too unreliable to compare.

    Args:
        results: :attr:`Comparison.results`.
        reference: Table 2 as read by :func:`load_reference`; ``None`` = ours only.
        digits: Decimals.

    Returns:
        Index ``(client, method)``; columns ``(METRIC, "ours")`` and, with a reference, ``(METRIC, "paper")``,
        then ``("test cases", "AD/NC")``-style class counts ``("test n", "pos/neg")``.
    """
    ours = summary_table(results)

    def fmt(mean: float, std: float) -> str:
        if pd.isna(mean):
            return "undefined"
        return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"

    ref = None if reference is None else reference.set_index(["client", "method"])
    cols = {}
    for m in METRICS:
        cols[(m.upper(), "ours")] = [fmt(r[m], r[f"{m}_std"]) + (UNRELIABLE_MARK if r[f"{m}_unreliable"] else "")
                                     for _, r in ours.iterrows()]
        if ref is not None:
            cols[(m.upper(), "paper")] = [fmt(ref.loc[k, m], ref.loc[k, f"{m}_std"]) if k in ref.index else ""
                                          for k in ours.index]
    cols[("test cases", "pos/neg")] = [f"{int(r['n_pos'])}/{int(r['n_neg'])}" for _, r in ours.iterrows()]
    return pd.DataFrame(cols, index=ours.index)


def class_counts(federation: Federation) -> pd.DataFrame:
    """Per site: training and test class counts (positives = class 1), and whether a test class is too small.

    Returns:
        Index ``site``; columns ``train_pos, train_neg, test_pos, test_neg, small_test_class`` (True when a
        test class has fewer than :data:`MIN_CLASS_CASES` cases, which makes SEN, SPE or AUC unreliable).
    """
    rows = []
    for s in federation:
        tr, te = int((s.train.y > 0.5).sum()), int((s.test.y > 0.5).sum())
        rows.append({"site": s.name, "train_pos": tr, "train_neg": len(s.train) - tr, "test_pos": te,
                     "test_neg": len(s.test) - te,
                     "small_test_class": min(te, len(s.test) - te) < MIN_CLASS_CASES})
    return pd.DataFrame(rows).set_index("site")


ROLES = {"Single": "fitted", "Cross": "fitted", "Mix": "predicted", "FedAvg": "predicted",
         "FedSGD": "predicted", "FedProx": "predicted"}


def calibration(results: pd.DataFrame, reference: pd.DataFrame, metrics: Sequence[str] = ("acc", "auc")
                ) -> pd.DataFrame:
    """Our mean vs the paper's for every (client, setting) in both, with the difference.

    The ``role`` column says whether the synthetic cohort was calibrated on that row ("fitted":
    Single and Cross) or the row is a prediction of the calibrated cohort ("predicted").
    """
    ours = summary_table(results)
    ref = reference.set_index(["client", "method"])
    df = pd.DataFrame(index=ours.index.intersection(ref.index))
    df["role"] = [ROLES[k[1].split(" ")[0]] for k in df.index]
    for m in metrics:
        df[f"{m}_ours"] = ours.loc[df.index, m]
        df[f"{m}_paper"] = ref.loc[df.index, m]
        df[f"{m}_diff"] = df[f"{m}_ours"] - df[f"{m}_paper"]
    return df


# --- orderings, stated with their spread -----------------------------------------------------------
def paired_differences(results: pd.DataFrame, better: str, worse: str, metric: str = "acc") -> pd.DataFrame:
    """``better - worse`` per client: mean and std over the splits of the paired (same split) differences.

    Cross has one value per client (no splits): it is compared with each split's value of the other setting.

    Returns:
        Index ``client``; columns ``mean, std, splits, wins`` (``wins``: splits where ``better`` is ahead).
    """
    df = results[results["metric"] == metric]
    rows = []
    for site in dict.fromkeys(df.loc[df["method"] != "Cross", "site"]):
        a = df[(df["method"] == better) & (df["site"] == site)].set_index("seed")["value"]
        b = df[(df["method"] == worse) & (df["site"] == site)].set_index("seed")["value"]
        if a.empty or b.empty:
            continue
        if better == "Cross" or worse == "Cross":
            diff = (a.iloc[0] - b) if better == "Cross" else (a - b.iloc[0])
        else:
            diff = (a - b).dropna()
        rows.append({"client": site, "mean": float(diff.mean()), "std": float(diff.std()) if len(diff) > 1 else np.nan,
                     "splits": len(diff), "wins": int((diff > 0).sum())})
    return pd.DataFrame(rows).set_index("client") if rows else pd.DataFrame(columns=["mean", "std", "splits", "wins"])


#: The survey's orderings that the lesson checks (better, worse, clients).
ORDERINGS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("Mix", "Single", None), ("FedAvg", "Single", None), ("Single", "Cross", None), ("FedAvg", "FedSGD", ("ADNI-1",)),
)


def ordering_table(results: pd.DataFrame, metric: str = "acc",
                   orderings: Sequence[tuple[str, str, tuple[str, ...] | None]] = ORDERINGS) -> pd.DataFrame:
    """Each ordering as measured: paired difference, its spread, and a verdict.

    The verdict is "holds" when the mean difference is positive and larger than its standard
    deviation over the splits, "within spread" when it is positive but not, "reversed" when it is
    negative and larger than the spread, and "reversed, within spread" otherwise.

    Returns:
        One row per (ordering, client): ``claim, client, mean, std, wins, splits, verdict``.
    """
    rows = []
    for better, worse, clients in orderings:
        diffs = paired_differences(results, better, worse, metric)
        for client, r in diffs.iterrows():
            if clients is not None and client not in clients:
                continue
            spread = 0.0 if pd.isna(r["std"]) else r["std"]
            if r["mean"] > 0:
                verdict = "holds" if r["mean"] > spread else "within spread"
            else:
                verdict = "reversed" if -r["mean"] > spread else "reversed, within spread"
            rows.append({"claim": f"{better} > {worse}", "client": client, "mean": r["mean"], "std": r["std"],
                         "wins": int(r["wins"]), "splits": int(r["splits"]), "verdict": verdict})
    return pd.DataFrame(rows, columns=["claim", "client", "mean", "std", "wins", "splits", "verdict"])


def describe_difference(row: pd.Series, metric: str = "ACC") -> str:
    """One sentence for a row of :func:`ordering_table`, e.g. "on ADNI-1, Mix beats Single by 0.012 ACC
    (std 0.020 over 5 splits, ahead in 3 of 5): within the split-to-split spread"."""
    better, worse = row["claim"].split(" > ")
    sign = "beats" if row["mean"] > 0 else "trails"
    spread = "" if pd.isna(row["std"]) else f"std {row['std']:.3f} over {row['splits']} splits, "
    tail = {"holds": "larger than the split-to-split spread",
            "within spread": "within the split-to-split spread, so not a clear win",
            "reversed": "the survey's ordering is reversed here, by more than the spread",
            "reversed, within spread": "reversed, but within the split-to-split spread"}[row["verdict"]]
    return (f"on {row['client']}, {better} {sign} {worse} by {abs(row['mean']):.3f} {metric} "
            f"({spread}ahead in {row['wins']} of {row['splits']}): {tail}")


# --- FLamby's Fed-Heart-Disease numbers (UCI Heart Disease, four hospitals) ------------------------
FLAMBY_FILE = "flamby_heart_disease.csv"


def load_flamby_reference() -> pd.DataFrame:
    """FLamby's published Fed-Heart-Disease test accuracies (see :mod:`fedlab.reference`)."""
    return read_reference(FLAMBY_FILE)


def flamby_table(results: pd.DataFrame, reference: pd.DataFrame | None = None, digits: int = 3) -> pd.DataFrame:
    """Our UCI accuracies beside FLamby's, per client and setting (Single, Mix, FedAvg, FedProx).

    FLamby's rows: "Local k" tested on client k's test set = Single; "Pooled Training" = Mix; "FedAvg" and
    "FedProx"; each the mean ± std over FLamby's five training seeds on its one fixed split. FLamby tests every
    model on a hospital's test set standardised with that hospital's own training statistics (its per-client
    data loaders), its pooled model included, which was trained on pooled statistics; fedlab tests Mix with
    the pooled statistics it was trained with.

    Returns:
        Index ``(client, method)``; columns ``ours``, ``FLamby`` (formatted), ``ours_acc``, ``flamby_acc``.
    """
    reference = load_flamby_reference() if reference is None else reference
    ours = summary_table(results[results["method"] != "Cross"])
    ref = reference.set_index(["client", "method"])
    idx = [k for k in ours.index if k in ref.index]
    out = pd.DataFrame(index=pd.MultiIndex.from_tuples(idx, names=["client", "method"]))

    def fmt(mean: float, std: float) -> str:
        return f"{mean:.{digits}f}" if pd.isna(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"

    out["ours"] = [fmt(ours.loc[k, "acc"], ours.loc[k, "acc_std"]) for k in idx]
    out["FLamby"] = [fmt(ref.loc[k, "acc"], ref.loc[k, "acc_std"]) for k in idx]
    out["ours_acc"] = [float(ours.loc[k, "acc"]) for k in idx]
    out["flamby_acc"] = [float(ref.loc[k, "acc"]) for k in idx]
    return out
