"""Fail fast when the unrelated PyPI project called ``fedlab`` shadows this package.

The distribution of this project is ``fedlab-med``; its import name is ``fedlab``. The PyPI
distribution named ``fedlab`` is a different federated-learning library that installs a package
with the same import name. If both are installed, one silently overwrites the other's files.
"""

from __future__ import annotations

from importlib import metadata

CONFLICTING_DISTRIBUTION = "fedlab"


def conflicting_distribution_installed() -> bool:
    """Return True when the unrelated ``fedlab`` distribution is installed in this environment."""
    try:
        metadata.distribution(CONFLICTING_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return False
    return True


def check_not_shadowed() -> None:
    """Raise ImportError with a fix when the unrelated ``fedlab`` package is installed.

    Raises:
        ImportError: if the PyPI distribution ``fedlab`` (not ours) is present.
    """
    if conflicting_distribution_installed():
        raise ImportError(
            "The PyPI package 'fedlab' (an unrelated project) is installed in this environment and "
            "shares the import name 'fedlab' with this project (distribution 'fedlab-med'). "
            "Fix: `pip uninstall -y fedlab fedlab-med && pip install -e .` from the fedlab checkout, "
            "or use a fresh virtual environment (`make reproduce` creates .venv)."
        )
