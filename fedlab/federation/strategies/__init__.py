"""Federated strategies, one file per algorithm family, looked up by name in :data:`STRATEGIES`."""

from __future__ import annotations

from fedlab.federation.messages import Message, Reply
from fedlab.federation.strategies.attacks import SignFlip
from fedlab.federation.strategies.base import ServerState, Strategy
from fedlab.federation.strategies.centralized import Centralized
from fedlab.federation.strategies.compression import TopK
from fedlab.federation.strategies.fedavg import FedAvg
from fedlab.federation.strategies.fedbn import FedBN
from fedlab.federation.strategies.fedprox import FedProx
from fedlab.federation.strategies.fedrep import FedPer, FedRep
from fedlab.federation.strategies.fedsgd import FedSGD
from fedlab.federation.strategies.finetune import FineTune
from fedlab.federation.strategies.lcfed import LCFed
from fedlab.federation.strategies.local import Local
from fedlab.federation.strategies.prrfl import PRRFL
from fedlab.federation.strategies.robust import Krum, Median, NormClip, QualityWeighted, TrimmedMean
from fedlab.federation.strategies.scaffold import SCAFFOLD
from fedlab.federation.strategies.wrapper import StrategyWrapper
from fedlab.privacy.central_dp import CentralDP
from fedlab.privacy.dp import DPFedAvg
from fedlab.privacy.secure_aggregation import SecureAggregation

STRATEGIES: dict[str, type[Strategy]] = {
    "FedAvg": FedAvg,
    "FedSGD": FedSGD,
    "FedProx": FedProx,
    "Local": Local,
    "FedPer": FedPer,
    "FedRep": FedRep,
    "FT": FineTune,
    "FedBN": FedBN,
    "PRR-FL": PRRFL,
    "LC-Fed": LCFed,
    "Mix": Centralized,
    # lessons 06-07 (fedlab/privacy/): secure aggregation around FedAvg, DP-SGD at the sites, DP at the server
    "SecAgg": SecureAggregation,
    "DP-FedAvg": DPFedAvg,
    "CentralDP": CentralDP,
    "SCAFFOLD": SCAFFOLD,
    "Median": Median,
    "TrimmedMean": TrimmedMean,
    "Krum": Krum,
    "NormClip": NormClip,
    "QualityWeighted": QualityWeighted,
    "TopK": TopK,
}


def get_strategy(name: str, /, **kwargs: object) -> Strategy:
    """Instantiate a strategy by its registry name.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; known: {sorted(STRATEGIES)}")
    return STRATEGIES[name](**kwargs)


__all__ = [
    "PRRFL", "SCAFFOLD", "STRATEGIES", "Centralized", "FedAvg", "FedBN", "FedPer", "FedProx", "FedRep", "FedSGD",
    "FineTune", "Krum", "LCFed", "Local", "Median", "Message", "NormClip", "QualityWeighted", "Reply", "ServerState",
    "SignFlip", "Strategy", "StrategyWrapper", "TopK", "TrimmedMean", "get_strategy",
]
