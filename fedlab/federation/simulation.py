"""run_federation: the round loop shared by every lesson.

Round 0 is the initial model. Each round: selected clients train locally and upload, the server
aggregates, the result is broadcast, and (every ``eval_every`` rounds and at the last round) each
site's model is scored on its validation and test splits. Communication is counted in a bytes
ledger. With ``checkpoint_dir`` the full state (models, optimisers, random generators, server,
history) is written every ``config.checkpoint_every`` rounds, atomically, and a rerun resumes from
the last checkpoint with results identical to an uninterrupted run.

Model selection never looks at the test split: with ``select="val"`` each site keeps the model of
the round with its best validation score; with ``select="last"`` the final model. A strategy whose
``finish`` does its own validation-based selection (``finish_selects``, e.g. FT) keeps the finished model.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from fedlab.config import Config, get_config
from fedlab.data.federation import Federation
from fedlab.federation.client import Client
from fedlab.federation.evaluation import CURVE_METRICS, FULL_METRICS, SELECTION_METRIC, evaluate
from fedlab.federation.history import History
from fedlab.federation.strategies.base import Strategy
from fedlab.models.unet import build_unet
from fedlab.reproducibility import select_device

CHECKPOINT_NAME = "checkpoint.pt"


def default_model(federation: Federation, config: Config) -> nn.Module:
    """The preset's U-Net for segmentation; logistic regression (a linear layer) for classification."""
    if federation.task == "segmentation":
        return build_unet(federation.num_channels, federation.num_labels, config)
    return nn.Linear(federation.num_channels, 1)


def initial_model(federation: Federation, config: Config, seed: int,
                  model: nn.Module | Callable[[], nn.Module] | None = None) -> nn.Module:
    """Build the round-0 model reproducibly (its initialisation is seeded by ``seed`` alone)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if model is None:
            return default_model(federation, config)
        return model() if callable(model) and not isinstance(model, nn.Module) else copy.deepcopy(model)


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("FEDLAB_PROGRESS", "1") not in ("0", "false", "False") and not os.environ.get("CI")


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
    final_metrics: tuple[str, ...] | None = None,
) -> History:
    """Simulate federated training of ``strategy`` on ``federation``.

    Args:
        strategy: What clients do and how the server aggregates (e.g. ``FedAvg()``).
        federation: The sites; moved to ``device`` once, for the whole run.
        config: Run settings; default the ``$FEDLAB_PRESET`` / classroom preset.
        rounds: Communication rounds (default ``config.rounds``).
        seed: Seeds the initial model and every client's generator.
        device: "auto" (CUDA if available), "cpu", "cuda", ...
        model: Initial model (copied) or a factory; default ``strategy.model_factory(federation, config)``
            when it gives one (FedBN's BatchNorm U-Net), else the preset's U-Net / logistic regression.
        select: "val" (keep each site's best-validation round), "last", or "auto" ("val" when every
            site has a validation split, else "last").
        checkpoint_dir: Where to write ``checkpoint.pt`` every ``config.checkpoint_every`` rounds.
        resume: Continue from an existing checkpoint in ``checkpoint_dir``.
        progress: Show a progress bar (default: on, except when ``$CI`` or ``FEDLAB_PROGRESS=0``).
        log_every: Print a one-line summary every this many rounds (0 = never).
        final_metrics: Metrics of the final evaluation (default: all of the task's).

    Returns:
        The run's :class:`History`, with the kept per-site models in ``history.site_models``.
    """
    config = config or get_config()
    rounds = config.rounds if rounds is None else rounds
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

    fed = federation.to(device)
    if model is None:
        model = strategy.model_factory(fed, config)
    init = initial_model(fed, config, seed, model).to(device)
    clients = strategy.make_clients(fed, init, config, seed, device)
    strategy.setup(init, clients, config)
    history = History(method=strategy.name, sites=fed.site_names, seed=seed,
                      info={"strategy": strategy.describe(), "select": select, "rounds": rounds})
    best: list[tuple[float, int, dict] | None] = [None] * len(fed)
    start = 0

    ckpt_path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if ckpt_path is not None and resume and ckpt_path.exists():
        start, history, best = _load_checkpoint(ckpt_path, strategy, clients, device)
        history.info["rounds"] = rounds
    else:  # round 0: the initial model
        _evaluate_round(strategy, clients, fed, history, best, 0, select, config)

    show = _progress_enabled(progress)
    bar = tqdm(range(start + 1, rounds + 1), desc=strategy.name, disable=not show, leave=False,
               mininterval=1.0, initial=start, total=rounds)
    for rnd in bar:
        tic = time.perf_counter()
        selected = strategy.select(clients, rnd)
        for c in selected:
            strategy.begin_round(c, rnd)
        updates = [strategy.client_update(c, rnd) for c in selected]
        bytes_up = sum(sum(t.numel() * t.element_size() for t in u.payload.values()) for u in updates)
        strategy.aggregate(updates, rnd)
        bytes_down = strategy.broadcast(clients, rnd)
        loss = torch.stack([u.loss for u in updates]).mean().item() if updates else float("nan")  # one sync/round
        history.ledger.append({"round": rnd, "bytes_up": int(bytes_up), "bytes_down": int(bytes_down),
                               "train_loss": loss, "seconds": time.perf_counter() - tic})
        if rnd % config.eval_every == 0 or rnd == rounds:
            _evaluate_round(strategy, clients, fed, history, best, rnd, select, config)
        if log_every and rnd % log_every == 0:
            print(_log_line(history, rnd))
        if ckpt_path is not None and config.checkpoint_every and (rnd % config.checkpoint_every == 0 or rnd == rounds):
            _save_checkpoint(ckpt_path, rnd, strategy, clients, history, best)
    bar.close()

    facts = strategy.finish(clients)
    if facts:
        history.info["finish"] = facts
    models = strategy.site_models(clients)
    kept = []
    for k, site in enumerate(fed):
        m = models[k]
        if select == "val" and best[k] is not None and not strategy.finish_selects:
            m = copy.deepcopy(m)
            m.load_state_dict(best[k][2])
            history.selected_round[site.name] = best[k][1]
        else:
            history.selected_round[site.name] = rounds
        kept.append(m)
        scores = evaluate(m, site.test, task, final_metrics or FULL_METRICS[task], config.eval_batch_size)
        for metric, value in scores.items():
            history.record(site.name, metric, value, "test", history.selected_round[site.name], stage="final")
    history.site_models = kept
    return history


def _evaluate_round(strategy: Strategy, clients: list[Client], fed: Federation, history: History,
                    best: list, rnd: int, select: str, config: Config) -> None:
    """Curve metrics on val and test; update each site's best-validation snapshot."""
    sel_metric = SELECTION_METRIC[fed.task]  # one of the curve metrics, so validation is scored once
    for k, (model, site) in enumerate(zip(strategy.site_models(clients), fed, strict=True)):
        scores = {}
        for split_name in ("val", "test"):
            split = getattr(site, split_name)
            if split is None or not len(split):
                continue
            scores[split_name] = evaluate(model, split, fed.task, CURVE_METRICS[fed.task], config.eval_batch_size)
            for metric, value in scores[split_name].items():
                history.record(site.name, metric, value, split_name, rnd)
        if select == "val":
            score = scores["val"][sel_metric]
            if best[k] is None or score > best[k][0]:
                best[k] = (score, rnd, {n: t.detach().clone() for n, t in model.state_dict().items()})


def _log_line(history: History, rnd: int) -> str:
    df = history.to_dataframe("curve")
    last = df[df["round"] == df["round"].max()]
    parts = [f"round {rnd:4d}", f"loss {history.ledger[-1]['train_loss']:.4f}"]
    for split in ("val", "test"):
        sub = last[last["split"] == split]
        if len(sub):
            parts.append(f"{split} {sub['metric'].iloc[0]} {sub['value'].mean():.3f}")
    return "  ".join(parts)


def _save_checkpoint(path: Path, rnd: int, strategy: Strategy, clients: list[Client], history: History,
                     best: list) -> None:
    """Write the full run state atomically (temp file + rename): a crash never leaves a torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"round": rnd, "strategy": strategy.state_dict(), "clients": [c.state_dict() for c in clients],
             "history": history.state_dict(), "best": best}
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, strategy: Strategy, clients: list[Client], device: torch.device):
    state = torch.load(path, map_location=device, weights_only=False)
    strategy.load_state_dict(state["strategy"])
    for c, s in zip(clients, state["clients"], strict=True):
        c.load_state_dict(s)
    return state["round"], History.from_state_dict(state["history"]), state["best"]
