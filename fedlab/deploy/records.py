"""fedlab messages and client state as Flower records (what crosses a process boundary on Flower).

* A :class:`~fedlab.federation.messages.Message` becomes three entries of a Flower ``RecordDict`` under a
  prefix: ``<prefix>.tensors``, an ``ArrayRecord`` holding ONE uint8 array with every tensor's exact bytes
  one after the other, and ``<prefix>.meta``, a ``ConfigRecord`` with the index (keys, dtypes, shapes) and
  the message config, both as JSON. One array instead of one per tensor: Flower sends every array as a
  separate object (about three times slower per round at smoke size), and numpy, through which Flower's
  ``Array`` passes, has no bfloat16. JSON instead of ConfigRecord values for the config: a ConfigRecord
  turns ``[1, True]`` into ``[1, 1]`` and rejects ``[1, 2.0]`` and integers beyond 64 bits.
* A site's private state (:meth:`~fedlab.federation.client.Client.state_dict`, plus what the node keeps
  between rounds) becomes bytes (``torch.save``) in the node's ``context.state``; it is read back with
  ``torch.load(weights_only=True)``, so only tensors and plain values can come back.

Decoding gives back every tensor bit for bit: same keys in the same order, dtypes, shapes and bytes
(0-d, empty and non-contiguous tensors included).
"""

from __future__ import annotations

import base64
import io
import json

import torch

from fedlab.deploy import require_flower

require_flower()

from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict  # noqa: E402

from fedlab.federation.messages import Message  # noqa: E402

_BYTES = "__bytes__"


def dtype_from_name(name: str) -> torch.dtype:
    """The torch dtype named ``name`` (``str(dtype)``, e.g. "torch.bfloat16")."""
    dtype = getattr(torch, name.removeprefix("torch."), None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown tensor dtype {name!r} in a received message")
    return dtype


def _encode_value(value: object) -> object:
    if isinstance(value, bytes):
        return {_BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_encode_value(v) for v in value]
    return value


def _decode_value(value: object) -> object:
    if isinstance(value, dict) and set(value) == {_BYTES}:
        return base64.b64decode(value[_BYTES])
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    return value


def pack_tensors(tensors: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
    """All tensors' bytes in one uint8 tensor (on the CPU) and the index to cut them apart again."""
    flat = [t.detach().cpu().contiguous().reshape(-1).view(torch.uint8) for t in tensors.values()]
    blob = torch.cat(flat) if flat else torch.zeros(0, dtype=torch.uint8)
    index = {"keys": list(tensors), "dtypes": [str(t.dtype) for t in tensors.values()],
             "shapes": [list(t.shape) for t in tensors.values()], "nbytes": [f.numel() for f in flat]}
    return blob, index


def unpack_tensors(blob: torch.Tensor, index: dict, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Inverse of :func:`pack_tensors`."""
    out, pos = {}, 0
    for key, dtype, shape, nbytes in zip(index["keys"], index["dtypes"], index["shapes"], index["nbytes"],
                                         strict=True):
        out[key] = blob[pos:pos + nbytes].clone().view(dtype_from_name(dtype)).reshape(shape).to(device)
        pos += nbytes
    if pos != blob.numel():
        raise ValueError(f"a received message holds {blob.numel()} bytes but its index accounts for {pos}")
    return out


def encode_message(message: Message, prefix: str, record: RecordDict) -> None:
    """Put ``message`` into ``record`` under ``prefix`` (see the module docstring)."""
    blob, index = pack_tensors(message.tensors)
    record[f"{prefix}.tensors"] = ArrayRecord({"packed": Array.from_numpy_ndarray(blob.numpy())})
    record[f"{prefix}.meta"] = ConfigRecord({"index": json.dumps(index),
                                             "config": json.dumps({k: _encode_value(v)
                                                                   for k, v in message.config.items()})})


def decode_message(record: RecordDict, prefix: str, device: torch.device | str = "cpu") -> Message | None:
    """The message stored under ``prefix`` in ``record``, or None when there is none."""
    if f"{prefix}.meta" not in record:
        return None
    meta = record[f"{prefix}.meta"]
    blob = torch.from_numpy(record[f"{prefix}.tensors"]["packed"].numpy().copy())
    config = {k: _decode_value(v) for k, v in json.loads(str(meta["config"])).items()}
    return Message(unpack_tensors(blob, json.loads(str(meta["index"])), device), config)


def state_to_bytes(state: object) -> bytes:
    """``torch.save`` of a state made of tensors and plain values (e.g. ``Client.state_dict()``)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def state_from_bytes(data: bytes, device: torch.device | str = "cpu") -> object:
    """Inverse of :func:`state_to_bytes`, loaded with ``weights_only=True`` (tensors and plain values only)."""
    return torch.load(io.BytesIO(data), map_location=device, weights_only=True)
