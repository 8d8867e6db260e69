"""run_federation: the round loop shared by every lesson.

Round 0 is the initial model. Each round ``r`` (see :mod:`fedlab.federation.strategies.base`):

1. ``strategy.configure(r, state, clients)`` -> one message per selected site (bytes down);
2. each site: ``strategy.client_update(client, message, r)`` -> its reply (bytes up);
3. ``state = strategy.aggregate(r, replies, state)``;
4. every ``eval_every`` rounds and at the last round, each site receives what it serves
   (``configure_evaluate``) and its model is scored on its validation and test splits.

The server state is a value threaded through the loop; every site's private state lives in its
:class:`~fedlab.federation.client.Client`. With ``checkpoint_dir`` both are written every
``config.checkpoint_every`` rounds (and at the last round), safely and atomically
(:mod:`fedlab.federation.checkpoint`); a rerun with the same identity resumes from the last
checkpoint with results identical to an uninterrupted run.

Model selection never looks at the test split: with ``select="val"`` each site keeps the model of
the round with its best validation score; with ``select="last"`` the final model. A strategy whose
``finish`` does its own validation-based selection (``finish_selects``, e.g. FT) keeps the finished model.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from fedlab.config import Config, get_config
from fedlab.data.federation import Federation, FederationSpec, Site
from fedlab.federation.cache import RunCache, model_fingerprint, run_key
from fedlab.federation.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from fedlab.federation.client import Client
from fedlab.federation.evaluation import CURVE_METRICS, FULL_METRICS, SELECTION_METRIC, evaluate
from fedlab.federation.history import History
from fedlab.federation.identity import run_identity
from fedlab.federation.messages import Message, Reply
from fedlab.federation.strategies.base import ServerState, Strategy
from fedlab.models.logistic import LogisticRegression
from fedlab.models.unet import build_unet
from fedlab.progress import progress_bar
from fedlab.reproducibility import select_device

__all__ = ["CHECKPOINT_NAME", "build_network", "default_model", "deliver", "evaluate_site_round", "initial_model",
           "kept_model", "run_federation", "run_round", "setup_run"]


def default_model(federation: Federation | FederationSpec, config: Config) -> nn.Module:
    """The preset's U-Net for segmentation; :class:`~fedlab.models.LogisticRegression` for classification."""
    if federation.task == "segmentation":
        return build_unet(federation.num_channels, federation.num_labels, config)
    return LogisticRegression(federation.num_channels)


def initial_model(federation: Federation | FederationSpec, config: Config, seed: int,
                  model: nn.Module | Callable[[], nn.Module] | None = None) -> nn.Module:
    """Build the round-0 model reproducibly (its initialisation is seeded by ``seed`` alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model is None:
            return default_model(federation, config)
        return model() if callable(model) and not isinstance(model, nn.Module) else copy.deepcopy(model)


def run_federation(
    strategy: Strategy,
    federation: Federation,
    config: Config | None = None,
    *,
    rounds: int | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    model: nn.Module | Callable[[], nn.Module] | None = None,
    select: str = "auto",
    checkpoint_dir: str | Path | None = None,
    resume: bool = True,
    progress: bool | None = None,
    log_every: int = 0,
    verbose: bool = False,
    final_metrics: tuple[str, ...] | None = None,
    scoring: dict | None = None,
    cache: RunCache | None = None,
) -> History:
    """Simulate federated training of ``strategy`` on ``federation``.

    Args:
        strategy: What clients do and how the server aggregates (e.g. ``FedAvg()``).
        federation: The sites; moved to ``device`` once, for the whole run.
        config: Run settings; default the ``$FEDLAB_PRESET`` / classroom preset.
        rounds: Communication rounds (default ``config.rounds``); given to the strategy once.
        seed: Seeds the initial model and every client's generator.
        device: "auto" (CUDA if available), "cpu", "cuda", ...
        model: Initial model (copied) or a factory; default ``strategy.model_factory(federation, config)``
            when it gives one (FedBN's BatchNorm U-Net), else the preset's U-Net / logistic regression.
        select: "val" (keep each site's best-validation round), "last", or "auto" ("val" when every
            site has a validation split, else "last").
        checkpoint_dir: Where to write ``checkpoint.pt`` every ``config.checkpoint_every`` rounds (and at
            the last round).
        resume: Continue from an existing checkpoint of the same run in ``checkpoint_dir``.
        progress: Show a progress bar (default: on unless tqdm's own ``TQDM_DISABLE=1`` is set).
        log_every: Print a one-line summary, naming the method, every this many rounds (0 = never).
        verbose: Print one line at the end naming the method, its time and its site-mean scores
            (what stays readable in a saved notebook once the progress bar is gone).
        final_metrics: Metrics of the final evaluation (default: all of the task's).
        scoring: Options of the final evaluation (:func:`~fedlab.federation.evaluation.evaluate`'s ``per``,
            ``spacing``, ``hd95``, ``postprocess``), e.g. ``{"per": "volume"}`` to score each case's slices as one
            3-D volume; recorded in ``history.info["scoring"]``. Curves and model selection are per image.
        cache: A :class:`~fedlab.federation.cache.RunCache`: a run it already holds is returned without
            training (same History, same models); a new run is stored in it when finished, and, with
            ``config.checkpoint_every`` set and no ``checkpoint_dir``, checkpointed inside it.

    Returns:
        The run's :class:`History`, with the kept per-site models in ``history.site_models`` and the
        last round's in ``history.last_models``.
    """
    config = config or get_config()
    rounds = config.rounds if rounds is None else rounds
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    device = select_device(device)
    task = federation.task
    has_val = all(s.val is not None and len(s.val) for s in federation)
    if select == "auto":
        select = "val" if has_val else "last"
    if select not in ("val", "last"):
        raise ValueError(f"select must be 'val', 'last' or 'auto', got {select!r}")
    if select == "val" and not has_val:
        raise ValueError("select='val' needs a validation split at every site; add one "
                         "(fedlab.data.partition.train_val_split) or use select='last'.")
    tic_run = time.perf_counter()

    fed, clients, state = setup_run(strategy, federation, config, rounds=rounds, seed=seed, device=device,
                                    model=model)
    indices = [c.index for c in clients]
    key = None
    if cache is not None and cache.enabled:
        key = run_key(run_identity(strategy.describe(), federation, config, seed, rounds, code=True),
                      select=select, final_metrics=final_metrics, scoring=scoring,
                      model=model_fingerprint(clients[0].model))
        hit = cache.load(key)
        if hit is not None:
            history = hit["history"]
            models = strategy.site_models(clients)
            history.site_models = [_with_state(m, s) for m, s in zip(models, hit["site_models"], strict=True)]
            history.last_models = [_with_state(m, s) for m, s in zip(models, hit["last_models"], strict=True)]
            if verbose:
                print(_summary_line(history) + " (from the run cache)")
            return history
        if checkpoint_dir is None and config.checkpoint_every:
            checkpoint_dir = cache.checkpoint_dir(key)
    history = History(method=strategy.name, sites=fed.site_names, seed=seed,
                      info={"strategy": strategy.describe(), "select": select, "rounds": rounds})
    best: list[tuple[float, int, dict] | None] = [None] * len(fed)
    start = 0

    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    identity = run_identity(strategy.describe(), federation, config, seed, rounds) if ckpt_path else {}
    if ckpt_path is not None and resume and ckpt_path.exists():
        saved = load_checkpoint(ckpt_path, identity, device)
        start, state, best = saved["round"], saved["state"], saved["best"]
        history = History.from_state_dict(saved["history"])
        for c, s in zip(clients, saved["clients"], strict=True):
            c.load_state_dict(s)
    else:  # round 0: the initial model
        _evaluate_round(strategy, clients, fed, history, best, 0, select, config)

    switch = {} if progress is None else {"disable": not progress}  # None: tqdm reads $TQDM_DISABLE itself
    bar = progress_bar(range(start + 1, rounds + 1), desc=strategy.name, leave=False, mininterval=1.0, initial=start,
               total=rounds, **switch)
    for rnd in bar:
        tic = time.perf_counter()
        state, replies, messages = run_round(strategy, clients, state, rnd)
        loss = torch.stack([r.loss for r in replies]).mean().item() if replies else float("nan")  # one sync/round
        history.ledger.append({"round": rnd, "bytes_up": sum(r.message.nbytes for r in replies),
                               "bytes_down": sum(m.nbytes for m in messages.values()),
                               "train_loss": loss, "seconds": time.perf_counter() - tic})
        if rnd % config.eval_every == 0 or rnd == rounds:
            deliver(strategy, clients, strategy.configure_evaluate(rnd, state, indices))
            _evaluate_round(strategy, clients, fed, history, best, rnd, select, config)
        if log_every and rnd % log_every == 0:
            bar.write(_log_line(history, rnd, rounds))
        if ckpt_path is not None and config.checkpoint_every and (rnd % config.checkpoint_every == 0 or rnd == rounds):
            payload = {"round": rnd, "state": state, "clients": [c.state_dict() for c in clients],
                       "history": history.state_dict(), "best": best}
            save_checkpoint(ckpt_path, payload, identity)
    bar.close()

    facts = strategy.finish(clients, state)
    if facts:
        history.info["finish"] = facts
    models = strategy.site_models(clients)
    history.last_models = [copy.deepcopy(m) for m in models]
    kept = []
    for k, site in enumerate(fed):
        use_best = select == "val" and not strategy.finish_selects
        m, history.selected_round[site.name] = kept_model(models[k], best[k] if use_best else None, rounds)
        kept.append(m)
        scores = evaluate(m, site.test, task, final_metrics or FULL_METRICS[task], config.eval_batch_size,
                          **(scoring or {}))
        for metric, value in scores.items():
            history.record(site.name, metric, value, "test", history.selected_round[site.name], stage="final")
    history.site_models = kept
    history.info["scoring"] = dict(scoring or {})
    history.info["seconds"] = round(time.perf_counter() - tic_run, 2)
    if key is not None:
        cache.save(key, history, history.site_models, history.last_models)
    if verbose:
        print(_summary_line(history))
    return history


def build_network(strategy: Strategy, federation: Federation | FederationSpec, config: Config, seed: int,
                  model: nn.Module | Callable[[], nn.Module] | None = None) -> nn.Module:
    """The round-0 network every site starts from, on the CPU, seeded by ``seed`` alone.

    The preset's model (or ``model``, or the strategy's ``model_factory``) initialised from ``seed``, then
    the strategy's ``prepare_model`` (e.g. LC-Fed's added modules) under the same seed. Needs only the
    federation's :class:`~fedlab.data.federation.FederationSpec`, so a Flower node builds the same network.
    """
    if model is None:
        model = strategy.model_factory(federation, config)
    init = initial_model(federation, config, seed, model)
    with torch.random.fork_rng(devices=[]):  # modules a strategy adds are seeded by the run seed too
        torch.manual_seed(seed)
        return strategy.prepare_model(init, federation)


def setup_run(strategy: Strategy, federation: Federation, config: Config, *, rounds: int, seed: int = 0,
              device: str | torch.device = "cpu", model: nn.Module | Callable[[], nn.Module] | None = None,
              ) -> tuple[Federation, list[Client], ServerState]:
    """Everything before round 1: data on the device, the round-0 network, the configured strategy, one
    client per site and the initial server state.

    Returns:
        ``(federation on the device, clients, server state)``.
    """
    device = select_device(device)
    fed = federation.to(device)
    net = build_network(strategy, fed, config, seed, model).to(device)
    strategy.setup(net, config, rounds, fed.task)
    clients = strategy.make_clients(fed, net, seed, device)
    return fed, clients, strategy.initial_state(net)


def run_round(strategy: Strategy, clients: list[Client], state: ServerState, rnd: int,
              ) -> tuple[ServerState, list[Reply], dict[int, Message]]:
    """One round: configure, every selected site's update, aggregate.

    Returns:
        ``(new server state, the replies, the messages sent)``.
    """
    messages = strategy.configure(rnd, state, [c.index for c in clients])
    replies = [strategy.client_update(clients[k], message, rnd) for k, message in messages.items()]
    return strategy.aggregate(rnd, replies, state), replies, messages


def _with_state(model: nn.Module, state: dict) -> nn.Module:
    copied = copy.deepcopy(model)
    copied.load_state_dict(state)
    return copied


def deliver(strategy: Strategy, clients: list[Client], messages: dict[int, Message]) -> None:
    """Hand each site its message (e.g. what it serves after a round) without training."""
    for k, message in messages.items():
        strategy.receive(clients[k], message)


def _evaluate_round(strategy: Strategy, clients: list[Client], fed: Federation, history: History,
                    best: list, rnd: int, select: str, config: Config) -> None:
    """Every site's curve scores of round ``rnd``, and its best-validation snapshot."""
    for k, (model, site) in enumerate(zip(strategy.site_models(clients), fed, strict=True)):
        best[k] = evaluate_site_round(model, site, fed.task, config, history, rnd, best[k] if select == "val" else None,
                                      select == "val")


def evaluate_site_round(model: nn.Module, site: Site, task: str, config: Config, history: History, rnd: int,
                        best: tuple[float, int, dict] | None, track_best: bool) -> tuple[float, int, dict] | None:
    """Score one site's model of round ``rnd`` on its validation and test splits (the curve metrics, recorded in
    ``history``) and return its best-validation snapshot ``(score, round, state)``, updated when this round is
    better (only with ``track_best``; the test split never decides)."""
    scores = {}
    for split_name in ("val", "test"):
        split = getattr(site, split_name)
        if split is None or not len(split):
            continue
        scores[split_name] = evaluate(model, split, task, CURVE_METRICS[task], config.eval_batch_size)
        for metric, value in scores[split_name].items():
            history.record(site.name, metric, value, split_name, rnd)
    if not track_best:
        return best
    score = scores["val"][SELECTION_METRIC[task]]
    if best is None or score > best[0]:
        return score, rnd, {n: t.detach().clone() for n, t in model.state_dict().items()}
    return best


def kept_model(model: nn.Module, best: tuple[float, int, dict] | None, rounds: int) -> tuple[nn.Module, int]:
    """The model a site keeps and the round it comes from: its best-validation snapshot when there is one
    (loaded into a copy of ``model``), else ``model`` itself after the last round."""
    if best is None:
        return model, rounds
    return _with_state(model, best[2]), best[1]


def _site_means(history: History, rnd: int) -> dict[str, float]:
    """Site-mean curve scores of round ``rnd``, by split."""
    rows = [r for r in history.rows if r["round"] == rnd and r["stage"] == "curve"]
    out = {}
    for split in ("val", "test"):
        values = [r["value"] for r in rows if r["split"] == split]
        if values:
            out[f"{split} {rows[0]['metric']}"] = sum(values) / len(values)
    return out


def _log_line(history: History, rnd: int, rounds: int) -> str:
    """``FedAvg  round 10/20  loss 0.4123  val dice 0.812  test dice 0.805`` (site means)."""
    last = max((r["round"] for r in history.rows if r["stage"] == "curve"), default=0)
    parts = [f"{history.method:<8}", f"round {rnd:>3}/{rounds}", f"loss {history.ledger[-1]['train_loss']:.4f}"]
    stale = "" if last == rnd else f" (round {last})"
    parts += [f"{k} {v:.3f}{stale}" for k, v in _site_means(history, last).items()]
    return "  ".join(parts)


def _score_text(metric: str, value: float) -> str:
    """A score in the unit the lessons' tables use: IoU in %, distances in pixels, the rest as fractions."""
    if metric == "iou":
        return f"IoU {100 * value:.1f}%"
    if metric in ("assd", "hd95"):
        return f"{metric.upper()} {value:.2f} px"
    return f"{metric} {value:.3f}"


def _summary_line(history: History) -> str:
    """One line per finished run: method, rounds, time, site-mean final test scores."""
    final = history.to_dataframe("final")
    means = final.groupby("metric", sort=False)["value"].mean()
    scores = "  ".join(_score_text(m, v) for m, v in means.items())
    rounds = history.info.get("rounds")
    return f"{history.method}: {rounds} rounds in {history.info.get('seconds', 0):.0f} s; site-mean test {scores}"
