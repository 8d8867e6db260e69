"""Progress bars: what a saved notebook shows where a bar was, and tqdm's behaviour outside notebooks."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import nbformat
import pytest
from tqdm.std import tqdm as text_tqdm

from fedlab.progress import NotebookBar, in_notebook, progress_bar

CELL = """\
from fedlab.progress import progress_bar
for _ in progress_bar(range(3), desc="kept", leave=True, mininterval=0):
    pass
for _ in progress_bar(range(4), desc="cleared", leave=False, mininterval=0):
    pass
print("done")
"""


def _texts(cell) -> list[str]:
    return [o.get("data", {}).get("text/plain", o.get("text", "")) for o in cell.outputs]


@pytest.mark.notebook
def test_a_notebook_saved_after_the_run_shows_final_frames_not_first_ones(tmp_path, monkeypatch):
    """The oracle is tqdm's own terminal behaviour: the final frame stays with leave=True, nothing with
    leave=False. A widget bar would be saved as its first frame ("0%| | 0/3"), i.e. as never started."""
    papermill = pytest.importorskip("papermill")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # make test turns bars off; the kernel inherits this env
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "bars.ipynb")
    papermill.execute_notebook(str(tmp_path / "bars.ipynb"), str(tmp_path / "out.ipynb"), progress_bar=False,
                               kernel_name="python3")
    texts = _texts(nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[0])
    assert any(t.startswith("kept: 100%") and "3/3" in t for t in texts), texts
    assert not any("cleared" in t for t in texts), texts  # leave=False: cleared, as in a terminal
    assert not any("0/3" in t or "0/4" in t for t in texts), texts
    assert texts[-1] == "done\n"


def test_outside_a_kernel_it_is_tqdms_text_bar():
    assert not in_notebook()
    out = io.StringIO()
    bar = progress_bar(range(2), desc="x", file=out, mininterval=0, disable=False)  # make test sets TQDM_DISABLE
    assert type(bar) is text_tqdm and not isinstance(bar, NotebookBar)
    assert sum(1 for _ in bar) == 2
    assert "x: 100%" in out.getvalue() and "2/2" in out.getvalue()


def test_disable_and_tqdm_disable_switch_bars_off():
    assert progress_bar(range(2), disable=True).disable
    # tqdm reads TQDM_* variables when it is imported, as a kernel does at start: check in a fresh interpreter
    code = ("from fedlab.progress import NotebookBar, progress_bar\n"
            "assert progress_bar(range(2)).disable and NotebookBar(range(2)).disable")
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
