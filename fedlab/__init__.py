"""fedlab: learn, teach and reproduce federated learning for medical image analysis.

The import name is ``fedlab``; the distribution is ``fedlab-med`` (the PyPI project called
``fedlab`` is unrelated). Start with :func:`print_config`, then the notebooks in ``notebooks/``.
"""

from fedlab._install_check import check_not_shadowed

check_not_shadowed()

from fedlab.config import PRESETS, Config, TabularConfig, get_config  # noqa: E402
from fedlab.data.federation import Federation, Site, Split  # noqa: E402
from fedlab.notebook import NotebookRun, start_run  # noqa: E402
from fedlab.reproducibility import run_receipt, seed_everything, select_device  # noqa: E402

__version__ = "0.1.0"


def print_config(device: str = "auto") -> None:
    """Print fedlab's version, the versions it depends on and the compute device."""
    from fedlab.reproducibility import device_info, package_versions

    print(f"fedlab {__version__}")
    for name, version in package_versions().items():
        print(f"  {name:<14} {version}")
    for name, value in device_info(device).items():
        print(f"  {name:<14} {value}")


__all__ = [
    "PRESETS",
    "Config",
    "Federation",
    "NotebookRun",
    "Site",
    "Split",
    "TabularConfig",
    "__version__",
    "get_config",
    "print_config",
    "run_receipt",
    "seed_everything",
    "start_run",
    "select_device",
]
