"""File checksums as manifests list them (``"sha256:<hex>"``, ``"md5:<hex>"``), checked with MONAI's ``check_hash``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fedlab.data.errors import DataError


@contextmanager
def _quiet_monai() -> Iterator[None]:
    """Silence MONAI's per-file hash log lines; callers report mismatches themselves."""
    logger = logging.getLogger("monai.apps")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def hash_matches(path: str | Path, spec: str) -> bool:
    """True when the file ``path`` has the digest ``spec`` (``"<algorithm>:<hex>"``, algorithm md5 or sha256).

    Raises:
        DataError: ``spec`` is not of that form.
    """
    from monai.apps.utils import check_hash

    algorithm, _, expected = str(spec).partition(":")
    if not expected or algorithm.lower() not in ("md5", "sha1", "sha256", "sha512"):
        raise DataError(f"checksum {spec!r} must read '<algorithm>:<hex digest>' with algorithm md5 or sha256, "
                        "e.g. 'sha256:9a08...'")
    with _quiet_monai():
        return check_hash(Path(path), expected.lower(), algorithm.lower())
