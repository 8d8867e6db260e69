"""Synthetic ADNI-like cohort, splits, standardisation and the ADNI / UCI loaders."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fedlab.data.splits import stratified_split
from fedlab.data.standardize import feature_sums, fit_scaler, scaler_from_sums, standardize
from fedlab.data.synthetic.adni import AAL90_ROIS, CohortSpec, make_adni_cohort
from fedlab.data.tabular import (
    UCI_FLAMBY_FEATURES,
    UCI_MD5,
    UCI_ROWS,
    UCI_SITES,
    adni_federation,
    load_adni_csv,
    load_uci_heart,
    read_uci_site,
    uci_federation,
    validate_adni,
    verify_uci_heart,
)


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return make_adni_cohort(0)


@pytest.fixture
def uci_dir(shared) -> Path:
    """The UCI sample in ../shared/realdata (skipped when absent)."""
    path = shared / "realdata" / "uci_heart_disease"
    if not path.is_dir():
        pytest.skip("../shared/realdata/uci_heart_disease not present")
    return path


def test_aal90_names():
    assert len(AAL90_ROIS) == 90 and len(set(AAL90_ROIS)) == 90
    assert AAL90_ROIS[:2] == ("Precentral_L", "Precentral_R")
    assert AAL90_ROIS[36:42] == ("Hippocampus_L", "Hippocampus_R", "ParaHippocampal_L", "ParaHippocampal_R",
                                 "Amygdala_L", "Amygdala_R")  # AAL labels 37-42
    assert AAL90_ROIS[-1] == "Temporal_Inf_R"


def test_cohort_counts_and_balance(cohort):
    counts = cohort.groupby(["phase", "diagnosis"]).size().to_dict()
    assert counts == {("ADNI-1", "AD"): 199, ("ADNI-1", "NC"): 229, ("ADNI-2", "AD"): 159, ("ADNI-2", "NC"): 201}
    assert list(cohort.columns) == ["subject_id", "phase", "diagnosis", *AAL90_ROIS]
    assert (cohort[list(AAL90_ROIS)] > 0).all().all()


def test_cohort_deterministic_and_seeded(cohort):
    pd.testing.assert_frame_equal(cohort, make_adni_cohort(0))
    assert not np.allclose(cohort[list(AAL90_ROIS)].to_numpy(), make_adni_cohort(1)[list(AAL90_ROIS)].to_numpy())
    pd.testing.assert_frame_equal(make_adni_cohort(3, CohortSpec()), make_adni_cohort(3))


def test_cohort_stages_keep_their_quantile_when_parameters_change():
    """Common random numbers: a milder ADNI-2 (lower mean stage) shrinks every AD subject's atrophy, nothing else."""
    base = CohortSpec()
    milder = replace(base, sites=(base.sites[0], replace(base.sites[1], severity=base.sites[1].severity / 2)))
    a, b = make_adni_cohort(0, base), make_adni_cohort(0, milder)
    pd.testing.assert_frame_equal(a[a.phase == "ADNI-1"], b[b.phase == "ADNI-1"])
    two_a, two_b = a[a.phase == "ADNI-2"], b[b.phase == "ADNI-2"]
    nc = (two_a.diagnosis == "NC").to_numpy()
    np.testing.assert_allclose(two_a.loc[nc, list(AAL90_ROIS)], two_b.loc[nc, list(AAL90_ROIS)])
    assert (two_b.loc[~nc, "Hippocampus_L"].to_numpy() >= two_a.loc[~nc, "Hippocampus_L"].to_numpy() - 1e-9).all()
    with pytest.raises(ValueError, match="severity_shape"):
        CohortSpec(severity_shape=0.0)


def test_cohort_effects(cohort):
    one = cohort[cohort.phase == "ADNI-1"]
    ad, nc = one[one.diagnosis == "AD"], one[one.diagnosis == "NC"]
    loss = 1 - ad[list(AAL90_ROIS)].mean() / nc[list(AAL90_ROIS)].mean()
    assert loss["Hippocampus_L"] > 0.1 and loss["Hippocampus_L"] > 3 * abs(loss["Precentral_L"])
    corr = one[list(AAL90_ROIS)].corr()
    assert corr.loc["Hippocampus_L", "Hippocampus_R"] > corr.loc["Hippocampus_L", "Calcarine_R"]
    # scanner effect: the same anatomy reads differently at 3T (deep GM smaller)
    two = cohort[cohort.phase == "ADNI-2"]
    assert two["Pallidum_L"].mean() < 0.98 * one["Pallidum_L"].mean()


def test_stratified_split_partition_and_ratio():
    y = np.r_[np.ones(199), np.zeros(229)]
    tr, te = stratified_split(y, 0.2, seed=3)
    assert len(np.intersect1d(tr, te)) == 0 and len(tr) + len(te) == len(y)
    assert abs(y[te].mean() - y.mean()) < 0.01
    assert not np.array_equal(te, stratified_split(y, 0.2, seed=4)[1])
    np.testing.assert_array_equal(te, stratified_split(y, 0.2, seed=3)[1])
    with pytest.raises(ValueError, match="test_fraction"):
        stratified_split(y, 1.5)
    with pytest.raises(ValueError, match="at least 2 per class"):
        stratified_split([0, 0, 0, 1], 0.5)


def test_federated_statistics_equal_pooled_statistics(cohort):
    fed = adni_federation(validate_adni(cohort, verbose=False), seed=0)
    pooled = torch.cat([s.train.x for s in fed]).double()
    sc = fit_scaler([s.train.x for s in fed])
    torch.testing.assert_close(sc.mean.double(), pooled.mean(0), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(sc.std.double(), pooled.std(0, unbiased=False), rtol=1e-5, atol=1e-6)
    assert torch.equal(scaler_from_sums([feature_sums(s.train.x) for s in fed]).mean, sc.mean)
    std_fed, scalers = standardize(fed, "local")
    for site in std_fed:
        torch.testing.assert_close(site.train.x.mean(0), torch.zeros(90), atol=1e-4, rtol=0)
        assert not torch.allclose(site.test.x.mean(0), torch.zeros(90), atol=1e-4)  # test not refit
    assert scalers[0] is not scalers[1]
    with pytest.raises(ValueError, match="standardisation mode"):
        standardize(fed, "global")


def test_adni_federation_shapes(cohort):
    fed = adni_federation(validate_adni(cohort, verbose=False), seed=0, synthetic=True)
    assert fed.site_names == ["ADNI-1", "ADNI-2"] and fed.task == "classification" and fed.synthetic
    assert [len(s.train) + len(s.test) for s in fed] == [428, 360]
    assert [len(s.test) for s in fed] == [86, 72]
    assert fed[0].train.x.shape == (342, 90)


# --- malformed ADNI tables ---------------------------------------------------------------------
def _small(cohort) -> pd.DataFrame:
    return pd.concat([cohort[cohort.phase == "ADNI-1"].head(6), cohort[cohort.phase == "ADNI-2"].head(6)],
                     ignore_index=True)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.drop(columns=["Hippocampus_L"]), "missing required column.*Hippocampus_L"),
    (lambda d: d.drop(columns=["diagnosis"]), "missing required column.*diagnosis"),
    (lambda d: d.assign(Amygdala_R=[np.nan] + [1.0] * (len(d) - 1)), "missing values.*Amygdala_R"),
    (lambda d: d.assign(diagnosis=["MCI"] + list(d.diagnosis[1:])), "other than AD/NC.*MCI"),
    (lambda d: d.assign(phase=["ADNI-3"] + list(d.phase[1:])), "unknown phase.*ADNI-3"),
    (lambda d: d.assign(subject_id=["X"] * 2 + list(d.subject_id[2:])), "duplicate subject.*X"),
    (lambda d: d.assign(Precentral_L=["big"] + [1.0] * (len(d) - 1)), "non-numeric.*Precentral_L"),
])
def test_adni_loader_rejects_malformed(cohort, tmp_path, mutate, message):
    path = tmp_path / "adni.csv"
    mutate(_small(cohort)).to_csv(path, index=False)
    with pytest.raises(ValueError, match=message):
        load_adni_csv(path, verbose=False)


def test_adni_loader_removes_subjects_in_both_phases(cohort, tmp_path, capsys):
    df = _small(cohort)
    df.loc[df.phase == "ADNI-2", "subject_id"] = list(df.loc[df.phase == "ADNI-1", "subject_id"][:2]) + list(
        df.loc[df.phase == "ADNI-2", "subject_id"][2:])
    df.loc[df.phase == "ADNI-2", "diagnosis"] = "CN"
    df.to_csv(tmp_path / "adni.csv", index=False)
    out = load_adni_csv(tmp_path, verbose=True)  # a folder with one CSV works too
    assert "2 subject(s) in both ADNI-1 and ADNI-2 removed from ADNI-2" in capsys.readouterr().out
    assert (out.phase == "ADNI-2").sum() == 4 and (out.phase == "ADNI-1").sum() == 6
    assert set(out.diagnosis) <= {"AD", "NC"}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_adni_csv(tmp_path / "nope.csv")


# --- UCI heart disease --------------------------------------------------------------------------
@pytest.mark.realdata
def test_uci_raw_row_counts_and_policy(uci_dir):
    for site, fname in UCI_SITES.items():
        assert len(read_uci_site(uci_dir / fname)) == UCI_ROWS[site]
    df = load_uci_heart(uci_dir)
    assert len(df) == 740  # FLamby's count after dropping slope/ca/thal and rows with NaN
    assert df.drop(columns=["site"]).notna().all().all() and set(df.target) == {0, 1}
    fed = uci_federation(df, seed=0)
    assert fed.site_names == list(UCI_SITES) and not fed.synthetic and fed.num_channels == 10


@pytest.mark.realdata
def test_uci_flamby_preprocessing_matches_flambys_published_layout(uci_dir):
    """FLamby's README: 740 rows, train/test 199/104, 172/89, 30/16, 85/45; 13 inputs after one-hot coding."""
    df = load_uci_heart(uci_dir, preprocessing="flamby")
    assert len(df) == 740
    counts = df.groupby(["site", "flamby_split"]).size().unstack()
    assert counts.loc[list(UCI_SITES), ["train", "test"]].to_numpy().tolist() == [[199, 104], [172, 89], [30, 16],
                                                                                 [85, 45]]
    assert set(UCI_FLAMBY_FEATURES) <= set(df.columns) and len(UCI_FLAMBY_FEATURES) == 13
    onehot = df[["cp_2", "cp_3", "cp_4"]].sum(axis=1)
    assert set(onehot) <= {0.0, 1.0}  # cp = 1 is the dropped first level
    raw = load_uci_heart(uci_dir)
    assert (raw["cp"] == 1).sum() == (onehot == 0).sum()
    # the split is FLamby's: stratified (by disease) where both classes have more than 2 rows, fixed seed 43
    again = load_uci_heart(uci_dir, preprocessing="flamby")
    assert (again["flamby_split"] == df["flamby_split"]).all()
    cle = df[df.site == "Cleveland"]
    rate = cle.groupby("flamby_split")["target"].mean()
    assert abs(rate["train"] - rate["test"]) < 0.02
    fed = uci_federation(df, seed=5, test_fraction=0.2)  # the FLamby split ignores seed and fraction
    assert [len(s.train) for s in fed] == [199, 172, 30, 85] and fed.num_channels == 13
    assert [len(s.test) for s in uci_federation(df, test_fraction=None)] == [303, 261, 46, 130]
    with pytest.raises(ValueError, match="Unknown UCI preprocessing 'sklearn'"):
        load_uci_heart(uci_dir, preprocessing="sklearn")


@pytest.mark.realdata
def test_uci_md5_check_accepts_originals_and_rejects_corrupt_copy(uci_dir, tmp_path):
    verify_uci_heart(uci_dir)
    for fname in UCI_MD5:
        shutil.copy(uci_dir / fname, tmp_path / fname)
    verify_uci_heart(tmp_path)
    bad = tmp_path / "processed.va.data"
    bad.write_bytes(bad.read_bytes().replace(b"?", b"0", 1))
    with pytest.raises(ValueError, match="processed.va.data has MD5 .* corrupt or modified"):
        verify_uci_heart(tmp_path)
    (tmp_path / "processed.hungarian.data").unlink()
    with pytest.raises(FileNotFoundError, match="processed.hungarian.data is missing"):
        load_uci_heart(tmp_path)


@pytest.mark.realdata
def test_uci_downloader_checks_md5_on_local_server(uci_dir, tmp_path):
    from fedlab.data.tabular import download_uci_heart

    dest = download_uci_heart(tmp_path / "dl", base_url=uci_dir.as_uri() + "/")  # file:// URL, no network
    verify_uci_heart(dest)
    server = tmp_path / "server"
    server.mkdir()
    for fname in UCI_MD5:
        shutil.copy(uci_dir / fname, server / fname)
    (server / "processed.cleveland.data").write_bytes(b"corrupt\n")
    with pytest.raises(ValueError, match="downloaded processed.cleveland.data has MD5"):
        download_uci_heart(tmp_path / "dl2", base_url=server.as_uri() + "/")
    assert not (tmp_path / "dl2" / "processed.cleveland.data").exists()


def test_loader_schema_matches_manifest():
    yaml = pytest.importorskip("yaml")
    path = Path(__file__).resolve().parents[1] / "data_manifests" / "adni_roi.yaml"
    if not path.exists():
        pytest.skip("data_manifests/adni_roi.yaml not present")
    layout = yaml.safe_load(path.read_text())["layout"]
    assert tuple(layout["feature_columns"]) == AAL90_ROIS
    assert (layout["id_column"], layout["site_column"], layout["label_column"]) == ("subject_id", "phase", "diagnosis")
