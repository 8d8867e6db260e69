"""FedSGD (McMahan et al., 2017): clients send gradients, the server takes the optimiser step.

Each round every client computes the gradient of its local loss at the current global model (on
its full training set by default, or on one mini-batch) and uploads it. The server averages the
gradients with sample-count weights ``n_k / n`` and applies one step of its optimiser (by default
the textbook plain gradient step ``w <- w - lr * g`` with the config's learning rate;
``server_optimizer="adam"`` or ``server_lr`` change it). With full-batch gradients, plain steps and
``weighting="samples"`` this is exactly centralised (full-batch) gradient descent on the pooled
data: the pooled mean-loss gradient is ``sum_k (n_k / n) g_k``.

Only parameters travel up (buffers are not updated by gradients and stay as initialised). The server
state holds the global model and the server optimiser's state (Adam's moments when it is Adam), so
a checkpoint resumes the server exactly.
Communication per round: one gradient up per client and one model down per client, so reaching a
given accuracy needs many more rounds (and bytes) than FedAvg, which takes several local steps
between messages.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from fedlab.federation.client import Client, make_optimizer
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import weighted_average
from fedlab.federation.strategies.base import ServerState, Strategy


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
        self.param_keys: tuple[str, ...] = ()

    def setup(self, model: nn.Module, config, rounds: int, task: str) -> None:
        """The split, plus which shared keys are parameters (the ones the server steps)."""
        super().setup(model, config, rounds, task)
        names = {n for n, _ in model.named_parameters()}
        self.param_keys = tuple(k for k in self.split.shared if k in names)

    def initial_state(self, model: nn.Module) -> ServerState:
        """The global model and an empty server-optimiser state."""
        return {**super().initial_state(model), "optimizer": None}

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """Gradient of the local mean loss at the global model; nothing is stepped locally."""
        self.receive(client, message)
        x, y = client.sample_batch(self.batch_size or len(client.site.train))
        client.model.train()
        client.model.zero_grad(set_to_none=True)
        loss = client.loss_fn(client.model, x, y)
        loss.backward()
        grads = {name: p.grad.detach().clone() for name, p in client.model.named_parameters()
                 if p.grad is not None}
        return Reply(client.index, Message(grads), self.weight(client), loss.detach())

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """Weighted mean gradient -> one server optimiser step -> new global state."""
        if not replies:
            return state
        grads = weighted_average([r.message.tensors for r in replies], [r.weight for r in replies])
        params = [state["global"][k].detach().clone() for k in self.param_keys]
        optimizer = self._server_optimizer(params)
        if state["optimizer"] is not None:
            optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))  # torch steps loaded moments in place
        for key, p in zip(self.param_keys, params, strict=True):
            p.grad = grads.get(key)
        optimizer.step()
        new_global = {**state["global"], **dict(zip(self.param_keys, params, strict=True))}
        for p in params:
            p.grad = None
        return {**state, "global": new_global, "optimizer": optimizer.state_dict()}

    def _server_optimizer(self, params: list[torch.Tensor]) -> torch.optim.Optimizer:
        config = self.config.replace(optimizer=self.server_optimizer_name, lr=self.server_lr or self.config.lr)
        return make_optimizer(params, config)
