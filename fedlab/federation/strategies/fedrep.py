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

from torch import nn

from fedlab.federation.client import Client
from fedlab.federation.params import ParamSplit
from fedlab.federation.strategies.base import Strategy, Update


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

    def client_update(self, client: Client, round: int) -> Update:
        """``head_steps`` head-only steps, then ``local_steps - head_steps`` body-only steps."""
        head = [p for m in self.head_modules(client.model) for p in m.parameters()]
        head_ids = {id(p) for p in head}
        body = [p for p in client.model.parameters() if id(p) not in head_ids]
        steps_head = self.config.head_steps
        steps_body = self.config.local_steps - steps_head
        loss_head = client.train(steps_head, params=head)
        loss_body = client.train(steps_body, params=body)
        loss = (loss_head * steps_head + loss_body * steps_body) / self.config.local_steps
        return Update(client.index, self.split.shared_state(client.model.state_dict()), self.weight(client), loss)
