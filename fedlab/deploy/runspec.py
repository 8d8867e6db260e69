"""RunSpec: everything the server and every node of a deployment need to rebuild one run, as JSON.

A deployment has no shared memory: the ServerApp and each ClientApp start from the run's configuration
(Flower's ``run_config``) and, on a node, the node's own configuration (dataset, data folder, site).
The RunSpec is that run configuration: the strategy by registry name and constructor arguments
(:meth:`~fedlab.federation.strategies.base.Strategy.init_kwargs`), the preset's fields, the seed, the
rounds, the model-selection rule, the federation's :class:`~fedlab.data.federation.FederationSpec`
(no data), how synthetic data are generated, the expected fingerprint of every site's data, and the
fedlab code version every node must run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from fedlab.config import Config, TabularConfig
from fedlab.data.federation import Federation, FederationSpec
from fedlab.deploy.fingerprints import site_fingerprint
from fedlab.federation.identity import code_version
from fedlab.federation.strategies import STRATEGIES, Strategy, get_strategy

SELECT_RULES = ("val", "last", "auto")


def registry_name(strategy: Strategy) -> str:
    """The :data:`~fedlab.federation.strategies.STRATEGIES` key whose class is ``type(strategy)``.

    Raises:
        ValueError: when the strategy's class is not registered (a node could not rebuild it).
    """
    for name, cls in STRATEGIES.items():
        if cls is type(strategy):
            return name
    raise ValueError(f"{type(strategy).__name__} is not in fedlab.federation.strategies.STRATEGIES; a Flower node "
                     "rebuilds a strategy from its registry name, so register the class there to deploy it.")


def resolve_select(select: str, federation: Federation) -> str:
    """run_federation's rule: "auto" is "val" when every site has a validation split, else "last".

    Raises:
        ValueError: for an unknown rule, or "val" without a validation split at every site.
    """
    if select not in SELECT_RULES:
        raise ValueError(f"select must be one of {SELECT_RULES}, got {select!r}")
    has_val = all(s.val is not None and len(s.val) for s in federation)
    if select == "auto":
        return "val" if has_val else "last"
    if select == "val" and not has_val:
        raise ValueError("select='val' needs a validation split at every site; use select='last'.")
    return select


@dataclass(frozen=True)
class RunSpec:
    """One deployed run, as plain values (see the module docstring).

    Attributes:
        strategy: Registry name of the strategy (a key of ``STRATEGIES``).
        strategy_kwargs: Its constructor arguments (JSON-able).
        config: The run's :class:`~fedlab.config.Config` fields.
        config_family: "segmentation" (:class:`Config`) or "tabular" (:class:`TabularConfig`).
        federation: The federation's :class:`FederationSpec` as a dict (names, task, labels, sites in order).
        seed: Seeds the round-0 network and every site's generator.
        rounds: Communication rounds.
        select: "val" (each site keeps its best-validation round) or "last".
        data: How a node builds synthetic data (``seed``, ``heterogeneity``) or splits real data
            (``val_fraction``, ``seed``), as :func:`fedlab.data.load_federation` takes them.
        fingerprints: Expected :func:`~fedlab.deploy.fingerprints.site_fingerprint` of every site's data;
            empty when the server cannot know them (a consortium's private data).
        code_version: fedlab's version and source hash; every node must run the same.
        final_metrics: Metrics of the final evaluation (None = all of the task's).
        scoring: Options of the final evaluation (see run_federation).
        out_dir: Folder, on the server's machine, where the ServerApp writes status.json, history.json and
            progress.jsonl.
        connect_timeout: Seconds the server waits for every node to connect.
        reply_timeout: Seconds the server waits for every node's reply in a round before it fails the run.
        poll: Seconds between the server's checks for replies.
    """

    strategy: str
    strategy_kwargs: dict
    config: dict
    config_family: str
    federation: dict
    seed: int
    rounds: int
    select: str
    data: dict = field(default_factory=dict)
    fingerprints: dict = field(default_factory=dict)
    code_version: str = ""
    final_metrics: list | None = None
    scoring: dict = field(default_factory=dict)
    out_dir: str = ""
    connect_timeout: float = 120.0
    reply_timeout: float = 300.0
    poll: float = 0.05

    @classmethod
    def create(cls, strategy: Strategy, federation: Federation, config: Config, *, rounds: int | None = None,
               seed: int = 0, select: str = "auto", data: Mapping[str, object] | None = None,
               check_data: bool = True, final_metrics: Sequence[str] | None = None,
               scoring: Mapping[str, object] | None = None, out_dir: str = "", **timeouts: float) -> RunSpec:
        """The RunSpec of ``run_federation(strategy, federation, config, rounds=, seed=, select=)``.

        Args:
            strategy: A registered strategy; Mix (pooled data) is refused.
            federation: The federation the nodes must hold (its data never enter the spec, only its
                spec and, with ``check_data``, each site's fingerprint).
            config: Run settings.
            rounds: Default ``config.rounds``.
            seed: Run seed.
            select: "val", "last" or "auto" (as run_federation).
            data: How nodes generate or split their data, passed to :func:`fedlab.data.load_federation`:
                ``seed`` (default ``seed``), ``heterogeneity`` (default 1.0), ``val_fraction`` (default 0.2).
            check_data: Record every site's data fingerprint, so the server refuses a node whose data differ.
            final_metrics: As run_federation.
            scoring: As run_federation.
            out_dir: Where the ServerApp writes its files.
            **timeouts: ``connect_timeout``, ``reply_timeout``, ``poll`` (seconds).

        Raises:
            ValueError: for a strategy that pools data, an unregistered strategy, constructor arguments
                that are not JSON-able, or bad rounds / select.
        """
        if not strategy.federated:
            raise ValueError(f"{strategy.name} pools the sites' raw data in one place; it cannot run on a federation "
                             "of separate nodes (that is the point of federated learning). Deploy a federated "
                             "strategy instead (FedAvg, FedRep, LC-Fed, ...).")
        name = registry_name(strategy)
        kwargs = strategy.init_kwargs()
        try:
            kwargs = json.loads(json.dumps(kwargs))
        except TypeError as err:
            raise ValueError(f"{strategy.name}'s constructor arguments {kwargs} are not JSON-able, so they cannot "
                             f"travel to the nodes: {err}") from err
        rounds = config.rounds if rounds is None else int(rounds)
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        data = {"seed": seed, "heterogeneity": 1.0, "val_fraction": 0.2, **(data or {})}
        fingerprints = {}
        if check_data:
            fingerprints = {s.name: site_fingerprint(s, federation.name, federation.task, federation.labels)
                            for s in federation}
        return cls(strategy=name, strategy_kwargs=kwargs, config=config.to_dict(),
                   config_family="tabular" if isinstance(config, TabularConfig) else "segmentation",
                   federation=federation.spec().to_dict(), seed=int(seed), rounds=rounds,
                   select=resolve_select(select, federation), data=data, fingerprints=fingerprints,
                   code_version=code_version(), final_metrics=list(final_metrics) if final_metrics else None,
                   scoring=dict(scoring or {}), out_dir=str(out_dir), **timeouts)

    # --- rebuild what the spec describes ---------------------------------------------------------
    def build_strategy(self) -> Strategy:
        """A fresh strategy object equal in settings to the one the spec was made from."""
        return get_strategy(self.strategy, **self.strategy_kwargs)

    def build_config(self) -> Config:
        """The run's Config (a :class:`TabularConfig` for the tabular family)."""
        cls = TabularConfig if self.config_family == "tabular" else Config
        return cls(**self.config)

    def federation_spec(self) -> FederationSpec:
        """The federation's spec (names, task, labels, sites in order; no data)."""
        return FederationSpec.from_dict(self.federation)

    @property
    def site_names(self) -> list[str]:
        """Sites in order (site k has site code k)."""
        return list(self.federation["site_names"])

    # --- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> str:
        """The spec as one JSON string (what travels in Flower's run config)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: when ``text`` is not a RunSpec (e.g. a run submitted without fedlab's run config).
        """
        try:
            data = json.loads(text)
            return cls(**data)
        except (TypeError, ValueError) as err:
            raise ValueError(f"the run config's 'fedlab' entry is not a fedlab RunSpec ({err}); submit runs with "
                             "fedlab.deploy.local.LocalDeployment.run or write the run config with "
                             "RunSpec.to_json()") from err
