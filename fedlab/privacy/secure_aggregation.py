"""Secure aggregation with pairwise masks: the server learns the *sum* of the sites' uploads, not any one upload.

The idea of Bonawitz et al. (CCS 2017), without its key agreement and dropout recovery:

1. **Fixed-point encoding.** Site k multiplies its upload by its weight ``w_k`` (e.g. n_k) and encodes every value
   ``v`` as the integer ``round(v * 2**f) mod 2**m`` (:func:`encode`): ``f`` fraction bits, arithmetic modulo
   ``M = 2**m``. Integers add exactly, so the decoded sum differs from the real-valued sum only by the rounding,
   at most ``K * 2**-(f+1)`` per coordinate for K sites.
2. **Pairwise masks.** Every pair of sites (i, j) shares a seed ``s_ij``. Each round, site i adds the pseudo-random
   vector ``PRG(s_ij, round)`` (uniform in ``[0, M)``) for every peer ``j > i`` and subtracts it for every ``j < i``
   (:func:`mask`). One masked upload is uniformly distributed whatever the update was; in the sum over all sites
   every mask appears once with + and once with -, so the masks cancel and the server decodes the exact sum of the
   encodings (:func:`secure_sum`). Masks are fresh every round: reusing one would reveal differences of updates.
3. **The wrapper.** :class:`SecureAggregation` runs any strategy whose server step needs only the weighted sum of
   the uploads (FedAvg, FedProx, FedBN, FedRep's body, FT, FedSGD): it masks every site's upload and hands the
   inner strategy one reply that carries the decoded weighted average. Uploads travel as int64, so the bytes
   ledger counts twice the bytes of float32 uploads.

What this module does **not** do, and a deployment needs (Flower's SecAgg+ implements them): the pair seeds come
from the run seed here (a stand-in for a Diffie-Hellman key agreement between each pair of sites), the PRG is
torch's generator (not a cryptographic one such as AES-CTR or ChaCha20), and a site that drops out after masking
leaves its masks uncancelled, so the sum is lost (SecAgg recovers them with Shamir secret sharing of the seeds).
Secure aggregation hides individual updates from the server; the *sum* (and so the global model) can still leak
(combine with differential privacy for that).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fedlab.data.federation import Site
from fedlab.federation.client import Client
from fedlab.federation.messages import Message, Reply
from fedlab.federation.strategies.base import ServerState, Strategy
from fedlab.federation.strategies.fedsgd import FedSGD
from fedlab.federation.strategies.wrapper import StrategyWrapper

PEERS_KEY = "secagg_peers"


def _check_bits(fraction_bits: int, modulus_bits: int) -> None:
    if not 0 <= fraction_bits < modulus_bits <= 62:
        raise ValueError(f"need 0 <= fraction_bits < modulus_bits <= 62, got {fraction_bits}, {modulus_bits}")


def encode(values: torch.Tensor, fraction_bits: int, modulus_bits: int, headroom: int = 1) -> torch.Tensor:
    """Fixed-point encoding ``round(v * 2**f) mod 2**m`` as int64 in ``[0, 2**m)``.

    Args:
        values: Real values (any float dtype; computed in float64).
        fraction_bits: f, bits after the binary point (resolution ``2**-f``).
        modulus_bits: m, the arithmetic is modulo ``2**m`` (at most 62, so sums of many fit in int64).
        headroom: How many encodings will be added up; the values must leave room for their sum not to wrap.

    Raises:
        ValueError: when ``|v| * 2**f * headroom`` reaches ``2**(m-1)`` (the sum would wrap around), naming the fix.
    """
    _check_bits(fraction_bits, modulus_bits)
    scaled = torch.round(values.detach().double() * 2.0**fraction_bits)
    limit = 2.0 ** (modulus_bits - 1) / max(int(headroom), 1)
    largest = scaled.abs().max().item() if scaled.numel() else 0.0
    if largest >= limit:
        raise ValueError(f"a value of magnitude {largest / 2**fraction_bits:.3g} does not fit the fixed-point range "
                         f"(|v| < {limit / 2**fraction_bits:.3g} with {fraction_bits} fraction bits, modulus 2**"
                         f"{modulus_bits}, {headroom} summands); lower fraction_bits or raise modulus_bits.")
    return torch.remainder(scaled.to(torch.int64), 2**modulus_bits)


def decode(encoded: torch.Tensor, fraction_bits: int, modulus_bits: int) -> torch.Tensor:
    """Inverse of :func:`encode` (float64): values at or above ``2**(m-1)`` are negative."""
    _check_bits(fraction_bits, modulus_bits)
    modulus = 2**modulus_bits
    centred = torch.where(encoded >= modulus // 2, encoded - modulus, encoded)
    return centred.double() / 2.0**fraction_bits


def pair_seed(secret: int, i: int, j: int) -> int:
    """The seed that sites i and j share (symmetric in i, j).

    A stand-in for a key agreement: here both derive it from ``secret`` (the run seed); in a deployment each pair
    runs Diffie-Hellman, so that no one else, the server included, can compute it.
    """
    a, b = sorted((int(i), int(j)))
    digest = hashlib.sha256(f"fedlab-secagg/{int(secret)}/{a}/{b}".encode()).hexdigest()
    return int(digest[:15], 16)


def _prg(seed: int, round: int, numel: int, modulus_bits: int) -> torch.Tensor:
    digest = hashlib.sha256(f"{int(seed)}/{int(round)}".encode()).hexdigest()
    generator = torch.Generator().manual_seed(int(digest[:15], 16))
    return torch.randint(0, 2**modulus_bits, (numel,), generator=generator, dtype=torch.int64)


def pairwise_mask(index: int, peers: Sequence[int], seeds: Mapping[int, int], round: int, numel: int,
                  modulus_bits: int) -> torch.Tensor:
    """Site ``index``'s mask for ``round``: ``sum_{j>i} PRG(s_ij) - sum_{j<i} PRG(s_ij) mod 2**m`` (int64, CPU).

    Args:
        index: This site.
        peers: Every site that uploads this round (this one included).
        seeds: The pair seed shared with each other peer.
        round: The round (masks are fresh every round).
        numel: Length of the flattened upload.
        modulus_bits: m.
    """
    modulus = 2**modulus_bits
    total = torch.zeros(numel, dtype=torch.int64)
    for j in peers:
        if j == index:
            continue
        stream = _prg(seeds[j], round, numel, modulus_bits)
        total = torch.remainder(total + stream if j > index else total - stream, modulus)
    return total


def flatten(tensors: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """All tensors as one vector, keys in sorted order."""
    return torch.cat([tensors[k].reshape(-1) for k in sorted(tensors)]) if tensors else torch.zeros(0)


def unflatten(vector: torch.Tensor, like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`flatten`: pieces of ``vector`` with the shapes of ``like`` (sorted keys)."""
    out, offset = {}, 0
    for key in sorted(like):
        n = like[key].numel()
        out[key] = vector[offset:offset + n].reshape(like[key].shape)
        offset += n
    return out


def mask(encoded: torch.Tensor, index: int, peers: Sequence[int], seeds: Mapping[int, int], round: int,
         modulus_bits: int) -> torch.Tensor:
    """``encoded + pairwise_mask(...) mod 2**m`` (on the device of ``encoded``)."""
    m = pairwise_mask(index, peers, seeds, round, encoded.numel(), modulus_bits).to(encoded.device)
    return torch.remainder(encoded.reshape(-1) + m, 2**modulus_bits).reshape(encoded.shape)


def secure_sum(uploads: Sequence[torch.Tensor], modulus_bits: int) -> torch.Tensor:
    """The sum of the (masked) encodings modulo ``2**m``: what the server can compute."""
    if not uploads:
        raise ValueError("secure_sum needs at least one upload")
    modulus = 2**modulus_bits
    total = torch.zeros_like(uploads[0])
    for u in uploads:
        total = torch.remainder(total + u, modulus)
    return total


def upload_correlation(masked: torch.Tensor, update: torch.Tensor, fraction_bits: int, modulus_bits: int) -> float:
    """Pearson correlation between what the server receives (decoded) and what the site computed."""
    a = decode(masked.reshape(-1), fraction_bits, modulus_bits)
    b = update.reshape(-1).double()
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def strategy_class(name: str) -> type[Strategy]:
    """The loaded :class:`Strategy` subclass called ``name`` (what the inner strategy of a rebuilt wrapper is).

    Raises:
        ValueError: when no loaded strategy class has that name (the message lists those that do).
    """
    found, stack = {}, [Strategy]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.__name__, cls)
        stack.extend(cls.__subclasses__())
    if name not in found:
        raise ValueError(f"no strategy class named {name!r}; loaded: {sorted(found)}")
    return found[name]


class SecureAggregation(StrategyWrapper):
    """Run another strategy with pairwise-masked uploads: the server only ever sees masked vectors and their sum.

    Args:
        strategy: The strategy to protect: an instance, or its class name (default "FedAvg"; "FedProx", "FedSGD",
            "FedBN", "FedRep", "FedPer", "FineTune"). Its server step must need only the weighted sum of the uploads
            (its ``aggregate`` is the base FedAvg one, or FedSGD's).
        strategy_kwargs: Constructor arguments of the named strategy (e.g. ``{"mu": 0.01}`` for FedProx).
        fraction_bits: Fixed-point resolution ``2**-fraction_bits``.
        modulus_bits: Arithmetic modulo ``2**modulus_bits`` (<= 62).

    Everything but what travels up (configure, the site's upload, the server's sum) is the inner strategy's,
    forwarded by :class:`~fedlab.federation.strategies.wrapper.StrategyWrapper`.

    Raises:
        ValueError: for a strategy whose aggregation needs each upload (median, Krum, LC-Fed's per-site heads,
            Local ...), which secure aggregation cannot serve.
    """

    name = "SecAgg"
    LINEAR_AGGREGATIONS = (Strategy.aggregate, FedSGD.aggregate)

    def __init__(self, strategy: str | Strategy = "FedAvg", strategy_kwargs: dict | None = None,
                 fraction_bits: int = 24, modulus_bits: int = 60) -> None:
        if isinstance(strategy, str):
            inner = strategy_class(strategy)(**(strategy_kwargs or {}))
        elif strategy_kwargs:
            raise ValueError("strategy_kwargs go with a strategy given by its class name, not with an instance")
        else:
            inner = strategy
        _check_bits(fraction_bits, modulus_bits)
        if type(inner).aggregate not in self.LINEAR_AGGREGATIONS or not inner.federated:
            raise ValueError(f"SecureAggregation cannot wrap {inner.name}: the server would see only the sum of the "
                             "uploads, but its aggregation needs each site's upload (or it does not communicate). "
                             "Wrap FedAvg, FedProx, FedBN, FedPer/FedRep, FT or FedSGD.")
        super().__init__(inner)
        self.name = f"SecAgg({inner.name})"
        self.fraction_bits = int(fraction_bits)
        self.modulus_bits = int(modulus_bits)

    def init_kwargs(self) -> dict:
        """JSON-able constructor arguments: the inner strategy by class name, with its own arguments."""
        return {"strategy": type(self.inner).__name__, "strategy_kwargs": self.inner.init_kwargs(),
                "fraction_bits": self.fraction_bits, "modulus_bits": self.modulus_bits}

    def make_client(self, index: int, site: Site, model: nn.Module, seed: int, device: torch.device) -> Client:
        """The inner strategy's client, holding (privately) the secret from which it derives its pair seeds.

        The secret is the run seed: a simulation's stand-in for one Diffie-Hellman key agreement per pair of sites.
        """
        client = super().make_client(index, site, model, seed, device)
        client.private["secagg_secret"] = int(seed)
        return client

    # --- a round ---------------------------------------------------------------------------------
    def configure(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """The inner strategy's messages, each also naming the sites that upload this round (whose masks cancel)."""
        messages = self.inner.configure(round, state, clients)
        peers = sorted(int(k) for k in messages)
        return {k: Message(m.tensors, {**m.config, PEERS_KEY: peers}) for k, m in messages.items()}

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """The inner update, then its upload weighted, encoded and masked (int64 tensors of the same shapes)."""
        peers = [int(p) for p in message.config[PEERS_KEY]]
        if client.index not in peers:
            raise ValueError(f"site {client.index} received a round-{round} message whose peer list {peers} omits it")
        inner_message = Message(message.tensors, {k: v for k, v in message.config.items() if k != PEERS_KEY})
        return self.protect(client, self.inner.client_update(client, inner_message, round), peers, round)

    def protect(self, client: Client, reply: Reply, peers: Sequence[int], round: int) -> Reply:
        """What the site sends instead of ``reply``: its upload times its weight, encoded, plus its pairwise masks.

        Args:
            client: The site (the secret of its pair seeds is in ``client.private``).
            reply: The inner strategy's reply (float tensors).
            peers: Every site that uploads this round.
            round: The round (fresh masks every round).
        """
        tensors = reply.message.tensors
        bad = [k for k, t in tensors.items() if not t.is_floating_point()]
        if bad:
            raise ValueError(f"secure aggregation masks floating-point uploads only; {bad[:3]} are not")
        flat = flatten(tensors).double() * float(reply.weight)  # (P,) the weighted upload
        encoded = encode(flat, self.fraction_bits, self.modulus_bits, headroom=len(peers))
        secret = int(client.private["secagg_secret"])
        seeds = {int(j): pair_seed(secret, client.index, j) for j in peers if int(j) != client.index}
        masked = mask(encoded, client.index, peers, seeds, round, self.modulus_bits)
        return Reply(reply.client, Message(unflatten(masked, tensors), dict(reply.message.config)), reply.weight,
                     reply.loss)

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """Sum the masked uploads (the masks cancel), decode, divide by the total weight, then the inner step."""
        if not replies:
            return self.inner.aggregate(round, replies, state)
        like = replies[0].message.tensors
        total = secure_sum([flatten(r.message.tensors) for r in replies], self.modulus_bits)
        weight = sum(float(r.weight) for r in replies)
        average = decode(total, self.fraction_bits, self.modulus_bits) / weight  # (P,) float64
        reference = state.get("global", {})
        tensors = {k: t.to(reference[k].dtype if k in reference else torch.float32)
                   for k, t in unflatten(average, like).items()}
        loss = torch.stack([r.loss for r in replies]).mean()
        return self.inner.aggregate(round, [Reply(-1, Message(tensors), weight, loss)], state)

    def describe(self) -> dict:
        """The inner strategy's settings plus the encoding."""
        return {"name": self.name, "class": type(self).__name__, "inner": self.inner.describe(),
                "fraction_bits": self.fraction_bits, "modulus_bits": self.modulus_bits,
                "personalized": self.personalized}

    def quantisation_bound(self, num_sites: int, total_weight: float) -> float:
        """Largest difference per coordinate between the securely aggregated average and the exact one:
        each of ``num_sites`` encodings is off by at most half a unit, ``2**-(f+1)``, before division by the weight."""
        return num_sites * 2.0 ** -(self.fraction_bits + 1) / total_weight
