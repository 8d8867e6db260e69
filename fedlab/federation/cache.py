"""The run cache: a finished run is computed once and reused by every notebook and command that asks again.

A run is identified by everything that determines its result (:func:`run_key`): the strategy and its
settings, the federation's data (fingerprint), the config (preset and overrides), the seed, the
number of rounds, the selection rule, the round-0 network, and the code (fedlab's version plus a
hash of its source files). Any change to one of them is a different key, so a stale run is never
returned. An entry holds the History (JSON) and the state of every site's kept and last model.

While a run trains, its entry folder also holds its checkpoint (when ``config.checkpoint_every`` is
set), so a notebook whose kernel was restarted resumes a half-finished run instead of starting over.

The cache lives under the output root (``outputs/cache/runs`` by default, see
:class:`fedlab.notebook.NotebookRun`), never under a data folder. ``FEDLAB_RUN_CACHE=0`` turns it
off everywhere; ``fedlab cache clear`` (or :meth:`RunCache.clear`) empties it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from fedlab.federation.history import History

CACHE_ENV = "FEDLAB_RUN_CACHE"
ENTRY_FILES = ("history.json", "models.pt")


def cache_enabled() -> bool:
    """False when ``$FEDLAB_RUN_CACHE`` is "0", "false" or "off"."""
    return os.environ.get(CACHE_ENV, "1").lower() not in ("0", "false", "off", "no")


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a network's class names, state_dict keys, shapes, dtypes and values."""
    h = hashlib.sha256(" ".join(type(m).__name__ for m in model.modules()).encode())
    for key, t in model.state_dict().items():
        array = t.detach().cpu().contiguous()
        h.update(f"{key}{tuple(array.shape)}{array.dtype}".encode())
        h.update(array.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def run_key(identity: dict, **options: object) -> str:
    """The cache key of a run: a hash of its identity and the options that change its result."""
    text = json.dumps({"identity": identity, "options": options}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class RunCache:
    """Finished runs stored under ``root/runs/<key>/``.

    Args:
        root: The cache folder (e.g. ``outputs/cache``); created when first written.
        enabled: False makes every lookup a miss and every store a no-op (also ``$FEDLAB_RUN_CACHE=0``).
    """

    def __init__(self, root: str | Path, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled and cache_enabled()

    def entry(self, key: str) -> Path:
        """The folder of run ``key``."""
        return self.root / "runs" / key

    def checkpoint_dir(self, key: str) -> Path:
        """Where run ``key`` keeps its checkpoint while it trains."""
        return self.entry(key) / "in_progress"

    def load(self, key: str) -> dict | None:
        """``{"history": History, "site_models": [state], "last_models": [state]}`` or None (a miss)."""
        folder = self.entry(key)
        if not self.enabled or not all((folder / f).is_file() for f in ENTRY_FILES):
            return None
        models = torch.load(folder / "models.pt", map_location="cpu", weights_only=True)
        history = History.load(folder / "history.json")
        return {"history": history, **models}

    def save(self, key: str, history: History, site_models: list[nn.Module], last_models: list[nn.Module]) -> None:
        """Store a finished run atomically (a half-written entry is never read) and drop its checkpoint."""
        if not self.enabled:
            return
        folder = self.entry(key)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder.parent))
        try:
            history.save(tmp / "history.json")
            torch.save({"site_models": [m.state_dict() for m in site_models],
                        "last_models": [m.state_dict() for m in last_models]}, tmp / "models.pt")
            shutil.rmtree(self.checkpoint_dir(key), ignore_errors=True)
            for name in ENTRY_FILES:
                folder.mkdir(exist_ok=True)
                os.replace(tmp / name, folder / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def keys(self) -> list[str]:
        """Keys of the finished runs in the cache."""
        runs = self.root / "runs"
        if not runs.is_dir():
            return []
        return sorted(p.name for p in runs.iterdir() if p.is_dir() and (p / ENTRY_FILES[0]).is_file())

    def clear(self) -> int:
        """Delete every entry (finished or in progress); returns how many folders were removed."""
        runs = self.root / "runs"
        if not runs.is_dir():
            return 0
        folders = [p for p in runs.iterdir() if p.is_dir()]
        for p in folders:
            shutil.rmtree(p, ignore_errors=True)
        return len(folders)

    def __repr__(self) -> str:
        return f"RunCache({str(self.root)!r}, enabled={self.enabled})"
