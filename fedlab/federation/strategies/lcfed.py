"""LC-Fed (Wang, Jin, Wang, ECCV 2022): personalised segmentation via local calibration.

Two stages inside one :func:`~fedlab.federation.simulation.run_federation` call:

* **Stage 0** (rounds ``1 .. rounds - hc_rounds``): FedRep's schedule on an :class:`LCFedNet`
  (U-Net + PCS on the bottleneck). Each round a site trains its head alone for
  ``config.head_steps`` steps, then everything else (body + PCS) for the remaining steps, with the
  loss ``Dice + alpha * L_con`` (the contrastive site embedding loss on PCS gates). The server
  averages everything except the head and the calibration module, which stay local. PCS is shared:
  it personalises only through the site code.
* **Stage 1** (the last ``hc_rounds`` rounds, only with ``use_hc``): every site uploads its head and
  receives the other sites' heads (counted in the bytes ledger: each site receives the K-1 heads
  it does not already have); then it trains its head calibration module for ``config.local_steps``
  steps with the Dice loss while the U-Net (and PCS and head) stay frozen. Nothing else is sent.

Stage 1 is part of the round loop (not ``finish``) so that model selection stays on validation
data: each site keeps the round (stage 0 or 1) with its best validation Dice, and a kept stage-0
model is served without calibration (the site model stores whether it was calibrated).

Ablations are constructor options: ``LCFed(use_pcs=False, alpha=0, use_hc=False)`` is the
FedRep-style backbone, ``LCFed(alpha=0, use_hc=False)`` adds PCS without the contrastive loss,
``LCFed(use_hc=False)`` adds the contrast, ``LCFed()`` is the full method. :data:`ABLATIONS` lists them.
Client weights follow the number of training images by default, like every fedlab strategy, so
that the backbone row *is* FedRep; the authors' code weighted sites uniformly
(``client_weight = 1/K``): pass ``weighting="uniform"`` for that.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import torch
from monai.losses import DiceLoss
from torch import nn

from fedlab.config import Config
from fedlab.data.federation import Federation
from fedlab.federation.client import Client, LossFn
from fedlab.federation.params import State, state_bytes, weighted_average
from fedlab.federation.strategies.base import Update
from fedlab.federation.strategies.fedrep import FedRep
from fedlab.models.hc import HeadCalibration
from fedlab.models.lcfed import LCFedNet, LCFedSiteModel
from fedlab.models.pcs import contrastive_site_loss
from fedlab.reproducibility import client_generator

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


class LCFed(FedRep):
    """LC-Fed and its ablations (see the module docstring).

    Args:
        alpha: Weight of the contrastive site embedding loss (0.1 in the paper; 0 = no contrast).
        use_pcs: Put PCS on the bottleneck.
        use_hc: Train head calibration in the last ``hc_rounds`` rounds.
        hc_rounds: Rounds of stage 1 (default ``config.hc_rounds``), taken from the end of the run.
        weighting: "samples" (w_k = n_k / n) or "uniform" (the authors' code).
        name: Label in results (default "LC-Fed", or a description of the ablation).
    """

    name = "LC-Fed"
    personalized = True

    def __init__(self, alpha: float = 0.1, use_pcs: bool = True, use_hc: bool = True, hc_rounds: int | None = None,
                 weighting: str = "samples", name: str | None = None) -> None:
        super().__init__(weighting=weighting)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if alpha > 0 and not use_pcs:
            raise ValueError("alpha > 0 needs use_pcs=True: the contrastive loss acts on the PCS gates")
        if hc_rounds is not None and hc_rounds < 1:
            raise ValueError(f"hc_rounds must be >= 1 (or None for config.hc_rounds), got {hc_rounds}")
        self.alpha = float(alpha)
        self.use_pcs = use_pcs
        self.use_hc = use_hc
        self.hc_rounds_arg = hc_rounds
        self.name = name or self.default_name(alpha, use_pcs, use_hc)
        self.hc_rounds = 0
        self.backbone_rounds = 0
        self.heads: list[State] | None = None  # the K heads every site has received (the same at all sites)
        self.hc_rounds_done = 0
        self._body_sent = False
        self._incoming_heads: dict[int, State] = {}
        self.final_models: list[LCFedSiteModel] = []

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

    def build_net(self, model: nn.Module, federation: Federation) -> LCFedNet:
        """Wrap the round-0 U-Net into an :class:`LCFedNet` with this variant's modules."""
        if isinstance(model, LCFedNet):
            return copy.deepcopy(model)
        if not hasattr(model, "bottleneck_channels"):
            raise ValueError("LC-Fed needs a fedlab.models.UNet (or an LCFedNet) as its model")
        calibration = None
        if self.use_hc:
            size = int(federation.sites[0].train.x.shape[-1])
            calibration = HeadCalibration(federation.num_labels, model.feature_channels, image_size=size)
        return LCFedNet(copy.deepcopy(model), len(federation), use_pcs=self.use_pcs, calibration=calibration)

    def make_clients(self, federation: Federation, model: nn.Module, config: Config, seed: int,
                     device: torch.device) -> list[Client]:
        """One client per site, each with an identical copy of the same :class:`LCFedNet`."""
        if federation.task != "segmentation":
            raise ValueError(f"LC-Fed is a segmentation method; federation {federation.name!r} is {federation.task}")
        if len(federation) < 2 and (self.use_hc or self.alpha > 0):
            raise ValueError("LC-Fed's contrastive loss and head calibration need at least 2 sites")
        with torch.random.fork_rng(devices=[]):  # PCS/HC initialisation from the run seed, not the global RNG
            torch.manual_seed(seed)
            net = self.build_net(model, federation)
        return [Client(k, site, copy.deepcopy(net).to(device), config, client_generator(seed, k, device),
                       lcfed_loss(k, self.alpha))
                for k, site in enumerate(federation)]

    def setup(self, model: nn.Module, clients: Sequence[Client], config: Config) -> None:
        """Split computed on the clients' LCFedNet; stage boundary from ``hc_rounds``."""
        super().setup(clients[0].model, clients, config)
        self.hc_rounds = (self.hc_rounds_arg or config.hc_rounds) if self.use_hc else 0
        self.backbone_rounds = config.rounds - self.hc_rounds
        if self.backbone_rounds < 1:
            raise ValueError(f"config.rounds={config.rounds} leaves no backbone round before {self.hc_rounds} "
                             "calibration rounds; raise rounds or lower hc_rounds")
        self.heads, self.hc_rounds_done, self._incoming_heads = None, 0, {}

    # --- one round ----------------------------------------------------------------------------
    def stage(self, round: int) -> int:
        """0 (backbone) or 1 (head calibration) for ``round``."""
        return 1 if self.use_hc and round > self.backbone_rounds else 0

    def client_update(self, client: Client, round: int) -> Update:
        """Stage 0: head-only then body-only steps. Stage 1: calibration-only steps. See module docstring."""
        net: LCFedNet = client.model
        if self.stage(round) == 1:
            site_model = self._site_model(client, calibrated=True)
            loss = client.train(self.config.local_steps, params=list(net.hc.parameters()),
                                loss_fn=calibration_loss(site_model))
            return Update(client.index, self._head_payload(net), self.weight(client), loss)
        local_ids = {id(p) for m in self.head_modules(net) for p in m.parameters()}
        head = list(net.head.parameters())
        body = [p for p in net.parameters() if id(p) not in local_ids]
        steps_head = self.config.head_steps
        steps_body = self.config.local_steps - steps_head
        loss_head = client.train(steps_head, params=head)
        loss_body = client.train(steps_body, params=body)
        loss = (loss_head * steps_head + loss_body * steps_body) / self.config.local_steps
        payload = self.split.shared_state(net.state_dict())
        if self.use_hc and round == self.backbone_rounds:  # the heads travel once stage 0 is over
            payload.update(self._head_payload(net))
        return Update(client.index, payload, self.weight(client), loss)

    def aggregate(self, updates: Sequence[Update], round: int) -> State:
        """Average the bodies; collect the uploaded heads (never averaged)."""
        bodies = [({k: v for k, v in u.payload.items() if not k.startswith(HEAD_PREFIX)}, u.weight) for u in updates]
        bodies = [(b, w) for b, w in bodies if b]
        self._body_sent = bool(bodies)
        if bodies:
            self.global_state = weighted_average([b for b, _ in bodies], [w for _, w in bodies])
        heads = {u.client: {k[len(HEAD_PREFIX):]: v for k, v in u.payload.items() if k.startswith(HEAD_PREFIX)}
                 for u in updates}
        self._incoming_heads = {client: head for client, head in heads.items() if head}
        if self.stage(round) == 1:
            self.hc_rounds_done += 1
        return self.global_state

    def broadcast(self, clients: Sequence[Client], round: int) -> int:
        """Send the averaged body (stage 0) and every site the heads of the other sites (from the boundary on)."""
        sent = 0
        if self._body_sent:
            sent += super().broadcast(clients, round)
        if self._incoming_heads:
            heads = self.heads or [{k: v.detach().clone() for k, v in c.model.head.state_dict().items()}
                                   for c in clients]
            heads = [dict(self._incoming_heads.get(k, h)) for k, h in enumerate(heads)]
            self.heads = heads
            sizes = [state_bytes(h) for h in heads]
            sent += sum(sum(sizes) - sizes[c.index] for c in clients)  # K-1 heads to each site
        return sent

    # --- evaluation and end of training -------------------------------------------------------
    def _head_payload(self, net: LCFedNet) -> State:
        return {HEAD_PREFIX + k: v.detach().clone() for k, v in net.head.state_dict().items()}

    def _site_model(self, client: Client, calibrated: bool) -> LCFedSiteModel:
        net: LCFedNet = client.model
        heads = None
        if net.hc is not None:
            states = self.heads or [net.head.state_dict()] * net.num_sites  # placeholder before the exchange
            heads = []
            for state in states:
                head = copy.deepcopy(net.head)
                head.load_state_dict(state)
                heads.append(head)
        return LCFedSiteModel(net, client.index, heads, calibrated=calibrated)

    def site_models(self, clients: Sequence[Client]) -> list[nn.Module]:
        """Each site's model ``x -> logits``: its site code, plus calibration once stage 1 has trained."""
        return [self._site_model(c, calibrated=self.hc_rounds_done > 0) for c in clients]

    def finish(self, clients: Sequence[Client]) -> None:
        """Keep the last round's site models in ``final_models`` (for plots; the evaluated models are
        the validation-selected ones in ``History.site_models``), and warn when head calibration was
        asked for but never trained (the run ended before stage 1)."""
        self.final_models = [copy.deepcopy(m) for m in self.site_models(clients)]
        if self.use_hc and self.hc_rounds_done == 0:
            warnings.warn(f"LC-Fed's calibration stage never ran: it starts after round {self.backbone_rounds} "
                          "(config.rounds - hc_rounds). Pass the total number of rounds through config.rounds.",
                          stacklevel=2)

    # --- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Server state: global body, exchanged heads and stage-1 progress."""
        return {"global_state": self.global_state, "heads": self.heads, "hc_rounds_done": self.hc_rounds_done}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.global_state = state["global_state"]
        self.heads = state["heads"]
        self.hc_rounds_done = state["hc_rounds_done"]

    def describe(self) -> dict:
        """Settings for the run receipt."""
        return {**super().describe(), "alpha": self.alpha, "use_pcs": self.use_pcs, "use_hc": self.use_hc,
                "hc_rounds": self.hc_rounds, "backbone_rounds": self.backbone_rounds}
