"""Centralized ("Mix"): all sites' training data pooled in one place.

This is the privacy-violating upper bound that FL tries to approach: it needs the raw data of every
hospital on one server, which is exactly what federated learning avoids (so it cannot run on a
Flower deployment). It trains one model on the pooled data for ``local_steps * K`` steps per round
(the same number of mini-batches as a FedAvg round over K sites) and serves that one model to
every site. It is :class:`~fedlab.federation.strategies.local.Local` training of one pooled site.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fedlab.data.federation import Federation
from fedlab.federation.client import Client
from fedlab.federation.messages import Reply
from fedlab.federation.strategies.local import Local


class Centralized(Local):
    """One model trained on the pooled data (privacy-violating upper bound)."""

    name = "Mix"
    personalized = False
    federated = False

    def make_clients(self, federation: Federation, model: nn.Module, seed: int, device: torch.device) -> list[Client]:
        """A single client that holds every site's training data."""
        self.num_sites = len(federation)
        return [self.make_client(0, federation.pooled(self.name), model, seed, device)]

    def client_update(self, client: Client, message, round: int) -> Reply:
        """``local_steps * K`` steps on pooled mini-batches; the raw data were the 'upload'."""
        return self.reply(client, client.train(self.config.local_steps * self.num_sites))

    def site_models(self, clients: Sequence[Client]) -> list[nn.Module]:
        """The one pooled model serves every site."""
        return [clients[0].model] * self.num_sites
