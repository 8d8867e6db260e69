"""Centralized ("Mix"): all sites' training data pooled in one place.

This is the privacy-violating upper bound that FL tries to approach: it needs the raw data of every
hospital on one server, which is exactly what federated learning avoids. It trains one model on the
pooled data for ``local_steps * K`` steps per round (the same number of mini-batches as a FedAvg
round over K sites) and serves that one model to every site.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from fedlab.config import Config
from fedlab.data.federation import Federation
from fedlab.federation.client import Client
from fedlab.federation.params import State
from fedlab.federation.strategies.base import Strategy, Update
from fedlab.reproducibility import client_generator


class Centralized(Strategy):
    """One model trained on the pooled data (privacy-violating upper bound)."""

    name = "Mix"
    overwrites_weights = False

    def make_clients(self, federation: Federation, model: nn.Module, config: Config, seed: int,
                     device: torch.device) -> list[Client]:
        """A single client that holds every site's training data."""
        self.num_sites = len(federation)
        pooled = federation.pooled(self.name)
        return [Client(0, pooled, copy.deepcopy(model).to(device), config, client_generator(seed, 0, device),
                       self.loss_fn(federation.task))]

    def client_update(self, client: Client, round: int) -> Update:
        """``local_steps * K`` steps on pooled mini-batches; the raw data were the 'upload'."""
        return Update(client.index, {}, 1.0, client.train(self.config.local_steps * self.num_sites))

    def aggregate(self, updates: Sequence[Update], round: int) -> State:
        """Nothing to aggregate."""
        return {}

    def broadcast(self, clients: Sequence[Client], round: int) -> int:
        """Nothing to send."""
        return 0

    def site_models(self, clients: Sequence[Client]) -> list[nn.Module]:
        """The one pooled model serves every site."""
        return [clients[0].model] * self.num_sites
