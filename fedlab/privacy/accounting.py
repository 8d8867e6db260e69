"""Privacy accounting: how much (epsilon, delta) a schedule of noisy steps costs, through Opacus's RDP accountant.

A DP-SGD step that samples each record with probability ``q`` (Poisson sampling), clips every per-record
gradient to norm ``C`` and adds Gaussian noise of standard deviation ``sigma * C`` is the *sampled Gaussian
mechanism*. Its Renyi-DP cost composes additively over steps (Mironov 2017; Mironov, Talwar, Zhang 2019), and
the total is converted to an (epsilon, delta) guarantee (Balle et al. 2020). Opacus implements both; fedlab only
keeps the accountant's *history*, a plain list of ``[sigma, q, steps]`` entries, so that a site's accountant
persists across rounds (and checkpoints) and its epsilon composes over the whole run.

Opacus is optional (``pip install "fedlab-med[privacy]"``); :func:`require_opacus` says so when it is missing.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

PRIVACY_EXTRA = 'pip install "fedlab-med[privacy]"'
#: One accountant entry: noise multiplier, sampling rate, number of steps (Opacus's history format).
Entry = list[float]


def require_opacus() -> object:
    """Import Opacus, or raise an ImportError that names the extra to install.

    Raises:
        ImportError: when Opacus is not installed.
    """
    try:
        import opacus
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            "Differential privacy in fedlab uses Opacus, which is not installed. Install the optional extra: "
            f"{PRIVACY_EXTRA} (or pip install 'opacus==1.6.*'), then restart the kernel.") from error
    return opacus


def add_steps(history: Sequence[Sequence[float]], noise_multiplier: float, sample_rate: float,
              steps: int) -> list[Entry]:
    """A new accountant history: ``history`` plus ``steps`` steps of (noise_multiplier, sample_rate).

    Consecutive steps with the same settings are merged into one entry, as Opacus's RDPAccountant does.

    Args:
        history: Earlier entries ``[sigma, q, steps]``.
        noise_multiplier: sigma of the new steps (noise std / clipping norm).
        sample_rate: Poisson sampling probability q of the new steps.
        steps: How many steps.

    Raises:
        ValueError: for a negative sigma or steps, or q outside (0, 1].
    """
    if noise_multiplier < 0 or steps < 0:
        raise ValueError(f"noise_multiplier and steps must be >= 0, got {noise_multiplier}, {steps}")
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
    out = [list(map(float, e[:2])) + [int(e[2])] for e in history]
    if steps == 0:
        return out
    if out and out[-1][0] == float(noise_multiplier) and out[-1][1] == float(sample_rate):
        out[-1][2] += int(steps)
    else:
        out.append([float(noise_multiplier), float(sample_rate), int(steps)])
    return out


def epsilon(history: Sequence[Sequence[float]], delta: float, orders: Sequence[float] | None = None) -> float:
    """The epsilon that ``history`` has spent at ``delta``, by Opacus's RDP accountant.

    Args:
        history: Entries ``[sigma, q, steps]``, as :func:`add_steps` builds them.
        delta: Target delta (should be well below 1 / the number of records).
        orders: RDP orders to optimise over (default: Opacus's).

    Returns:
        Epsilon; 0 for an empty history, ``inf`` when any step had no noise (sigma = 0).

    Raises:
        ValueError: for delta outside (0, 1).
    """
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    if not history or all(int(e[2]) == 0 for e in history):
        return 0.0
    if any(float(e[0]) == 0 for e in history if int(e[2]) > 0):
        return math.inf
    require_opacus()
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(float(s), float(q), int(n)) for s, q, n in history if int(n) > 0]
    with warnings.catch_warnings():  # "optimal order is the largest alpha": the bound is valid, only not the tightest
        warnings.filterwarnings("ignore", message="Optimal order is the")
        return float(accountant.get_epsilon(delta=delta, alphas=list(orders) if orders is not None else None))


def schedule_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    """Epsilon of ``steps`` identical steps (the cost of a planned run, before running it)."""
    return epsilon(add_steps([], noise_multiplier, sample_rate, steps), delta)
