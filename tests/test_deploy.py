"""fedlab.deploy without sockets: records survive Flower's serialisation bit for bit, the RunSpec rebuilds the run,
a node refuses data it cannot serve with a message naming the node, site and folder, and the whole Flower protocol
(ServerApp loop + ClientApp handlers, every message through Flower's own serialisation) gives run_federation's
History for every federated strategy.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math

import pytest
import torch

from fedlab.config import get_config
from fedlab.data import load_federation
from fedlab.deploy.errors import DeploymentError
from fedlab.deploy.fingerprints import state_fingerprint
from fedlab.deploy.node import NodeConfig, NodeDataError, load_site
from fedlab.deploy.runspec import RunSpec, registry_name
from fedlab.federation.messages import Message
from fedlab.federation.simulation import deliver, run_federation, run_round, setup_run
from fedlab.federation.strategies import STRATEGIES, FedAvg, LCFed, Strategy, get_strategy

FEDERATED = [name for name, cls in STRATEGIES.items() if cls.federated]


def tiny_config():
    """A small U-Net on 16x16 synthetic prostate images: the protocol, not the learning, is under test."""
    return get_config("smoke", image_size=16, base_width=4, levels=2, local_steps=2, batch_size=4, finetune_steps=2,
                      head_steps=1, hc_rounds=1, eval_every=1)


@pytest.fixture(scope="module")
def federation():
    """Sites A and B of the synthetic prostate federation (what a node generates for itself)."""
    fed = load_federation("prostate", config=tiny_config(), seed=0)
    return dataclasses.replace(fed, sites=fed.sites[:2])


@pytest.fixture(scope="module")
def three_sites():
    """Sites A-C: the fewest that every registered strategy accepts (Krum needs 2f + 3 sites)."""
    fed = load_federation("prostate", config=tiny_config(), seed=0)
    return dataclasses.replace(fed, sites=fed.sites[:3])


def _bytes(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().reshape(-1).view(torch.uint8)


def same(a: object, b: object) -> bool:
    """Exact equality of nested states: same keys in the same order, same types, tensors bit for bit."""
    if isinstance(a, torch.Tensor):
        return (isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and torch.equal(_bytes(a), _bytes(b)))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


# --- RunSpec and node data (no Flower needed) -----------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FEDERATED))
def test_the_runspec_rebuilds_the_strategy_and_config(name, federation):
    strategy = get_strategy(name)
    config = tiny_config().replace(lr=3e-4)
    spec = RunSpec.from_json(RunSpec.create(strategy, federation, config, rounds=3, seed=5).to_json())
    rebuilt = spec.build_strategy()
    assert type(rebuilt) is type(strategy) and rebuilt.describe() == strategy.describe()
    assert spec.build_config() == config and spec.rounds == 3 and spec.seed == 5
    assert spec.federation_spec() == federation.spec() and spec.site_names == federation.site_names
    assert spec.select == "val"  # run_federation's "auto": every site has a validation split


def test_an_lcfed_ablation_keeps_its_name_and_settings(federation):
    ablation = LCFed(alpha=0.0, use_hc=False)
    spec = RunSpec.create(ablation, federation, tiny_config())
    assert registry_name(ablation) == "LC-Fed" and spec.build_strategy().describe() == ablation.describe()


def test_mix_and_unregistered_strategies_are_refused_with_the_reason(federation):
    with pytest.raises(ValueError, match="pools the sites' raw data"):
        RunSpec.create(get_strategy("Mix"), federation, tiny_config())

    class Mine(FedAvg):
        pass

    with pytest.raises(ValueError, match="register the class"):
        RunSpec.create(Mine(), federation, tiny_config())


def test_a_node_loads_exactly_the_simulators_site(federation):
    spec = RunSpec.create(FedAvg(), federation, tiny_config())
    site, fingerprint = load_site(spec, NodeConfig(site="B", dataset="prostate"))
    assert fingerprint == spec.fingerprints["B"]
    for split in ("train", "val", "test"):
        assert same(getattr(site, split).x, getattr(federation["B"], split).x)


@pytest.mark.parametrize("case", ["missing folder", "empty folder", "other site", "other dataset"])
def test_a_node_that_cannot_serve_its_site_names_node_site_and_folder(case, federation, tmp_path):
    spec = RunSpec.create(FedAvg(), federation, tiny_config())
    node = {"missing folder": NodeConfig(site="B", data_dir=str(tmp_path / "nowhere")),
            "empty folder": NodeConfig(site="B", data_dir=str(tmp_path)),
            "other site": NodeConfig(site="Z"),
            "other dataset": NodeConfig(site="B", dataset="polyp")}[case]
    with pytest.raises(NodeDataError) as caught:
        load_site(spec, node, node_id="42")
    message = str(caught.value)
    assert message.startswith("SuperNode 42 (site ") and repr(node.site) in message
    assert (repr(node.data_dir) in message) if node.data_dir else "embedded synthetic data" in message
    assert caught.value.site == node.site and caught.value.folder == node.data_dir


def test_node_config_reads_flowers_node_config_and_asks_for_a_site():
    node = NodeConfig.from_mapping({"site": "A", "data-dir": "/data/p", "dataset": "prostate"})
    assert node == NodeConfig(site="A", dataset="prostate", data_dir="/data/p")
    assert 'data-dir="/data/p"' in node.to_flower() and 'site="A"' in node.to_flower()
    with pytest.raises(NodeDataError, match="needs site="):
        NodeConfig.from_mapping({"data-dir": "/data/p"}, node="7")


def test_state_fingerprint_sees_every_bit_and_only_the_keys_asked():
    state = {"a": torch.zeros(3), "b": torch.ones(2)}
    changed = {"a": torch.tensor([0.0, -0.0, 0.0]), "b": torch.ones(2)}  # -0.0 == 0.0, but not the same bits
    assert state_fingerprint(state) != state_fingerprint(changed)
    assert state_fingerprint(state, ["b"]) == state_fingerprint(changed, ["b"])


# --- Flower records (need flwr) -------------------------------------------------------------------------------------
def _wire(record):
    """What Flower does to a RecordDict between two processes: deflate every nested object, inflate them again."""
    from flwr.supercore.inflatable.inflatable_object import get_all_nested_objects
    from flwr.supercore.inflatable.inflatable_utils import inflate_object_from_contents

    objects = get_all_nested_objects(record)
    return inflate_object_from_contents(record.object_id, {k: o.deflate() for k, o in objects.items()})


def _round_trip(message: Message) -> Message:
    from flwr.app import RecordDict

    from fedlab.deploy.records import decode_message, encode_message

    record = RecordDict()
    encode_message(message, "m", record)
    return decode_message(_wire(record), "m")


def _same_message(a: Message, b: Message) -> bool:
    return same(a.tensors, b.tensors) and same(a.config, b.config)


def test_tensors_of_every_kind_survive_bit_for_bit():
    pytest.importorskip("flwr")
    g = torch.Generator().manual_seed(0)
    tensors = {"f32": torch.randn(3, 4, generator=g), "f64": torch.randn(5, dtype=torch.float64, generator=g),
               "f16": torch.randn(4, generator=g).half(), "bf16": torch.randn(4, generator=g).bfloat16(),
               "i64": torch.tensor([-(2**62), 7]), "i32": torch.tensor([3], dtype=torch.int32),
               "i8": torch.tensor([-5, 5], dtype=torch.int8), "u8": torch.tensor([0, 255], dtype=torch.uint8),
               "bool": torch.tensor([True, False, True]), "scalar": torch.tensor(2.5), "count": torch.tensor(11),
               "empty": torch.zeros(0, 3), "transposed": torch.randn(3, 2, generator=g).t(),
               "strided": torch.arange(10.0)[::3], "nan": torch.tensor([float("nan"), -0.0, float("inf")]),
               "complex": torch.randn(2, dtype=torch.complex64, generator=g)}
    config = {"stage": 1, "send_head": True, "lr": 1e-3, "name": "é-site", "raw": b"\x00\xff", "mixed": [1, True],
              "floats": [1, 2.0], "big": 2**70, "none_yet": [], "blobs": [b"a", b"b"]}
    back = _round_trip(Message(tensors, config))
    assert _same_message(Message(tensors, config), back)
    assert _same_message(Message(), _round_trip(Message()))


def _messages_of_a_run(name, federation, rounds=2):
    """Every message of a short simulated run of strategy ``name``: configure, replies, configure_evaluate."""
    strategy = LCFed(hc_rounds=1) if name == "LC-Fed" else get_strategy(name)
    fed, clients, state = setup_run(strategy, federation, tiny_config(), rounds=rounds, seed=0)
    seen, indices = [], [c.index for c in clients]
    for rnd in range(1, rounds + 1):
        state, replies, sent = run_round(strategy, clients, state, rnd)
        evaluation = strategy.configure_evaluate(rnd, state, indices)
        deliver(strategy, clients, evaluation)
        seen += list(sent.values()) + [r.message for r in replies] + list(evaluation.values())
    return strategy, clients, seen


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_message_and_client_state_of_every_strategy_survives_the_wire(name, three_sites):
    pytest.importorskip("flwr")
    from flwr.app import ConfigRecord, RecordDict

    from fedlab.deploy.records import state_from_bytes, state_to_bytes

    strategy, clients, messages = _messages_of_a_run(name, three_sites)
    assert messages
    for message in messages:
        assert _same_message(message, _round_trip(message))
    for client in clients:
        record = _wire(RecordDict({"state": ConfigRecord({"bytes": state_to_bytes(client.state_dict())})}))
        restored = state_from_bytes(record["state"]["bytes"])
        assert same(client.state_dict(), restored)
        copy = strategy.make_client(client.index, client.site, client.model, 1, torch.device("cpu"))
        copy.load_state_dict(restored)
        assert same(copy.state_dict(), client.state_dict())


# --- the whole protocol, in one process -----------------------------------------------------------------------------
class InProcessGrid:
    """A Flower Grid whose nodes are fedlab's ClientApp called in this process: every message and reply goes
    through Flower's serialisation; a handler's exception becomes an error reply, as on a SuperNode."""

    def __init__(self, run_config: dict, node_configs: list[dict]) -> None:
        from flwr.app import Context, RecordDict

        self.contexts = {100 + i: Context(run_id=1, node_id=100 + i, node_config=nc, state=RecordDict(),
                                          run_config=run_config) for i, nc in enumerate(node_configs)}
        self.replies: dict = {}
        self.ids = itertools.count(1)
        self.bytes = 0

    def get_node_ids(self):
        return list(self.contexts)

    def push_messages(self, messages):
        from flwr.app import Error
        from flwr.app import Message as FlowerMessage

        from fedlab.deploy.flower import client_app

        ids = []
        for message in messages:
            mid = f"message-{next(self.ids)}"
            message.metadata.__dict__["_message_id"] = mid  # what the SuperLink does
            received = FlowerMessage(metadata=message.metadata, content=_wire(message.content))
            try:
                reply = client_app(received, self.contexts[message.metadata.dst_node_id])
                reply = FlowerMessage(_wire(reply.content), reply_to=received)
            except Exception as err:  # noqa: BLE001  (a SuperNode turns it into an error reply)
                reply = FlowerMessage(Error(code=2, reason=f"{type(err).__name__}: {err}"), reply_to=received)
            self.replies[mid] = reply
            ids.append(mid)
        return ids

    def pull_messages(self, ids):
        return [self.replies.pop(i) for i in ids if i in self.replies]


@pytest.fixture(scope="module")
def site_cache(tmp_path_factory):
    """One folder where the in-process nodes keep the sites they generate (as a LocalDeployment's nodes do)."""
    return tmp_path_factory.mktemp("site-cache")


@pytest.fixture
def flower_task(site_cache, monkeypatch):
    """The identity Flower gives a ServerApp process (messages are stamped with it); nodes keep their sites."""
    pytest.importorskip("flwr")
    from fedlab.deploy.node import SITE_CACHE_ENV

    monkeypatch.setenv(SITE_CACHE_ENV, str(site_cache))
    from flwr.supercore.task_identity import TaskIdentity

    saved = (TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id)
    TaskIdentity.run_id, TaskIdentity.task_id, TaskIdentity.node_id = 1, 1, 1
    yield
    TaskIdentity._run_id, TaskIdentity._task_id, TaskIdentity._node_id = saved


def _serve(spec, node_configs):
    from fedlab.deploy.server import serve

    return serve(InProcessGrid({"fedlab": spec.to_json()}, node_configs), spec)


def _nodes(federation, **changes):
    return [{"site": s, "dataset": federation.name, "data-dir": "", **changes.get(s, {})}
            for s in federation.site_names]


def _without_seconds(ledger):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in ledger]


@pytest.mark.parametrize("name", sorted(FEDERATED))
def test_the_flower_protocol_gives_run_federations_history_for_every_strategy(name, three_sites, flower_task):
    """Every curve and final row, the bytes and loss of every round, the selected rounds, the finish facts and the
    sites' models (by fingerprint) equal run_federation's, bit for bit (CPU, replies aggregated in site order)."""
    federation = three_sites  # Krum needs three sites
    make = (lambda: LCFed(hc_rounds=1)) if name == "LC-Fed" else (lambda: get_strategy(name))
    config = tiny_config()
    reference = run_federation(make(), federation, config, rounds=2, seed=0, progress=False)
    history = _serve(RunSpec.create(make(), federation, config, rounds=2, seed=0), _nodes(federation))
    assert history.rows == reference.rows
    assert _without_seconds(history.ledger) == _without_seconds(reference.ledger)
    assert history.selected_round == reference.selected_round
    assert history.info.get("finish") == reference.info.get("finish")
    assert history.info["strategy"] == reference.info["strategy"] and history.site_models == []
    for k, site in enumerate(federation.site_names):
        prints = history.info["site_fingerprints"][site]
        assert prints["last_model"] == state_fingerprint(reference.last_models[k].state_dict())
        assert prints["kept_model"] == state_fingerprint(reference.site_models[k].state_dict())
    assert not set(history.info["keys_up"]) & set(history.info["local_keys"])  # nothing local ever left a node


def test_the_flower_protocol_runs_lcfeds_frozen_calibration_stage_as_the_simulator(three_sites, flower_task):
    """LC-Fed with the frozen calibration stage (the heads travel once, then only the calibration modules train)
    gives run_federation's history bit for bit, two calibration rounds included (the default joint stage is
    covered by the test over every strategy)."""
    def make():
        return LCFed(hc_rounds=2, hc_stage="frozen")

    config = tiny_config()
    reference = run_federation(make(), three_sites, config, rounds=3, seed=0, progress=False)
    history = _serve(RunSpec.create(make(), three_sites, config, rounds=3, seed=0), _nodes(three_sites))
    assert history.info["strategy"] == reference.info["strategy"] and history.info["strategy"]["hc_stage"] == "frozen"
    assert history.rows == reference.rows
    assert _without_seconds(history.ledger) == _without_seconds(reference.ledger)
    assert history.selected_round == reference.selected_round


def test_a_node_with_a_missing_folder_stops_the_run_naming_node_site_and_folder(federation, flower_task, tmp_path):
    spec = RunSpec.create(FedAvg(), federation, tiny_config(), rounds=2)
    missing = str(tmp_path / "no-such-folder")
    with pytest.raises(DeploymentError) as caught:
        _serve(spec, _nodes(federation, B={"data-dir": missing}))
    err = caught.value
    assert err.site == "B" and err.folder == missing and err.node == "101"
    assert "SuperNode 101" in str(err) and missing in str(err) and "does not exist" in str(err)


def test_a_node_holding_other_data_is_refused_by_fingerprint(federation, flower_task):
    spec = RunSpec.create(FedAvg(), federation, tiny_config(), rounds=2)
    other = dataclasses.replace(spec, data={**spec.data, "heterogeneity": 0.0})  # nodes generate other images
    other = dataclasses.replace(other, fingerprints=spec.fingerprints)
    with pytest.raises(DeploymentError, match="holds data that differ") as caught:
        _serve(other, _nodes(federation))
    assert caught.value.site == "A" and caught.value.node == "100"


def test_a_failing_client_update_names_its_site_and_no_history_comes_back(federation, flower_task, monkeypatch):
    def broken(self, message, rnd):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("fedlab.deploy.node.NodeRun.train", broken)
    with pytest.raises(DeploymentError, match=r"round 1 failed: RuntimeError: out of memory.*\['B'\] failed too.*"
                                              "fewer sites") as caught:
        _serve(RunSpec.create(FedAvg(), federation, tiny_config(), rounds=2), _nodes(federation))
    assert caught.value.site == "A"  # the first failing site in the run's order


def test_two_nodes_for_one_site_are_refused(federation, flower_task):
    spec = RunSpec.create(FedAvg(), federation, tiny_config(), rounds=1)
    with pytest.raises(DeploymentError, match="serves site 'A', which node 100 serves too"):
        _serve(spec, _nodes(federation, B={"site": "A"}))


def test_the_runspec_travels_as_json_in_the_run_config(federation):
    spec = RunSpec.create(get_strategy("FedRep"), federation, tiny_config(), rounds=2, select="last")
    assert json.loads(spec.to_json())["strategy"] == "FedRep"
    with pytest.raises(ValueError, match="not a fedlab RunSpec"):
        RunSpec.from_json("")


def test_strategy_objects_expose_what_the_spec_needs():
    for name in FEDERATED:
        strategy = get_strategy(name)
        assert isinstance(strategy, Strategy) and registry_name(strategy) == name
        json.dumps(strategy.init_kwargs())


def test_fedlab_works_without_flower_and_the_flower_modules_name_the_extra(monkeypatch):
    """As in a Python where ``flwr`` cannot be imported: the Flower-free parts of fedlab.deploy import, and the Flower
    parts raise an ImportError that says which extra to install."""
    import importlib
    import importlib.abc
    import sys

    class NoFlower(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "flwr" or name.startswith("flwr."):
                raise ModuleNotFoundError(f"No module named {name!r}")

    import fedlab

    if "fedlab.deploy" in sys.modules:  # the package attribute too, or later `fedlab.deploy.x` would see the copy
        monkeypatch.setattr(fedlab, "deploy", sys.modules["fedlab.deploy"])
    for name in [m for m in sys.modules if m == "flwr" or m.startswith(("flwr.", "fedlab.deploy"))]:
        monkeypatch.delitem(sys.modules, name)  # restored after the test
    before = set(sys.modules)
    monkeypatch.setattr(sys, "meta_path", [NoFlower(), *sys.meta_path])
    try:
        deploy = importlib.import_module("fedlab.deploy")
        assert not deploy.flower_available()
        for module in ("fedlab.deploy.local", "fedlab.deploy.node", "fedlab.deploy.runspec", "fedlab.deploy.compare",
                       "fedlab.deploy.executor", "fedlab.deploy.supernode"):
            importlib.import_module(module)
        for module in ("fedlab.deploy.flower", "fedlab.deploy.records", "fedlab.deploy.server"):
            with pytest.raises(ImportError, match=r'pip install "fedlab-med\[flower\]"'):
                importlib.import_module(module)
    finally:  # the Flower-less copies must not outlive the test (later tests would get their classes)
        for name in set(sys.modules) - before:
            if name == "flwr" or name.startswith(("flwr.", "fedlab.deploy")):
                del sys.modules[name]


def test_compare_histories_sees_one_changed_score_and_side_by_side_lines_them_up(federation):
    from fedlab.deploy.compare import compare_histories, side_by_side

    history = run_federation(FedAvg(), federation, tiny_config(), rounds=1, seed=0, progress=False)
    twin = dataclasses.replace(history, rows=[dict(r) for r in history.rows], ledger=[dict(r) for r in history.ledger])
    same = compare_histories(history, twin)
    assert same["rows_equal"] and same["ledger_equal"] and same["selected_equal"] and same["max_abs_difference"] == 0
    assert same["final_scores"] == 2 * 4 and same["curve_points"] == 2 * 2 * 2  # 2 sites, rounds 0 and 1, val+test
    twin.rows[-1]["value"] += 0.25
    twin.ledger[0]["bytes_up"] += 1
    changed = compare_histories(history, twin)
    assert not changed["rows_equal"] and not changed["ledger_equal"] and changed["same_keys"]
    assert changed["max_abs_difference"] == pytest.approx(0.25)
    table = side_by_side({"simulation": history, "Flower": twin})
    assert list(table.index) == ["A", "B", "mean"] and ("dice", "Flower") in table.columns
