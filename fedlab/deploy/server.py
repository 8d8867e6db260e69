"""The server side of a deployed run: the strategy's configure / aggregate over Flower's Grid, as a History.

:func:`serve` is :func:`~fedlab.federation.simulation.run_federation`'s round loop with the sites on other
processes. Round ``r`` sends each node ONE message that carries what run_federation does at that node between
two aggregations: the previous round's ``configure_evaluate`` message (the node receives it and scores its
model: the curve of round ``r - 1``; round 0 is the initial model) and this round's ``configure`` message (the
node trains and replies). A last message evaluates the last round and finishes (the strategy's site work,
the kept model, its final scores). Replies are aggregated in site order, so aggregation adds the same
numbers in the same order as the simulator: on CPU the two runs agree bit for bit.

A node that fails, or does not reply within ``spec.reply_timeout``, fails the run with a
:class:`~fedlab.deploy.errors.DeploymentError` naming the node, its site and its folder: a run is never
averaged over fewer sites than it was started with.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from fedlab.deploy import require_flower

require_flower()

from flwr.app import ConfigRecord, RecordDict  # noqa: E402
from flwr.app import Message as FlowerMessage  # noqa: E402
from flwr.serverapp import Grid  # noqa: E402

from fedlab.deploy.errors import DeploymentError  # noqa: E402
from fedlab.deploy.records import decode_message, dtype_from_name, encode_message  # noqa: E402
from fedlab.deploy.runspec import RunSpec  # noqa: E402
from fedlab.federation.history import History  # noqa: E402
from fedlab.federation.messages import Reply  # noqa: E402
from fedlab.federation.simulation import build_network  # noqa: E402

#: RecordDict keys of the protocol.
CONTROL, RESULT, NODE = "fedlab", "fedlab.result", "fedlab.node"


class _Nodes:
    """Which Flower node serves which site, learnt in the handshake."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.node_of: dict[str, int] = {}
        self.info: dict[int, dict] = {}

    def site(self, node: int) -> str:
        return self.info.get(node, {}).get("site", "")

    def order(self, node: int) -> tuple[int, int]:
        """Sort key: the node's site position in the run (nodes of unknown site last, by id)."""
        sites = self.spec.site_names
        site = self.site(node)
        return (sites.index(site), 0) if site in sites else (len(sites), node)

    def folder(self, node: int) -> str:
        return self.info.get(node, {}).get("data_dir", "")

    def fail(self, node: int, message: str) -> DeploymentError:
        site, folder = self.site(node), self.folder(node)
        held = f"data-dir {folder!r}" if folder else "embedded synthetic data"
        where = f"SuperNode {node}" + (f" (site {site!r}, {held})" if site else "")
        return DeploymentError(f"{where}: {message}", node=str(node), site=site, folder=folder)


def _exchange(grid: Grid, messages: list[FlowerMessage], nodes: _Nodes, spec: RunSpec, what: str,
              ) -> dict[int, FlowerMessage]:
    """Push ``messages``, wait for every reply; fail on an error reply or after ``spec.reply_timeout``."""
    ids = list(grid.push_messages(messages))
    dst = {mid: m.metadata.dst_node_id for mid, m in zip(ids, messages, strict=True)}
    if not all(ids):
        missing = [m.metadata.dst_node_id for mid, m in zip(ids, messages, strict=True) if not mid]
        raise nodes.fail(missing[0], f"{what}: the SuperLink did not accept the message for this node")
    pending, replies = set(ids), {}
    end = time.monotonic() + spec.reply_timeout
    while pending:
        errors = {}
        for reply in grid.pull_messages(sorted(pending)):
            mid = reply.metadata.reply_to_message_id
            pending.discard(mid)
            if reply.has_error():
                errors[dst[mid]] = reply.error
            else:
                replies[dst[mid]] = reply
        if errors:  # named in site order, whatever order the replies came in
            failed = sorted(errors, key=nodes.order)
            first = errors[failed[0]]
            others = f"; site(s) {[nodes.site(n) or n for n in failed[1:]]} failed too" if failed[1:] else ""
            raise nodes.fail(failed[0], f"{what} failed: {first.reason} (Flower error code {first.code}){others}; "
                                        "the run stops rather than averaging over fewer sites")
        if pending:
            if time.monotonic() > end:
                late = sorted(dst[m] for m in pending)
                sites = [nodes.site(n) or str(n) for n in late]
                raise DeploymentError(f"{what}: no reply from site(s) {sites} (node(s) {late}) within "
                                      f"{spec.reply_timeout:.0f} s; the run stops rather than averaging over fewer "
                                      "sites", node=str(late[0]), site=nodes.site(late[0]),
                                      folder=nodes.folder(late[0]))
            time.sleep(spec.poll)
    return replies


def _handshake(grid: Grid, spec: RunSpec) -> _Nodes:
    """Wait for the nodes, ask each which site it serves, and check the answers against the run."""
    nodes, sites = _Nodes(spec), spec.site_names
    end = time.monotonic() + spec.connect_timeout
    while len(connected := sorted(grid.get_node_ids())) < len(sites):
        if time.monotonic() > end:
            raise DeploymentError(f"{len(connected)} of {len(sites)} SuperNodes connected within "
                                  f"{spec.connect_timeout:.0f} s; the run needs one per site {sites}")
        time.sleep(spec.poll)
    queries = [FlowerMessage(RecordDict(), dst_node_id=n, message_type="query") for n in connected]
    answers = _exchange(grid, queries, nodes, spec, "handshake")
    for node in connected:
        nodes.info[node] = json.loads(str(answers[node].content[NODE]["info"]))
    for node in sorted(connected, key=nodes.order):  # problems are reported in the run's site order
        info = nodes.info[node]
        if not info["ok"]:
            raise DeploymentError(info["error"], node=str(node), site=info.get("site", ""),
                                  folder=info.get("data_dir", ""))
        if info["code_version"] != spec.code_version:
            raise nodes.fail(node, f"runs fedlab {info['code_version']} but the server runs {spec.code_version}; "
                                   "install the same fedlab on every node")
        expected = spec.fingerprints.get(info["site"])
        if expected and info["fingerprint"] != expected:
            raise nodes.fail(node, "holds data that differ from the federation the run was prepared with (data "
                                   f"fingerprint {info['fingerprint'][:12]} instead of {expected[:12]}): check the "
                                   f"node's folder and the run's data settings {spec.data}")
        if info["site"] in nodes.node_of:
            raise nodes.fail(node, f"serves site {info['site']!r}, which node {nodes.node_of[info['site']]} serves "
                                   "too; start exactly one SuperNode per site")
        nodes.node_of[info["site"]] = node
    missing = [s for s in sites if s not in nodes.node_of]
    if missing:
        raise DeploymentError(f"no SuperNode serves site(s) {missing}; connected nodes serve "
                              f"{ {n: i['site'] for n, i in nodes.info.items()} }")
    return nodes


def serve(grid: Grid, spec: RunSpec, progress: Callable[[dict], None] | None = None) -> History:
    """Run ``spec`` over the SuperNodes connected to ``grid``; the same History as run_federation's.

    The History's ``site_models`` and ``last_models`` stay empty: models never leave the nodes. Instead
    ``history.info["site_fingerprints"][site]`` holds fingerprints of each site's local keys, its model after
    the last round and its kept model; ``info["keys_up"]`` every key a node sent, ``info["local_keys"]`` the
    keys the strategy keeps local, ``info["nodes"]`` which node served which site.

    Args:
        grid: Flower's Grid (given to the ServerApp).
        spec: The run.
        progress: Called after every round with ``{"round", "seconds", "node_seconds"}``.

    Raises:
        DeploymentError: naming the failing node, its site and folder.
    """
    tic_run = time.perf_counter()
    strategy, config = spec.build_strategy(), spec.build_config()
    if not strategy.federated:
        raise DeploymentError(f"{strategy.name} pools the sites' raw data; it cannot run on separate nodes")
    federation = spec.federation_spec()
    net = build_network(strategy, federation, config, spec.seed)
    strategy.setup(net, config, spec.rounds, federation.task)
    state = strategy.initial_state(net)
    nodes = _handshake(grid, spec)
    sites, rounds = spec.site_names, spec.rounds
    indices = list(range(len(sites)))
    history = History(method=strategy.name, sites=sites, seed=spec.seed,
                      info={"strategy": strategy.describe(), "select": spec.select, "rounds": rounds,
                            "engine": "flower", "nodes": {s: str(n) for s, n in nodes.node_of.items()}})
    eval_round: int | None = 0  # round 0: each node scores its initial model, as run_federation does
    eval_messages: dict = {}
    keys_up: set[str] = set()
    finish: dict[int, dict] = {}
    for rnd in range(1, rounds + 2):  # round rounds + 1 only evaluates the last round and finishes
        tic = time.perf_counter()
        finishing = rnd == rounds + 1
        messages = {} if finishing else strategy.configure(rnd, state, indices)
        targets = sorted(set(messages) | (set(indices) if eval_round is not None else set()))
        outgoing = []
        for k in targets:
            record = RecordDict({CONTROL: ConfigRecord({"round": rnd, "eval-round": -1 if eval_round is None
                                                        else eval_round, "finish": finishing})})
            if k in messages:
                encode_message(messages[k], "train", record)
            if k in eval_messages:
                encode_message(eval_messages[k], "eval", record)
            outgoing.append(FlowerMessage(record, dst_node_id=nodes.node_of[sites[k]], message_type="train",
                                          group_id=str(rnd)))
        what = "finishing" if finishing else f"round {rnd}"
        answers = _exchange(grid, outgoing, nodes, spec, what)
        results = {sites.index(nodes.site(n)): (n, json.loads(str(a.content[RESULT]["json"])))
                   for n, a in answers.items()}
        for k in sorted(results):  # curve rows in site order, as run_federation records them
            for metric, value, split, r in results[k][1]["curve"]:
                history.record(sites[k], metric, value, split, r)
        if finishing:
            finish = {k: res["finish"] for k, (_, res) in results.items()}
            break
        replies = []
        for k in sorted(messages):  # aggregation in site order: the simulator's order of summation
            node, res = results[k]
            message = decode_message(answers[node].content, "reply")
            loss = torch.frombuffer(bytearray(bytes.fromhex(res["loss"])),
                                    dtype=dtype_from_name(res["loss_dtype"])).reshape(())
            replies.append(Reply(k, message, res["weight"], loss))
        keys_up.update(key for r in replies for key in r.message.tensors)
        state = strategy.aggregate(rnd, replies, state)
        loss = torch.stack([r.loss for r in replies]).mean().item() if replies else float("nan")
        history.ledger.append({"round": rnd, "bytes_up": sum(r.message.nbytes for r in replies),
                               "bytes_down": sum(m.nbytes for m in messages.values()), "train_loss": loss,
                               "seconds": time.perf_counter() - tic})
        evaluated = rnd % config.eval_every == 0 or rnd == rounds
        eval_round = rnd if evaluated else None
        eval_messages = strategy.configure_evaluate(rnd, state, indices) if evaluated else {}
        if progress is not None:
            progress({"round": rnd, "seconds": history.ledger[-1]["seconds"],
                      "node_seconds": {sites[k]: res["seconds"] for k, (_, res) in results.items()}})
    facts = {sites[k]: finish[k]["facts"] for k in sorted(finish) if finish[k]["facts"] is not None}
    summary = strategy.summarize_finish(facts, state, dict(enumerate(sites)))
    if summary is not None:
        history.info["finish"] = summary
    for k in sorted(finish):
        history.selected_round[sites[k]] = finish[k]["selected"]
        for metric, value in finish[k]["final"].items():
            history.record(sites[k], metric, value, "test", finish[k]["selected"], stage="final")
    history.info["site_fingerprints"] = {sites[k]: finish[k]["fingerprints"] for k in sorted(finish)}
    history.info["keys_up"] = sorted(keys_up)
    history.info["local_keys"] = sorted(strategy.split.local)
    history.info["scoring"] = dict(spec.scoring)
    history.info["seconds"] = round(time.perf_counter() - tic_run, 2)
    return history


def write_status(out_dir: str | Path, status: dict) -> None:
    """Write ``status.json`` atomically (the caller polls for it)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "status.json.tmp"
    tmp.write_text(json.dumps(status))
    tmp.replace(out / "status.json")
