"""One output location: <checkout>/outputs/<notebook>/ from JupyterLab, papermill and make reproduce alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedlab.notebook import OUTPUT_ROOT_ENV, default_output_root, start_run

REPO = Path(__file__).resolve().parents[1]


def make_checkout(root: Path) -> Path:
    """A minimal fedlab checkout: a pyproject.toml naming fedlab-med beside a notebooks/ folder."""
    (root / "notebooks").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "fedlab-med"\nversion = "0"\n')
    return root


@pytest.fixture(autouse=True)
def no_output_root(monkeypatch):
    monkeypatch.delenv(OUTPUT_ROOT_ENV, raising=False)


def test_checkout_outputs_whether_run_from_notebooks_or_the_root(tmp_path, monkeypatch):
    repo = make_checkout(tmp_path / "repo")
    expected = repo.resolve() / "outputs" / "01_fedavg"
    monkeypatch.chdir(repo / "notebooks")  # JupyterLab and papermill run the kernel in the notebook's folder
    assert start_run("01_fedavg", "smoke").output_dir == expected
    monkeypatch.chdir(repo)  # make reproduce runs from the checkout
    assert start_run("01_fedavg", "smoke").output_dir == expected
    assert default_output_root(repo / "notebooks") == expected.parent


def test_this_repository_is_recognised_as_a_checkout():
    assert default_output_root(REPO / "notebooks") == REPO / "outputs"
    assert default_output_root(REPO) == REPO / "outputs"


def test_outside_a_checkout_results_go_beside_the_notebook(tmp_path, monkeypatch):
    lessons = tmp_path / "my_lessons"
    lessons.mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')  # not a fedlab checkout
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(lessons)
    run = start_run("02_personalization", "smoke")
    assert run.output_dir == lessons.resolve() / "outputs" / "02_personalization"
    assert run.output_dir.is_absolute()
    assert not run.output_dir.exists()  # created by finish(), not by start_run()


def test_environment_variable_overrides_the_default(tmp_path, monkeypatch):
    repo = make_checkout(tmp_path / "repo")
    monkeypatch.chdir(repo / "notebooks")
    monkeypatch.setenv(OUTPUT_ROOT_ENV, str(tmp_path / "elsewhere"))
    assert start_run("03_lcfed_calibration", "smoke").output_dir == (tmp_path / "elsewhere").resolve() / \
        "03_lcfed_calibration"


def test_explicit_output_dir_wins_over_everything(tmp_path, monkeypatch):
    repo = make_checkout(tmp_path / "repo")
    monkeypatch.chdir(repo / "notebooks")
    monkeypatch.setenv(OUTPUT_ROOT_ENV, str(tmp_path / "elsewhere"))
    run = start_run("01_fedavg", "smoke", output_dir="mine")
    assert run.output_dir == (repo / "notebooks" / "mine").resolve()


def test_make_reproduce_uses_the_same_default(tmp_path, monkeypatch):
    """reproduce() without output_root writes where a notebook run from JupyterLab would."""
    import fedlab.reproduce as rep

    repo = make_checkout(tmp_path / "repo")
    (repo / "notebooks" / "01_x.ipynb").write_text("not run")
    seen = {}

    def fake_execute(src, dst, cwd, parameters, **kwargs):
        seen.update(dst=Path(dst), cwd=cwd, output_dir=parameters["OUTPUT_DIR"])
        raise RuntimeError("stop here")

    import papermill

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.chdir(tmp_path)  # not inside the checkout: the default must not depend on where make runs
    assert rep.reproduce("smoke", notebooks_dir=repo / "notebooks") == 1
    expected = repo.resolve() / "outputs" / "01_x"
    assert Path(seen["output_dir"]) == expected and seen["dst"].parent == expected
    assert seen["cwd"] == str(repo / "notebooks")


@pytest.mark.parametrize("preset_env, expected", [(None, "1"), ("0", "0")])
def test_make_reproduce_turns_progress_bars_off_unless_asked(monkeypatch, preset_env, expected):
    """Nobody watches ``make reproduce``'s kernels, so it disables tqdm unless TQDM_DISABLE is set; the kernels
    papermill starts inherit the environment it had when they started."""
    import os

    import fedlab.reproduce as rep

    if preset_env is None:
        monkeypatch.delenv("TQDM_DISABLE", raising=False)
    else:
        monkeypatch.setenv("TQDM_DISABLE", preset_env)
    seen = {}
    monkeypatch.setattr(rep, "reproduce", lambda *a, **k: seen.setdefault("env", os.environ.get("TQDM_DISABLE")) and 0)
    rep.main(["--preset", "smoke"])
    assert seen["env"] == expected
