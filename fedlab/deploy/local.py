"""LocalDeployment: a real Flower federation on this machine, started and stopped from Python.

One SuperLink and one SuperNode per site, every one a separate process listening on 127.0.0.1 only, in
Flower's insecure mode (no TLS, no node authentication: for one machine and teaching; a consortium's
settings are in notebook 05). Each process has its own ``FLWR_HOME``, telemetry and update checks off, and
``OMP_NUM_THREADS`` threads (one by default: several processes share few cores). Every process is started
in its own process group and stopped by its id (:meth:`LocalDeployment.stop`), and with it everything it
started; nothing is left running after ``with LocalDeployment(...)``.

Task execution (``executor``):

* ``"warm"`` (default): SuperLink and SuperNodes with ``--isolation process`` and one
  :mod:`fedlab.deploy.executor` that imports torch, MONAI and fedlab once and forks a process per task;
  SuperNodes started through :mod:`fedlab.deploy.supernode` (an adaptive poll of 0.05 to 1 s instead of 3 s).
  When the installed Flower's internals differ from the tested ones, it falls back to ``"process"`` with a
  warning.
* ``"process"``: the same, with Flower's own ``flower-superexec`` per SuperNode (a new Python process per
  message, which imports everything again).
* ``"subprocess"``: Flower's defaults (each SuperNode and the SuperLink start their own executor).

:meth:`LocalDeployment.run` submits a run with ``flwr run`` and returns a
:class:`~fedlab.federation.history.History` with the same rows, ledger and selected rounds as
:func:`~fedlab.federation.simulation.run_federation`; models stay on the nodes (see
:func:`fedlab.deploy.server.serve`). Flower's own measure of the bytes on the wire and of the compute time
(``flwr ls``) goes to ``history.info["flower"]``.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

import fedlab
from fedlab.config import Config, get_config
from fedlab.data.federation import Federation
from fedlab.deploy import require_flower
from fedlab.deploy.errors import DeploymentError
from fedlab.deploy.node import NodeConfig
from fedlab.deploy.runspec import RunSpec
from fedlab.federation.history import History
from fedlab.federation.strategies import Strategy
from fedlab.processes import pid_alive
from fedlab.progress import progress_bar

EXECUTORS = ("warm", "process", "subprocess")
FEDERATION_NAME = "local-deployment"
_LIVE: weakref.WeakSet = weakref.WeakSet()


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants alive now (Linux: read from /proc)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        if not pid_alive(p):
            continue
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by the processes ``pids`` (Linux: read from /proc; 0 elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, IndexError, ValueError):
            pass
    return total


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the child gets SIGTERM when the process that started it dies (a crashed kernel leaks nothing)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_all() -> None:
    for deployment in list(_LIVE):
        deployment.stop()


atexit.register(_stop_all)


class LocalDeployment:
    """A SuperLink and one SuperNode per site on 127.0.0.1 (see the module docstring).

    Use it as a context manager::

        with LocalDeployment(federation.site_names, dataset="prostate") as deployment:
            history = deployment.run(FedAvg(), federation, config, rounds=2, seed=0)

    Args:
        sites: One SuperNode per site name, in this order.
        dataset: The dataset every node holds ("" = the one each run names).
        data_dirs: Each node's data folder: one folder for all, or ``{site: folder}``; "" = the embedded
            synthetic data (generated on the node from the run's seed and preset, exactly the simulator's).
        work_dir: Where logs, Flower's homes and run results go (default: a new temporary folder, removed by
            :meth:`stop` unless ``keep=True`` or something failed: the error names the log to read).
        executor: "warm", "process" or "subprocess" (see the module docstring).
        fast_poll: Start SuperNodes with the adaptive 0.05-1 s poll (:mod:`fedlab.deploy.supernode`).
        threads: Torch / OpenMP threads of every process.
        device: Where the nodes train ("cpu": bit for bit equal to a CPU simulation run with the same number
            of threads, ``with fedlab.reproducibility.cpu_threads(deployment.threads): run_federation(...)``:
            a sum split over another number of threads is rounded differently; "cuda", "auto").
        start_timeout: Seconds to wait for each process to come up.
        reply_timeout: Seconds the server waits for a node's reply in one round before it fails the run.
        keep: Keep ``work_dir`` after :meth:`stop` (logs for a post-mortem).

    Attributes:
        commands: The command line of every process, by name ("superlink", "supernode-<site>", "executor" ...).
        logs: The log file of every process, by name.
        ports: The port each process listens on (127.0.0.1 only).
        timings: Seconds from the start: each process up, each run's submission and end.
    """

    def __init__(self, sites: Sequence[str], *, dataset: str = "", data_dirs: Mapping[str, str] | str = "",
                 work_dir: str | Path | None = None, executor: str = "warm", fast_poll: bool = True,
                 threads: int = 1, device: str = "cpu", start_timeout: float = 120.0, reply_timeout: float = 300.0,
                 keep: bool = False) -> None:
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
        sites = list(sites)
        if not sites or len(set(sites)) != len(sites):
            raise ValueError(f"sites must be distinct site names, one per SuperNode; got {sites}")
        folders = dict.fromkeys(sites, data_dirs) if isinstance(data_dirs, str) else dict(data_dirs)
        unknown = sorted(set(folders) - set(sites))
        if unknown:
            raise ValueError(f"data_dirs names sites {unknown} that have no SuperNode (sites: {sites})")
        self.nodes = {s: NodeConfig(site=s, dataset=dataset, data_dir=str(folders.get(s, "")), device=device)
                      for s in sites}
        self.sites = sites
        self.executor = executor
        self.fast_poll = fast_poll
        self.threads = int(threads)
        self.start_timeout = float(start_timeout)
        self.reply_timeout = float(reply_timeout)
        self.keep = keep or work_dir is not None
        self.work_dir = Path(work_dir) if work_dir is not None else None
        self.commands: dict[str, list[str]] = {}
        self.logs: dict[str, Path] = {}
        self.ports: dict[str, int] = {}
        self.timings: dict[str, float] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._seen: dict[str, set[int]] = {}
        self._runs = 0
        self._t0 = 0.0
        self.executor_used = executor

    # --- processes ----------------------------------------------------------------------------
    def _env(self, name: str) -> dict[str, str]:
        root = str(Path(fedlab.__file__).resolve().parents[1])
        threads = str(self.threads)
        env = dict(os.environ, FLWR_HOME=str(self.work_dir / "flwr_home" / name), FLWR_TELEMETRY_ENABLED="0",
                   FLWR_DISABLE_UPDATE_CHECK="1", OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
                   FEDLAB_NODE_THREADS=threads, FEDLAB_SUPERNODE_POLL="0.05,1.0",
                   FLWR_SUPEREXEC_TASK_POLL_INTERVAL="0.1",
                   PYTHONUNBUFFERED="1", TQDM_DISABLE="1",  # Flower starts its own commands by name: put ours first
                   PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
                   PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH", "")] if p]))
        env["FEDLAB_NODE_SITE_CACHE"] = str(self.work_dir / "site-cache")  # a node generates its synthetic site once
        for forced in ("FORCE_COLOR", "CLICOLOR_FORCE", "PY_COLORS"):  # Jupyter sets some: flwr's JSON must stay plain
            env.pop(forced, None)
        env["NO_COLOR"] = "1"
        Path(env["FLWR_HOME"]).mkdir(parents=True, exist_ok=True)
        return env

    @staticmethod
    def _tool(name: str) -> str:
        """A Flower command next to this Python (a virtual environment's bin/), else on PATH."""
        here = Path(sys.executable).parent / name
        found = str(here) if here.exists() else shutil.which(name)
        if not found:
            raise DeploymentError(f"Flower's command {name!r} was not found next to {sys.executable} or on PATH; "
                                  f"install Flower with pip install \"fedlab-med[flower]\"")
        return found

    def _start(self, name: str, command: list[str]) -> subprocess.Popen:
        self.commands[name] = command
        self.logs[name] = self.work_dir / "logs" / f"{name}.log"
        with open(self.logs[name], "wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self._env(name), cwd=self.work_dir, start_new_session=True,
                                    preexec_fn=_die_with_parent)
        self._procs[name] = proc
        self._seen[name] = {proc.pid}
        return proc

    def _wait_port(self, name: str, port: int) -> None:
        end = time.monotonic() + self.start_timeout
        while not _listening(port):
            self._check_alive()
            if time.monotonic() > end:
                raise self._process_error(name, f"is not listening on 127.0.0.1:{port} after "
                                                f"{self.start_timeout:.0f} s")
            time.sleep(0.05)

    def _process_error(self, name: str, what: str) -> DeploymentError:
        self.keep = True  # the error names a log file: keep it
        site = name.removeprefix("supernode-") if name.startswith("supernode-") else ""
        folder = self.nodes[site].data_dir if site in self.nodes else ""
        tail = ""
        if name in self.logs and self.logs[name].exists():
            lines = self.logs[name].read_text(errors="replace").strip().splitlines()
            tail = "; last log lines:\n" + "\n".join(lines[-8:]) if lines else ""
        return DeploymentError(f"{name} {what}{tail}", node=name, site=site, folder=folder, log=self.logs.get(name))

    def _check_alive(self) -> None:
        """Raise for the first started process that has exited."""
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                raise self._process_error(name, f"exited with code {proc.returncode}")

    def _remember_pids(self) -> None:
        for name, proc in self._procs.items():
            self._seen[name].update(process_tree(proc.pid))

    def pids(self) -> list[int]:
        """Every process of the deployment alive now (the started ones and all their descendants)."""
        self._remember_pids()
        return sorted({p for proc in self._procs.values() for p in process_tree(proc.pid)})

    def start(self) -> LocalDeployment:
        """Start the SuperLink, the SuperNodes and the executor; return when all listen.

        Raises:
            DeploymentError: naming the process that did not come up, with its log.
        """
        require_flower()
        if self._procs:
            return self
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="fedlab-deploy-"))
        for stale in ("runs", "logs", "flwr_home"):  # a work_dir used before: nothing of an earlier deployment counts
            shutil.rmtree(self.work_dir / stale, ignore_errors=True)
        (self.work_dir / "logs").mkdir(parents=True, exist_ok=True)
        _LIVE.add(self)
        self._t0 = time.perf_counter()
        executor = self.executor
        if executor == "warm":
            from fedlab.deploy.executor import compatible

            ok, why = compatible()
            if not ok:
                warnings.warn(f"the warm executor cannot run ({why}); using Flower's flower-superexec instead",
                              stacklevel=2)
                executor = "process"
        self.executor_used = executor
        try:
            self._start_processes(executor)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_processes(self, executor: str) -> None:
        link = self.ports["superlink"] = free_port()
        isolation = [] if executor == "subprocess" else ["--isolation", "process"]
        self._start("superlink", [self._tool("flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port",
                                  str(link), "--disable-runtime-dependency-installation", *isolation])
        self._wait_port("superlink", link)
        self.timings["superlink up"] = time.perf_counter() - self._t0
        home = Path(self._env("cli")["FLWR_HOME"])
        (home / "config.toml").write_text(f'[superlink]\ndefault = "{FEDERATION_NAME}"\n\n'
                                          f'[superlink.{FEDERATION_NAME}]\naddress = "127.0.0.1:{link}"\n'
                                          "insecure = true\n")
        # The wrapper runs as a script (-P: its folder not on sys.path), so a SuperNode never imports fedlab and torch.
        supernode = ([sys.executable, "-P", str(Path(__file__).with_name("supernode.py"))] if self.fast_poll
                     else [self._tool("flower-supernode")])
        for site, node in self.nodes.items():
            port = self.ports[f"supernode-{site}"] = free_port()
            self._start(f"supernode-{site}", [*supernode, "--insecure", "--superlink", f"127.0.0.1:{link}",
                                              "--host", "127.0.0.1", "--port", str(port), *isolation,
                                              "--node-config", node.to_flower()])
        for site in self.nodes:
            self._wait_port(f"supernode-{site}", self.ports[f"supernode-{site}"])
        self.timings["supernodes up"] = time.perf_counter() - self._t0
        if executor == "warm":
            apis = [x for site in self.nodes
                    for x in ("--clientapp-api", f"127.0.0.1:{self.ports[f'supernode-{site}']}")]
            self._start("executor", [sys.executable, "-m", "fedlab.deploy.executor", "--serverapp-api",
                                     f"127.0.0.1:{link}", *apis, "--poll", "0.05", "--max-poll", "1.0"])
            self._wait_log("executor", "preloaded")
        elif executor == "process":
            self._start("superexec-server", [self._tool("flower-superexec"), "--insecure", "--runtime-api-address",
                                             f"127.0.0.1:{link}"])
            for site in self.nodes:
                port = self.ports[f"supernode-{site}"]
                self._start(f"superexec-{site}", [self._tool("flower-superexec"), "--insecure",
                                                  "--runtime-api-address", f"127.0.0.1:{port}"])
        self.timings["executors up"] = time.perf_counter() - self._t0
        self._remember_pids()

    def _wait_log(self, name: str, text: str) -> None:
        end = time.monotonic() + self.start_timeout
        while text not in self.logs[name].read_text(errors="replace"):
            self._check_alive()
            if time.monotonic() > end:
                raise self._process_error(name, f"did not report {text!r} within {self.start_timeout:.0f} s")
            time.sleep(0.1)

    def stop(self, grace: float = 5.0) -> dict[str, int | None]:
        """Stop every process by its process-group id (SIGTERM, then SIGKILL after ``grace`` seconds), and any
        descendant seen alive, by its id; remove ``work_dir`` unless asked to keep it.

        Returns:
            Each started process's exit code.
        """
        if not self._procs:
            return {}
        self._remember_pids()
        for proc in reversed(list(self._procs.values())):  # nodes and executors before the SuperLink
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        end = time.monotonic() + grace
        codes = {}
        for name, proc in reversed(list(self._procs.items())):
            try:
                proc.wait(max(0.0, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # whatever is left in its group
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            codes[name] = proc.returncode
        for pid in sorted(set().union(*self._seen.values())):  # descendants that left the group
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._procs.clear()
        _LIVE.discard(self)
        self.timings["stopped"] = time.perf_counter() - self._t0
        if not self.keep and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        return codes

    def __enter__(self) -> LocalDeployment:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- runs ---------------------------------------------------------------------------------
    def _flwr(self, *args: str, timeout: float = 120.0) -> dict:
        """Run the ``flwr`` command line against this deployment's SuperLink; its JSON answer."""
        command = [self._tool("flwr"), *args, "--format", "json"]
        res = subprocess.run(command, env=self._env("cli"), cwd=self.work_dir, capture_output=True, text=True,
                             timeout=timeout)
        text = res.stdout
        decoder = json.JSONDecoder()
        for start in (i for i, c in enumerate(text) if c == "{"):  # the JSON answer, after any printed line
            try:
                answer = decoder.raw_decode(text, start)[0]
            except ValueError:
                continue
            if res.returncode == 0 and answer.get("success", True):
                return answer
            break
        raise DeploymentError(f"`{' '.join(command[:3])} ...` failed ({res.returncode}): "
                              f"{(res.stdout + res.stderr).strip()[-2000:]}", node="flwr")

    def run(self, strategy: Strategy, federation: Federation, config: Config | None = None, *,
            rounds: int | None = None, seed: int = 0, select: str = "auto", data: Mapping[str, object] | None = None,
            final_metrics: Sequence[str] | None = None, scoring: Mapping[str, object] | None = None,
            progress: bool | None = None, timeout: float | None = None) -> History:
        """Run ``strategy`` on the deployment: the deployed twin of ``run_federation`` with the same arguments.

        Args:
            strategy: A registered, federated strategy (Mix is refused: it pools data).
            federation: The federation the nodes hold (its sites must be the deployment's); each node loads its
                own site, and the handshake checks it holds exactly this federation's data.
            config: Run settings (default: the preset, as run_federation).
            rounds: Default ``config.rounds``.
            seed: Run seed.
            select: "val", "last" or "auto", as run_federation.
            data: How nodes generate or split their data (see :meth:`RunSpec.create`); by default synthetic
                data from ``seed`` (what ``load_federation(dataset, seed=seed)`` gives).
            final_metrics: As run_federation.
            scoring: As run_federation.
            progress: Progress bar over rounds (default: on unless ``TQDM_DISABLE=1``).
            timeout: Seconds before the whole run is abandoned (default: generous for the rounds asked).

        Returns:
            The History: the rows, ledger and selected rounds of run_federation (``site_models`` stay empty:
            the models stay on the nodes; ``info["site_fingerprints"]`` identifies them), with Flower's own
            accounting in ``info["flower"]``.

        Raises:
            ValueError: for Mix, or a federation whose sites are not the deployment's.
            DeploymentError: naming the failing node, site and folder (no History then).
        """
        config = config or get_config()
        spec_sites = federation.site_names
        if sorted(spec_sites) != sorted(self.sites):
            raise ValueError(f"the federation's sites {spec_sites} are not the deployment's SuperNodes {self.sites}; "
                             "start a LocalDeployment with federation.site_names")
        spec = RunSpec.create(strategy, federation, config, rounds=rounds, seed=seed, select=select, data=data,
                              final_metrics=final_metrics, scoring=scoring, reply_timeout=self.reply_timeout,
                              connect_timeout=self.start_timeout)  # refuses Mix before anything starts
        if not self._procs:
            self.start()
        self._runs += 1
        out = self.work_dir.resolve() / "runs" / f"{self._runs:03d}-{strategy.name}".replace(" ", "_")
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        spec = dataclasses.replace(spec, out_dir=str(out))
        import tomli_w

        from fedlab.deploy.flower import write_app

        app = write_app(self.work_dir / "app")
        (out / "run_config.toml").write_text(tomli_w.dumps({"fedlab": spec.to_json()}))
        tic = time.perf_counter()
        self.commands["flwr run"] = [self._tool("flwr"), "run", str(app), FEDERATION_NAME, "--run-config",
                                     str(out / "run_config.toml")]
        submitted = self._flwr("run", str(app), FEDERATION_NAME, "--run-config", str(out / "run_config.toml"))
        run_id = str(submitted.get("run-id", ""))
        timings = {"submit": time.perf_counter() - tic}
        deadline = time.monotonic() + (timeout or spec.connect_timeout + (spec.rounds + 2) * spec.reply_timeout)
        switch = {} if progress is None else {"disable": not progress}
        bar = progress_bar(total=spec.rounds, desc=f"{strategy.name} on Flower", leave=False, mininterval=1.0, **switch)
        status_file, progress_file, seen = out / "status.json", out / "progress.jsonl", 0
        try:
            while not status_file.exists():
                self._remember_pids()
                self._check_alive()
                if progress_file.exists():
                    lines = progress_file.read_text().splitlines()
                    if len(lines) > seen:
                        if not seen:
                            timings["first round"] = time.perf_counter() - tic
                        bar.update(len(lines) - seen)
                        seen = len(lines)
                if time.monotonic() > deadline:
                    self.keep = True
                    raise DeploymentError(f"run {run_id} did not finish within the time allowed; see the logs in "
                                          f"{self.work_dir / 'logs'}", node="superlink", log=self.logs["superlink"])
                time.sleep(0.1)
        finally:
            bar.close()
        status = json.loads(status_file.read_text())
        timings["result"] = time.perf_counter() - tic
        self.timings[f"run {self._runs}"] = timings["result"]
        if status["status"] != "ok":
            site = status.get("site", "")
            log = self.logs.get(f"supernode-{site}") if site else None
            log = self.logs.get("executor", log) if site and self.executor_used == "warm" else log
            flower = self._run_facts(run_id).get("status") or "unknown"
            self.keep = True  # the error names a log file: keep it
            raise DeploymentError(f"run {run_id} failed (Flower's status: {flower}): {status['error']}",
                                  node=status.get("node", ""), site=site, folder=status.get("folder", ""), log=log)
        history = History.load(out / "history.json")
        history.info["flower"] = {"run_id": run_id, "executor": self.executor_used, "timings": timings,
                                  **self._run_facts(run_id)}
        return history

    def flower_runs(self) -> list[dict]:
        """Flower's record of every run submitted to this deployment (``flwr ls``): id, status, bytes, times."""
        return list(self._flwr("ls", FEDERATION_NAME).get("runs", []))

    def _run_facts(self, run_id: str) -> dict:
        """Flower's record of a run once it has finished: status, bytes on the wire, compute time."""
        facts: dict = {}
        end = time.monotonic() + 30.0
        while True:  # the ServerApp has written its result; Flower marks the run finished when its task ends
            answer = self._flwr("ls", FEDERATION_NAME, "--run-id", run_id)
            runs = answer.get("runs", [answer])
            facts = runs[0] if runs else {}
            if str(facts.get("status", "")).startswith("finished") or time.monotonic() > end:
                break
            time.sleep(0.25)
        return {"status": facts.get("status", ""), "network_traffic": facts.get("network-traffic", {}),
                "compute_time": facts.get("compute-time", {}), "elapsed": facts.get("elapsed")}

    def describe(self) -> list[dict]:
        """One row per process: name, role, pid, port on 127.0.0.1, command line (for a table or a drawing)."""
        roles = {"superlink": "SuperLink (server: Fleet, Control and Runtime APIs)", "executor": "warm executor "
                 "(runs the ServerApp and every ClientApp task in a forked process)",
                 "superexec-server": "SuperExec (runs the ServerApp)"}
        rows = []
        for name, command in self.commands.items():
            site = name.split("-", 1)[1] if "-" in name and name.startswith(("supernode", "superexec-")) else ""
            role = roles.get(name) or (f"SuperNode of site {site} (its data stay here)" if name.startswith("supernode")
                                       else f"SuperExec of site {site}" if name.startswith("superexec") else
                                       "Flower CLI: submits a run to the SuperLink")
            proc = self._procs.get(name)
            rows.append({"process": name, "role": role, "pid": proc.pid if proc else None,
                         "port": self.ports.get(name), "command": " ".join(command)})
        return rows
