"""``make reproduce`` with two notebooks at a time: every notebook runs, each after the ones it reuses."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from fedlab.reproduce import REUSES, reproduce, schedule_ready, usable_cores

P = [Path(f"{n}_x.ipynb") for n in ("01", "02", "03", "04")]


def test_a_notebook_waits_for_the_ones_it_reuses():
    assert REUSES["03"] == ("01", "02") and REUSES["02"] == ("01",)
    # 02 running: 03 must wait, 04 may start
    assert schedule_ready([P[1], P[2], P[3]], finished=set(), running={"01"}) == P[3]
    assert schedule_ready([P[2], P[3]], finished={"01"}, running={"02"}) == P[3]
    assert schedule_ready([P[2]], finished={"01"}, running={"02"}) is None
    # 02 finished (successfully or not): 03 may start
    assert schedule_ready([P[2], P[3]], finished={"01", "02"}, running=set()) == P[2]
    # 02 not run at all (make reproduce --only 03): nothing to wait for
    assert schedule_ready([P[2]], finished=set(), running=set()) == P[2]


def _notebook(path: Path, body: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('PRESET = "classroom"\nOUTPUT_DIR = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


BODY = """\
import json, os, time
start = time.time()
time.sleep({sleep})
{fail}
os.makedirs(OUTPUT_DIR, exist_ok=True)
json.dump({{"start": start, "end": time.time(), "preset": PRESET, "threads": os.environ.get("OMP_NUM_THREADS")}},
          open(os.path.join(OUTPUT_DIR, "times.json"), "w"))
"""


@pytest.mark.notebook
def test_two_at_a_time_runs_every_notebook_and_keeps_going_after_a_failure(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    books = tmp_path / "notebooks"
    books.mkdir()
    _notebook(books / "01_a.ipynb", BODY.format(sleep=0, fail="raise RuntimeError('lesson 01 is broken')"))
    _notebook(books / "02_b.ipynb", BODY.format(sleep=3, fail=""))
    _notebook(books / "03_c.ipynb", BODY.format(sleep=0, fail=""))
    out = tmp_path / "out"
    assert reproduce("smoke", notebooks_dir=books, output_root=out, jobs=2) == 1  # 01 failed
    text = capsys.readouterr().out
    assert "01_a FAILED" in text and "02_b done" in text and "03_c done" in text
    assert "lesson 01 is broken" in (out / "01_a" / "reproduce.log").read_text()
    t2, t3 = (json.loads((out / name / "times.json").read_text()) for name in ("02_b", "03_c"))
    assert t3["start"] >= t2["end"], "03 reuses 02's runs: it must start after 02 has finished"
    assert t2["preset"] == t3["preset"] == "smoke"
    assert t2["threads"] == str(max(1, usable_cores() // 2))  # each kernel gets its share of the cores
