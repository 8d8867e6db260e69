"""What travels between the server and a site: :class:`Message` down, :class:`Reply` up.

A message is a plain mapping of tensors plus a small JSON-able config dict, so the same strategy can
run in :func:`~fedlab.federation.simulation.run_federation` (one process) and across processes on
Flower (see :mod:`fedlab.deploy.flower`), where the tensors become an ``ArrayRecord`` and the config a
``ConfigRecord``. Everything a message carries is counted in the run's bytes ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

#: Types a message config may hold (what a Flower ConfigRecord can carry).
CONFIG_TYPES = (bool, int, float, str, bytes)


def tensor_bytes(tensors: Mapping[str, torch.Tensor]) -> int:
    """Bytes needed to send ``tensors`` (element counts times element sizes)."""
    return sum(t.numel() * t.element_size() for t in tensors.values())


@dataclass
class Message:
    """Tensors and instructions sent to or from one site.

    Attributes:
        tensors: Named tensors (model weights, gradients, heads ...); counted in the bytes ledger.
        config: Small instructions (stage, flags), JSON-able scalars or lists of them.
    """

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, value in self.config.items():
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(v, CONFIG_TYPES) for v in items):
                raise TypeError(f"Message config {key!r}={value!r}: only bool, int, float, str, bytes or lists "
                                "of them can travel; put tensors in Message.tensors")

    @property
    def nbytes(self) -> int:
        """Bytes of the tensors (the config is a few bytes and not counted)."""
        return tensor_bytes(self.tensors)


@dataclass
class Reply:
    """What one site sends back after its local update.

    Attributes:
        client: Index of the sender (its position in the federation, its site code).
        message: What is uploaded (counted in the bytes ledger).
        weight: Aggregation weight (n_k for sample weighting, 1 for uniform); Flower's ``num-examples``.
        loss: Mean local training loss, a 0-d tensor left on the device (no host sync per client).
    """

    client: int
    message: Message
    weight: float
    loss: torch.Tensor
