"""Execute a lesson notebook with papermill (smoke preset) and read back its contract files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from realdata_fixtures import tree_digest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
REAL_SAMPLE = ("realdata", "prostate_nci_isbi2013_slices")


def execute_notebook(name: str, out_dir: Path, **parameters: object) -> tuple[pd.DataFrame, dict]:
    """Run ``notebooks/<name>.ipynb`` with PRESET="smoke" into ``out_dir``; return results.csv and summary.json."""
    import papermill as pm

    params = {"PRESET": "smoke", "OUTPUT_DIR": str(out_dir), **parameters}
    pm.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out_dir / f"{name}.ipynb"), parameters=params,
                        cwd=str(NOTEBOOKS), progress_bar=False, kernel_name="python3")
    results = pd.read_csv(out_dir / "results.csv")
    summary = json.loads((out_dir / "summary.json").read_text())
    return results, summary


def execute_on_real_sample(name: str, tmp_path: Path, shared: Path, monkeypatch) -> tuple[pd.DataFrame, dict]:
    """Run a notebook with only DATA_DIR set to the real two-site prostate sample in ../shared.

    The prepared-array cache goes to a temporary ``$FEDLAB_CACHE_DIR``; the sample folder must be byte-for-byte
    the same afterwards (every file's size and SHA-256, hidden entries included).
    """
    data = shared.joinpath(*REAL_SAMPLE)
    monkeypatch.setenv("FEDLAB_CACHE_DIR", str(tmp_path / "cache"))  # the kernel inherits the environment
    before = tree_digest(data)
    (tmp_path / "out").mkdir()
    results, summary = execute_notebook(name, tmp_path / "out", DATA_DIR=str(data))
    assert tree_digest(data) == before, "the notebook wrote into the data folder"
    return results, summary


def check_real_sample_summary(results: pd.DataFrame, summary: dict) -> None:
    """What every lesson must say about a run on the real sample: real data, its sites, its manifest."""
    assert summary["synthetic"] is False
    data = summary["data"]
    assert data["synthetic"] is False and data["title"] == "prostate_nci_isbi2013_slices (real)"
    assert list(data["sites"]) == ["RUNMC", "BMC"] and set(results["site"]) == {"RUNMC", "BMC"}
    assert len(data["manifest_hash"]) == 64 and data["manifest_hash"] in data["source"]
