"""Fingerprints that let a deployment prove what it did without moving data or models.

* :func:`site_fingerprint`: a site's data (every split's tensors). A SuperNode reports it in the handshake,
  so the server can check that the node holds exactly the data the run was prepared for.
* :func:`state_fingerprint`: some tensors of a model (e.g. a site's FedRep head). Models stay on the nodes;
  their fingerprints come back, so a personalised part can be compared with a simulation's, by hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import torch

from fedlab.data.federation import Federation, Site
from fedlab.federation.identity import federation_fingerprint


def site_fingerprint(site: Site, dataset: str, task: str, labels: Iterable[str]) -> str:
    """SHA-256 of one site's data: its name, the dataset's name, task and labels, and every split's tensors."""
    return federation_fingerprint(Federation(dataset, (site,), task=task, labels=tuple(labels)))


def state_fingerprint(state: Mapping[str, torch.Tensor], keys: Iterable[str] | None = None) -> str:
    """SHA-256 of the tensors ``keys`` of ``state`` (default: all), by key, shape, dtype and exact bytes.

    Args:
        state: A state_dict (or any mapping of names to tensors).
        keys: The keys to include, e.g. a :class:`~fedlab.federation.params.ParamSplit`'s ``local`` keys.

    Raises:
        KeyError: for a key that ``state`` does not hold.
    """
    h = hashlib.sha256()
    for key in sorted(state if keys is None else keys):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}{tuple(t.shape)}{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
