"""What identifies a run: the federation's data, the code, and the settings.

Checkpoints refuse to resume a run whose identity differs (:mod:`fedlab.federation.checkpoint`); the
run cache keys finished runs by it (:mod:`fedlab.federation.cache`).
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import numpy as np

from fedlab.config import Config
from fedlab.data.federation import Federation

PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: Config fields that never change a run's results (how often it is saved).
NEUTRAL_FIELDS = ("checkpoint_every",)


def federation_fingerprint(federation: Federation) -> str:
    """SHA-256 of the federation's task, labels, site names and every split's tensors (values, shapes, dtypes,
    and case ids where a split has them).

    Two federations with the same fingerprint hold the same data in the same order.
    """
    h = hashlib.sha256()
    h.update(json.dumps([federation.name, federation.task, list(federation.labels)]).encode())
    for site in federation:
        h.update(site.name.encode())
        for split_name in ("train", "val", "test"):
            split = getattr(site, split_name)
            h.update(split_name.encode())
            if split is None:
                continue
            for t in (split.x, split.y) + ((split.groups,) if split.groups is not None else ()):
                array = np.ascontiguousarray(t.detach().cpu().numpy())
                h.update(f"{array.dtype}{array.shape}".encode())
                h.update(array.tobytes())
    return h.hexdigest()


@cache
def code_version() -> str:
    """fedlab's version plus a hash of its source files (any edit to the library changes it)."""
    from fedlab import __version__

    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(str(path.relative_to(PACKAGE_DIR)).encode())
        h.update(path.read_bytes())
    return f"{__version__}+{h.hexdigest()[:12]}"


def run_identity(strategy_settings: dict, federation: Federation, config: Config, seed: int, rounds: int,
                 code: bool = False) -> dict:
    """Everything that determines a run's results, as plain values.

    Args:
        strategy_settings: ``strategy.describe()``.
        federation: The data.
        config: Run settings (fields in :data:`NEUTRAL_FIELDS` are left out).
        seed: Run seed.
        rounds: Total rounds.
        code: Identify the code by :func:`code_version` (source hash) instead of the version number.
    """
    from fedlab import __version__

    settings = {k: v for k, v in config.to_dict().items() if k not in NEUTRAL_FIELDS}
    return {"fedlab": code_version() if code else __version__, "strategy": strategy_settings,
            "config": settings, "federation": federation_fingerprint(federation), "seed": int(seed),
            "rounds": int(rounds)}


def identity_differences(saved: dict, current: dict) -> list[str]:
    """Human-readable list of what differs between two run identities (empty when they match)."""
    labels = {"fedlab": "fedlab version", "strategy": "strategy", "config": "preset / settings",
              "federation": "federation (data)", "seed": "seed", "rounds": "rounds"}
    out = []
    for key, label in labels.items():
        a, b = saved.get(key), current.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            fields = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            detail = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in fields[:6])
            out.append(f"{label} ({detail})")
        elif key == "federation":
            out.append(f"{label} (fingerprint {str(a)[:12]} -> {str(b)[:12]})")
        else:
            out.append(f"{label} ({a!r} -> {b!r})")
    return out
