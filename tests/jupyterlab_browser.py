"""JupyterLab in headless Chromium for the browser tests: a bounded server on 127.0.0.1 and one page.

Chromium is Debian's package (``apt-get install chromium``), driven by the Python ``playwright``
package (in the ``dev`` extra); playwright's own browser download is never used, because
these machines cannot reach it. Everything runs on the loopback interface with a random free port
and a random token, from temporary config, data, runtime and settings folders, and the server is
stopped through the process id this module started, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
# Without the background-networking flags Chromium keeps dialling out, which a closed network refuses.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str | None:
    """Debian's Chromium executable (``$FEDLAB_CHROMIUM`` wins when set), or None when not installed."""
    explicit = os.environ.get("FEDLAB_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    found = next((p for p in CHROMIUM_CANDIDATES if Path(p).exists()), None)
    return found or shutil.which("chromium")


def missing_browser_reason() -> str | None:
    """Why the browser tests cannot run here, or None when Chromium and playwright are both present."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return ('the Python package playwright is not installed: pip install -e ".[notebooks,dev]" '
                "(the browser itself comes from apt-get install chromium, never from playwright install)")
    try:
        import ipywidgets  # noqa: F401
        import jupyterlab  # noqa: F401
    except ImportError:
        return 'JupyterLab or ipywidgets is not installed: pip install -e ".[notebooks,dev]"'
    explicit = os.environ.get("FEDLAB_CHROMIUM")
    if explicit and not Path(explicit).exists():
        return f"$FEDLAB_CHROMIUM={explicit} does not exist: point it at a Chromium executable, or unset it"
    if chromium_path() is None:
        return ("Chromium is not installed: apt-get install chromium (Debian/Ubuntu), "
                "or point $FEDLAB_CHROMIUM at a Chromium executable")
    return None


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: its base URL, token, the folder it serves and its log file."""

    base_url: str
    token: str
    root: Path
    log: Path

    def log_tail(self, chars: int = 3000) -> str:
        """The end of the server's log, for failure messages."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def jupyter_lab(root: Path, env: dict[str, str | None] | None = None, limit_s: int = 1800,
                log: Path | None = None) -> Iterator[Lab]:
    """Run JupyterLab on 127.0.0.1 serving ``root``; yield a :class:`Lab` to open its notebooks.

    The server gets its own temporary config, data, runtime and settings folders, so nothing of the
    user's Jupyter set-up is read or written. It is bounded twice: ``timeout`` ends it after
    ``limit_s`` seconds whatever happens to this process (where coreutils' ``timeout`` exists), and
    the ``finally`` below stops it (and its kernels, which are in its process group) through the id
    of the process started here.

    Args:
        root: The folder the server shows (notebooks are opened relative to it).
        env: Environment variables for the server and the kernels it starts (None removes one).
        limit_s: Hard limit on the server's life time in seconds.
        log: File for the server's output (default: a file in the temporary folder).
    """
    port, token = free_port(), secrets.token_hex(16)
    home = Path(tempfile.mkdtemp(prefix="fedlab-jupyter-"))
    dirs = {name: home / name for name in ("config", "data", "runtime", "ipython", "settings", "workspaces")}
    for path in dirs.values():
        path.mkdir()
    _write_settings(dirs["settings"])
    full_env = {key: value for key, value in {**os.environ, **(env or {})}.items() if value is not None}
    full_env = {**full_env, "JUPYTER_CONFIG_DIR": str(dirs["config"]),
                "JUPYTER_DATA_DIR": str(dirs["data"]), "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
                "IPYTHONDIR": str(dirs["ipython"]), "JUPYTER_PLATFORM_DIRS": "1"}
    # coreutils' timeout bounds the server even if this process dies (where it is missing, only the finally does).
    bound = ["timeout", "-k", "10", str(int(limit_s))] if shutil.which("timeout") else []
    cmd = [*bound, sys.executable, "-m", "jupyterlab",
           "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={dirs['settings']}", f"--LabApp.workspaces_dir={dirs['workspaces']}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False",
           "--LabApp.expose_app_in_browser=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI machines often run as root
        cmd.append("--allow-root")
    log_path = log or home / "jupyterlab.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(cmd, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{url}/api/status?token={token}", proc, log_path, timeout_s=120)
        yield Lab(url, token, root, log_path)
    finally:
        _stop(proc)
        shutil.rmtree(home, ignore_errors=True)


# JupyterLab settings for a test: every cell stays in the page (no windowing, so the DOM holds all outputs),
# and no news or update checks (the network is closed).
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                      "checkForUpdates": False},
}


def _write_settings(settings_dir: Path) -> None:
    for name, values in LAB_SETTINGS.items():
        path = settings_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def _wait_until_up(status_url: str, proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(status_url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer within {timeout_s} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (it shuts its kernels down), SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # kernels left behind by a server that died
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[object]:
    """Headless Debian Chromium with a fresh profile folder; yields a playwright ``BrowserContext``."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError(missing_browser_reason())
    profile = tempfile.mkdtemp(prefix="fedlab-chromium-")
    try:
        with sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=executable, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height})
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def shutdown_kernels(lab: Lab) -> None:
    """End every session of the server and shut down its kernel (through the REST API)."""
    headers = {"Authorization": f"token {lab.token}"}
    for kind in ("sessions", "kernels"):
        listing = urllib.request.Request(f"{lab.base_url}/api/{kind}", headers=headers)
        with urllib.request.urlopen(listing, timeout=10) as response:
            items = json.load(response)
        for item in items:
            request = urllib.request.Request(f"{lab.base_url}/api/{kind}/{item['id']}", method="DELETE",
                                             headers=headers)
            with contextlib.suppress(OSError), urllib.request.urlopen(request, timeout=30):
                pass


# JavaScript run in the page. ``window.jupyterapp`` exists because the server runs with
# --LabApp.expose_app_in_browser; the notebook is JupyterLab's current widget.
_NOTEBOOK_JS = "window.jupyterapp && window.jupyterapp.shell.currentWidget"
_KERNEL_IDLE_JS = f"""() => {{
    const nb = {_NOTEBOOK_JS};
    const kernel = nb && nb.sessionContext && nb.sessionContext.session && nb.sessionContext.session.kernel;
    return !!kernel && kernel.status === 'idle' && nb.context.isReady;
}}"""
_CODE_CELLS_JS = f"""() => {{
    const nb = {_NOTEBOOK_JS};
    return nb.content.widgets.filter(c => c.model.type === 'code').map(c => ({{
        execution_count: c.model.executionCount,
        state: c.model.executionState,
        outputs: c.model.outputs.toJSON(),
        source: c.model.sharedModel.getSource().slice(0, 200),
    }}));
}}"""


def open_notebook(page, lab: Lab, path: str, timeout_s: float = 180) -> None:
    """Open ``path`` in JupyterLab as a double click in the file browser does; wait for an idle kernel.

    The first call loads JupyterLab into ``page``; later ones reuse it (loading JupyterLab is the slow part).
    Returns once the kernel is idle and its info reply (which JupyterLab copies into the metadata) is applied.
    """
    if not page.url.startswith(lab.base_url):
        page.goto(f"{lab.base_url}/lab?token={lab.token}")
        page.wait_for_function("() => !!window.jupyterapp", timeout=timeout_s * 1000, polling=250)
        page.evaluate("async () => { await window.jupyterapp.restored; }")
    page.evaluate("async path => { await window.jupyterapp.commands.execute('docmanager:open', "
                  "{path, factory: 'Notebook'}); }", path)
    current = f"() => {{ const nb = {_NOTEBOOK_JS}; return !!nb && nb.context && nb.context.path === {path!r}; }}"
    try:
        page.wait_for_function(current, timeout=30_000, polling=250)
        page.wait_for_function(_KERNEL_IDLE_JS, timeout=timeout_s * 1000, polling=250)
    except Exception as err:
        raise AssertionError(f"{path}: no idle kernel after {timeout_s} s.\nServer log:\n{lab.log_tail()}") from err
    page.evaluate(f"async () => {{ await {_NOTEBOOK_JS}.sessionContext.session.kernel.info; "
                  "await new Promise(resolve => setTimeout(resolve, 500)); }")


def close_all(page, lab: Lab) -> None:
    """Close every open document without saving (no dialog), and shut down all kernels of the server."""
    if page.url.startswith(lab.base_url):
        page.evaluate("""() => {
            for (const widget of Array.from(window.jupyterapp.shell.widgets('main'))) {
                if (widget.context) { widget.context.model.dirty = false; }
                widget.dispose();
            }
        }""")
    shutdown_kernels(lab)


def is_dirty(page) -> bool:
    """Whether JupyterLab considers the open notebook modified (the dot on its tab)."""
    return bool(page.evaluate(f"() => {_NOTEBOOK_JS}.context.model.dirty"))


def save_notebook(page) -> None:
    """File > Save, as a person would (the command behind Ctrl+S); waits until the file is written."""
    page.evaluate(f"async () => {{ await window.jupyterapp.commands.execute('docmanager:save'); "
                  f"return {_NOTEBOOK_JS}.context.model.dirty; }}")


def run_all_cells(page) -> None:
    """Run > Run All Cells through the menu bar, as a student does."""
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()


def wait_until_executed(page, timeout_s: float) -> None:
    """Wait until no cell is queued or running and the kernel is idle (Run All finished or stopped)."""
    started = f"""() => ({_CODE_CELLS_JS})().some(c => c.state === 'running' || c.execution_count !== null)"""
    page.wait_for_function(started, timeout=60_000, polling=500)
    finished = f"""() => ({_KERNEL_IDLE_JS})() && !({_CODE_CELLS_JS})().some(c => c.state === 'running')"""
    page.wait_for_function(finished, timeout=timeout_s * 1000, polling=2000)


def code_cells(page) -> list[dict]:
    """The notebook's code cells as the page holds them: execution count, state, outputs (nbformat JSON)."""
    return page.evaluate(_CODE_CELLS_JS)
