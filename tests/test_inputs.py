"""Bad input gets a clear error that names the problem and the fix."""

import json
from importlib import metadata

import pandas as pd
import pytest
import torch

import fedlab
from fedlab import _install_check
from fedlab.config import PRESETS, Config, TabularConfig, get_config, parse_overrides
from fedlab.data.federation import Federation, Site, Split
from fedlab.notebook import start_run


def _split(n=2, size=8, labels=1, img_size=None):
    img_size = img_size or size
    return Split(torch.rand(n, 1, img_size, img_size), torch.zeros(n, labels, size, size))


def test_unknown_preset_lists_valid_ones(monkeypatch):
    monkeypatch.delenv("FEDLAB_PRESET", raising=False)
    with pytest.raises(ValueError, match=r"Unknown preset 'fast'.*classroom.*paper.*smoke"):
        get_config("fast")


def test_preset_env_is_a_fallback_and_wins_only_for_notebooks(monkeypatch, tmp_path):
    monkeypatch.setenv("FEDLAB_PRESET", "smoke")
    assert get_config().preset == "smoke"  # no preset named: the variable decides
    assert get_config("paper").preset == "paper"  # a script that names a preset gets it
    assert get_config("paper", env_wins=True).preset == "smoke"  # nbval / nbconvert choose a notebook's preset
    assert get_config("paper", family="tabular", env_wins=True).preset == "smoke"
    run = fedlab.start_run("00_test", "classroom", output_dir=str(tmp_path))
    assert run.config.preset == "smoke"
    monkeypatch.setenv("FEDLAB_PRESET", "fast")
    with pytest.raises(ValueError, match=r"Unknown preset 'fast' \(from \$FEDLAB_PRESET\)"):
        get_config("paper", env_wins=True)
    monkeypatch.delenv("FEDLAB_PRESET")
    assert get_config("paper", env_wins=True).preset == "paper" and get_config().preset == "classroom"


def test_one_preset_table_for_both_families(monkeypatch):
    monkeypatch.delenv("FEDLAB_PRESET", raising=False)
    for name in ("smoke", "classroom", "paper"):
        seg, tab = get_config(name), get_config(name, family="tabular")
        assert type(seg) is Config and type(tab) is TabularConfig and isinstance(tab, Config)
        assert seg is PRESETS["segmentation"][name] and tab is PRESETS["tabular"][name]
        assert tab.preset == seg.preset == name
    tab = get_config("classroom", family="tabular", mu=0.5, rounds=7)
    assert isinstance(tab, TabularConfig) and tab.mu == 0.5 and tab.rounds == 7 and tab.num_fedsgd_rounds == 7
    assert tab.replace(fedsgd_rounds=3).num_fedsgd_rounds == 3 and isinstance(tab.replace(lr=1.0), TabularConfig)
    assert tab.optimizer == "sgd" and tab.optimizer_state == "fresh"
    with pytest.raises(ValueError, match="Unknown preset family 'images'"):
        get_config("smoke", family="images")
    with pytest.raises(ValueError, match="standardize"):
        get_config("smoke", family="tabular", standardize="global")
    with pytest.raises(ValueError, match="test_fraction"):
        get_config("smoke", family="tabular", test_fraction=1.5)
    with pytest.raises(ValueError, match=r"no field\(s\) \['mu'\].*rounds"):
        get_config("smoke", mu=0.1)  # a tabular field on a segmentation Config: named, with the valid fields


def test_command_line_settings_take_the_fields_types():
    base = PRESETS["segmentation"]["classroom"]
    got = parse_overrides(["rounds=90", " lr = 5e-4", "head_init=kaiming_fan_out", "weight_decay=0"], base)
    assert got == {"rounds": 90, "lr": 5e-4, "head_init": "kaiming_fan_out", "weight_decay": 0.0}
    assert isinstance(got["weight_decay"], float) and isinstance(got["rounds"], int)
    assert base.replace(**got).rounds == 90
    tab = PRESETS["tabular"]["classroom"]
    assert parse_overrides(["fedsgd_rounds=5"], tab) == {"fedsgd_rounds": 5}
    assert parse_overrides(["fedsgd_rounds=none"], tab) == {"fedsgd_rounds": None}
    for items, message in ((["rounds"], "FIELD=VALUE"), (["round=9"], "unknown setting 'round'.*rounds"),
                           (["rounds=1.5"], "'rounds' takes an integer"), (["lr=fast"], "'lr' takes a number"),
                           (["preset=paper"], "--preset")):
        with pytest.raises(ValueError, match=message):
            parse_overrides(items, base)


def test_bad_config_values():
    with pytest.raises(ValueError, match="norm"):
        get_config("smoke", norm="group")
    with pytest.raises(ValueError, match="divisible"):
        get_config("smoke", image_size=30)


def test_missing_data_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="DATA_DIR=.*does not exist.*DATA_DIR=''"):
        start_run("01_fedavg", "smoke", data_dir=str(tmp_path / "nope"))


def test_site_without_training_data():
    empty = Split(torch.zeros(0, 1, 8, 8), torch.zeros(0, 1, 8, 8))
    with pytest.raises(ValueError, match="Site 'A' has no training data"):
        Site("A", empty, _split())


def test_image_mask_shape_mismatch():
    bad = Split(torch.rand(2, 1, 8, 8), torch.zeros(2, 1, 6, 6))
    with pytest.raises(ValueError, match=r"site 'A', train split: image/mask shape mismatch.*\(8, 8\).*\(6, 6\)"):
        Federation("f", [Site("A", bad, _split())])


def test_non_binary_mask():
    y = torch.zeros(2, 1, 8, 8)
    y[0, 0, 0, 0] = 255
    with pytest.raises(ValueError, match=r"masks must be binary.*255.*threshold"):
        Federation("f", [Site("A", Split(torch.rand(2, 1, 8, 8), y), _split())])


def test_duplicate_site_names_and_unknown_site():
    site = Site("A", _split(), _split())
    with pytest.raises(ValueError, match="unique"):
        Federation("f", [site, site])
    with pytest.raises(KeyError, match="No site named 'B'"):
        Federation("f", [site])["B"]


def test_shadowing_package_fails_fast(monkeypatch):
    real = metadata.distribution

    def fake(name):
        if name == "fedlab":
            return object()
        return real(name)

    monkeypatch.setattr(_install_check.metadata, "distribution", fake)
    with pytest.raises(ImportError, match="unrelated project.*fedlab-med.*pip uninstall"):
        _install_check.check_not_shadowed()


def test_notebook_settings_change_the_chosen_preset(tmp_path, monkeypatch):
    monkeypatch.delenv("FEDLAB_PRESET", raising=False)
    run = start_run("00_test", "smoke", output_dir=str(tmp_path), settings={"rounds": 7})
    assert run.config == PRESETS["segmentation"]["smoke"].replace(rounds=7)
    monkeypatch.setenv("FEDLAB_PRESET", "classroom")  # the environment picks the preset, the settings still apply
    run = start_run("00_test", "smoke", output_dir=str(tmp_path), settings={"rounds": 7})
    assert run.config == PRESETS["segmentation"]["classroom"].replace(rounds=7)
    with pytest.raises(ValueError, match="PRESET"):
        start_run("00_test", "smoke", output_dir=str(tmp_path), settings={"preset": "paper"})
    with pytest.raises(ValueError, match=r"no field\(s\) \['round'\]"):
        start_run("00_test", "smoke", output_dir=str(tmp_path), settings={"round": 7})


def test_notebook_run_writes_contract_files(tmp_path):
    run = start_run("00_test", "smoke", seed=3, output_dir=str(tmp_path))
    df = pd.DataFrame([{"method": "FedAvg", "site": "A", "metric": "dice", "value": 0.5, "split": "test",
                        "seed": 3, "round": 2}])
    run.finish(df, headline={"dice": 0.5}, note="x")
    assert pd.read_csv(tmp_path / "results.csv").equals(df)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["preset"] == "smoke" and summary["synthetic"] is True
    assert summary["receipt"]["seed"] == 3 and summary["receipt"]["config"]["preset"] == "smoke"
    assert summary["headline"] == {"dice": 0.5} and summary["note"] == "x"
    with pytest.raises(ValueError, match="missing columns"):
        run.finish(df.drop(columns=["round"]))


def test_print_config(capsys):
    fedlab.print_config("cpu")
    out = capsys.readouterr().out
    assert "fedlab" in out and "torch" in out and "monai" in out and "cpu" in out
