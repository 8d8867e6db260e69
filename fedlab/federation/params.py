"""Which parameters travel: ParamSplit, and the weighted average that FedAvg is built on.

A :class:`ParamSplit` partitions every key of a model's ``state_dict`` (parameters *and*
buffers) into ``shared`` (sent to the server and averaged) and ``local`` (never leave the site).
It is derived from the model's *modules*, by identity or by type, never from substrings of
parameter names: FedBN keeps normalisation layers local, FedRep keeps the head local, LC-Fed
keeps the head and the calibration module local.

Integer-buffer policy: integer buffers (BatchNorm's ``num_batches_tracked``) are always local.
They are counters, not model parameters; averaging counts has no meaning, and they only change
the result when BatchNorm runs with ``momentum=None`` (cumulative average), which fedlab never uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

State = dict[str, torch.Tensor]

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


@dataclass(frozen=True)
class ParamSplit:
    """A partition of ``state_dict`` keys into shared and local.

    Attributes:
        shared: Keys sent to the server and aggregated.
        local: Keys that stay at the site (personalised parameters, integer buffers).
    """

    shared: tuple[str, ...]
    local: tuple[str, ...]

    def __post_init__(self) -> None:
        overlap = set(self.shared) & set(self.local)
        if overlap:
            raise ValueError(f"Keys both shared and local: {sorted(overlap)[:5]}")

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        local_modules: Iterable[nn.Module] = (),
        local_types: tuple[type[nn.Module], ...] = (),
    ) -> ParamSplit:
        """Split ``model.state_dict()`` by the module that owns each tensor.

        Args:
            model: The network.
            local_modules: Modules (and everything inside them) whose tensors stay local,
                e.g. ``[model.head]``.
            local_types: Module types whose tensors stay local, e.g. ``NORM_TYPES`` for FedBN.

        Returns:
            A split that covers every ``state_dict`` key exactly once.
        """
        local_ids = {id(m) for root in local_modules for m in root.modules()}
        keys = model.state_dict().keys()
        shared, local = [], []
        for prefix, module in model.named_modules():
            own = list(module.named_parameters(recurse=False)) + list(module.named_buffers(recurse=False))
            is_local = id(module) in local_ids or isinstance(module, local_types)
            for name, tensor in own:
                key = f"{prefix}.{name}" if prefix else name
                if key not in keys:  # non-persistent buffer
                    continue
                if is_local or not (tensor.is_floating_point() or tensor.is_complex()):
                    local.append(key)
                else:
                    shared.append(key)
        split = cls(tuple(shared), tuple(local))
        split.check_covers(keys)
        return split

    @classmethod
    def all_shared(cls, model: nn.Module) -> ParamSplit:
        """FedAvg's split: every floating-point tensor is shared."""
        return cls.from_model(model)

    @property
    def keys(self) -> tuple[str, ...]:
        """All keys, shared first."""
        return self.shared + self.local

    def check_covers(self, keys: Iterable[str]) -> None:
        """Raise ValueError unless ``keys`` are exactly the split's keys, each once."""
        keys = list(keys)
        mine = list(self.keys)
        if sorted(keys) != sorted(mine) or len(set(mine)) != len(mine):
            missing = sorted(set(keys) - set(mine))[:5]
            extra = sorted(set(mine) - set(keys))[:5]
            raise ValueError(f"ParamSplit does not cover the state_dict exactly once: missing {missing}, extra {extra}")

    def shared_state(self, state: Mapping[str, torch.Tensor]) -> State:
        """The part of ``state`` that is sent to the server (detached clones)."""
        return {k: state[k].detach().clone() for k in self.shared}


def weighted_average(states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float] | None = None) -> State:
    """Weighted mean of several states: ``sum_k w_k * state_k / sum_k w_k`` per key.

    This is FedAvg's aggregation (McMahan et al. 2017; the surveys' equation with
    ``w_k = n_k / n``). Integer tensors are not averaged: the first state's value is kept.

    Args:
        states: One mapping per client, all with the same keys and shapes.
        weights: Non-negative weights (e.g. training-set sizes); ``None`` means uniform.

    Returns:
        A new state on the device of the inputs.

    Raises:
        ValueError: for no states, mismatched keys, or weights that are negative or sum to zero.
    """
    if not states:
        raise ValueError("weighted_average needs at least one state")
    weights = [1.0] * len(states) if weights is None else [float(w) for w in weights]
    if len(weights) != len(states):
        raise ValueError(f"{len(states)} states but {len(weights)} weights")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be non-negative with a positive sum, got {weights}")
    keys = list(states[0].keys())
    for i, s in enumerate(states[1:], start=1):
        if list(s.keys()) != keys:
            raise ValueError(f"state {i} has different keys from state 0")
    total = sum(weights)
    norm = [w / total for w in weights]
    out: State = {}
    for k in keys:
        first = states[0][k]
        if not (first.is_floating_point() or first.is_complex()):
            out[k] = first.clone()
            continue
        acc = first * norm[0]
        for s, w in zip(states[1:], norm[1:], strict=True):
            acc = acc + s[k] * w
        out[k] = acc
    return out


def state_bytes(state: Mapping[str, torch.Tensor]) -> int:
    """Bytes needed to send ``state`` (sum of element counts times element sizes)."""
    return sum(t.numel() * t.element_size() for t in state.values())
