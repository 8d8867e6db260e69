"""LC-Fed (Wang, Jin, Wang, ECCV 2022): personalised segmentation via local calibration.

Two stages inside one :func:`~fedlab.federation.simulation.run_federation` call:

* **Stage 0** (rounds ``1 .. rounds - hc_rounds``): FedRep's schedule on an :class:`LCFedNet`
  (U-Net + PCS on the bottleneck). Each round a site trains its head alone for
  ``config.head_steps`` steps, then everything else (body + PCS) for the remaining steps, with the
  loss ``Dice + alpha * L_con`` (the contrastive site embedding loss on PCS gates). The server
  averages everything except the head and the calibration module, which stay local. PCS is shared:
  it personalises only through the site code. In the last stage-0 round every site also uploads its
  head (only with ``use_hc``).
* **Stage 1** (the last ``hc_rounds`` rounds, only with ``use_hc``), in one of two forms
  (``hc_stage``):

  - ``"joint"`` (default; the authors' released ``scripts/train_hc.py``): every stage-1 round is a
    stage-0 round whose loss is the Dice loss of the calibrated prediction: FedRep's schedule
    (head-only steps, then body-only steps; the body averaged by the server) with the calibration
    module trained in every step. Each site uploads its head every round and receives the other K-1
    heads of the previous round with the global body (all counted in the bytes ledger).
  - ``"frozen"``: in the first stage-1 round every site receives the final global body and the K-1
    heads it does not have (counted in the bytes ledger); then, every stage-1 round, it trains its
    head calibration module for ``config.local_steps`` steps with the Dice loss of the calibrated
    prediction while the U-Net (and PCS and head) stay frozen. Nothing else travels.

The stage of a round travels in the message config (``{"stage": 0 | 1}``), so a site needs no
schedule of its own. The total number of rounds comes from the loop (``setup``), never from
``config.rounds``. A site's received heads and its count of trained calibration rounds are its
private state.

Stage 1 is part of the round loop (not ``finish``) so that model selection stays on validation
data: each site keeps the round (stage 0 or 1) with its best validation Dice, and a kept stage-0
model is served without calibration (the site model stores whether it was calibrated).

The authors' released scripts (read in ``jcwang123/FedLC``; nothing copied) never freeze the U-Net while
calibrating: ``scripts/train_hc.py`` loads a trained network and keeps training it federatedly on the
calibrated Dice loss, which the default ``hc_stage="joint"`` follows (there each site's copies of the other
heads are refreshed every epoch in-process, without communication; here they travel every round);
``scripts/train_lcfed.py`` alternates a stage-0 step and a calibration step on every batch from the start.
``"frozen"`` isolates what the calibration module alone adds to a fixed backbone. The two are compared in
``bench/results/lcfed_hc_stage/`` (three seeds on each synthetic federation: joint above frozen in every
seed pair).

Ablations are constructor options: ``LCFed(use_pcs=False, alpha=0, use_hc=False)`` is the
FedRep-style backbone, ``LCFed(alpha=0, use_hc=False)`` adds PCS without the contrastive loss,
``LCFed(use_hc=False)`` adds the contrast, ``LCFed()`` is the full method. :data:`ABLATIONS` lists them.
Client weights follow the number of training images by default, like every fedlab strategy, so
that the backbone row *is* FedRep; the authors' code weighted sites uniformly
(``client_weight = 1/K``): pass ``weighting="uniform"`` for that.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from monai.losses import DiceLoss
from torch import nn

from fedlab.data.federation import Federation, FederationSpec
from fedlab.federation.client import Client, LossFn
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import State, weighted_average
from fedlab.federation.strategies.base import ServerState
from fedlab.federation.strategies.fedrep import FedRep
from fedlab.models.hc import HeadCalibration
from fedlab.models.lcfed import LCFedNet, LCFedSiteModel
from fedlab.models.pcs import contrastive_site_loss

HC_STAGES: tuple[str, ...] = ("joint", "frozen")
HEAD_PREFIX = "head."  # payload keys of an uploaded head (never clash with LCFedNet keys: unet./pcs./hc.)

ABLATIONS: dict[str, dict] = {
    "FedRep-style backbone": {"use_pcs": False, "alpha": 0.0, "use_hc": False},
    "+ PCS (alpha=0)": {"use_pcs": True, "alpha": 0.0, "use_hc": False},
    "+ contrast": {"use_pcs": True, "alpha": 0.1, "use_hc": False},
    "+ HC (LC-Fed)": {"use_pcs": True, "alpha": 0.1, "use_hc": True},
}
"""The paper's ablation rows: row label -> :class:`LCFed` keyword arguments."""


def lcfed_loss(site: int, alpha: float) -> LossFn:
    """Stage-0 loss of site ``site``: ``Dice(logits, y) + alpha * L_con`` (``loss_fn(net, x, y)``).

    The other sites' gates are computed for the same bottleneck feature with their site codes and
    detached, so only this site's gate is pushed away from them.
    """
    dice = DiceLoss(sigmoid=True)

    def loss(net: LCFedNet, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = net.forward_all(x, site)
        value = dice(out.logits, y)
        if alpha > 0 and out.gate is not None:
            with torch.no_grad():
                gates = net.site_gates(out.bottleneck)  # (K, N, C, 1, 1)
            others = [gates[j] for j in range(net.num_sites) if j != site]
            value = value + alpha * contrastive_site_loss(out.gate, others)
        return value

    return loss


def calibration_loss(site_model: LCFedSiteModel) -> LossFn:
    """Stage-1 loss: Dice of the calibrated logits (features computed without gradient)."""
    dice = DiceLoss(sigmoid=True)
    return lambda net, x, y: dice(site_model.calibrate(x), y)


def joint_calibration_loss(site_model: LCFedSiteModel) -> LossFn:
    """Joint stage-1 loss: Dice of the calibrated logits, differentiable through the U-Net and the own head
    (the other sites' heads are fixed copies)."""
    dice = DiceLoss(sigmoid=True)

    def loss(net: LCFedNet, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = net.forward_all(x, site_model.site)
        probs = site_model.head_probabilities(out.feature)  # (K, N, L, H, W), the own head live
        return dice(net.hc(out.feature, probs, site_model.site), y)

    return loss


def _heads_message(heads: dict, exclude: int) -> dict[str, torch.Tensor]:
    """The heads of every site but ``exclude``, flattened to ``head.<site>.<key>`` tensors."""
    return {f"{HEAD_PREFIX}{j}.{key}": t for j, head in heads.items() if j != exclude for key, t in head.items()}


def _split_heads(tensors: dict[str, torch.Tensor]) -> tuple[State, dict[int, State]]:
    """Inverse of the head flattening: (the other tensors, ``{site: head state}``)."""
    rest: State = {}
    heads: dict[int, State] = {}
    for name, t in tensors.items():
        if not name.startswith(HEAD_PREFIX):
            rest[name] = t
            continue
        site, key = name[len(HEAD_PREFIX):].split(".", 1)
        heads.setdefault(int(site), {})[key] = t
    return rest, heads


class LCFed(FedRep):
    """LC-Fed and its ablations (see the module docstring).

    Args:
        alpha: Weight of the contrastive site embedding loss (0.1 in the paper; 0 = no contrast).
        use_pcs: Put PCS on the bottleneck.
        use_hc: Train head calibration in the last ``hc_rounds`` rounds.
        hc_rounds: Rounds of stage 1 (default ``config.hc_rounds``), taken from the end of the run.
        hc_stage: "joint" (default: stage 1 keeps training body and head with FedRep's schedule on the
            calibrated loss, as the authors' released code) or "frozen" (stage 1 trains only the calibration
            module on a fixed U-Net).
        weighting: "samples" (w_k = n_k / n) or "uniform" (the authors' code).
        name: Label in results (default "LC-Fed", or a description of the ablation; " (frozen HC)" is
            appended for the frozen calibration stage).
    """

    name = "LC-Fed"
    personalized = True

    def __init__(self, alpha: float = 0.1, use_pcs: bool = True, use_hc: bool = True, hc_rounds: int | None = None,
                 weighting: str = "samples", name: str | None = None, hc_stage: str = "joint") -> None:
        super().__init__(weighting=weighting)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if alpha > 0 and not use_pcs:
            raise ValueError("alpha > 0 needs use_pcs=True: the contrastive loss acts on the PCS gates")
        if hc_rounds is not None and hc_rounds < 1:
            raise ValueError(f"hc_rounds must be >= 1 (or None for config.hc_rounds), got {hc_rounds}")
        if hc_stage not in HC_STAGES:
            raise ValueError(f"hc_stage must be one of {HC_STAGES}, got {hc_stage!r}")
        self.hc_stage = hc_stage
        self.alpha = float(alpha)
        self.use_pcs = use_pcs
        self.use_hc = use_hc
        self.hc_rounds_arg = hc_rounds
        frozen = use_hc and hc_stage == "frozen"  # without HC there is no calibration stage to name
        self.name = name or self.default_name(alpha, use_pcs, use_hc) + (" (frozen HC)" if frozen else "")
        self.hc_rounds = 0
        self.backbone_rounds = 0

    @staticmethod
    def default_name(alpha: float, use_pcs: bool, use_hc: bool) -> str:
        """ "LC-Fed" for the full method, else a label naming the ablation."""
        if use_pcs and use_hc and alpha > 0:
            return "LC-Fed"
        parts = [("PCS" if use_pcs else "no PCS"), f"alpha={alpha:g}", ("HC" if use_hc else "no HC")]
        return f"LC-Fed ({', '.join(parts)})"

    # --- set-up -------------------------------------------------------------------------------
    def head_modules(self, model: nn.Module) -> list[nn.Module]:
        """The segmentation head and the calibration module stay local."""
        return [model.head] + ([model.hc] if getattr(model, "hc", None) is not None else [])

    def prepare_model(self, model: nn.Module, federation: Federation | FederationSpec) -> LCFedNet:
        """Wrap the round-0 U-Net into an :class:`LCFedNet` with this variant's modules.

        Raises:
            ValueError: for a classification federation, a model that is not a fedlab U-Net, or fewer
                than 2 sites when the contrastive loss or head calibration is on.
        """
        if federation.task != "segmentation":
            raise ValueError(f"LC-Fed is a segmentation method; federation {federation.name!r} is {federation.task}")
        if len(federation) < 2 and (self.use_hc or self.alpha > 0):
            raise ValueError("LC-Fed's contrastive loss and head calibration need at least 2 sites")
        if isinstance(model, LCFedNet):
            return model
        if not hasattr(model, "bottleneck_channels"):
            raise ValueError("LC-Fed needs a fedlab.models.UNet (or an LCFedNet) as its model")
        calibration = None
        if self.use_hc:
            calibration = HeadCalibration(federation.num_labels, model.feature_channels,
                                          image_size=federation.image_size)
        return LCFedNet(model, len(federation), use_pcs=self.use_pcs, calibration=calibration)

    def loss_fn(self, task: str, site: int = 0) -> LossFn:
        """Stage-0 loss of the site: Dice plus the contrastive site embedding loss."""
        return lcfed_loss(site, self.alpha)

    def setup(self, model: nn.Module, config, rounds: int, task: str) -> None:
        """Split computed on the LCFedNet; stage boundary from ``hc_rounds`` and the run's ``rounds``."""
        super().setup(model, config, rounds, task)
        self.hc_rounds = (self.hc_rounds_arg or config.hc_rounds) if self.use_hc else 0
        self.backbone_rounds = rounds - self.hc_rounds
        if self.backbone_rounds < 1:
            raise ValueError(f"rounds={rounds} leaves no backbone round before {self.hc_rounds} "
                             "calibration rounds; raise rounds or lower hc_rounds")

    def init_client(self, client: Client) -> None:
        """The heads the site will receive, and how many calibration rounds it has trained."""
        client.private["heads"] = {}
        client.private["hc_rounds_done"] = 0

    def initial_state(self, model: nn.Module) -> ServerState:
        """The global body and the heads collected so far (none)."""
        return {**super().initial_state(model), "heads": {}}

    # --- server -------------------------------------------------------------------------------
    def stage(self, round: int) -> int:
        """0 (backbone) or 1 (head calibration) for ``round``."""
        return 1 if self.use_hc and round > self.backbone_rounds else 0

    def configure(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """Stage 0: the global body (and "send your head" in the last stage-0 round). Stage 1: the global body
        and the other sites' heads, every round ("joint") or in the first one only ("frozen", then only the
        instruction)."""
        selected = self.select(round, clients)
        if self.stage(round) == 0:
            message = Message(dict(state["global"]), {"stage": 0, "send_head": self.use_hc and
                                                      round == self.backbone_rounds})
            return {k: message for k in selected}
        if self.hc_stage == "frozen" and round != self.backbone_rounds + 1:
            return {k: Message({}, {"stage": 1}) for k in selected}
        return {k: Message({**state["global"], **_heads_message(state["heads"], k)}, {"stage": 1}) for k in selected}

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """Average the bodies; keep the uploaded heads (never averaged)."""
        bodies, heads = [], dict(state["heads"])
        for r in replies:
            body, head = _split_heads(r.message.tensors)
            if body:
                bodies.append((body, r.weight))
            heads.update(head)
        new = {**state, "heads": heads}
        if bodies:
            new["global"] = weighted_average([b for b, _ in bodies], [w for _, w in bodies])
        return new

    def configure_evaluate(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """The global body; in a frozen stage 1 nothing (the body no longer changes)."""
        if self.stage(round) == 0 or self.hc_stage == "joint":
            return super().configure_evaluate(round, state, clients)
        return {k: Message() for k in clients}

    # --- site ---------------------------------------------------------------------------------
    def receive(self, client: Client, message: Message) -> bool:
        """The body goes into the network; other sites' heads into the site's private state."""
        body, heads = _split_heads(message.tensors)
        for site, head in heads.items():
            client.private["heads"][site] = {k: t.detach().clone() for k, t in head.items()}
        return super().receive(client, Message(body))

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """Stage 0: head-only then body-only steps. Stage 1 "joint": the same schedule on the calibrated loss,
        the calibration module trained in every step; "frozen": calibration-only steps. See module docstring."""
        self.prepare_round(client, message)
        net: LCFedNet = client.model
        if message.config.get("stage", 0) == 0:
            loss = self.train_head_then_body(client)
            # the heads travel once stage 0 is over
            return self.reply(client, loss, self._head_payload(client) if message.config.get("send_head") else None)
        site_model = self._site_model(client, calibrated=True)
        if self.hc_stage == "joint":
            loss = self.train_head_then_body(client, loss_fn=joint_calibration_loss(site_model),
                                             also=list(net.hc.parameters()))
        else:
            loss = client.train(self.config.local_steps, params=list(net.hc.parameters()),
                                loss_fn=calibration_loss(site_model))
        client.private["hc_rounds_done"] += 1
        if self.hc_stage == "joint":  # the reply carries the body and the site's head
            return self.reply(client, loss, self._head_payload(client))
        return Reply(client.index, Message(), self.weight(client), loss)

    @staticmethod
    def _head_payload(client: Client) -> dict[str, torch.Tensor]:
        """The site's head as ``head.<site>.<key>`` tensors (copies)."""
        head = client.model.head.state_dict()
        return {f"{HEAD_PREFIX}{client.index}.{k}": v.detach().clone() for k, v in head.items()}

    # --- evaluation and end of training -------------------------------------------------------
    def _site_model(self, client: Client, calibrated: bool) -> LCFedSiteModel:
        net: LCFedNet = client.model
        heads = None
        if net.hc is not None:
            received = client.private["heads"]
            heads = []
            for j in range(net.num_sites):  # the own head (and placeholders before the exchange) from the net
                head = copy.deepcopy(net.head)
                if j != client.index and j in received:
                    head.load_state_dict(received[j])
                heads.append(head)
        return LCFedSiteModel(net, client.index, heads, calibrated=calibrated)

    def site_model(self, client: Client) -> nn.Module:
        """The site's model ``x -> logits``: its site code, plus calibration once stage 1 has trained."""
        return self._site_model(client, calibrated=client.private["hc_rounds_done"] > 0)
