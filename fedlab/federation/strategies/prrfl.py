"""PRR-FL (Chen et al., MICCAI 2021): personalized retrogress-resilient federated learning.

Each site keeps two models of the same architecture:

* a **deputy**, the one that takes part in the federation: after every round it receives the
  result of *progressive Fourier aggregation* (:func:`fedlab.federation.fourier.fourier_aggregate`:
  the low-frequency part of each weight's Fourier amplitude is averaged across sites, each site keeps
  its phase and high frequencies; the averaged fraction grows from ``start`` to ``end`` over the
  rounds). Normalisation layers stay local, as in the authors' code;
* a **personal** model, which never leaves the site and serves it. It learns from the site's data
  and from the deputy by distillation, so that a bad global update cannot make it "retrogress".

Local training of a round is split into ``phases`` chunks (the authors re-check after every local
epoch). Before each chunk the site compares the deputy's score with the personal model's on its
training data (Dice for segmentation, AUC for classification) and picks a stage (the authors' DET):

1. *recover* (always first in a round, or when deputy < ``alpha1`` x personal): the deputy learns from
   the data and from the personal model (distillation), the personal model from the data only;
2. *exchange* (deputy has recovered): mutual learning, each distils from the other;
3. *sublimate* (deputy >= ``alpha2`` x personal): the personal model learns from the data and the
   deputy; the deputy from the data only.

The deputy, its optimiser and the stage counts are the site's private state (``Client.private``);
the server state holds, for every site, the Fourier-mixed deputy state it will receive next.

Distillation for sigmoid outputs is the per-pixel (per-channel) Bernoulli KL divergence
``KL(teacher || student)``, the two-class version of the authors' softmax KL; the teacher is detached.

Simplifications, stated honestly: the stage score is measured on one random training batch of
``eval_batch_size`` images (the authors score the whole training set); the optimisers are the config's
Adam/SGD without the authors' step learning-rate decay (the deputy's is rebuilt every round under
``optimizer_state="fresh"``, the personal model's persists); the
fraction schedule uses the run's total number of rounds as the horizon.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fedlab.data.federation import Split
from fedlab.federation.client import Client, make_optimizer
from fedlab.federation.evaluation import SELECTION_METRIC, evaluate
from fedlab.federation.fourier import fourier_aggregate, progressive_fraction
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import NORM_TYPES, ParamSplit
from fedlab.federation.strategies.base import ServerState, Strategy

STAGES = {1: "recover", 2: "exchange", 3: "sublimate"}


def bernoulli_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Mean over elements of KL(Bern(sigmoid(teacher)) || Bern(sigmoid(student))); teacher detached."""
    t = teacher_logits.detach()
    p = torch.sigmoid(t)
    return (p * (F.logsigmoid(t) - F.logsigmoid(student_logits))
            + (1 - p) * (F.logsigmoid(-t) - F.logsigmoid(-student_logits))).mean()


def next_stage(stage: int, deputy_score: float, personal_score: float, alpha1: float, alpha2: float) -> int:
    """The authors' DET rule: stage 0 = start of a round; returns 1 (recover), 2 (exchange) or 3 (sublimate)."""
    if stage == 0 or deputy_score < alpha1 * personal_score:
        return 1
    if stage == 1 or deputy_score < alpha2 * personal_score:
        return 2
    return 3


class PRRFL(Strategy):
    """Deputy/personal model pair with progressive Fourier aggregation of the deputies.

    Args:
        start: Shared low-frequency fraction in the first round (authors: 0.7).
        end: Fraction the schedule grows towards (authors: 0.95).
        alpha1: Deputy/personal score ratio below which the deputy must recover (authors: 0.7).
        alpha2: Ratio above which the deputy teaches the personal model (authors: 0.9).
        phases: Stage checks per round (local steps are split into this many chunks; authors: 5 epochs).
        weighting: Client weights of the aggregation; "uniform" as the authors.
    """

    name = "PRR-FL"
    personalized = True

    def __init__(self, start: float = 0.7, end: float = 0.95, alpha1: float = 0.7, alpha2: float = 0.9,
                 phases: int = 5, weighting: str = "uniform") -> None:
        super().__init__(weighting=weighting)
        if not (0 <= start <= 1 and 0 <= end <= 1):
            raise ValueError(f"start and end fractions must be in [0, 1], got {start}, {end}")
        if not 0 < alpha1 <= alpha2:
            raise ValueError(f"need 0 < alpha1 <= alpha2, got alpha1={alpha1}, alpha2={alpha2}")
        if phases < 1:
            raise ValueError(f"phases must be >= 1, got {phases}")
        self.start, self.end, self.alpha1, self.alpha2, self.phases = start, end, alpha1, alpha2, phases

    def param_split(self, model: nn.Module) -> ParamSplit:
        """Normalisation layers local (as the authors'), everything else Fourier-aggregated."""
        return ParamSplit.from_model(model, local_types=NORM_TYPES)

    def init_client(self, client: Client) -> None:
        """The site's deputy (a copy of the initial model) with its own optimiser, and stage counters."""
        deputy = copy.deepcopy(client.model)
        client.private["deputy"] = deputy
        client.private["deputy_optimizer"] = make_optimizer(deputy.parameters(), self.config)
        client.private["stage_counts"] = {name: 0 for name in STAGES.values()}

    def initial_state(self, model: nn.Module) -> ServerState:
        """Every site's next deputy state: the shared part of the initial model."""
        return {"deputies": {}, "initial": self.split.shared_state(model.state_dict())}

    def fraction(self, round: int) -> float:
        """Shared low-frequency fraction of ``round`` (clamped after the run's last round)."""
        return progressive_fraction(min(round, self.rounds), self.rounds, self.start, self.end)

    # --- server -------------------------------------------------------------------------------
    def configure(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """Each deputy receives its own Fourier-mixed state (the initial one before the first aggregation)."""
        return {k: Message(dict(state["deputies"].get(k, state["initial"]))) for k in self.select(round, clients)}

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """Progressive Fourier aggregation: one personalised state per participating deputy."""
        if not replies:
            return state
        mixed = fourier_aggregate([r.message.tensors for r in replies], [r.weight for r in replies],
                                  self.fraction(round))
        deputies = {**state["deputies"], **{r.client: m for r, m in zip(replies, mixed, strict=True)}}
        return {**state, "deputies": deputies}

    def configure_evaluate(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """Nothing: the personal model serves the site, and it never receives anything."""
        return {k: Message() for k in clients}

    # --- site ---------------------------------------------------------------------------------
    def receive(self, client: Client, message: Message) -> bool:
        """The deputy receives its mixed state (and a fresh optimiser under ``optimizer_state="fresh"``);
        the personal model, which nothing overwrites, keeps its own. Returns False: the served model is
        untouched."""
        if message.tensors:
            deputy = client.private["deputy"]
            deputy.load_state_dict(message.tensors, strict=False)
            if self.config.optimizer_state == "fresh":
                client.private["deputy_optimizer"] = make_optimizer(deputy.parameters(), self.config)
        return False

    def _score(self, model: nn.Module, batch: Split) -> float:
        metric = SELECTION_METRIC[self.task]
        return evaluate(model, batch, self.task, (metric,), self.config.eval_batch_size)[metric]

    def _check_batch(self, client: Client) -> Split:
        if self.task == "classification":
            return client.site.train  # AUC needs both classes: use the whole (small, tabular) split
        return Split(*client.sample_batch(self.config.eval_batch_size))

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """Staged deputy/personal training; the deputy's shared part is sent."""
        self.prepare_round(client, message)
        deputy, opt_d = client.private["deputy"], client.private["deputy_optimizer"]
        personal, opt_p = client.model, client.optimizer
        counts = client.private["stage_counts"]
        steps = self.config.local_steps
        chunks = [steps // self.phases + (i < steps % self.phases) for i in range(self.phases)]
        stage, total = 0, torch.zeros((), device=client.site.train.x.device)
        personal.train()
        deputy.train()
        for n in filter(None, chunks):
            batch = self._check_batch(client)
            stage = next_stage(stage, self._score(deputy, batch), self._score(personal, batch),
                               self.alpha1, self.alpha2)
            counts[STAGES[stage]] += 1
            for _ in range(n):
                x, y = client.sample_batch()
                out_p, out_d = personal(x), deputy(x)  # logits, same shape
                # the task loss evaluated on the logits already computed
                loss_p = client.loss_fn(lambda _x, o=out_p: o, x, y)
                loss_d = client.loss_fn(lambda _x, o=out_d: o, x, y)
                total += loss_p.detach()
                if stage in (2, 3):  # personal learns from the deputy
                    loss_p = loss_p + bernoulli_kl(out_p, out_d)
                if stage in (1, 2):  # deputy learns from the personal model
                    loss_d = loss_d + bernoulli_kl(out_d, out_p)
                opt_p.zero_grad(set_to_none=True)
                opt_d.zero_grad(set_to_none=True)
                (loss_p + loss_d).backward()
                opt_p.step()
                opt_d.step()
        tensors = self.split.shared_state(deputy.state_dict())
        return Reply(client.index, Message(tensors), self.weight(client), total / max(steps, 1))

    # --- end of training ----------------------------------------------------------------------
    def finish_client(self, client: Client) -> dict:
        """How often each stage ran at this site."""
        return dict(client.private["stage_counts"])

    def summarize_finish(self, facts: dict[str, dict], state: ServerState, names: dict[int, str]) -> dict:
        """Stage counts summed over the sites (``stage_counts``) and per site (``site_stage_counts``)."""
        total = {name: sum(f[name] for f in facts.values()) for name in STAGES.values()}
        return {"stage_counts": total, "site_stage_counts": facts}
