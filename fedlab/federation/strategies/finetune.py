"""FT: FedAvg, then each site fine-tunes the global model on its own training data.

After the last round every site copies the final FedAvg global model and trains it on its own
training split with a fresh Adam optimiser (lr ``1e-4``, as LC-Fed's authors) for
``config.finetune_steps`` steps. Every ``eval_every`` steps (and at step 0, the unchanged global
model) the site scores the model on its *validation* split and keeps the best-scoring weights; the
test split is never looked at. Because the kept model is chosen inside :meth:`FineTune.finish`,
run_federation keeps it (``finish_selects``) rather than the best FedAvg round.
"""

from __future__ import annotations

import copy

import torch

from fedlab.federation.client import Client
from fedlab.federation.evaluation import SELECTION_METRIC, evaluate
from fedlab.federation.strategies.base import ServerState
from fedlab.federation.strategies.fedavg import FedAvg


class FineTune(FedAvg):
    """FedAvg followed by per-site fine-tuning with validation-based early stopping.

    Args:
        lr: Fine-tuning learning rate (Adam).
        eval_every: Validation check every this many fine-tuning steps (default: ``finetune_steps // 10``,
            at least 1).
        weighting: FedAvg weighting, "samples" or "uniform".
    """

    name = "FT"
    personalized = True
    finish_selects = True

    def __init__(self, lr: float = 1e-4, eval_every: int | None = None, weighting: str = "samples") -> None:
        super().__init__(weighting=weighting)
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        self.lr = lr
        self.eval_every = eval_every

    def finish_client(self, client: Client) -> dict:
        """Fine-tune the site's copy of the final global model; keep its best-validation weights."""
        return self.finetune_client(client)

    def summarize_finish(self, facts: dict[str, dict], state: ServerState, names: dict[int, str]) -> dict:
        """``{"finetune": {site: {best_step, val_score, metric, selection}}}``."""
        return {"finetune": facts}

    def finetune_client(self, client: Client) -> dict:
        """Fine-tune ``client.model`` in place and load the best-validation weights into it.

        Returns:
            ``{"best_step": s, "val_score": v, "metric": m}`` for the record.
        """
        steps = self.config.finetune_steps
        every = self.eval_every or max(1, steps // 10)
        task = self.task
        metric = SELECTION_METRIC[task]
        val = client.site.val if client.site.val is not None and len(client.site.val) else None
        optimizer = torch.optim.Adam(client.model.parameters(), lr=self.lr)

        def score() -> float:
            return evaluate(client.model, val, task, (metric,), self.config.eval_batch_size)[metric]

        best_step, best_score = 0, score() if val is not None else float("nan")
        best_state = copy.deepcopy(client.model.state_dict())
        step = 0
        while step < steps:
            chunk = min(every, steps - step)
            client.train(chunk, optimizer=optimizer)
            step += chunk
            if val is None:  # no validation split: keep the last model (said in the record)
                best_step, best_state = step, copy.deepcopy(client.model.state_dict())
                continue
            s = score()
            if s > best_score:
                best_step, best_score, best_state = step, s, copy.deepcopy(client.model.state_dict())
        client.model.load_state_dict(best_state)
        return {"best_step": best_step, "val_score": best_score, "metric": metric,
                "selection": "validation" if val is not None else "last (no validation split)"}
