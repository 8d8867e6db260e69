"""The error a deployment raises when a node, the server or a process fails: it names who failed and where."""

from __future__ import annotations

from pathlib import Path


class DeploymentError(RuntimeError):
    """A deployment failed; no History was produced (a run is never averaged over fewer sites).

    Attributes:
        node: Flower node id, or the name of the failing process (e.g. ``"supernode-B"``), or "".
        site: Site the failing node serves, or "".
        folder: The node's data folder ("" = embedded synthetic data), or "".
        log: The log file to read for details, when there is one.
    """

    def __init__(self, message: str, *, node: str = "", site: str = "", folder: str = "",
                 log: str | Path | None = None) -> None:
        super().__init__(message + (f" (log: {log})" if log else ""))
        self.node = str(node)
        self.site = site
        self.folder = folder
        self.log = Path(log) if log else None
