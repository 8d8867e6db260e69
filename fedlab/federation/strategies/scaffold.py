"""SCAFFOLD (Karimireddy et al., ICML 2020): FedAvg with control variates that correct client drift.

With several local steps, each site walks towards the minimum of its *own* loss; when the sites' losses
differ (heterogeneous data), FedAvg's average of those walks converges to a point that is not the
minimum of the federation's loss (client drift; see :mod:`fedlab.experiments.quadratic` for a case where
it is computed in closed form). SCAFFOLD estimates the drift and subtracts it at every local step.

The server holds the global model ``x`` and a control variate ``c`` (an estimate of the federation's
gradient); site ``k`` holds its own ``c_k`` (an estimate of its local gradient), privately, in
:attr:`~fedlab.federation.client.Client.private`. Both start at zero. A round (the paper's Algorithm 1,
option II, with plain SGD as its analysis assumes):

1. the server sends ``x`` and ``c`` (twice FedAvg's download);
2. site ``k`` starts from ``y = x`` and takes ``K`` local SGD steps with the corrected gradient
   ``y <- y - lr * (g_k(y) - c_k + c)``;
3. it sets ``c_k+ = c_k - c + (x - y) / (K * lr)`` (option II: the average gradient along its path) and
   sends ``y`` and ``c_k+`` (twice FedAvg's upload);
4. the server sets ``x <- x + server_lr * (sum_k p_k y_k - x)`` and ``c <- sum_k p_k c_k+`` with
   FedAvg's weights ``p_k`` (``n_k / n`` by default).

Step 4's control-variate update is the paper's ``c <- c + sum_k p_k (c_k+ - c_k)`` written for full
participation (every site in every round, fedlab's default): starting from zeros, ``c`` stays the
weighted mean of the sites' ``c_k``, so sending ``c_k+`` instead of the difference carries the same
information in the same bytes and keeps the average exact. (The paper weights uniformly, ``p_k = 1/K``;
``weighting="uniform"`` does that.) With ``server_lr=1`` the model update is FedAvg's average exactly.

In the first round all control variates are zero, so the correction adds zeros and SCAFFOLD's first
round is FedAvg's with the same SGD bit for bit; with one site, ``c = c_1`` after every round, the
correction vanishes and SCAFFOLD is local SGD. Control variates cover the shared *parameters*; shared
buffers (none in fedlab's InstanceNorm U-Net) are averaged as FedAvg does.

The client optimiser is plain SGD (no momentum) at ``lr`` (default: the config's learning rate);
a config that names Adam is run with SGD at that rate and a warning, since an Adam learning rate is far
too small for SGD: pass ``config.replace(optimizer="sgd", lr=...)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import nn

from fedlab.config import Config
from fedlab.federation.client import Client
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import weighted_average
from fedlab.federation.strategies.base import ServerState, Strategy

#: Prefix of the control-variate tensors in messages.
CONTROL = "control/"


class SCAFFOLD(Strategy):
    """FedAvg with SCAFFOLD's drift correction (option II), plain SGD at the sites.

    Args:
        lr: Local SGD learning rate; ``None`` = ``config.lr``.
        server_lr: Global step size ``eta_g`` (1 = the average of the sites' models).
        weighting: "samples" (``n_k / n``, default) or "uniform" (the paper's ``1 / K``).
    """

    name = "SCAFFOLD"

    def __init__(self, lr: float | None = None, server_lr: float = 1.0, weighting: str = "samples") -> None:
        super().__init__(weighting)
        if lr is not None and not lr > 0:
            raise ValueError(f"lr must be positive or None (config.lr), got {lr!r}")
        if not server_lr > 0:
            raise ValueError(f"server_lr must be positive, got {server_lr!r}")
        self.lr = lr
        self.server_lr = float(server_lr)
        self.param_keys: tuple[str, ...] = ()

    def setup(self, model: nn.Module, config: Config, rounds: int, task: str) -> None:
        """Plain SGD at the sites; which shared keys are parameters (they get control variates)."""
        if config.optimizer != "sgd" and self.lr is None:
            warnings.warn(f"SCAFFOLD steps with plain SGD; config.optimizer={config.optimizer!r} is replaced by SGD "
                          f"at lr={config.lr}. Pass config.replace(optimizer='sgd', lr=...) or SCAFFOLD(lr=...) "
                          "to choose the rate.", UserWarning, stacklevel=2)
        sgd = config.replace(optimizer="sgd", lr=self.lr if self.lr is not None else config.lr)
        super().setup(model, sgd, rounds, task)
        names = {n for n, _ in model.named_parameters()}
        self.param_keys = tuple(k for k in self.split.shared if k in names)

    def init_client(self, client: Client) -> None:
        """The site's control variate ``c_k``, zero."""
        params = dict(client.model.named_parameters())
        client.private["control"] = {k: torch.zeros_like(params[k]) for k in self.param_keys}

    def initial_state(self, model: nn.Module) -> ServerState:
        """The global model and the server control variate ``c``, zero."""
        params = dict(model.named_parameters())
        return {**super().initial_state(model),
                "control": {k: torch.zeros_like(params[k]).detach() for k in self.param_keys}}

    # --- server -------------------------------------------------------------------------------
    def configure(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """The global model ``x`` and the server control variate ``c``."""
        tensors = {**state["global"], **{CONTROL + k: v for k, v in state["control"].items()}}
        message = Message(tensors)
        return {k: message for k in self.select(round, clients)}

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """``x <- x + server_lr * (avg y - x)``, ``c <- avg c_k+`` (weighted)."""
        if not replies:
            return state
        weights = [r.weight for r in replies]
        models = [{k: v for k, v in r.message.tensors.items() if not k.startswith(CONTROL)} for r in replies]
        controls = [{k[len(CONTROL):]: v for k, v in r.message.tensors.items() if k.startswith(CONTROL)}
                    for r in replies]
        average = weighted_average(models, weights)
        if self.server_lr != 1.0:
            x = state["global"]
            average = {k: x[k] + self.server_lr * (v - x[k]) if v.is_floating_point() else v
                       for k, v in average.items()}
        return {**state, "global": average, "control": weighted_average(controls, weights)}

    # --- site ---------------------------------------------------------------------------------
    def receive(self, client: Client, message: Message) -> bool:
        """Load the model part of the message (the control variate is read in :meth:`client_update`)."""
        model = {k: v for k, v in message.tensors.items() if not k.startswith(CONTROL)}
        return super().receive(client, Message(model, message.config))

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """``K`` corrected SGD steps, the option-II control variate, and the upload ``(y, c_k+)``."""
        self.prepare_round(client, message)
        params = dict(client.model.named_parameters())
        x = {k: params[k].detach().clone() for k in self.param_keys}
        c = {k: message.tensors[CONTROL + k] for k in self.param_keys}
        c_k = client.private["control"]
        correction = {k: c[k] - c_k[k] for k in self.param_keys}  # c - c_k
        steps, lr = self.config.local_steps, self.config.lr
        optimizer = client.optimizer  # plain SGD (self.config says so)
        client.model.train()
        total = torch.zeros((), device=client.site.train.x.device)
        for _ in range(steps):
            xb, yb = client.sample_batch()
            optimizer.zero_grad(set_to_none=True)
            loss = client.loss_fn(client.model, xb, yb)
            loss.backward()
            for k in self.param_keys:
                p = params[k]
                if p.grad is None:
                    p.grad = correction[k].clone()
                else:
                    p.grad.add_(correction[k])  # g_k(y) - c_k + c
            optimizer.step()
            total += loss.detach()
        new_c = {k: c_k[k] - c[k] + (x[k] - params[k].detach()) / (steps * lr) for k in self.param_keys}
        client.private["control"] = new_c
        extra = {CONTROL + k: v.clone() for k, v in new_c.items()}
        return self.reply(client, total / max(steps, 1), extra)


__all__ = ["CONTROL", "SCAFFOLD"]
