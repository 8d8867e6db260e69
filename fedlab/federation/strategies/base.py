"""The Strategy interface, in the shape of a real engine (Flower's): the server state is a value.

A round ``r`` of :func:`fedlab.federation.simulation.run_federation` (or of a Flower ServerApp built
by :mod:`fedlab.deploy.flower`) does:

1. ``messages = strategy.configure(r, state, clients)``: what each selected site receives, computed
   from the server state alone (a :class:`~fedlab.federation.messages.Message`: tensors + config);
2. at each site: ``reply = strategy.client_update(client, message, r)``: the site loads what it
   received (:meth:`Strategy.receive`), trains, and replies (a :class:`~fedlab.federation.messages.Reply`);
3. ``state = strategy.aggregate(r, replies, state)``: the new server state, returned;
4. when the round is evaluated: the messages of ``strategy.configure_evaluate(r, state, clients)`` are
   delivered with :meth:`Strategy.receive`, and each site is scored with :meth:`Strategy.site_model`.

The strategy object holds configuration only: its hyperparameters and what :meth:`Strategy.setup`
derives once per run (the config, the total number of rounds, the :class:`ParamSplit`). Everything that
changes during a run is either the server state (a dict of tensors and plain values, passed in and
returned) or the site's private state (:class:`~fedlab.federation.client.Client`: model, optimiser,
generator, ``private``). Both are what a checkpoint saves.

Every message is counted in the bytes ledger (``configure`` down, replies up). Evaluation messages
are not: a site that trains already holds what it serves. Subclasses override only what differs;
the defaults implement FedAvg over a :class:`ParamSplit`.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import nn

from fedlab.config import Config
from fedlab.data.federation import Federation, FederationSpec, Site
from fedlab.federation.client import Client, LossFn, task_loss
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import ParamSplit, weighted_average
from fedlab.reproducibility import client_generator

WEIGHTINGS = ("samples", "uniform")
ServerState = dict[str, object]


class Strategy:
    """Base strategy: FedAvg over the keys that :meth:`param_split` marks as shared.

    Args:
        weighting: "samples" (w_k = n_k / n, the surveys' equation) or "uniform" (w_k = 1 / K).
    """

    name = "Strategy"
    personalized = False
    #: True when :meth:`finish` itself picks each site's model on its validation split (e.g. FT's
    #: fine-tuning); run_federation then keeps the finished models instead of the best round's.
    finish_selects = False
    #: False for baselines that pool the sites' raw data (Mix): they cannot be deployed on Flower.
    federated = True

    def __new__(cls, *args: object, **kwargs: object) -> Strategy:
        """Record the constructor's arguments (defaults filled in), so the same strategy can be rebuilt
        elsewhere (on every Flower node) from its registry name and :meth:`init_kwargs`."""
        obj = super().__new__(cls)
        bound = inspect.signature(cls.__init__).bind(obj, *args, **kwargs)
        bound.apply_defaults()
        obj._init_kwargs = {k: v for k, v in list(bound.arguments.items())[1:]}
        return obj

    def __init__(self, weighting: str = "samples") -> None:
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.weighting = weighting
        self.config: Config | None = None
        self.rounds = 0
        self.task = "segmentation"
        self.split: ParamSplit | None = None

    def init_kwargs(self) -> dict:
        """The constructor's arguments, defaults included: ``type(self)(**s.init_kwargs())`` rebuilds ``s``."""
        return dict(self._init_kwargs)

    # --- set-up (configuration, derived once per run) -------------------------------------------
    def model_factory(self, federation: Federation | FederationSpec,
                      config: Config) -> Callable[[], nn.Module] | None:
        """The model this strategy needs when run_federation gets ``model=None`` (default: None = the
        preset's model). FedBN returns a BatchNorm U-Net factory here."""
        return None

    def prepare_model(self, model: nn.Module, federation: Federation | FederationSpec) -> nn.Module:
        """Turn the round-0 model into the network every site trains (default: unchanged; LC-Fed wraps
        the U-Net with its site-specific modules). Called once, under the run's seed."""
        return model

    def param_split(self, model: nn.Module) -> ParamSplit:
        """Which state_dict keys are shared (default: every floating-point tensor)."""
        return ParamSplit.all_shared(model)

    def loss_fn(self, task: str, site: int = 0) -> LossFn:
        """Local training loss of site ``site`` (default: the task's loss)."""
        return task_loss(task)

    def setup(self, model: nn.Module, config: Config, rounds: int, task: str) -> None:
        """Configure the strategy for one run: the config, the total number of rounds and the split.

        Called once by the loop (and on every Flower node) before anything else; nothing set here
        changes during the run.
        """
        self.config = config
        self.rounds = rounds
        self.task = task
        self.split = self.param_split(model)

    def make_client(self, index: int, site: Site, model: nn.Module, seed: int, device: torch.device) -> Client:
        """Site ``index``'s client: its own copy of ``model``, generator, loss and private state."""
        client = Client(index, site, copy.deepcopy(model).to(device), self.config,
                        client_generator(seed, index, device), self.loss_fn(self.task, index))
        self.init_client(client)
        return client

    def make_clients(self, federation: Federation, model: nn.Module, seed: int, device: torch.device) -> list[Client]:
        """One client per site, each starting from an identical copy of ``model``."""
        return [self.make_client(k, site, model, seed, device) for k, site in enumerate(federation)]

    def init_client(self, client: Client) -> None:
        """Create what the site keeps privately besides its model (default: nothing)."""

    def initial_state(self, model: nn.Module) -> ServerState:
        """The server state before round 1: the shared part of the round-0 model."""
        return {"global": self.split.shared_state(model.state_dict())}

    # --- one round: server side ----------------------------------------------------------------
    def select(self, round: int, clients: Sequence[int]) -> list[int]:
        """Sites that take part in ``round`` (default: all)."""
        return list(clients)

    def configure(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """What each selected site receives this round (default: the global shared state)."""
        message = Message(dict(state["global"]))
        return {k: message for k in self.select(round, clients)}

    def aggregate(self, round: int, replies: Sequence[Reply], state: ServerState) -> ServerState:
        """The new server state: the weighted average of the uploaded tensors."""
        if not replies:
            return state
        average = weighted_average([r.message.tensors for r in replies], [r.weight for r in replies])
        return {**state, "global": average}

    def configure_evaluate(self, round: int, state: ServerState, clients: Sequence[int]) -> dict[int, Message]:
        """What each site needs to serve its model after ``round`` (default: the global shared state)."""
        message = Message(dict(state["global"]))
        return {k: message for k in clients}

    # --- one round: client side ----------------------------------------------------------------
    def receive(self, client: Client, message: Message) -> bool:
        """Load what arrived into the site's model; True when it overwrote weights the site holds."""
        if not message.tensors:
            return False
        client.model.load_state_dict(message.tensors, strict=False)
        return True

    def prepare_round(self, client: Client, message: Message) -> None:
        """Receive, and start from a fresh optimiser when the server overwrote the site's weights
        (``config.optimizer_state == "fresh"``): no Adam moment computed for an earlier model survives."""
        if self.receive(client, message) and self.config.optimizer_state == "fresh":
            client.reset_optimizer()

    def client_update(self, client: Client, message: Message, round: int) -> Reply:
        """Receive, ``local_steps`` steps of local training, then send the shared part of the model."""
        self.prepare_round(client, message)
        loss = client.train(self.config.local_steps)
        return self.reply(client, loss)

    def reply(self, client: Client, loss: torch.Tensor, extra: Mapping[str, torch.Tensor] | None = None) -> Reply:
        """The default upload: the shared part of the site's model (plus ``extra`` tensors)."""
        tensors = self.split.shared_state(client.model.state_dict())
        tensors.update(extra or {})
        return Reply(client.index, Message(tensors), self.weight(client), loss)

    def weight(self, client: Client) -> float:
        """Aggregation weight of ``client``."""
        return float(client.num_train) if self.weighting == "samples" else 1.0

    # --- evaluation and end of training -------------------------------------------------------
    def site_model(self, client: Client) -> nn.Module:
        """The model that serves the site (maps inputs to logits)."""
        return client.model

    def site_models(self, clients: Sequence[Client]) -> list[nn.Module]:
        """The model serving each site, in federation order."""
        return [self.site_model(c) for c in clients]

    def finish_client(self, client: Client) -> dict | None:
        """Site-side work after the last round (e.g. FT's fine-tuning); returns facts to record."""
        return None

    def finish(self, clients: Sequence[Client], state: ServerState) -> dict | None:
        """After the last round: every site's :meth:`finish_client`, summarised by :meth:`summarize_finish`.

        Do not override: a deployment calls :meth:`finish_client` on the nodes and :meth:`summarize_finish`
        on the server, so what a strategy records must come from those two.

        Returns:
            Optional facts to record in ``history.info["finish"]`` (JSON-able).
        """
        facts = {c.name: f for c in clients if (f := self.finish_client(c)) is not None}
        return self.summarize_finish(facts, state, {c.index: c.name for c in clients})

    def summarize_finish(self, facts: dict[str, dict], state: ServerState, names: dict[int, str]) -> dict | None:
        """Server side of the end of a run: combine the sites' finish facts with the server state.

        Args:
            facts: Each reporting site's :meth:`finish_client` facts, by site name.
            state: The server state after the last round.
            names: Site name by client index (server state is keyed by index).

        Returns:
            Facts for ``history.info["finish"]`` (default: the sites' facts by name; None when there are none).
        """
        return {"sites": facts} if facts else None

    def describe(self) -> dict:
        """Settings to record in the run receipt and to identify a run in checkpoints and the cache: the
        name, the class and every constructor argument."""
        return {**self.init_kwargs(), "name": self.name, "class": type(self).__name__,
                "personalized": self.personalized}
