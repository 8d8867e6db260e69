"""StrategyWrapper: run another strategy and change one part of what it does.

Some methods are not algorithms of their own but a change to what travels or to what one site does,
applied to whatever strategy runs underneath: compressing the uploads (:mod:`.compression`), or a site
that attacks the federation (:mod:`.attacks`). A wrapper holds the inner strategy and forwards every
step of the Strategy API to it; a subclass overrides only the steps it changes (typically
:meth:`client_update` and :meth:`aggregate`), so the inner strategy's server state, site-private state
and checkpoints work unchanged.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from fedlab.config import Config
from fedlab.data.federation import Federation, FederationSpec, Site
from fedlab.federation.client import Client, LossFn
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import ParamSplit
from fedlab.federation.strategies.base import ServerState, Strategy
from fedlab.federation.strategies.fedavg import FedAvg

InnerSpec = Strategy | Mapping[str, object] | None


def build_inner(inner: InnerSpec) -> Strategy:
    """The wrapped strategy: an instance, None (FedAvg), or ``{"class": "fedlab....ClassName", "kwargs": {...}}``.

    Raises:
        TypeError: for anything else, or a class outside fedlab or not a Strategy.
    """
    if inner is None:
        return FedAvg()
    if isinstance(inner, Strategy):
        return inner
    if isinstance(inner, Mapping) and isinstance(inner.get("class"), str):
        module, _, name = str(inner["class"]).rpartition(".")
        cls = getattr(importlib.import_module(module), name, None) if module.startswith("fedlab.") else None
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise TypeError(f"inner class {inner['class']!r} is not a fedlab Strategy")
        return cls(**dict(inner.get("kwargs") or {}))
    raise TypeError(f"inner must be a Strategy, None (FedAvg) or {{'class': ..., 'kwargs': ...}}, got {inner!r}")


def class_path(strategy: Strategy) -> str:
    """``module.ClassName`` of a strategy (what :func:`build_inner` imports)."""
    return f"{type(strategy).__module__}.{type(strategy).__qualname__}"


class StrategyWrapper(Strategy):
    """Forward every step of the Strategy API to ``inner``.

    Args:
        inner: The strategy that does the learning: an instance, or ``{"class": its class path, "kwargs":
            constructor arguments}`` (default: FedAvg).

    The wrapper's :attr:`name` is the inner strategy's, so tables keep the method's name; subclasses
    extend :meth:`describe` so that runs with different wrappers never share a checkpoint or a cache entry.
    :meth:`init_kwargs` gives the inner strategy as ``{"class", "kwargs"}``, plain values that rebuild it anywhere.
    """

    def __init__(self, inner: InnerSpec = None) -> None:
        self.inner = build_inner(inner)
        super().__init__(self.inner.weighting)
        self.name = self.inner.name
        self.personalized = self.inner.personalized
        self.finish_selects = self.inner.finish_selects
        self.federated = self.inner.federated

    def init_kwargs(self) -> dict:
        """The constructor's arguments, the inner strategy as ``{"class": its class path, "kwargs": its arguments}``."""
        return {**super().init_kwargs(), "inner": {"class": class_path(self.inner), "kwargs": self.inner.init_kwargs()}}

    # --- set-up --------------------------------------------------------------------------------
    def model_factory(self, federation: Federation | FederationSpec, config: Config):
        """The inner strategy's model factory."""
        return self.inner.model_factory(federation, config)

    def prepare_model(self, model: nn.Module, federation: Federation | FederationSpec) -> nn.Module:
        """The inner strategy's network preparation."""
        return self.inner.prepare_model(model, federation)

    def param_split(self, model: nn.Module) -> ParamSplit:
        """The inner strategy's split."""
        return self.inner.param_split(model)

    def loss_fn(self, task: str, site: int = 0) -> LossFn:
        """The inner strategy's local loss."""
        return self.inner.loss_fn(task, site)

    def setup(self, model: nn.Module, config: Config, rounds: int, task: str) -> None:
        """Set up the inner strategy, then mirror its configuration."""
        self.inner.setup(model, config, rounds, task)
        self.config, self.rounds, self.task, self.split = self.inner.config, rounds, task, self.inner.split

    def make_client(self, index: int, site: Site, model: nn.Module, seed: int, device: torch.device) -> Client:
        """The inner strategy's client, plus what the wrapper keeps at the site (:meth:`wrap_client`)."""
        client = self.inner.make_client(index, site, model, seed, device)
        self.wrap_client(client)
        return client

    def wrap_client(self, client: Client) -> None:
        """Add the wrapper's private state to a new client (default: nothing)."""

    def initial_state(self, model: nn.Module) -> ServerState:
        """The inner strategy's initial server state."""
        return self.inner.initial_state(model)

    # --- a round -------------------------------------------------------------------------------
    def select(self, round: int, clients: Sequence[int]) -> list[int]:
        """The inner strategy's selection."""
        return self.inner.select(round, clients)

    def configure(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """The inner strategy's messages."""
        return self.inner.configure(round, state, clients)

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """The inner strategy's aggregation."""
        return self.inner.aggregate(round, replies, state)

    def configure_evaluate(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """The inner strategy's evaluation messages."""
        return self.inner.configure_evaluate(round, state, clients)

    def receive(self, client: Client, message: Message) -> bool:
        """The inner strategy's receive."""
        return self.inner.receive(client, message)

    def prepare_round(self, client: Client, message: Message) -> None:
        """The inner strategy's round preparation."""
        self.inner.prepare_round(client, message)

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """The inner strategy's local update."""
        return self.inner.client_update(client, message, round)

    def weight(self, client: Client) -> float:
        """The inner strategy's aggregation weight."""
        return self.inner.weight(client)

    # --- evaluation and end of training ----------------------------------------------------------
    def site_model(self, client: Client) -> nn.Module:
        """The inner strategy's served model."""
        return self.inner.site_model(client)

    def site_models(self, clients: Sequence[Client]) -> list[nn.Module]:
        """The inner strategy's served models."""
        return self.inner.site_models(clients)

    def finish_client(self, client: Client) -> dict | None:
        """The inner strategy's end-of-run work at a site."""
        return self.inner.finish_client(client)

    def summarize_finish(self, facts: dict[str, dict], state: ServerState, names: dict[int, str]) -> dict | None:
        """The inner strategy's end-of-run summary."""
        return self.inner.summarize_finish(facts, state, names)

    def describe(self) -> dict:
        """The inner strategy's settings under ``"inner"``, and the wrapper's own arguments."""
        own = {k: v for k, v in super().init_kwargs().items() if k != "inner"}
        return {**own, "name": self.name, "class": type(self).__name__, "personalized": self.personalized,
                "inner": self.inner.describe()}


__all__ = ["StrategyWrapper"]
