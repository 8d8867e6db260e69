"""The committed notebooks are stable files: opening and saving them changes nothing.

JupyterLab saves through jupyter_server, which writes ``nbformat.write(nb, version=NO_CONVERT)``:
keys sorted, indent 1, ``ensure_ascii=False``, a trailing newline. When a kernel starts, JupyterLab
also sets the notebook's ``kernelspec`` and ``language_info`` to what the kernel reports, and marks
the notebook modified unless they are already equal. So each notebook is committed in exactly that
form, with the metadata an ipykernel kernel reports. ``language_info.version`` is the kernel's
Python version: JupyterLab always writes it, so leaving it out would make every opening a change;
the notebooks carry one reference version (that of the project's CI machines), and on another
Python only that one line changes. tests/test_browser.py checks the same in a real JupyterLab.
"""

from __future__ import annotations

import ast
import io
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))

# What an ipykernel kernel reports and JupyterLab writes into the notebook when it starts one.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                 "pygments_lexer": "ipython3"}
# Left behind by executing or viewing a notebook; never part of a committed lesson.
TRANSIENT_CELL_METADATA = {"execution", "ExecuteTime", "scrolled", "collapsed", "papermill", "trusted"}
TRANSIENT_NOTEBOOK_METADATA = {"papermill", "widgets", "signature", "toc-autonumbering"}
PARAMETERS = {"PRESET", "SEED", "DATA_DIR", "DEVICE", "OUTPUT_DIR"}
FIX = ("Fix: open and save the notebook in JupyterLab with a clean kernel, then clear all outputs, or set its "
       "metadata as tests/test_notebook_files.py expects.")


def test_there_are_lessons():
    assert len(NOTEBOOKS) >= 4, [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_open_and_save_leaves_the_file_byte_identical(path):
    committed = path.read_bytes()
    nb = nbformat.read(io.BytesIO(committed), as_version=nbformat.NO_CONVERT)
    buffer = io.StringIO()
    nbformat.write(nb, buffer, version=nbformat.NO_CONVERT)  # exactly what jupyter_server does on save
    saved = buffer.getvalue().encode("utf-8")
    assert saved == committed, f"{path.name} changes when saved by Jupyter. {FIX}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_metadata_is_what_jupyterlab_writes(path):
    meta = nbformat.read(path, as_version=nbformat.NO_CONVERT).metadata
    assert meta.get("kernelspec") == KERNELSPEC, f"{path.name}: kernelspec {meta.get('kernelspec')}. {FIX}"
    info = dict(meta.get("language_info", {}))
    version = info.pop("version", None)
    assert info == LANGUAGE_INFO, f"{path.name}: language_info {meta.get('language_info')}. {FIX}"
    assert isinstance(version, str) and re.fullmatch(r"3\.\d+\.\d+", version), \
        f"{path.name}: language_info.version {version!r} is not the x.y.z a kernel reports. {FIX}"
    assert not TRANSIENT_NOTEBOOK_METADATA & set(meta), f"{path.name}: execution leftovers in metadata. {FIX}"


def test_all_notebooks_name_the_same_python():
    versions = {p.name: nbformat.read(p, as_version=4).metadata.get("language_info", {}).get("version")
                for p in NOTEBOOKS}
    assert len(set(versions.values())) == 1, f"language_info.version differs between notebooks: {versions}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_and_with_unique_cell_ids(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    nbformat.validate(nb)
    ids = [cell.get("id") for cell in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), f"{path.name}: missing or repeated cell ids"
    for k, cell in enumerate(nb.cells):
        assert not TRANSIENT_CELL_METADATA & set(cell.metadata), f"{path.name} cell {k}: {dict(cell.metadata)}"
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, \
                f"{path.name} cell {k} was committed with outputs or an execution count (strip them)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_tagged_parameters_cell_of_plain_literals(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    tagged = [k for k, cell in enumerate(code) if "parameters" in cell.metadata.get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, must be tagged 'parameters' ({tagged})"
    names = set()
    for node in ast.parse(code[0].source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name), \
            f"{path.name}: the parameters cell may hold only `NAME = literal` lines, found {ast.unparse(node)!r}"
        ast.literal_eval(node.value)  # raises for anything but a plain literal
        names.add(node.targets[0].id)
    assert PARAMETERS <= names, f"{path.name}: the parameters cell lacks {sorted(PARAMETERS - names)}"
