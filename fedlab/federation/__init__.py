"""The federation engine: parameter splits, clients, strategies, the simulation loop, history."""

from fedlab.federation.client import Client
from fedlab.federation.evaluation import cross_site_matrix, evaluate
from fedlab.federation.history import History
from fedlab.federation.messages import Message, Reply
from fedlab.federation.params import ParamSplit, weighted_average
from fedlab.federation.simulation import run_federation
from fedlab.federation.strategies import STRATEGIES, Centralized, FedAvg, Local, Strategy, get_strategy

__all__ = [
    "STRATEGIES",
    "Centralized",
    "Client",
    "FedAvg",
    "History",
    "Local",
    "Message",
    "ParamSplit",
    "Reply",
    "Strategy",
    "cross_site_matrix",
    "evaluate",
    "get_strategy",
    "run_federation",
    "weighted_average",
]
