"""The lessons as a student meets them: JupyterLab in headless Chromium, Run > Run All Cells.

Needs Debian's Chromium and the Python playwright package (README, "Tests"); skipped with the reason
otherwise. JupyterLab serves a temporary copy of the checkout's layout (pyproject.toml + notebooks/),
so the repository's notebooks are never modified, and its kernels get ``FEDLAB_PRESET=smoke``.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import re
import shutil
import time
from pathlib import Path

import pytest
from jupyterlab_browser import (
    chromium,
    close_all,
    code_cells,
    is_dirty,
    jupyter_lab,
    missing_browser_reason,
    open_notebook,
    run_all_cells,
    save_notebook,
    wait_until_executed,
)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Run All of notebook 01 at smoke takes 1-3 minutes on 2 busy CPU cores; the bound is generous on purpose.
RUN_TIMEOUT_S = float(os.environ.get("FEDLAB_BROWSER_TIMEOUT", "1200"))
SLIDER_TIMEOUT_S = 60.0

_REASON = missing_browser_reason()
# Also marked `notebook` (it executes one, slowly), so that `-m "not notebook"` stays the fast suite.
pytestmark = [pytest.mark.browser, pytest.mark.notebook,
              pytest.mark.skipif(_REASON is not None, reason=f"browser test: {_REASON}")]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 serving a copy of the checkout's layout; its kernels use the smoke preset."""
    root = tmp_path_factory.mktemp("checkout")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")  # makes the copy a checkout for outputs/
    (root / "notebooks").mkdir()
    for name in NOTEBOOKS:
        shutil.copy(REPO / "notebooks" / name, root / "notebooks" / name)
    env = {
        "FEDLAB_PRESET": "smoke",
        "FEDLAB_DATA_DIR": None, "FEDLAB_OUTPUT_ROOT": None,  # the defaults a student gets
        "TQDM_DISABLE": None, "CI": None,  # progress bars as a student sees them
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    }
    with jupyter_lab(root, env, limit_s=int(RUN_TIMEOUT_S) + 900) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as context:
        yield context


@pytest.fixture(scope="module")
def lab_page(browser, lab):
    """One page with JupyterLab loaded, shared by the tests of this module."""
    page = browser.new_page()
    yield page
    page.close()


@pytest.fixture
def page(lab_page, lab, tmp_path):
    """The shared page; each test closes what it opened, and leaves a screenshot of its last view in tmp_path."""
    yield lab_page
    lab_page.screenshot(path=str(tmp_path / "last_view.png"), full_page=True)  # for a person looking into a failure
    close_all(lab_page, lab)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_opening_a_notebook_does_not_modify_it(lab, page, name):
    """Opening a lesson starts a kernel; JupyterLab must not find anything to change in the file."""
    path = lab.root / "notebooks" / name
    committed = path.read_bytes()
    committed_python = json.loads(committed)["metadata"]["language_info"]["version"]
    open_notebook(page, lab, f"notebooks/{name}")
    dirty = is_dirty(page)
    before_save = path.stat().st_mtime_ns
    save_notebook(page)
    assert path.stat().st_mtime_ns != before_save, "the save did not reach the file"
    saved = path.read_bytes()
    if committed_python == platform.python_version():  # the kernel runs this interpreter
        assert not dirty, f"JupyterLab marks {name} modified on opening"
        assert saved == committed, f"opening and saving {name} in JupyterLab changed the file"
    else:  # another Python: JupyterLab records its version, and nothing else may change
        nb = json.loads(saved)
        assert nb["metadata"]["language_info"].pop("version") == platform.python_version()
        nb["metadata"]["language_info"]["version"] = committed_python
        assert nb == json.loads(committed), f"opening and saving {name} changed more than language_info.version"


def test_notebook_01_runs_clean_in_jupyterlab_and_its_slider_redraws(lab, page):
    """Run > Run All Cells of notebook 01 at smoke: no error or warning, figures render, the slider works."""
    tic = time.monotonic()
    open_notebook(page, lab, "notebooks/01_fedavg.ipynb")
    run_all_cells(page)
    wait_until_executed(page, RUN_TIMEOUT_S)
    print(f"notebook 01, smoke, Run All in JupyterLab: {time.monotonic() - tic:.0f} s")

    cells = code_cells(page)
    not_run = [k + 1 for k, c in enumerate(cells) if c["execution_count"] is None]
    errors = [f"code cell {k + 1} (In [{c['execution_count']}]): {o.get('ename')}: {o.get('evalue')}"
              for k, c in enumerate(cells) for o in c["outputs"] if o["output_type"] == "error"]
    stderr = [f"code cell {k + 1} (In [{c['execution_count']}]): {''.join(o['text'])[:500]}"
              for k, c in enumerate(cells) for o in c["outputs"]
              if o["output_type"] == "stream" and o.get("name") == "stderr"]
    assert not errors, "cells raised:\n" + "\n".join(errors)
    assert not stderr, "cells wrote warnings or other text to stderr:\n" + "\n".join(stderr)
    assert not not_run, f"code cells {not_run} did not run"
    shown = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
    assert shown.count() == 0, f"the page shows an error or warning box: {shown.first.inner_text()[:500]}"

    pngs = sum("image/png" in o.get("data", {}) for c in cells for o in c["outputs"])
    rendered = page.locator(".jp-OutputArea-output img").evaluate_all(
        "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")
    assert pngs >= 4, f"only {pngs} figures in the outputs"
    assert rendered >= pngs, f"{pngs} figures in the outputs, {rendered} rendered on the page"

    save_notebook(page)  # as a student saves it: no widget state, only what the outputs hold
    saved = json.loads((lab.root / "notebooks" / "01_fedavg.ipynb").read_text())
    texts = ["".join(o.get("data", {}).get("text/plain", o.get("text", "")))
             for c in saved["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    first_frames = [t for t in texts if re.search(r"(^|\s)0%\|", t)]
    assert not first_frames, f"the saved notebook shows progress bars as never started: {first_frames[:3]}"

    summary = json.loads((lab.root / "outputs" / "01_fedavg" / "summary.json").read_text())
    assert summary["preset"] == "smoke" and summary["notebook"] == "01_fedavg"

    slider = page.locator(".widget-slider", has_text=re.compile("heterogeneity", re.IGNORECASE))
    assert slider.count() == 1, "no heterogeneity slider on the page"
    figure = slider.locator("xpath=..").locator(".widget-output img")  # the Output widget below the slider
    readout = slider.locator(".widget-readout")
    handle = slider.locator(".noUi-handle")
    handle.scroll_into_view_if_needed()

    start = (readout.inner_text(), _figure_bytes(figure))
    handle.focus()  # keyboard: one step to the right
    page.keyboard.press("ArrowRight")
    after_key = _wait_for_change(page, lambda: (readout.inner_text(), _figure_bytes(figure)), start)
    assert after_key[0] != start[0] and after_key[1] is not None and after_key[1] != start[1], \
        "the slider did not redraw the figure below it after a key press"

    track = slider.locator(".noUi-base").bounding_box()
    grip = handle.bounding_box()
    page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)  # mouse: drag to the left end
    page.mouse.down()
    page.mouse.move(track["x"] + 1, grip["y"] + grip["height"] / 2, steps=8)
    page.mouse.up()
    after_drag = _wait_for_change(page, lambda: (readout.inner_text(), _figure_bytes(figure)), after_key)
    assert after_drag[0] != after_key[0] and after_drag[1] is not None and after_drag[1] != after_key[1], \
        "the slider did not redraw the figure below it after a mouse drag"


def _figure_bytes(figure) -> bytes | None:
    """The PNG bytes of the first image in ``figure`` (a locator), or None when there is none yet."""
    if figure.count() == 0:
        return None
    src = figure.first.get_attribute("src") or ""
    if not src.startswith("data:image/png;base64,"):
        return None
    data = base64.b64decode(src.split(",", 1)[1])
    assert data.startswith(b"\x89PNG"), "the redrawn figure is not a PNG image"
    return data


def _wait_for_change(page, read, old: tuple, timeout_s: float = SLIDER_TIMEOUT_S) -> tuple:
    """Poll ``read()`` until every element differs from ``old`` (readout and figure), or time out."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while time.monotonic() < deadline:
        if all(new != before for new, before in zip(value, old, strict=True)) and value[1] is not None:
            return value
        page.wait_for_timeout(250)
        value = read()
    return value
