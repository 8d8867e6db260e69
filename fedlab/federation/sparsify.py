"""Top-k sparsification of an update, with and without error feedback: pure functions.

A site that sends only the ``k`` largest-magnitude entries of its update, as (value, index) pairs, sends
``k * (value bytes + index bytes)`` instead of ``numel * value bytes``. Here indices are int32 (every
tensor of fedlab's networks has fewer than 2**31 entries), so a float32 entry costs 8 bytes instead of 4:
keeping a fraction ``f`` of the entries costs ``2 f`` of the dense upload, and sparsification only saves
bytes below ``f = 0.5``.

**Error feedback** (Stich et al., NeurIPS 2018 "Sparsified SGD with memory"; Karimireddy et al., ICML
2019): what a site does not send is not thrown away but kept in a private residual ``e`` and added to
its next update: it sends ``topk(delta + e)`` and keeps ``e <- delta + e - topk(delta + e)``. Every entry
is eventually sent, late instead of never, so the sum of what arrives tracks the sum of the updates.
Without it, small entries that are never among the largest are lost for good.

Invariant (exact, entry by entry): ``sent + new residual == update + old residual``, because every entry
is either sent (its residual becomes 0) or kept (nothing is sent for it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

VALUES, INDICES = "::values", "::indices"
INDEX_DTYPE = torch.int32


def keep_count(numel: int, fraction: float) -> int:
    """Entries kept of a tensor of ``numel`` entries: ``ceil(fraction * numel)``, at least 1."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    return max(1, min(numel, math.ceil(fraction * numel)))


def topk(tensor: torch.Tensor, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The largest-magnitude ``ceil(fraction * numel)`` entries of ``tensor``.

    Returns:
        ``(values, indices)``: the entries, and their int32 positions in the flattened tensor
        (ordered by position).
    """
    flat = tensor.reshape(-1)
    k = keep_count(flat.numel(), fraction)
    index = flat.abs().topk(k, sorted=False).indices.sort().values
    return flat[index].clone(), index.to(INDEX_DTYPE)


def densify(values: torch.Tensor, indices: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The dense tensor (shaped like ``like``) holding ``values`` at ``indices`` and zeros elsewhere."""
    out = torch.zeros(like.numel(), dtype=values.dtype, device=values.device)
    out[indices.long()] = values
    return out.reshape(like.shape)


def compress(update: Mapping[str, torch.Tensor], fraction: float,
             residual: Mapping[str, torch.Tensor] | None = None,
             ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Top-k of every tensor of ``update + residual``.

    Args:
        update: ``{key: tensor}``, e.g. a site's model update ``w_local - w_received``.
        fraction: Share of each tensor's entries sent (``ceil(fraction * numel)``, at least one).
        residual: The site's error-feedback memory (same keys), or ``None`` (no error feedback).

    Returns:
        ``(message, new residual)``: the message holds ``key::values`` and ``key::indices`` for every key;
        the new residual is what was not sent (entry by entry, ``sent + new residual == update + residual``).
    """
    message, kept = {}, {}
    for key, delta in update.items():
        v = delta + residual[key] if residual is not None and key in residual else delta
        values, indices = topk(v, fraction)
        message[key + VALUES], message[key + INDICES] = values, indices
        rest = v.clone().reshape(-1)
        rest[indices.long()] = 0
        kept[key] = rest.reshape(v.shape)
    return message, kept


def decompress(message: Mapping[str, torch.Tensor], like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The dense update of a :func:`compress` message (zeros where nothing was sent), shaped like ``like``."""
    missing = [k for k in like if k + VALUES not in message or k + INDICES not in message]
    if missing:
        raise ValueError(f"compressed message lacks the values or indices of {missing[:5]}")
    return {k: densify(message[k + VALUES], message[k + INDICES], ref) for k, ref in like.items()}


__all__ = ["INDEX_DTYPE", "INDICES", "VALUES", "compress", "decompress", "densify", "keep_count", "topk"]
