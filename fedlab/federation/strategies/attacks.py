"""A malicious site: it trains like everyone else, then sends a scaled, sign-flipped update.

Model poisoning in its simplest form (the "sign-flipping" / "reverse gradient" attack used to test
Byzantine-robust rules, e.g. in Blanchard et al. 2017 and Yin et al. 2018): the attacking site computes
its honest update ``delta = w_local - w_received`` and uploads ``w_received - scale * delta`` instead
of ``w_local``, pushing the global model away from where its data say it should go, ``scale`` times
harder. Under FedAvg the attacker's share of the average is its sample weight ``n_k / n``, so a site with
a quarter of the data and ``scale=5`` cancels everyone else's progress and then some. Robust rules
(:mod:`fedlab.federation.strategies.robust`) bound its influence.

:class:`SignFlip` wraps any strategy whose sites upload model weights (FedAvg, FedProx, the robust
rules): only the attacker's upload changes. It is a scenario, not a method, so it is not registered in
``STRATEGIES``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fedlab.federation.client import Client
from fedlab.federation.messages import Message, Reply
from fedlab.federation.strategies.wrapper import InnerSpec, StrategyWrapper


class SignFlip(StrategyWrapper):
    """``inner``, except that the sites in ``attackers`` upload ``w_received - scale * (w_local - w_received)``.

    Args:
        inner: The strategy under attack (default FedAvg).
        attackers: Indices (site codes) of the malicious sites.
        scale: How much the flipped update is amplified (> 0).
    """

    def __init__(self, inner: InnerSpec = None, attackers: Sequence[int] = (0,), scale: float = 5.0) -> None:
        super().__init__(inner)
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        self.attackers = tuple(sorted({int(a) for a in attackers}))
        self._init_kwargs["attackers"] = list(self.attackers)  # plain values in the run's identity
        self.scale = float(scale)

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """The honest update, flipped and scaled at an attacking site (tensors it did not receive are sent as is)."""
        reply = self.inner.client_update(client, message, round)
        if client.index not in self.attackers:
            return reply
        received = message.tensors
        tensors = {}
        for key, value in reply.message.tensors.items():
            if key in received and value.is_floating_point():
                tensors[key] = received[key] - self.scale * (value - received[key])
            else:
                tensors[key] = value
        return Reply(reply.client, Message(tensors, dict(reply.message.config)), reply.weight, reply.loss)



__all__ = ["SignFlip"]
