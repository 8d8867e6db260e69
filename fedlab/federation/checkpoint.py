"""Checkpoints: the whole state of a run, in a file of tensors and plain values only.

A checkpoint holds the round, the server state, every client's state (model, optimiser, generator,
private state), the history, each site's best-validation snapshot and the run's identity
(:func:`~fedlab.federation.identity.run_identity`). It is written atomically (temp file + rename), so
a crash never leaves a torn file, and read with ``torch.load(weights_only=True)``, which cannot
execute code hidden in a file from elsewhere. A checkpoint of another run (fedlab version, strategy,
settings, data, seed or rounds) is refused with a message that says what differs.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch

from fedlab.federation.identity import identity_differences

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 2


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unsafe, of another format, or of another run."""


def save_checkpoint(path: str | Path, payload: dict, identity: dict) -> None:
    """Write ``payload`` plus the run identity to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"format": FORMAT, "identity": identity, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, identity: dict, device: torch.device | str = "cpu") -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` for the run ``identity``.

    Raises:
        CheckpointError: when the file holds anything but tensors and plain values (it is not
            unpickled), has another format, or belongs to another run (the message lists what differs).
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds Python objects other than tensors and plain values, so it was not loaded "
            f"(loading it could run arbitrary code). Delete it to start the run afresh. Detail: {err}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a fedlab checkpoint of format {FORMAT}; delete it to start afresh.")
    differences = identity_differences(state["identity"], identity)
    if differences:
        raise CheckpointError(f"{path} belongs to another run: " + "; ".join(differences)
                              + ". Use another checkpoint_dir, or delete the file to start afresh.")
    return state
