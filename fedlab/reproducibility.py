"""Seeding, per-client random generators, device selection and the run receipt.

fedlab never seeds hidden global state behind your back: a run is reproducible because every
source of randomness is either an explicit ``torch.Generator`` (one per client, derived from the
run seed and the client index) or initialised under :func:`seed_everything`.
"""

from __future__ import annotations

import os
import platform
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global generators.

    Args:
        seed: Any non-negative integer.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def client_generator(seed: int, client_index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """An independent, reproducible generator for one client.

    Args:
        seed: The run seed.
        client_index: Position of the client in the federation.
        device: Device the generator draws on (CUDA generators avoid host round trips).
    """
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed) * 1_000_003 + 7919 * (int(client_index) + 1))
    return g


def select_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA when available, else CPU; validate anything else.

    Raises:
        ValueError: for a CUDA device when no GPU is visible.
    """
    if isinstance(device, torch.device):
        return device
    if device in ("auto", "", None):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"DEVICE={device!r} but no CUDA GPU is visible; use DEVICE='auto' or 'cpu'.")
    return dev


def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in ("fedlab-med", "torch", "monai", "numpy", "scikit-learn", "pandas"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def device_info(device: torch.device | str = "auto") -> dict[str, object]:
    """Device facts for the receipt: name, CUDA and cuDNN versions when present."""
    dev = select_device(device)
    info: dict[str, object] = {"device": str(dev), "torch_threads": torch.get_num_threads()}
    if dev.type == "cuda":
        info.update(
            gpu=torch.cuda.get_device_name(dev),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    else:
        info["cpu"] = platform.processor() or platform.machine()
    return info


def git_commit(path: str | Path | None = None) -> str | None:
    """The git commit of the fedlab checkout, or None outside a checkout."""
    root = Path(path) if path else Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_receipt(seed: int, config: object | None = None, data_source: object | None = None,
                device: torch.device | str = "auto", **extra: object) -> dict[str, object]:
    """Everything needed to say how a result was obtained (goes into summary.json).

    Args:
        seed: The run seed.
        config: A :class:`fedlab.config.Config` (or any object with ``to_dict``), or a dict.
        data_source: Description of the data (synthetic generator + seed, or folder + manifest hash).
        device: Device used.
        **extra: Any other facts to record.
    """
    cfg = config.to_dict() if hasattr(config, "to_dict") else config
    return {
        "seed": seed,
        "config": cfg,
        "data_source": data_source,
        "versions": package_versions(),
        "device": device_info(device),
        "git_commit": git_commit(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "env": {k: os.environ[k] for k in ("FEDLAB_PRESET", "FEDLAB_DATA_DIR") if k in os.environ},
    }


@contextmanager
def cpu_threads(num_threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op CPU threads (restored on exit; ``None`` = leave as is).

    Two uses: a model far too small for intra-op parallelism (a logistic regression on a few hundred
    subjects: on a busy 2-core machine two OpenMP threads make each step several times slower than one),
    and bit-for-bit comparisons between processes: a CPU sum split over a different number of threads is
    added in a different order, so a simulation equals a deployment's nodes only with the nodes' thread count.
    """
    old = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)
