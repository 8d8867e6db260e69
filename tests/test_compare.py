"""`fedlab compare`: every method x site x seed in the three files; clear errors for bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fedlab.cli import main
from fedlab.experiments.compare import check_methods, check_seeds, seed_table


def test_compare_smoke_writes_every_method_site_and_seed(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FEDLAB_OUTPUT_ROOT", str(tmp_path / "root"))  # the run cache lives under the output root
    out = tmp_path / "out"
    code = main(["compare", "--dataset", "prostate", "--methods", "Local,FedAvg", "--preset", "smoke",
                 "--seeds", "0,1", "--out", str(out)])
    assert code == 0
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == ["method", "site", "metric", "value", "split", "seed", "round"]
    sites = ["A", "B", "C", "D", "E", "F"]
    for metric in ("dice", "iou", "assd", "hd95"):
        sub = results[results["metric"] == metric]
        assert set(zip(sub["method"], sub["site"], sub["seed"], strict=True)) == {
            (m, s, seed) for m in ("Local", "FedAvg") for s in sites for seed in (0, 1)}
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["split"]) == {"val", "test"} and set(curves["seed"]) == {0, 1}
    assert curves["round"].min() == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["synthetic"] is True and summary["seeds"] == [0, 1] and summary["reference_shown"] is True
    assert set(summary["mean"]) == {"Local Train", "FedAvg"}
    printed = capsys.readouterr().out
    assert "±" in printed and "paper (real data" in printed and "ours (synthetic, 2 seeds)" in printed
    # the run cache: a second identical call trains nothing and writes the same results
    assert main(["compare", "--dataset", "prostate", "--methods", "Local,FedAvg", "--preset", "smoke",
                 "--seeds", "0,1", "--out", str(tmp_path / "again")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "again" / "results.csv"), results)
    assert len(list((tmp_path / "root" / "cache" / "runs").iterdir())) == 4  # 2 methods x 2 seeds


@pytest.mark.parametrize(("args", "message"), [
    (["--methods", "FedAvg,FedFoo"], "unknown method.*FedFoo.*valid names: FedAvg"),
    (["--seeds", "0,x"], "seeds must be integers"),
    (["--seeds", "1,1"], "distinct"),
    (["--dataset", "mnist"], "mnist"),
    (["--preset", "huge"], "unknown preset 'huge'"),
    (["--set", "round=2"], "unknown setting 'round'; settings: .*rounds"),
    (["--set", "rounds=two"], "'rounds' takes an integer"),
])
def test_bad_input_is_a_clear_error(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FEDLAB_OUTPUT_ROOT", str(tmp_path))
    assert main(["compare", "--preset", "smoke", "--out", str(tmp_path), *args]) == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)


def test_set_changes_the_preset_and_misses_the_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FEDLAB_OUTPUT_ROOT", str(tmp_path / "root"))
    args = ["compare", "--dataset", "prostate", "--methods", "FedAvg", "--preset", "smoke", "--seeds", "0"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert main([*args, "--set", "rounds=2", "--out", str(tmp_path / "short")]) == 0
    assert "preset smoke (rounds=2)" in capsys.readouterr().out
    plain, short = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("plain", "short"))
    assert plain["config"]["rounds"] == 3 and plain["overrides"] == {}
    assert short["config"]["rounds"] == 2 and short["overrides"] == {"rounds": 2}
    assert pd.read_csv(tmp_path / "short" / "curves.csv")["round"].max() == 2  # the run itself changed
    assert len(list((tmp_path / "root" / "cache" / "runs").iterdir())) == 2  # a new run, not the cached one


def test_validators_and_seed_table():
    assert check_methods(["FedAvg", " Mix "]) == ["FedAvg", "Mix"]
    with pytest.raises(ValueError, match="twice"):
        check_methods(["FedAvg", "FedAvg"])
    assert check_seeds(["2", 3]) == [2, 3]
    one = pd.DataFrame({("IoU (%)", "A"): [50.0, 60.0]}, index=pd.Index(["Local", "FedAvg"], name="method"))
    two = one + 10
    table = seed_table([one, two])
    assert table.loc["Local", ("IoU (%)", "A")] == "55.0 ± 7.1"  # mean 55, sample std 7.07
    assert seed_table([one]).loc["FedAvg", ("IoU (%)", "A")] == "60.0"
