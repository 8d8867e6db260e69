"""Communication compression: top-k sparsified uploads, with or without error feedback, around any strategy.

Compression changes what travels, not what is learned, so it is a wrapper (:class:`TopK`) rather than an
option of FedAvg: ``TopK(FedProx())`` or ``TopK(SCAFFOLD())`` compress those methods' uploads the same way.

At a site, after the inner strategy's local update, every uploaded tensor that the site also received is
turned into an update ``delta = sent_by_inner - received``; the site uploads only the top-k entries of
``delta`` (plus its error-feedback residual) as values and int32 indices
(:func:`fedlab.federation.sparsify.compress`), and keeps what it did not send in
``client.private["residual"]`` when ``error_feedback`` is on. The server rebuilds each upload as
``received + densify(values, indices)`` (it knows what it sent: the inner strategy's messages are a function
of the server state) and hands the rebuilt replies to the inner strategy's aggregation. Tensors the site
did not receive (e.g. a report) travel uncompressed. Downloads are not compressed.

The bytes ledger counts exactly what the message holds: ``k`` values and ``k`` int32 indices per tensor.
At ``fraction=1`` every entry is sent, the rebuilt upload equals the inner strategy's up to one float
rounding (``x + (y - x)`` vs ``y``), and the upload costs twice FedAvg's (values and indices).
"""

from __future__ import annotations

from collections.abc import Sequence

from fedlab.federation.client import Client
from fedlab.federation.messages import Message, Reply
from fedlab.federation.sparsify import INDICES, VALUES, compress, decompress
from fedlab.federation.strategies.base import ServerState
from fedlab.federation.strategies.wrapper import InnerSpec, StrategyWrapper


class TopK(StrategyWrapper):
    """``inner`` with top-k sparsified uploads.

    Args:
        inner: The strategy whose uploads are compressed (default FedAvg).
        fraction: Share of every tensor's entries sent per round, in (0, 1].
        error_feedback: Keep what was not sent in a site-private residual and add it to the next update.
    """

    def __init__(self, inner: InnerSpec = None, fraction: float = 0.1, error_feedback: bool = True) -> None:
        super().__init__(inner)
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
        self.fraction = float(fraction)
        self.error_feedback = bool(error_feedback)
        self.name = f"{self.inner.name} top-{100 * self.fraction:g}%" + (" EF" if self.error_feedback else "")

    def wrap_client(self, client: Client) -> None:
        """The site's error-feedback residual (empty until its first upload)."""
        client.private["residual"] = {}

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """The inner update, with every received tensor's change sent as top-k values and indices."""
        reply = self.inner.client_update(client, message, round)
        received = message.tensors
        full = reply.message.tensors
        deltas = {k: v - received[k] for k, v in full.items() if k in received and v.is_floating_point()}
        residual = client.private["residual"] if self.error_feedback else None
        sparse, kept = compress(deltas, self.fraction, residual or None)
        if self.error_feedback:
            client.private["residual"] = kept
        tensors = {}
        for k, v in full.items():  # the inner strategy's order, each received tensor as its values and indices
            if k in deltas:
                tensors[k + VALUES], tensors[k + INDICES] = sparse[k + VALUES], sparse[k + INDICES]
            else:
                tensors[k] = v
        return Reply(reply.client, Message(tensors, dict(reply.message.config)), reply.weight, reply.loss)

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """Rebuild every upload from what the site received plus its sparse update; then the inner aggregation."""
        if not replies:
            return self.inner.aggregate(round, replies, state)
        sent = self.inner.configure(round, state, [r.client for r in replies])
        rebuilt = []
        for r in replies:
            received = sent[r.client].tensors
            tensors = r.message.tensors
            keys = [k[:-len(VALUES)] for k in tensors if k.endswith(VALUES)]
            dense = decompress(tensors, {k: received[k] for k in keys})
            full = {}
            for k, v in tensors.items():  # the upload's order
                if k.endswith(VALUES):
                    key = k[:-len(VALUES)]
                    full[key] = received[key] + dense[key]
                elif not k.endswith(INDICES):
                    full[k] = v
            rebuilt.append(Reply(r.client, Message(full, dict(r.message.config)), r.weight, r.loss))
        return self.inner.aggregate(round, rebuilt, state)



__all__ = ["TopK"]
