"""FedRep and FedPer: a shared body (representation) with a personal segmentation head.

* FedRep (Collins et al., ICML 2021): in each round a site first trains only its head for
  ``config.head_steps`` steps with the body frozen, then only the body for the remaining
  ``local_steps - head_steps`` steps with the head frozen; only the body is averaged. LC-Fed's
  authors ran 10 head iterations then 40 body iterations per round.
* FedPer (Arivazhagan et al., 2019): body and personal head are trained jointly for
  ``local_steps`` steps; only the body is averaged. The simpler relative of FedRep.

Which modules form the head is a method (``head_modules``), so a model with more local parts
(LC-Fed's calibration module) only overrides that.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fedlab.federation.client import Client, LossFn
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import ParamSplit
from fedlab.federation.strategies.base import Strategy


class FedPer(Strategy):
    """Shared body, personal head, trained jointly; only the body is averaged."""

    name = "FedPer"
    personalized = True

    def head_modules(self, model: nn.Module) -> list[nn.Module]:
        """Modules that stay local (default: ``model.head``)."""
        return [model.head]

    def param_split(self, model: nn.Module) -> ParamSplit:
        """Head local, everything else shared."""
        return ParamSplit.from_model(model, local_modules=self.head_modules(model))


class FedRep(FedPer):
    """Alternating schedule: head-only steps, then body-only steps; only the body is averaged."""

    name = "FedRep"

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """Receive the body; ``head_steps`` head-only steps, then ``local_steps - head_steps`` body-only steps."""
        self.prepare_round(client, message)
        return self.reply(client, self.train_head_then_body(client))

    def train_head_then_body(self, client: Client, loss_fn: LossFn | None = None,
                             also: Sequence[nn.Parameter] = ()) -> torch.Tensor:
        """FedRep's local schedule; returns the mean loss over all ``local_steps`` steps.

        The head is ``model.head``; the body is every other parameter that is not local
        (:meth:`head_modules`), so LC-Fed's calibration module (local) sits out both phases unless
        it is passed in ``also``.

        Args:
            client: The site.
            loss_fn: Loss of both phases (default: the client's task loss).
            also: Parameters trained in both phases (LC-Fed's joint calibration stage: the calibration module).
        """
        model = client.model
        local_ids = {id(p) for m in self.head_modules(model) for p in m.parameters()}
        head = list(model.head.parameters()) + list(also)
        body = [p for p in model.parameters() if id(p) not in local_ids] + list(also)
        steps_head = self.config.head_steps
        steps_body = self.config.local_steps - steps_head
        loss_head = client.train(steps_head, params=head, loss_fn=loss_fn)
        loss_body = client.train(steps_body, params=body, loss_fn=loss_fn)
        return (loss_head * steps_head + loss_body * steps_body) / self.config.local_steps
