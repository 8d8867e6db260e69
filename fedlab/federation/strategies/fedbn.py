"""FedBN (Li et al., ICLR 2021): BatchNorm layers stay local, everything else is averaged.

Each site keeps its own normalisation layers (affine weight and bias *and* running mean and
variance), so each site normalises features with its own statistics while the convolutions are
shared. This targets feature shift (different scanners, intensities, colour casts).

``num_batches_tracked`` policy: integer buffers are always local (the ParamSplit policy); they are
counters, never averaged, and only matter for BatchNorm with ``momentum=None``, which is not used.

FedBN needs a network *with* BatchNorm: :meth:`FedBN.model_factory` gives run_federation the preset's
U-Net with ``norm="batch"`` when no model is passed; an explicit model without BatchNorm is rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from fedlab.config import Config
from fedlab.data.federation import Federation, FederationSpec
from fedlab.federation.params import NORM_TYPES, ParamSplit
from fedlab.federation.strategies.base import Strategy
from fedlab.models.unet import build_unet


class FedBN(Strategy):
    """Federated averaging of every tensor except the normalisation layers' (kept local)."""

    name = "FedBN"
    personalized = True

    def model_factory(self, federation: Federation | FederationSpec, config: Config) -> Callable[[], nn.Module] | None:
        """The preset's U-Net with BatchNorm (segmentation); None for other tasks."""
        if federation.task != "segmentation":
            return None
        return partial(build_unet, federation.num_channels, federation.num_labels, config.replace(norm="batch"))

    def param_split(self, model: nn.Module) -> ParamSplit:
        """Normalisation layers (parameters and running statistics) local, the rest shared.

        Raises:
            ValueError: when ``model`` has no BatchNorm layer (FedBN would reduce to FedAvg).
        """
        if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
            raise ValueError("FedBN needs a model with BatchNorm layers; pass model=None to run_federation "
                             "(FedBN then builds the U-Net with norm='batch') or a model built with norm='batch'.")
        return ParamSplit.from_model(model, local_types=NORM_TYPES)
