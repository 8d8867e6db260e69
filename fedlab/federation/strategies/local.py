"""Local training: every site trains alone; nothing is communicated (the no-collaboration baseline)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fedlab.federation.client import Client
from fedlab.federation.params import ParamSplit, State
from fedlab.federation.strategies.base import Strategy, Update


class Local(Strategy):
    """Each site trains its own model on its own data; zero bytes leave any site."""

    name = "Local"
    personalized = True
    overwrites_weights = False

    def param_split(self, model: nn.Module) -> ParamSplit:
        """Nothing is shared: every tensor is local."""
        return ParamSplit.from_model(model, local_modules=[model])

    def client_update(self, client: Client, round: int) -> Update:
        """Local steps; the payload is empty (nothing is sent)."""
        return Update(client.index, {}, self.weight(client), client.train(self.config.local_steps))

    def aggregate(self, updates: Sequence[Update], round: int) -> State:
        """No server."""
        return {}

    def broadcast(self, clients: Sequence[Client], round: int) -> int:
        """Nothing is sent."""
        return 0
