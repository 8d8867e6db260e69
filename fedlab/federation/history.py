"""History: what happened in a federated run, round by round and site by site."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from torch import nn

COLUMNS = ["method", "site", "metric", "value", "split", "seed", "round", "stage"]


@dataclass
class History:
    """Per-round, per-site metrics of one run, its communication ledger and its final scores.

    Rows are tidy: one (method, site, metric, value, split, seed, round, stage) each, where stage is
    "curve" (recorded during training) or "final" (the selected model's full evaluation on the
    test split; ``round`` is then the round the model was selected at).

    Attributes:
        method: Strategy name, e.g. "FedAvg".
        sites: Site names in federation order.
        seed: Run seed.
        rows: Tidy metric rows.
        ledger: One dict per round: round, bytes_up, bytes_down, train_loss, seconds.
        selected_round: Per site, the round whose model was kept (by validation score, or the last).
        site_models: The kept model of each site, in memory only (never saved).
        last_models: The model each site held after the last round (before validation selection), in
            memory only; e.g. for plots of what training produced.
        info: Free-form facts (strategy settings, selection rule).
    """

    method: str
    sites: list[str]
    seed: int = 0
    rows: list[dict] = field(default_factory=list)
    ledger: list[dict] = field(default_factory=list)
    selected_round: dict[str, int] = field(default_factory=dict)
    site_models: list[nn.Module] = field(default_factory=list, repr=False)
    last_models: list[nn.Module] = field(default_factory=list, repr=False)
    info: dict = field(default_factory=dict)

    def record(self, site: str, metric: str, value: float, split: str, round: int, stage: str = "curve") -> None:
        """Add one metric row."""
        self.rows.append({"method": self.method, "site": site, "metric": metric, "value": float(value),
                          "split": split, "seed": self.seed, "round": int(round), "stage": stage})

    def to_dataframe(self, stage: str | None = None) -> pd.DataFrame:
        """Tidy rows as a DataFrame (optionally only "curve" or "final" rows)."""
        df = pd.DataFrame(self.rows, columns=COLUMNS)
        return df if stage is None else df[df["stage"] == stage].reset_index(drop=True)

    def ledger_dataframe(self) -> pd.DataFrame:
        """The per-round communication and timing ledger, with cumulative bytes."""
        df = pd.DataFrame(self.ledger)
        if not df.empty:
            df["cum_bytes"] = (df["bytes_up"] + df["bytes_down"]).cumsum()
        return df

    def final(self, metric: str | None = None) -> pd.DataFrame:
        """Final scores as a site x metric table (plus the site average as the last row)."""
        df = self.to_dataframe("final")
        if metric is not None:
            df = df[df["metric"] == metric]
        table = df.pivot_table(index="site", columns="metric", values="value", sort=False)
        table.loc["avg"] = table.mean()
        return table

    @property
    def total_bytes(self) -> int:
        """Bytes sent up and down over the whole run."""
        return int(sum(r["bytes_up"] + r["bytes_down"] for r in self.ledger))

    def state_dict(self) -> dict:
        """JSON-able state (models excluded), used by checkpoints and :meth:`save`."""
        return {"method": self.method, "sites": self.sites, "seed": self.seed, "rows": self.rows,
                "ledger": self.ledger, "selected_round": self.selected_round, "info": self.info}

    @classmethod
    def from_state_dict(cls, state: dict) -> History:
        """Inverse of :meth:`state_dict`."""
        return cls(**state)

    def save(self, path: str | Path) -> Path:
        """Write the history as JSON (models are not saved)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.state_dict(), indent=1))
        return path

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a history written by :meth:`save`."""
        return cls.from_state_dict(json.loads(Path(path).read_text()))
