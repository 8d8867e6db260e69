"""Client: one site's data, model, optimiser state, random generator and private state.

A client never sees another site's data. Its model persists across rounds (the server only
overwrites the keys it sends); its optimiser is replaced by a fresh one when the server has
overwritten its weights (``Config.optimizer_state="fresh"``, FedAvg's definition). All of its
randomness (mini-batch sampling) comes from its own ``torch.Generator``. What a strategy keeps at the
site beyond the model (PRR-FL's deputy, LC-Fed's received heads, counters) lives in
:attr:`Client.private`. :meth:`Client.state_dict` holds all of it, so a run resumes bit for bit from a
checkpoint and a Flower node can keep it between rounds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import nn

from fedlab.config import Config
from fedlab.data.federation import Site, Split

LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def task_loss(task: str) -> LossFn:
    """The default training loss of a task.

    Segmentation: soft Dice loss on per-channel sigmoids (MONAI ``DiceLoss``), as in LC-Fed.
    Classification: binary cross-entropy on the logit.
    """
    if task == "segmentation":
        dice = DiceLoss(sigmoid=True)
        return lambda model, x, y: dice(model(x), y)
    if task == "classification":
        return lambda model, x, y: F.binary_cross_entropy_with_logits(model(x).reshape(-1), y)
    raise ValueError(f"Unknown task {task!r}")


def make_optimizer(params: Iterable[nn.Parameter], config: Config, lr: float | None = None) -> torch.optim.Optimizer:
    """The client optimiser named by ``config.optimizer`` ("adam" or "sgd")."""
    lr = config.lr if lr is None else lr
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=lr, weight_decay=config.weight_decay)


class Client:
    """One participating site.

    Args:
        index: Position of the site in the federation (its site code).
        site: The site's data (already on ``device``).
        model: The client's own model instance.
        config: Run settings (optimiser, learning rate, batch size).
        generator: The client's random generator (see :func:`fedlab.reproducibility.client_generator`).
        loss_fn: Training loss ``loss_fn(model, x, y)``.

    Attributes:
        private: What the strategy keeps at this site besides ``model`` (never sent unless the
            strategy says so): modules, optimisers, tensors or plain values, by name.
    """

    def __init__(self, index: int, site: Site, model: nn.Module, config: Config, generator: torch.Generator,
                 loss_fn: LossFn) -> None:
        self.index = index
        self.site = site
        self.model = model
        self.config = config
        self.generator = generator
        self.loss_fn = loss_fn
        self.optimizer = make_optimizer(model.parameters(), config)
        self.private: dict[str, object] = {}

    @property
    def name(self) -> str:
        """The site name."""
        return self.site.name

    @property
    def num_train(self) -> int:
        """Training-set size n_k (the FedAvg weight)."""
        return self.site.num_train

    def reset_optimizer(self) -> None:
        """Replace the optimiser by a fresh one (no moments, step count 0)."""
        self.optimizer = make_optimizer(self.model.parameters(), self.config)

    def sample_batch(
        self, batch_size: int | None = None, split: Split | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A mini-batch drawn without replacement with the client's generator.

        A batch size of at least the split's size returns the whole split (full-batch gradient).
        """
        split = self.site.train if split is None else split
        batch_size = batch_size or self.config.batch_size
        n = len(split)
        if batch_size >= n:
            return split.x, split.y
        idx = torch.randperm(n, generator=self.generator, device=split.x.device)[:batch_size]
        return split.x[idx], split.y[idx]  # (B, ...) each

    def train(self, steps: int, params: Iterable[nn.Parameter] | None = None, loss_fn: LossFn | None = None,
              optimizer: torch.optim.Optimizer | None = None, batch_size: int | None = None) -> torch.Tensor:
        """Run ``steps`` optimiser steps on local mini-batches.

        Args:
            steps: Number of mini-batches.
            params: Train only these parameters (others are frozen for these steps); default all.
            loss_fn: Loss to minimise; default the client's task loss.
            optimizer: Optimiser to step; default the client's persistent optimiser.
            batch_size: Mini-batch size; default ``config.batch_size``.

        Returns:
            The mean training loss over the steps, as a 0-d tensor on the device (no host sync).
        """
        loss_fn = loss_fn or self.loss_fn
        optimizer = optimizer or self.optimizer
        frozen: list[nn.Parameter] = []
        if params is not None:
            keep = {id(p) for p in params}
            frozen = [p for p in self.model.parameters() if id(p) not in keep and p.requires_grad]
            for p in frozen:
                p.requires_grad_(False)
        self.model.train()
        total = torch.zeros((), device=self.site.train.x.device)
        try:
            for _ in range(steps):
                x, y = self.sample_batch(batch_size)
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(self.model, x, y)
                loss.backward()
                optimizer.step()
                total += loss.detach()
        finally:
            for p in frozen:
                p.requires_grad_(True)
        return total / max(steps, 1)

    def state_dict(self) -> dict:
        """Everything needed to resume this client: model, optimiser, generator and private state.

        Only tensors and plain Python values (safe to load with ``torch.load(weights_only=True)``).
        """
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "private": {k: _to_state(v) for k, v in self.private.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` saved (private modules and optimisers must already exist)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"].cpu())
        for key, value in state.get("private", {}).items():
            current = self.private.get(key)
            if isinstance(current, nn.Module | torch.optim.Optimizer):
                current.load_state_dict(value)
            else:
                self.private[key] = value


def _to_state(value: object) -> object:
    """Modules and optimisers by their state_dict; tensors and plain values as they are."""
    if isinstance(value, nn.Module | torch.optim.Optimizer):
        return value.state_dict()
    return value
