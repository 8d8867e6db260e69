"""Deploy a fedlab strategy on a real federation engine: Flower (optional extra ``fedlab-med[flower]``).

The same :class:`~fedlab.federation.strategies.base.Strategy` object that runs in
:func:`~fedlab.federation.simulation.run_federation` runs across processes (or machines) on Flower:

* :mod:`fedlab.deploy.flower`: the Flower ServerApp and ClientApp (needs ``flwr``);
* :mod:`fedlab.deploy.local`: :class:`~fedlab.deploy.local.LocalDeployment`, one SuperLink and one
  SuperNode per site on 127.0.0.1, started and stopped from Python (a notebook, a test);
* :mod:`fedlab.deploy.runspec`: what every process of a deployment needs to rebuild the run;
* :mod:`fedlab.deploy.node`: what a SuperNode does with its own data (no Flower inside);
* :mod:`fedlab.deploy.records`: fedlab messages and client state as Flower records;
* :mod:`fedlab.deploy.server`: the ServerApp's round loop, returning a History;
* :mod:`fedlab.deploy.compare`: a simulated and a deployed History side by side;
* :mod:`fedlab.deploy.fingerprints`: hashes of a site's data and of model tensors (models stay on the nodes);
* :mod:`fedlab.deploy.executor` and :mod:`fedlab.deploy.supernode`: a warm task executor and a shorter
  SuperNode poll, the two pieces that bring a local deployment's round overhead down to seconds.

``import fedlab`` never needs ``flwr``; importing a module that does raises an :class:`ImportError` that
names the extra to install.
"""

from __future__ import annotations

import importlib

#: The optional extra that installs Flower, and the Flower releases this adapter was tested with.
FLOWER_EXTRA = "fedlab-med[flower]"
FLOWER_VERSIONS = ">=1.42,<1.43"


def flower_available() -> bool:
    """True when the ``flwr`` package imports (a broken installation counts as absent)."""
    try:
        importlib.import_module("flwr")
    except ImportError:
        return False
    return True


def require_flower() -> None:
    """Raise a clear :class:`ImportError` when ``flwr`` is not installed.

    Raises:
        ImportError: naming the extra to install.
    """
    if not flower_available():
        raise ImportError(f"fedlab.deploy needs Flower (flwr{FLOWER_VERSIONS}), which is not installed. Install "
                          f"the optional extra: pip install \"{FLOWER_EXTRA}\" (Python >= 3.11), or "
                          f"pip install \"flwr{FLOWER_VERSIONS}\".")


__all__ = ["FLOWER_EXTRA", "FLOWER_VERSIONS", "flower_available", "require_flower"]
