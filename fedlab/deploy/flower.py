"""Any fedlab strategy as a Flower ServerApp + ClientApp (optional extra ``fedlab-med[flower]``).

``server_app`` and ``client_app`` below are the two components of a Flower App; :func:`write_app` writes
the App (its ``pyproject.toml`` and a module whose two components point at this module's: the App holds no
method code; every node runs its installed fedlab). A run is submitted with ``flwr run APP_DIR FEDERATION --run-config
FILE``, where the run config's entry ``fedlab`` is a :class:`~fedlab.deploy.runspec.RunSpec` as JSON;
:class:`~fedlab.deploy.local.LocalDeployment` does all of this for a deployment on 127.0.0.1.

* The ClientApp answers a ``query`` (the handshake: which site it serves, its data fingerprint, its fedlab
  version) and ``train`` messages: it loads its site from its own ``--node-config``
  (:mod:`fedlab.deploy.node`), rebuilds its client, restores the state it kept in Flower's
  ``context.state``, evaluates the previous round, runs the strategy's client update, and stores its state
  again. Flower runs each message in a fresh process, so nothing else survives between rounds.
* The ServerApp runs the strategy's configure / aggregate (:func:`fedlab.deploy.server.serve`) and writes
  ``status.json``, ``history.json`` and ``progress.jsonl`` into the spec's ``out_dir``.

Models never leave the nodes: the History that comes back has the same rows, ledger and selected rounds as
run_federation's, but no ``site_models``; fingerprints of each site's models stand in for them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from fedlab.deploy import require_flower

require_flower()

import flwr  # noqa: E402
from flwr.app import ConfigRecord, Context, Message, RecordDict  # noqa: E402
from flwr.clientapp import ClientApp  # noqa: E402
from flwr.serverapp import Grid, ServerApp  # noqa: E402

from fedlab.deploy.errors import DeploymentError  # noqa: E402
from fedlab.deploy.node import NodeConfig, NodeDataError, NodeRun, load_site  # noqa: E402
from fedlab.deploy.records import decode_message, encode_message, state_from_bytes, state_to_bytes  # noqa: E402
from fedlab.deploy.runspec import RunSpec  # noqa: E402
from fedlab.deploy.server import CONTROL, NODE, RESULT, serve, write_status  # noqa: E402
from fedlab.federation.identity import code_version  # noqa: E402

#: The run-config key that holds the RunSpec, and the context.state key of a node's kept state.
RUN_CONFIG_KEY = "fedlab"
STATE_KEY = "fedlab.client"
THREADS_ENV = "FEDLAB_NODE_THREADS"

APP_MODULE = "fedlab_flower_app"
APP_PYPROJECT = """\
# A Flower App whose components are fedlab's ServerApp and ClientApp (fedlab.deploy.flower). The App's only code
# is {module}.py, which points at them: every SuperNode and the SuperLink's executor run their installed fedlab
# (pip install "fedlab-med[flower]"); `flwr run` need not import fedlab (and torch) to check the components.
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "{name}"
version = "1.0.0"
description = "fedlab strategies on Flower"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "fedlab"

[tool.flwr.app.components]
serverapp = "{module}:server_app"
clientapp = "{module}:client_app"

[tool.flwr.app.config]
fedlab = ""
"""
APP_SOURCE = '''"""The components of this Flower App: fedlab's ServerApp and ClientApp (see fedlab.deploy.flower)."""

from fedlab.deploy import flower

server_app = flower.server_app
client_app = flower.client_app
'''


def write_app(folder: str | Path, name: str = "fedlab-app") -> Path:
    """Write the Flower App (``pyproject.toml`` and a two-line module pointing at this one) into ``folder``.

    Returns:
        ``folder``, to pass to ``flwr run``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(APP_PYPROJECT.format(name=name, module=APP_MODULE))
    (folder / f"{APP_MODULE}.py").write_text(APP_SOURCE)
    return folder


def _spec(context: Context) -> RunSpec:
    return RunSpec.from_json(str(context.run_config.get(RUN_CONFIG_KEY, "")))


def _limit_threads() -> None:
    if os.environ.get(THREADS_ENV):
        torch.set_num_threads(int(os.environ[THREADS_ENV]))


# --- the node ----------------------------------------------------------------------------------------
client_app = ClientApp()


@client_app.query()
def query(msg: Message, context: Context) -> Message:
    """The handshake: which site this node serves, the fingerprint of its data and its versions."""
    node_id = str(context.node_id)
    info: dict = {"ok": True, "node": node_id, "pid": os.getpid(), "code_version": code_version(),
                  "versions": {"fedlab": code_version(), "flwr": flwr.__version__, "torch": torch.__version__}}
    try:
        spec = _spec(context)
        node = NodeConfig.from_mapping(context.node_config, node_id)
        info.update(site=node.site, data_dir=node.data_dir, dataset=node.dataset)
        site, fingerprint = load_site(spec, node, node_id)
        info.update(num_train=site.num_train, fingerprint=fingerprint)
    except NodeDataError as err:
        info.update(ok=False, error=str(err), site=err.site, data_dir=err.folder)
    return Message(RecordDict({NODE: ConfigRecord({"info": json.dumps(info)})}), reply_to=msg)


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    """Evaluate the previous round, train this round, finish after the last: see the module docstring."""
    tic = time.perf_counter()
    _limit_threads()
    node_id = str(context.node_id)
    spec = _spec(context)
    node = NodeConfig.from_mapping(context.node_config, node_id)
    site, _ = load_site(spec, node, node_id)
    saved = state_from_bytes(context.state[STATE_KEY]["bytes"]) if STATE_KEY in context.state else None
    run = NodeRun(spec, site, node.device, saved)
    control = msg.content[CONTROL]
    result: dict = {"curve": []}
    if int(control["eval-round"]) >= 0:
        result["curve"] = run.evaluate(int(control["eval-round"]), decode_message(msg.content, "eval", run.device))
    out = RecordDict()
    message = decode_message(msg.content, "train", run.device)
    if message is not None:
        reply = run.train(message, int(control["round"]))
        encode_message(reply.message, "reply", out)
        loss = reply.loss.detach().cpu().reshape(())
        result.update(weight=float(reply.weight), loss=loss.numpy().tobytes().hex(), loss_dtype=str(loss.dtype))
    if bool(control["finish"]):
        result["finish"] = run.finish()
    context.state[STATE_KEY] = ConfigRecord({"bytes": state_to_bytes(run.state())})
    result["seconds"] = round(time.perf_counter() - tic, 3)
    out[RESULT] = ConfigRecord({"json": json.dumps(result)})
    return Message(out, reply_to=msg)


# --- the server --------------------------------------------------------------------------------------
server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    """Serve the run; write status.json (ok or failed, naming the node, site and folder), history.json and
    progress.jsonl into the spec's ``out_dir`` (default ``./fedlab_runs/<run id>``)."""
    _limit_threads()
    spec = _spec(context)
    out = Path(spec.out_dir) if spec.out_dir else Path.cwd() / "fedlab_runs" / str(context.run_id)
    out.mkdir(parents=True, exist_ok=True)

    def progress(line: dict) -> None:
        with open(out / "progress.jsonl", "a") as f:
            f.write(json.dumps(line) + "\n")
        print(f"fedlab round {line['round']}/{spec.rounds}: {line['seconds']:.2f} s", flush=True)

    try:
        history = serve(grid, spec, progress)
    except DeploymentError as err:
        write_status(out, {"status": "failed", "error": str(err), "node": err.node, "site": err.site,
                           "folder": err.folder})
        raise
    except Exception as err:
        write_status(out, {"status": "failed", "error": f"{type(err).__name__}: {err}", "node": "", "site": "",
                           "folder": ""})
        raise
    history.save(out / "history.json")
    write_status(out, {"status": "ok"})
