"""A real Flower deployment on 127.0.0.1: one SuperLink and two SuperNodes started and stopped by each test.

Each test is bounded (every wait in LocalDeployment has a timeout) and takes about a minute on 2 CPU cores, most
of it starting Flower's processes; afterwards no process of the deployment is alive. Marked ``deploy`` (and
``notebook``, so that the fast suite ``-m "not notebook"`` skips them); ``make test`` runs them.
"""

from __future__ import annotations

import dataclasses

import pytest

from fedlab.config import get_config
from fedlab.data import load_federation
from fedlab.deploy import flower_available
from fedlab.deploy.errors import DeploymentError
from fedlab.deploy.fingerprints import state_fingerprint
from fedlab.federation.params import ParamSplit
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import FedAvg, FedRep

pytestmark = [pytest.mark.deploy, pytest.mark.notebook,
              pytest.mark.skipif(not flower_available(), reason='Flower is not installed: pip install '
                                 '"fedlab-med[flower]"')]

BOUNDS = {"start_timeout": 90.0, "reply_timeout": 90.0}


@pytest.fixture(scope="module")
def federation():
    """Sites A and B of the smoke preset's synthetic prostate federation."""
    fed = load_federation("prostate", config=get_config("smoke"), seed=0)
    return dataclasses.replace(fed, sites=fed.sites[:2])


@pytest.fixture
def deployment(federation, tmp_path):
    """A LocalDeployment of the federation's two sites; after the test, none of its processes may be alive."""
    from fedlab.deploy.local import LocalDeployment, pid_alive

    dep = LocalDeployment(federation.site_names, dataset="prostate", work_dir=tmp_path / "deployment", **BOUNDS)
    seen: list[int] = []
    dep.start()
    try:
        yield dep, seen
    finally:
        seen += dep.pids()
        dep.stop()
    assert seen and not [p for p in seen if pid_alive(p)], "a process of the deployment outlived stop()"


def _without_seconds(ledger):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in ledger]


def test_fedavg_on_two_nodes_equals_run_federation_bit_for_bit(deployment, federation):
    dep, seen = deployment
    config = get_config("smoke")
    reference = run_federation(FedAvg(), federation, config, rounds=2, seed=0, progress=False)
    history = dep.run(FedAvg(), federation, config, rounds=2, seed=0, progress=False, timeout=150)
    seen += dep.pids()
    assert history.rows == reference.rows  # every curve and final score, in the same order
    assert _without_seconds(history.ledger) == _without_seconds(reference.ledger)  # bytes and loss of each round
    assert history.selected_round == reference.selected_round
    for k, site in enumerate(federation.site_names):  # the global model each node ends with
        assert history.info["site_fingerprints"][site]["last_model"] == \
            state_fingerprint(reference.last_models[k].state_dict())
    flower = history.info["flower"]
    assert flower["status"] == "finished:completed" and flower["network_traffic"]["total-bytes"] > history.total_bytes
    assert set(history.info["nodes"]) == {"A", "B"}


def test_fedrep_heads_never_leave_their_node_and_equal_the_simulators(deployment, federation):
    dep, seen = deployment
    config = get_config("smoke")
    reference = run_federation(FedRep(), federation, config, rounds=2, seed=0, progress=False)
    history = dep.run(FedRep(), federation, config, rounds=2, seed=0, progress=False, timeout=150)
    seen += dep.pids()
    model = reference.last_models[0]
    head = set(ParamSplit.from_model(model, local_modules=[model.head]).local)
    assert head and set(history.info["local_keys"]) == head
    assert not set(history.info["keys_up"]) & head  # no reply of any round carried a head tensor
    prints = {site: history.info["site_fingerprints"][site]["local_keys"] for site in federation.site_names}
    assert prints["A"] != prints["B"]  # personal heads
    for k, site in enumerate(federation.site_names):
        assert prints[site] == state_fingerprint(reference.last_models[k].state_dict(), head)
    assert history.rows == reference.rows


def test_a_node_with_a_missing_data_folder_fails_the_run_naming_node_site_and_folder(federation, tmp_path):
    from fedlab.deploy.local import LocalDeployment, pid_alive

    missing = str(tmp_path / "hospital-B-data")
    dep = LocalDeployment(federation.site_names, dataset="prostate", data_dirs={"B": missing},
                          work_dir=tmp_path / "deployment", **BOUNDS)
    seen: list[int] = []
    with dep:
        with pytest.raises(DeploymentError) as caught:
            dep.run(FedAvg(), federation, get_config("smoke"), rounds=2, seed=0, progress=False, timeout=150)
        seen += dep.pids()
        runs = dep.flower_runs()
    err = caught.value
    assert err.site == "B" and err.folder == missing and err.node
    assert f"SuperNode {err.node} (site 'B', data-dir '{missing}')" in str(err) and "does not exist" in str(err)
    assert [r["status"] for r in runs] == ["finished:failed"]  # Flower marks the run failed; no History came back
    assert not list((tmp_path / "deployment" / "runs").glob("*/history.json"))
    assert seen and not [p for p in seen if pid_alive(p)]
