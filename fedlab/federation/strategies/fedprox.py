"""FedProx (Li et al., 2020): FedAvg with a proximal term that keeps local models near the global one.

Local objective of client k in a round with global model ``w_g``::

    F_k(w) + mu / 2 * ||w - w_g||^2

over the shared parameters. Aggregation is FedAvg's sample-weighted average. ``mu = 0`` is FedAvg.
By default a round is one local pass over the training set: ``ceil(n_k / batch_size)`` mini-batch
steps (the survey's "one local training pass"); ``local_steps`` overrides it.
"""

from __future__ import annotations

import math

from fedlab.federation.client import Client
from fedlab.federation.messages import Message, Reply
from fedlab.federation.strategies.base import Strategy


class FedProx(Strategy):
    """FedAvg with a proximal local objective.

    Args:
        mu: Proximal weight (the survey uses 0.1).
        weighting: "samples" (default) or "uniform".
        local_steps: Steps per round; ``None`` = one pass (epoch) over the local training set.
    """

    name = "FedProx"

    def __init__(self, mu: float = 0.1, weighting: str = "samples", local_steps: int | None = None) -> None:
        super().__init__(weighting)
        if mu < 0:
            raise ValueError(f"mu must be >= 0, got {mu}")
        if local_steps is not None and local_steps <= 0:
            raise ValueError(f"local_steps must be positive or None (one epoch), got {local_steps}")
        self.mu = mu
        self.local_steps = local_steps

    def steps(self, client: Client) -> int:
        """Local steps of ``client`` in one round."""
        if self.local_steps is not None:
            return self.local_steps
        return math.ceil(client.num_train / min(self.config.batch_size, client.num_train))

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """Receive ``w_g``, local steps on task loss + proximal term, then send the shared state."""
        self.prepare_round(client, message)
        params = dict(client.model.named_parameters())
        anchor = {k: params[k].detach().clone() for k in self.split.shared if k in params}  # w_g
        task, mu = client.loss_fn, self.mu

        def prox_loss(model, x, y):
            loss = task(model, x, y)
            if mu:
                prox = sum(((params[k] - w0) ** 2).sum() for k, w0 in anchor.items())
                loss = loss + 0.5 * mu * prox
            return loss

        return self.reply(client, client.train(self.steps(client), loss_fn=prox_loss))


__all__ = ["FedProx"]
