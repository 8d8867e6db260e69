"""Compare a simulated run with its deployed twin: are the two Histories the same, and where do they differ?

Flower-free: both arguments are :class:`~fedlab.federation.history.History` objects (a deployment's comes back
from :meth:`fedlab.deploy.local.LocalDeployment.run`).
"""

from __future__ import annotations

import math

import pandas as pd

from fedlab.federation.history import History

_KEY = ("site", "metric", "split", "round", "stage")


def _values(history: History) -> dict[tuple, float]:
    return {tuple(row[k] for k in _KEY): row["value"] for row in history.rows}


def _ledger(history: History) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history.ledger]


def compare_histories(simulated: History, deployed: History) -> dict:
    """What two runs of the same strategy share, exactly.

    Returns:
        ``rows_equal`` (every curve and final row, in the same order, bit for bit), ``ledger_equal`` (bytes up
        and down and the training loss of every round), ``selected_equal`` (each site's kept round),
        ``same_keys`` (the same rows exist in both), ``max_abs_difference`` (largest difference of a score present
        in both; 0.0 when identical), ``curve_points`` and ``final_scores`` (how many rows were compared).
    """
    a, b = _values(simulated), _values(deployed)
    shared = a.keys() & b.keys()
    diffs = [abs(a[k] - b[k]) for k in shared if not (math.isnan(a[k]) and math.isnan(b[k]))]
    return {"rows_equal": simulated.rows == deployed.rows, "ledger_equal": _ledger(simulated) == _ledger(deployed),
            "selected_equal": simulated.selected_round == deployed.selected_round, "same_keys": a.keys() == b.keys(),
            "max_abs_difference": max(diffs, default=0.0),
            "curve_points": sum(1 for k in a if k[-1] == "curve"),
            "final_scores": sum(1 for k in a if k[-1] == "final")}


def side_by_side(histories: dict[str, History], stage: str = "final") -> pd.DataFrame:
    """Scores of several runs next to each other: rows = sites (plus their mean), columns = (metric, run label).

    Args:
        histories: Run label (e.g. "simulation", "Flower") -> History.
        stage: "final" (the kept models' test scores) or "curve".
    """
    frames = [h.to_dataframe(stage).assign(run=label) for label, h in histories.items()]
    df = pd.concat(frames, ignore_index=True)
    if stage == "curve":
        df = df[df["round"] == df["round"].max()]
    table = df.pivot_table(index="site", columns=["metric", "run"], values="value", sort=False)
    table.loc["mean"] = table.mean()
    return table
