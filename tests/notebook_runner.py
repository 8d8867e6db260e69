"""Execute a lesson notebook with papermill (smoke preset) and read back its contract files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute_notebook(name: str, out_dir: Path, **parameters: object) -> tuple[pd.DataFrame, dict]:
    """Run ``notebooks/<name>.ipynb`` with PRESET="smoke" into ``out_dir``; return results.csv and summary.json."""
    import papermill as pm

    params = {"PRESET": "smoke", "OUTPUT_DIR": str(out_dir), **parameters}
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out_dir / f"{name}.ipynb"), parameters=params,
                        cwd=str(NOTEBOOKS), progress_bar=False, kernel_name="python3")
    results = pd.read_csv(out_dir / "results.csv")
    summary = json.loads((out_dir / "summary.json").read_text())
    return results, summary
