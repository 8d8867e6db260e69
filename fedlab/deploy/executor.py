"""A warm task executor for a local Flower deployment: ``python -m fedlab.deploy.executor``.

With ``--isolation process``, a SuperLink and each SuperNode leave their tasks (one ServerApp task per run,
one ClientApp task per message) to an executor that polls their Runtime API. Flower's own executor
(``flower-superexec``) starts a new Python process for every task, which imports torch, MONAI and fedlab
again: several seconds per message on a small machine, the main cost of a round. This executor imports
them once, then forks one polling loop per Runtime API address; each loop runs every task in a forked
child that calls Flower's own task runner (``run_clientapp`` / ``run_serverapp``) for that task's token and
exits. Each message still gets a fresh process (Flower's isolation: a ClientApp keeps state only through
``context.state``); only the imports are shared.

It uses Flower internals (the Runtime API client and the task runners), so :func:`compatible` checks the
Flower version and those names first; :class:`~fedlab.deploy.local.LocalDeployment` falls back to Flower's
own ``flower-superexec`` when they differ.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import signal
import sys
import time

#: Flower releases whose internals this executor was written against (major.minor).
TESTED_FLOWER = ("1.42",)
#: What a fedlab task imports: loaded once here instead of in every task.
PRELOAD = ("fedlab.deploy.flower", "fedlab.data.synthetic", "fedlab.data.partition", "fedlab.data.real",
           "torch.utils.serialization")


def compatible() -> tuple[bool, str]:
    """Whether the installed Flower has the internals this executor calls, and why not.

    Returns:
        ``(True, "")`` or ``(False, reason)``.
    """
    try:
        import flwr

        version = flwr.__version__
        if ".".join(version.split(".")[:2]) not in TESTED_FLOWER:
            return False, f"flwr {version} is not a tested release ({', '.join(TESTED_FLOWER)})"
        from flwr.proto.runtime_pb2 import AcquireTaskRequest  # noqa: F401
        from flwr.supercore.constant import TaskType  # noqa: F401
        from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor  # noqa: F401
        from flwr.supercore.logger import mirror_output_to_queue, restore_output  # noqa: F401
        from flwr.supercore.retry import make_simple_http_retry_invoker  # noqa: F401
        from flwr.supercore.runtime import RuntimeHttpClient  # noqa: F401
        from flwr.superlink.runtime import run_serverapp  # noqa: F401
        from flwr.supernode.runtime.run_clientapp import run_clientapp  # noqa: F401
    except ImportError as err:
        return False, f"Flower's internals differ: {err}"
    return True, ""


def _run_task(kind: str, address: str, token: str) -> int:
    """In a forked child: Flower's own runner for one task; returns the exit code."""
    from flwr.supercore.constant import TaskType

    options = {"runtime_api_address": address, "token": token, "insecure": True, "parent_pid": os.getppid(),
               "runtime_dependency_install": False}
    try:
        if kind == TaskType.CLIENT_APP:
            from flwr.supernode.runtime.run_clientapp import run_clientapp

            run_clientapp(**options)
        else:
            from queue import Queue

            from flwr.supercore.logger import mirror_output_to_queue, restore_output
            from flwr.superlink.runtime import run_serverapp

            logs: Queue = Queue()
            mirror_output_to_queue(logs)
            run_serverapp(log_queue=logs, certificates=None, **options)
            restore_output()
    except SystemExit as err:
        return err.code if isinstance(err.code, int) else 1
    except BaseException:  # noqa: BLE001  (a task's failure must not end the loop that serves the next one)
        import traceback

        traceback.print_exc()
        return 1
    return 0


def _loop(kind: str, address: str, poll: float, max_poll: float, parent: int) -> None:
    """Poll one Runtime API for tasks of ``kind``; run each in a forked child, one at a time. The interval is
    ``poll`` right after a task and grows by half per empty poll up to ``max_poll`` (little CPU when idle)."""
    from flwr.proto.runtime_pb2 import AcquireTaskRequest
    from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
    from flwr.supercore.retry import make_simple_http_retry_invoker
    from flwr.supercore.runtime import RuntimeHttpClient

    client = RuntimeHttpClient.from_server_address(
        server_address=address, insecure=True, root_certificates=None,
        interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec")],
        retry_invoker=make_simple_http_retry_invoker())
    wait = poll
    while os.getppid() == parent:  # the executor's main process is gone: stop
        res = client.AcquireTask(AcquireTaskRequest(supported_task_types=[kind]))
        if not (res.HasField("task") and res.token):
            time.sleep(wait)
            wait = min(wait * 1.5, max(max_poll, poll))
            continue
        wait = poll
        tic = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            code = _run_task(kind, address, res.token)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        print(f"[{kind} {address}] task {res.task.task_id}: child {pid} exited with "
              f"{os.waitstatus_to_exitcode(status)} after {time.perf_counter() - tic:.2f} s", flush=True)


def main(argv: list[str] | None = None) -> None:
    """Preload, then serve every given Runtime API address until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m fedlab.deploy.executor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clientapp-api", action="append", default=[], help="a SuperNode's Runtime API host:port")
    parser.add_argument("--serverapp-api", default="", help="the SuperLink's Runtime API host:port")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between polls right after a task")
    parser.add_argument("--max-poll", type=float, default=1.0, help="seconds between polls of a long-idle API")
    parser.add_argument("--preload", action="append", default=list(PRELOAD),
                        help="modules to import once, before forking")
    args = parser.parse_args(argv)
    ok, why = compatible()
    if not ok:
        sys.exit(f"fedlab.deploy.executor cannot run: {why}. Use Flower's own flower-superexec instead.")
    tic = time.perf_counter()
    import torch
    from flwr.supercore.constant import TaskType

    for module in args.preload:
        importlib.import_module(module)
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)  # the first optimiser imports torch._dynamo
    buffer = io.BytesIO()
    torch.save({"x": torch.zeros(1)}, buffer)  # and the first save / weights-only load their helpers
    buffer.seek(0)
    torch.load(buffer, weights_only=True)
    print(f"[executor {os.getpid()}] preloaded {args.preload} in {time.perf_counter() - tic:.2f} s", flush=True)
    loops = [(TaskType.CLIENT_APP, a) for a in args.clientapp_api]
    if args.serverapp_api:
        loops.append((TaskType.SERVER_APP, args.serverapp_api))
    parent, children = os.getpid(), []
    for kind, address in loops:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            _loop(kind, address, args.poll, args.max_poll, parent)
            os._exit(0)
        children.append(pid)

    def stop(signum: int, frame: object) -> None:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        os._exit(0)  # no interpreter teardown (torch's can take seconds)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in children:
        os.wait()


if __name__ == "__main__":
    main()
