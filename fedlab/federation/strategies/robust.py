"""Robust aggregation strategies: what the server can do about noisy or malicious sites.

Every strategy here trains exactly like FedAvg at the sites and differs only in how the server combines
the sites' updates ``delta_k = w_k - w`` (``w`` the global model it sent) into the next global model
``w + combine(delta_1, ..., delta_K)``. The rules themselves are pure functions in
:mod:`fedlab.federation.robust` and :mod:`fedlab.federation.annotation_quality`.

* :class:`Median` and :class:`TrimmedMean` (Yin et al., ICML 2018): coordinate-wise, one vote per site.
* :class:`Krum` (Blanchard et al., NeurIPS 2017): keep the update(s) closest to their neighbours;
  ``num_selected > 1`` is Multi-Krum.
* :class:`NormClip`: bound every update's L2 norm, then average with FedAvg's sample weights (norm
  bounding, Sun et al. 2019, "Can you really backdoor federated learning?"). The bound is the median of
  the round's update norms unless ``max_norm`` fixes it.
* :class:`QualityWeighted`: a FedA3I-style (Wu et al., AAAI 2024) annotation-quality weighting for
  segmentation with noisy boundaries: after a FedAvg warm-up, every site reports how its labels'
  boundaries disagree with the global model, and the server weights the sites by that quality, layer by
  layer (see :mod:`fedlab.federation.annotation_quality` for what is and is not the authors' method).

The price of robustness: the median, trimmed mean and Krum give every site one vote whatever its size
(sample weighting is dropped), and they cannot tell a malicious site from an honest site whose data are
merely different: on a heterogeneous federation they discard real information. Norm clipping keeps
the sample weights and only limits how far one site can pull.

What each rule decided is kept in the server state (plain values) and reported in
``history.info["finish"]`` at the end of the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from fedlab.federation.annotation_quality import band_losses, layer_mix, noise_scores, quality_weights
from fedlab.federation.client import Client
from fedlab.federation.evaluation import predict
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import State, weighted_average
from fedlab.federation.robust import (
    add,
    clip_by_norm,
    coordinate_median,
    krum_select,
    state_norm,
    subtract,
    trimmed_count,
    trimmed_mean,
)
from fedlab.federation.strategies.base import ServerState, Strategy


class RobustAggregation(Strategy):
    """FedAvg's sites with another server rule: ``w <- w + combine(updates)``.

    Subclasses implement :meth:`combine`; it may return facts to count in the server state.
    """

    name = "RobustAggregation"

    def combine(self, updates: list[State], weights: list[float], clients: list[int]) -> tuple[State, dict]:
        """The aggregated update, and facts about this round: ``{decision: [site indices concerned]}``.

        Args:
            updates: One update per reply.
            weights: The replies' aggregation weights (``n_k`` or 1).
            clients: The replies' site indices.
        """
        raise NotImplementedError

    def initial_state(self, model: nn.Module) -> ServerState:
        """The global model and empty decision counts."""
        return {**super().initial_state(model), "decisions": {}}

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """Updates relative to the model that was sent, combined by :meth:`combine`, added to it."""
        if not replies:
            return state
        current = state["global"]
        updates = [subtract(r.message.tensors, current) for r in replies]
        update, facts = self.combine(updates, [r.weight for r in replies], [r.client for r in replies])
        decisions = {name: dict(counts) for name, counts in state["decisions"].items()}
        for name, sites in facts.items():  # count, per decision, how often each site was concerned
            counts = decisions.setdefault(name, {})
            for site in sites:
                counts[int(site)] = counts.get(int(site), 0) + 1
        return {**state, "global": add(current, update), "decisions": decisions}

    def summarize_finish(self, facts: dict[str, dict], state: ServerState, names: dict[int, str]) -> dict | None:
        """How often each site was concerned by each decision of the rule (by site name)."""
        decisions = {name: {names[k]: v for k, v in sorted(counts.items())}
                     for name, counts in state.get("decisions", {}).items()}
        return {"decisions": decisions} if decisions else None


class Median(RobustAggregation):
    """Coordinate-wise median of the sites' updates (one vote per site)."""

    name = "Median"

    def combine(self, updates, weights, clients):
        """The coordinate-wise median."""
        return coordinate_median(updates), {}


class TrimmedMean(RobustAggregation):
    """Coordinate-wise trimmed mean: the ``int(trim * K)`` largest and smallest values of every coordinate dropped.

    Args:
        trim: Fraction cut at each end, in [0, 0.5); 0 is the uniform mean (FedAvg with ``weighting="uniform"``).
    """

    name = "TrimmedMean"

    def __init__(self, trim: float = 0.2) -> None:
        super().__init__(weighting="uniform")
        trimmed_count(10, trim)  # validates the range
        self.trim = float(trim)

    def combine(self, updates, weights, clients):
        """The coordinate-wise trimmed mean."""
        return trimmed_mean(updates, self.trim), {}


class Krum(RobustAggregation):
    """(Multi-)Krum: average the ``num_selected`` updates with the lowest Krum scores.

    Args:
        num_byzantine: ``f``, how many malicious sites to tolerate (Krum needs ``K >= 2f + 3`` sites);
            ``None`` = the most the round's ``K`` sites allow, ``(K - 3) // 2`` (1 for 5 or 6 sites).
        num_selected: 1 = Krum (the single most central update), > 1 = Multi-Krum.
        weighting: Weights among the selected updates ("uniform" as in the paper, or "samples").
    """

    name = "Krum"

    def __init__(self, num_byzantine: int | None = None, num_selected: int = 1, weighting: str = "uniform") -> None:
        super().__init__(weighting=weighting)
        if (num_byzantine is not None and num_byzantine < 0) or num_selected < 1:
            raise ValueError(f"need num_byzantine >= 0 (or None) and num_selected >= 1, got {num_byzantine}, "
                             f"{num_selected}")
        self.num_byzantine = None if num_byzantine is None else int(num_byzantine)
        self.num_selected = int(num_selected)

    def tolerated(self, num_sites: int) -> int:
        """``f`` for a round with ``num_sites`` updates."""
        return max(0, (num_sites - 3) // 2) if self.num_byzantine is None else self.num_byzantine

    def combine(self, updates, weights, clients):
        """The (weighted) mean of the selected updates; counts which sites were selected."""
        chosen = krum_select(updates, self.tolerated(len(updates)), min(self.num_selected, len(updates)))
        update = weighted_average([updates[i] for i in chosen], [weights[i] for i in chosen])
        return update, {"selected": [clients[i] for i in chosen]}


class NormClip(RobustAggregation):
    """Clip every update to L2 norm ``max_norm`` (default: the median norm of the round), then FedAvg's mean.

    Args:
        max_norm: Fixed bound; ``None`` = the median of the round's update norms (scale-free, and at
            most half of the sites can be above it).
        weighting: "samples" (FedAvg's ``n_k / n``, default) or "uniform".
    """

    name = "NormClip"

    def __init__(self, max_norm: float | None = None, weighting: str = "samples") -> None:
        super().__init__(weighting=weighting)
        if max_norm is not None and not (max_norm > 0 and math.isfinite(max_norm)):
            raise ValueError(f"max_norm must be a positive finite number or None (median norm), got {max_norm!r}")
        self.max_norm = max_norm

    def combine(self, updates, weights, clients):
        """Clipped updates, weighted mean; counts which sites were clipped."""
        norms = torch.stack([state_norm(u) for u in updates]).double()
        bound = self.max_norm if self.max_norm is not None else float(norms.median())
        if not bound > 0:  # every update zero (or at least half of them): nothing to clip
            return weighted_average(updates, weights), {}
        clipped = [clip_by_norm(u, bound) for u in updates]
        over = [clients[i] for i, n in enumerate(norms.tolist()) if n > bound]
        return weighted_average(clipped, weights), {"clipped": over}


REPORT_KEY = "quality/band_losses"


class QualityWeighted(Strategy):
    """FedA3I-style aggregation: FedAvg warm-up, then sites weighted by the quality of their boundaries.

    Rounds ``1 .. warmup`` are FedAvg. In round ``warmup + 1`` every site first scores the global model it
    received on its own training masks (the mean cross-entropy in the inner and outer boundary bands,
    :func:`~fedlab.federation.annotation_quality.band_losses`, two numbers per label, counted in the ledger)
    and sends that report with its update. The server turns the reports into quality weights ``q_k`` in
    [0, 1] (:func:`~fedlab.federation.annotation_quality.quality_weights`), keeps them in its state, and from
    then on aggregates every layer with ``alpha_l * q_k / sum q + (1 - alpha_l) * n_k / n``, ``alpha_l``
    growing from 0 at the first layer to 1 at the head (the authors' layer-wise combination): the encoder
    keeps learning from every site's images, the layers that draw the boundary trust the cleaner labels.

    Args:
        warmup: FedAvg rounds before the sites report: an int, or a fraction of the run's rounds
            (default 0.25; at least 1 round, and the report comes before the last round).
        layerwise: False uses the quality weights for every layer (``alpha = 1``).
    """

    name = "QualityWeighted"

    def __init__(self, warmup: float = 0.25, layerwise: bool = True) -> None:
        super().__init__(weighting="samples")
        valid = warmup >= 1 and float(warmup).is_integer() if not 0 < warmup < 1 else True
        if not valid:
            raise ValueError(f"warmup must be a number of rounds (an integer >= 1) or a fraction in (0, 1), "
                             f"got {warmup!r}")
        self.warmup = warmup
        self.layerwise = layerwise
        self.alpha: dict[str, float] = {}

    def setup(self, model: nn.Module, config, rounds: int, task: str) -> None:
        """The split, and every shared key's layer-wise share of the quality weights."""
        super().setup(model, config, rounds, task)
        if task != "segmentation":
            raise ValueError(f"QualityWeighted estimates boundary noise of segmentation masks; this task is {task!r}")
        keys = list(self.split.shared)
        self.alpha = layer_mix(keys) if self.layerwise else dict.fromkeys(keys, 1.0)

    def report_round(self) -> int:
        """The round in which the sites report (the first after the warm-up)."""
        w = self.warmup
        warm = math.ceil(w * self.rounds) if w < 1 else int(w)
        return min(max(warm, 1), max(self.rounds - 1, 1)) + 1

    def initial_state(self, model: nn.Module) -> ServerState:
        """The global model; no quality weights yet."""
        return {**super().initial_state(model), "quality": {}, "noise": {}}

    def configure(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """The global model; in the report round, also the instruction to report."""
        message = Message(dict(state["global"]), {"report": round == self.report_round()})
        return {k: message for k in self.select(round, clients)}

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """In the report round: the band losses of the received model on the site's training masks; then FedAvg."""
        self.prepare_round(client, message)
        extra = {}
        if message.config.get("report"):
            train = client.site.train
            logits = predict(client.model, train.x, self.config.eval_batch_size)  # (N, L, H, W)
            extra[REPORT_KEY] = band_losses(logits, train.y)  # (L, 2)
        loss = client.train(self.config.local_steps)
        return self.reply(client, loss, extra)

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """FedAvg until the reports arrive; then the layer-wise quality-weighted average."""
        if not replies:
            return state
        models = [{k: v for k, v in r.message.tensors.items() if k != REPORT_KEY} for r in replies]
        quality, noise = dict(state["quality"]), dict(state["noise"])
        if all(REPORT_KEY in r.message.tensors for r in replies):
            reports = [r.message.tensors[REPORT_KEY] for r in replies]
            quality = {r.client: float(q) for r, q in zip(replies, quality_weights(reports), strict=True)}
            noise = {r.client: float(s) for r, s in zip(replies, noise_scores(reports), strict=True)}
        sizes = [r.weight for r in replies]
        if not quality:
            return {**state, "global": weighted_average(models, sizes)}
        q = torch.tensor([quality.get(r.client, 0.0) for r in replies], dtype=torch.float64)
        n = torch.tensor(sizes, dtype=torch.float64)
        q_share = q / q.sum() if q.sum() > 0 else n / n.sum()
        n_share = n / n.sum()
        new = {}
        for key in models[0]:
            alpha = self.alpha.get(key, 1.0)
            w = (alpha * q_share + (1 - alpha) * n_share).tolist()
            new[key] = weighted_average([{key: m[key]} for m in models], w)[key]
        return {**state, "global": new, "quality": quality, "noise": noise}

    def summarize_finish(self, facts: dict[str, dict], state: ServerState, names: dict[int, str]) -> dict | None:
        """Each site's quality weight and noise score (by site name), and the report round."""
        return {"report_round": self.report_round(),
                "quality": {names[k]: v for k, v in sorted(state["quality"].items())},
                "noise_score": {names[k]: v for k, v in sorted(state["noise"].items())}}


__all__ = ["REPORT_KEY", "Krum", "Median", "NormClip", "QualityWeighted", "RobustAggregation", "TrimmedMean"]
