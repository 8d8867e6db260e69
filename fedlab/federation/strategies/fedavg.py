"""FedAvg (McMahan et al., 2017): local steps, then a sample-weighted average of all parameters.

Server update: ``w <- sum_k (n_k / n) w_k`` over the participating clients (the surveys' equation);
``weighting="uniform"`` uses ``1 / K`` instead. Everything FedAvg needs is the base Strategy.
"""

from __future__ import annotations

from fedlab.federation.strategies.base import Strategy


class FedAvg(Strategy):
    """Federated averaging of every floating-point tensor of the model."""

    name = "FedAvg"
