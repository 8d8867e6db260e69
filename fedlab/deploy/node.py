"""What a SuperNode does with its own data, without Flower: load its site, rebuild its client, train, score.

A node knows only its own configuration (``--node-config 'dataset=... data-dir=... site=...'``) and the
run's :class:`~fedlab.deploy.runspec.RunSpec`. It loads its site through :func:`fedlab.data.load_federation`
(the embedded synthetic data when ``data-dir`` is empty: the same generator and seed as the simulator, so
the same tensors), and rebuilds its :class:`~fedlab.federation.client.Client` exactly as
:func:`~fedlab.federation.simulation.setup_run` does for that site. Flower runs every message in a fresh
process, so :class:`NodeRun` is rebuilt for each message from the spec and the state the node kept
(:meth:`NodeRun.state`, stored in Flower's ``context.state``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from fedlab.data.errors import DataError
from fedlab.data.federation import Site, Split
from fedlab.data.loading import load_federation
from fedlab.deploy.fingerprints import site_fingerprint, state_fingerprint
from fedlab.deploy.runspec import RunSpec
from fedlab.federation.evaluation import FULL_METRICS, evaluate
from fedlab.federation.history import History
from fedlab.federation.identity import code_version
from fedlab.federation.messages import Message, Reply
from fedlab.federation.simulation import build_network, evaluate_site_round, kept_model
from fedlab.reproducibility import select_device

NODE_CONFIG_KEYS = ("dataset", "data-dir", "site", "device")
#: A folder where a node keeps the synthetic site it generated, so the next message of the run loads it instead
#: of generating it again (set by LocalDeployment; unset = generate for every message).
SITE_CACHE_ENV = "FEDLAB_NODE_SITE_CACHE"


class NodeDataError(DataError):
    """A node cannot serve its site: its data folder is missing, holds another dataset or not that site.

    Attributes:
        node: The Flower node id ("" when unknown).
        site: The site the node was started for.
        folder: The node's data folder ("" = embedded synthetic data).
    """

    def __init__(self, message: str, *, node: str = "", site: str = "", folder: str = "") -> None:
        where = f"SuperNode {node} " if node else "SuperNode "
        where += f"(site {site!r}, data-dir {folder!r})" if folder else f"(site {site!r}, embedded synthetic data)"
        super().__init__(f"{where}: {message}")
        self.node, self.site, self.folder = str(node), site, folder


@dataclass(frozen=True)
class NodeConfig:
    """A SuperNode's own settings (Flower's ``--node-config``).

    Attributes:
        site: The site this node serves (a site name of the run's federation).
        dataset: The dataset it holds ("" = the run's).
        data_dir: Its data folder ("" = the embedded synthetic data).
        device: Where it trains ("cpu" by default: bit-for-bit equal to a CPU simulation).
    """

    site: str
    dataset: str = ""
    data_dir: str = ""
    device: str = "cpu"

    @classmethod
    def from_mapping(cls, config: Mapping[str, object], node: str = "") -> NodeConfig:
        """Read ``--node-config`` (keys ``site``, ``dataset``, ``data-dir``, ``device``).

        Raises:
            NodeDataError: when ``site`` is missing or a key is unknown.
        """
        unknown = sorted(set(config) - set(NODE_CONFIG_KEYS))
        site = str(config.get("site", ""))
        folder = str(config.get("data-dir", ""))
        if unknown or not site:
            raise NodeDataError(f"--node-config needs site=... (and may set {', '.join(NODE_CONFIG_KEYS)}); got "
                                f"{dict(config)}. Start the node with --node-config 'dataset=\"prostate\" "
                                "data-dir=\"/data/prostate\" site=\"A\"'.", node=node, site=site, folder=folder)
        return cls(site=site, dataset=str(config.get("dataset", "")), data_dir=folder,
                   device=str(config.get("device", "cpu")) or "cpu")

    def to_flower(self) -> str:
        """The ``--node-config`` argument that gives this configuration."""
        return " ".join(f'{key}="{value}"' for key, value in
                        (("dataset", self.dataset), ("data-dir", self.data_dir), ("site", self.site),
                         ("device", self.device)))


def load_site(spec: RunSpec, node: NodeConfig, node_id: str = "") -> tuple[Site, str]:
    """Load the node's site for the run ``spec``; returns the site and its data fingerprint.

    Raises:
        NodeDataError: naming the node, its site and its folder, when the site is not one of the run's,
            the node holds another dataset, the folder does not exist, cannot be loaded, or lacks the site.
    """
    fail = {"node": node_id, "site": node.site, "folder": node.data_dir}
    dataset = spec.federation["name"]
    if node.site not in spec.site_names:
        raise NodeDataError(f"site {node.site!r} is not one of the run's sites {spec.site_names}", **fail)
    if node.dataset and node.dataset != dataset:
        raise NodeDataError(f"the node holds dataset {node.dataset!r} but the run is for {dataset!r}", **fail)
    if node.data_dir and not Path(node.data_dir).is_dir():
        raise NodeDataError("the data folder does not exist; start the node with data-dir=\"<the folder holding "
                            f"{dataset}>\" (or data-dir=\"\" for the embedded synthetic data)", **fail)
    data = spec.data
    cached = _site_cache(spec, node)
    if cached is not None and cached.exists():
        saved = torch.load(cached, weights_only=True)
        return _site_from_state(saved["site"]), saved["fingerprint"]
    try:
        if node.data_dir:
            federation = load_federation(node.dataset or dataset, node.data_dir, config=spec.build_config(),
                                         seed=int(data.get("seed", spec.seed)),
                                         val_fraction=float(data.get("val_fraction", 0.2)))
        else:
            federation = load_federation(node.dataset or dataset, config=spec.build_config(),
                                         seed=int(data.get("seed", spec.seed)),
                                         heterogeneity=float(data.get("heterogeneity", 1.0)))
    except (DataError, OSError, ValueError, KeyError) as err:
        raise NodeDataError(f"cannot load {dataset!r} from its data: {err}", **fail) from err
    if node.site not in federation.site_names:
        raise NodeDataError(f"the data hold sites {federation.site_names}, not site {node.site!r}", **fail)
    site = federation[node.site]
    fingerprint = site_fingerprint(site, federation.name, federation.task, federation.labels)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"site": _site_state(site), "fingerprint": fingerprint}, partial)
        partial.replace(cached)  # atomic: a concurrent reader sees the whole file or none
    return site, fingerprint


def _site_cache(spec: RunSpec, node: NodeConfig) -> Path | None:
    """Where the node's generated synthetic site is kept (None: real data, or no cache folder set)."""
    folder = os.environ.get(SITE_CACHE_ENV)
    if not folder or node.data_dir:
        return None
    key = json.dumps([node.dataset or spec.federation["name"], node.site, spec.config, spec.data, code_version()],
                     sort_keys=True)
    return Path(folder) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.pt"


def _site_state(site: Site) -> dict:
    def split(s: Split | None) -> dict | None:
        return None if s is None else {"x": s.x, "y": s.y, "groups": s.groups}

    return {"name": site.name, "train": split(site.train), "val": split(site.val), "test": split(site.test),
            "metadata": site.metadata}


def _site_from_state(state: dict) -> Site:
    def split(s: dict | None) -> Split | None:
        return None if s is None else Split(s["x"], s["y"], s["groups"])

    return Site(state["name"], split(state["train"]), split(state["test"]), split(state["val"]), state["metadata"])


class NodeRun:
    """One site's part of a run, rebuilt from the spec (and the state the node kept) for each message.

    Args:
        spec: The run.
        site: The node's site (from :func:`load_site`).
        device: Where to train ("cpu", "auto", "cuda", ...).
        state: What :meth:`state` returned after the previous message (None before the first).
    """

    def __init__(self, spec: RunSpec, site: Site, device: str | torch.device = "cpu",
                 state: Mapping[str, object] | None = None) -> None:
        self.spec = spec
        self.device = select_device(device)
        self.strategy = spec.build_strategy()
        self.config = spec.build_config()
        federation = spec.federation_spec()
        self.task = federation.task
        self.index = spec.site_names.index(site.name)
        self.site = site.to(self.device)
        net = build_network(self.strategy, federation, self.config, spec.seed).to(self.device)
        self.strategy.setup(net, self.config, spec.rounds, federation.task)
        self.client = self.strategy.make_client(self.index, self.site, net, spec.seed, self.device)
        self.best = None
        if state is not None:
            self.client.load_state_dict(state["client"])
            self.best = state["best"]

    def state(self) -> dict:
        """What the node keeps until the next message: the client's state and its best-validation snapshot."""
        return {"client": self.client.state_dict(), "best": self.best}

    def evaluate(self, rnd: int, message: Message | None) -> list[list]:
        """Receive what the site serves after round ``rnd`` (when given) and score it, as run_federation does.

        Returns:
            The curve rows ``[metric, value, split, round]`` (validation, then test).
        """
        if message is not None:
            self.strategy.receive(self.client, message)
        scratch = History(method=self.strategy.name, sites=[self.site.name])
        track = self.spec.select == "val"
        self.best = evaluate_site_round(self.strategy.site_model(self.client), self.site, self.task, self.config,
                                        scratch, rnd, self.best if track else None, track)
        return [[r["metric"], r["value"], r["split"], r["round"]] for r in scratch.rows]

    def train(self, message: Message, rnd: int) -> Reply:
        """The strategy's client update for round ``rnd``."""
        return self.strategy.client_update(self.client, message, rnd)

    def finish(self) -> dict:
        """After the last round: the site's finish work, its kept model and its final scores.

        Returns:
            ``facts`` (the strategy's finish facts or None), ``selected`` (round of the kept model),
            ``final`` (metric -> test score of the kept model) and ``fingerprints`` of the site's local keys,
            its model after the last round and its kept model (:func:`state_fingerprint`): the models
            themselves stay on the node.
        """
        strategy, spec = self.strategy, self.spec
        facts = strategy.finish_client(self.client)
        model = strategy.site_model(self.client)
        use_best = spec.select == "val" and not strategy.finish_selects
        kept, selected = kept_model(model, self.best if use_best else None, spec.rounds)
        final = evaluate(kept, self.site.test, self.task, spec.final_metrics or FULL_METRICS[self.task],
                         self.config.eval_batch_size, **spec.scoring)
        fingerprints = {"local_keys": state_fingerprint(self.client.model.state_dict(), strategy.split.local),
                        "last_model": state_fingerprint(model.state_dict()),
                        "kept_model": state_fingerprint(kept.state_dict())}
        return {"facts": facts, "selected": selected, "final": final, "fingerprints": fingerprints}
