"""FedSGD (McMahan et al., 2017): clients send gradients, the server takes the optimiser step.

Each round every client computes the gradient of its local loss at the current global model (on
its full training set by default, or on one mini-batch) and uploads it. The server averages the
gradients with sample-count weights ``n_k / n`` and applies one step of its optimiser (by default
the textbook plain gradient step ``w <- w - lr * g`` with the config's learning rate;
``server_optimizer="adam"`` or ``server_lr`` change it). With full-batch gradients, plain steps and
``weighting="samples"`` this is exactly centralised (full-batch) gradient descent on the pooled
data: the pooled mean-loss gradient is ``sum_k (n_k / n) g_k``.

Only parameters travel (buffers are not updated by gradients and stay as initialised).
Communication per round: one gradient up per client and one model down per client, so reaching a
given accuracy needs many more rounds (and bytes) than FedAvg, which takes several local steps
between messages.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from fedlab.config import Config
from fedlab.federation.client import Client, make_optimizer
from fedlab.federation.params import State, weighted_average
from fedlab.federation.strategies.base import Strategy, Update


class FedSGD(Strategy):
    """Gradient averaging with one server optimiser step per round.

    Args:
        weighting: "samples" (``n_k / n``, default) or "uniform".
        batch_size: Gradient batch per client; ``None`` = the full local training set.
        server_optimizer: "sgd" (plain gradient step, default) or "adam".
        server_lr: Server learning rate; ``None`` = ``config.lr``.
    """

    name = "FedSGD"

    def __init__(self, weighting: str = "samples", batch_size: int | None = None, server_optimizer: str = "sgd",
                 server_lr: float | None = None) -> None:
        super().__init__(weighting)
        if batch_size is not None and batch_size <= 0:
            raise ValueError(f"batch_size must be positive or None (full batch), got {batch_size}")
        if server_optimizer not in ("sgd", "adam"):
            raise ValueError(f"server_optimizer must be 'sgd' or 'adam', got {server_optimizer!r}")
        if server_lr is not None and server_lr <= 0:
            raise ValueError(f"server_lr must be positive or None (config.lr), got {server_lr}")
        self.batch_size = batch_size
        self.server_optimizer_name = server_optimizer
        self.server_lr = server_lr

    def setup(self, model, clients: Sequence[Client], config: Config) -> None:
        """The server keeps its own copy of the model and the optimiser that steps it."""
        super().setup(model, clients, config)
        self.server_model = copy.deepcopy(clients[0].model)
        server = config.replace(optimizer=self.server_optimizer_name, lr=self.server_lr or config.lr)
        self.server_optimizer = make_optimizer(self.server_model.parameters(), server)

    def client_update(self, client: Client, round: int) -> Update:
        """Gradient of the local mean loss at the global model; nothing is stepped locally."""
        x, y = client.sample_batch(self.batch_size or len(client.site.train))
        client.model.train()
        client.model.zero_grad(set_to_none=True)
        loss = client.loss_fn(client.model, x, y)
        loss.backward()
        grads = {name: p.grad.detach().clone() for name, p in client.model.named_parameters()
                 if p.grad is not None}
        return Update(client.index, grads, self.weight(client), loss.detach())

    def aggregate(self, updates: Sequence[Update], round: int) -> State:
        """Weighted mean gradient -> one server optimiser step -> new global state."""
        if not updates:
            return self.global_state
        grads = weighted_average([u.payload for u in updates], [u.weight for u in updates])
        self.server_optimizer.zero_grad(set_to_none=True)
        for name, p in self.server_model.named_parameters():
            if name in grads:
                p.grad = grads[name]
        self.server_optimizer.step()
        state = self.server_model.state_dict()
        self.global_state = {k: state[k].detach().clone() for k in self.split.shared}
        return self.global_state

    def state_dict(self) -> dict:
        """Global state plus the server model and optimiser (for checkpoints)."""
        return {"global_state": self.global_state, "server_model": self.server_model.state_dict(),
                "server_optimizer": self.server_optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        self.global_state = state["global_state"]
        self.server_model.load_state_dict(state["server_model"])
        self.server_optimizer.load_state_dict(state["server_optimizer"])

    def describe(self) -> dict:
        """Settings for the run receipt."""
        return {**super().describe(), "batch_size": self.batch_size or "full",
                "server_optimizer": self.server_optimizer_name, "server_lr": self.server_lr}
