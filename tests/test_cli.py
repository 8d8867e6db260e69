"""The fedlab command: exit codes and messages of info, data list/verify/prepare."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from realdata_fixtures import make_png_tree, tree_digest, write_manifest

from fedlab.cli import main

SITES = {"A": (2, 1), "B": (2, 1)}


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    return make_png_tree(tmp_path / "data", SITES), write_manifest(tmp_path / "fixture.yaml", SITES)


def test_info(capsys) -> None:
    assert main(["info"]) == 0
    assert "fedlab" in capsys.readouterr().out


def test_list(capsys) -> None:
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "prostate" in out and "uci_heart_disease" in out and "INVALID" not in out
    assert "nifti_volumes, png_slices" in out


def test_list_root_says_what_a_folder_holds(tmp_path: Path, capsys) -> None:
    root = make_png_tree(tmp_path / "slices", {"BMC": (2, 1), "HK": (1, 1)}, invert=True)
    assert main(["data", "list", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "prostate                       subset" in out and "sites BMC, HK (2 of 6)" in out
    assert "folder" in out and "would load 'prostate'" in out
    (tmp_path / "empty").mkdir()
    assert main(["data", "list", "--root", str(tmp_path / "empty")]) == 1
    assert "matches no manifest" in capsys.readouterr().err


def test_verify_ok_and_failing(dataset, capsys) -> None:
    root, manifest = dataset
    assert main(["data", "verify", str(manifest), "--root", str(root)]) == 0
    assert "OK" in capsys.readouterr().out
    (root / "B/train/mask/01.png").unlink()
    assert main(["data", "verify", str(manifest), "--root", str(root)]) == 1
    captured = capsys.readouterr()
    assert "01.png has no mask" in captured.out and "verify FAILED" in captured.err


def test_verify_subset_passes_with_a_warning_unless_strict(dataset, capsys) -> None:
    root, manifest = dataset
    shutil.rmtree(root / "B")
    assert main(["data", "verify", str(manifest), "--root", str(root)]) == 0
    captured = capsys.readouterr()
    assert "OK, SUBSET" in captured.out and "site B is absent" in captured.out
    assert "WARNING" in captured.err and "SUBSET of fixture (1 site(s): A)" in captured.err
    assert main(["data", "verify", str(manifest), "--root", str(root), "--strict"]) == 1
    assert "FAILED (--strict)" in capsys.readouterr().err


def test_verify_unknown_dataset_and_missing_root(tmp_path: Path, capsys) -> None:
    assert main(["data", "verify", "no_such_dataset", "--root", str(tmp_path)]) == 2
    assert "no manifest named 'no_such_dataset'" in capsys.readouterr().err
    assert main(["data", "verify", "prostate", "--root", str(tmp_path / "absent")]) == 1
    assert "does not exist" in capsys.readouterr().out


def test_prepare(dataset, tmp_path: Path, capsys, monkeypatch) -> None:
    root, manifest = dataset
    monkeypatch.setenv("FEDLAB_CACHE_DIR", str(tmp_path / "user-cache"))
    listing = tree_digest(root)
    assert main(["data", "prepare", str(manifest), "--root", str(root), "--size", "8"]) == 0
    assert f"{tmp_path / 'user-cache'}" in capsys.readouterr().out and tree_digest(root) == listing
    assert main(["data", "prepare", str(manifest), "--root", str(root), "--size", "8", "--out", str(root / "c")]) == 2
    assert "inside the data folder" in capsys.readouterr().err
    out = tmp_path / "cache"
    args = ["data", "prepare", str(manifest), "--root", str(root), "--size", "8", "--out", str(out)]
    assert main(args) == 0
    assert (out / "stamp.json").is_file() and len(list(out.glob("*.npz"))) == 4
    (root / "A/test/image/00.png").unlink()
    assert main(args) == 2
    assert "00.png has no image" in capsys.readouterr().err


def test_usage_errors_exit_nonzero() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["data", "prepare", "polyp", "--root", "x"])  # --size is required
    assert exc.value.code == 2


def test_reproduce_passes_options_through(capsys) -> None:
    pytest.importorskip("fedlab.reproduce")
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--help"])
    assert exc.value.code == 0 and "--preset" in capsys.readouterr().out
