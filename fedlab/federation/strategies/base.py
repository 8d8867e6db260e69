"""The Strategy interface: what a client does in a round and how the server combines it.

A round of :func:`fedlab.federation.simulation.run_federation` calls, in order:

1. ``client_update(client, round)`` for each selected client -> :class:`Update` (what it sends);
2. ``aggregate(updates, round)`` on the server -> the new global state;
3. ``broadcast(clients, round)`` -> each client receives what the strategy sends down.

Every message is counted in the bytes ledger (``Update.payload`` up, ``broadcast``'s return down).
Subclasses override only what differs; the defaults implement FedAvg over a :class:`ParamSplit`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from fedlab.config import Config
from fedlab.data.federation import Federation
from fedlab.federation.client import Client, LossFn, make_optimizer, task_loss
from fedlab.federation.params import ParamSplit, State, state_bytes, weighted_average
from fedlab.reproducibility import client_generator

WEIGHTINGS = ("samples", "uniform")


@dataclass
class Update:
    """What one client sends to the server after local training.

    Attributes:
        client: Index of the sender.
        payload: The tensors sent (counted in the bytes ledger).
        weight: Aggregation weight (n_k for sample weighting, 1 for uniform).
        loss: Mean local training loss, a 0-d tensor left on the device.
    """

    client: int
    payload: State
    weight: float
    loss: torch.Tensor


class Strategy:
    """Base strategy: FedAvg over the keys that :meth:`param_split` marks as shared.

    Args:
        weighting: "samples" (w_k = n_k / n, the surveys' equation) or "uniform" (w_k = 1 / K).
    """

    name = "Strategy"
    personalized = False
    #: True when :meth:`finish` itself picks each site's model on its validation split (e.g. FT's
    #: fine-tuning); run_federation then keeps the finished models instead of the best round's.
    finish_selects = False
    #: False for strategies whose client weights nothing overwrites (Local, Mix): their clients keep
    #: their optimiser across rounds whatever ``config.optimizer_state`` says.
    overwrites_weights = True

    def __init__(self, weighting: str = "samples") -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.weighting = weighting
        self.split: ParamSplit | None = None
        self.global_state: State = {}
        self.config: Config | None = None

    # --- set-up -------------------------------------------------------------------------------
    def model_factory(self, federation: Federation, config: Config) -> Callable[[], nn.Module] | None:
        """The model this strategy needs when run_federation gets ``model=None`` (default: None = the
        preset's model). FedBN returns a BatchNorm U-Net factory here."""
        return None

    def param_split(self, model: nn.Module) -> ParamSplit:
        """Which state_dict keys are shared (default: every floating-point tensor)."""
        return ParamSplit.all_shared(model)

    def loss_fn(self, task: str) -> LossFn:
        """Local training loss (default: the task's loss)."""
        return task_loss(task)

    def make_clients(self, federation: Federation, model: nn.Module, config: Config, seed: int,
                     device: torch.device) -> list[Client]:
        """One client per site, each starting from an identical copy of ``model``."""
        return [
            Client(k, site, copy.deepcopy(model).to(device), config, client_generator(seed, k, device),
                   self.loss_fn(federation.task))
            for k, site in enumerate(federation)
        ]

    def setup(self, model: nn.Module, clients: Sequence[Client], config: Config) -> None:
        """Prepare the server: the split and the initial global state (round 0)."""
        self.config = config
        self.split = self.param_split(model)
        self.global_state = self.split.shared_state(clients[0].model.state_dict()) if clients else {}

    # --- one round ----------------------------------------------------------------------------
    def select(self, clients: Sequence[Client], round: int) -> list[Client]:
        """Clients that take part in this round (default: all)."""
        return list(clients)

    def begin_round(self, client: Client, round: int) -> None:
        """Before a client's local update: a fresh optimiser when the server has overwritten its weights
        (``config.optimizer_state == "fresh"``), so no Adam moment computed for an earlier model survives."""
        if self.overwrites_weights and self.config.optimizer_state == "fresh":
            client.optimizer = make_optimizer(client.model.parameters(), self.config)

    def client_update(self, client: Client, round: int) -> Update:
        """Local training, then send the shared part of the model."""
        loss = client.train(self.config.local_steps)
        return Update(client.index, self.split.shared_state(client.model.state_dict()), self.weight(client), loss)

    def weight(self, client: Client) -> float:
        """Aggregation weight of ``client``."""
        return float(client.num_train) if self.weighting == "samples" else 1.0

    def aggregate(self, updates: Sequence[Update], round: int) -> State:
        """Weighted average of the payloads; becomes the new global state."""
        if updates:
            self.global_state = weighted_average([u.payload for u in updates], [u.weight for u in updates])
        return self.global_state

    def broadcast(self, clients: Sequence[Client], round: int) -> int:
        """Send the global state to every client; returns the bytes sent down."""
        for c in clients:
            c.model.load_state_dict(self.global_state, strict=False)
        return state_bytes(self.global_state) * len(clients)

    # --- evaluation and end of training -------------------------------------------------------
    def site_models(self, clients: Sequence[Client]) -> list[nn.Module]:
        """The model that serves each site (maps inputs to logits), in federation order."""
        return [c.model for c in clients]

    def finish(self, clients: Sequence[Client]) -> dict | None:
        """Hook after the last round (e.g. local fine-tuning). Default: nothing.

        Returns:
            Optional facts to record in ``history.info["finish"]`` (JSON-able).
        """
        return None

    # --- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Server-side state to checkpoint."""
        return {"global_state": self.global_state}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.global_state = state["global_state"]

    def describe(self) -> dict:
        """Settings to record in the run receipt."""
        return {"name": self.name, "weighting": self.weighting, "personalized": self.personalized}
