"""Local training: every site trains alone; nothing is communicated (the no-collaboration baseline)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fedlab.federation.client import Client
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import ParamSplit
from fedlab.federation.strategies.base import ServerState, Strategy


class Local(Strategy):
    """Each site trains its own model on its own data; zero bytes leave any site.

    Nothing overwrites a site's weights, so each site keeps its optimiser for the whole run.
    """

    name = "Local"
    personalized = True

    def param_split(self, model: nn.Module) -> ParamSplit:
        """Nothing is shared: every tensor is local."""
        return ParamSplit.from_model(model, local_modules=[model])

    def initial_state(self, model: nn.Module) -> ServerState:
        """No server state."""
        return {}

    def configure(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """An empty instruction per site: "train"."""
        return {k: Message() for k in self.select(round, clients)}

    def configure_evaluate(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """Nothing to send."""
        return {k: Message() for k in clients}

    def reply(self, client: Client, loss, extra=None) -> Reply:
        """Nothing is sent (only the loss, for the log)."""
        return Reply(client.index, Message(), self.weight(client), loss)

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """No server."""
        return state
