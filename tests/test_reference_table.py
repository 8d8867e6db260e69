"""The paper's numbers appear only for datasets the paper reports, with sites matched by the manifest's letters;
our rows are labelled with the data they come from."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from fedlab.data.federation import Federation, Site, Split
from fedlab.experiments.lcfed import (
    describe_comparison,
    paper_table,
    reference_table,
    side_by_side,
    site_letters,
)
from fedlab.federation.history import History


def _federation(names, synthetic, provenance=None, name="prostate") -> Federation:
    x = torch.zeros(1, 1, 4, 4)
    sites = [Site(n, Split(x, x), Split(x, x)) for n in names]
    return Federation(name, sites, synthetic=synthetic, provenance=provenance or {})


def _histories(sites, iou):
    out = {}
    for method in ("Local", "FedAvg"):
        h = History(method=method, sites=list(sites))
        for site, value in zip(sites, iou, strict=True):
            h.record(site, "iou", value, "test", 1, stage="final")
            h.record(site, "assd", 2.0, "test", 1, stage="final")
        out[method] = h
    return out


REAL = {"site_letters": {"RUNMC": "A", "BMC": "B"}, "reference": {"table": "lcfed", "dataset": "prostate"}}


def test_site_letters_come_from_the_manifest_for_real_data() -> None:
    real = _federation(["BMC", "RUNMC"], False, REAL)  # folder order differs from the paper's
    assert site_letters(real) == {"BMC": "B", "RUNMC": "A"}
    assert site_letters(_federation(["X", "Y"], False)) == {"X": "X", "Y": "Y"}  # no letters: names kept
    assert site_letters(_federation(["A", "B", "C"], True)) == {"A": "A", "B": "B", "C": "C"}
    assert site_letters(["p", "q"]) == {"p": "A", "q": "B"}


def test_real_subset_is_matched_by_letter_and_paper_average_recomputed() -> None:
    real = _federation(["BMC", "RUNMC"], False, REAL)
    ours = paper_table(_histories(["BMC", "RUNMC"], [0.5, 0.7]), federation=real)
    assert list(ours["IoU (%)"].columns) == ["B", "A", "avg"] and ours.attrs["data"] == "real"
    assert ours.loc["Local Train", ("IoU (%)", "A")] == pytest.approx(70.0)  # RUNMC is the paper's site A
    ref = reference_table(real)
    full = reference_table("prostate")
    pd.testing.assert_frame_equal(ref, full)
    table = side_by_side(ours, ref)
    assert ("Local Train", "ours (real)") in table.index and ("FedAvg", "paper (real data)") in table.index
    paper = table.xs("paper (real data)", level=1)
    assert paper.loc["FedAvg", ("IoU (%)", "A")] == full.loc["FedAvg", ("IoU (%)", "A")]
    assert paper.loc["FedAvg", ("IoU (%)", "avg")] == pytest.approx(
        full.loc["FedAvg", [("IoU (%)", "A"), ("IoU (%)", "B")]].mean())  # over the same two sites as ours
    assert "recomputed over B, A" in table.attrs["note"]
    text = describe_comparison(table, real, ref, "smoke")
    assert text.startswith("**Ours (real data):** prostate (real), preset `smoke`, sites B = BMC, A = RUNMC.")
    assert "recomputed" in text


def test_no_paper_numbers_for_a_dataset_the_paper_does_not_report() -> None:
    own = _federation(["H1", "H2"], False, {"dataset": "folder"}, name="mine")
    assert reference_table(own) is None
    ours = paper_table(_histories(["H1", "H2"], [0.5, 0.7]), federation=own)
    assert list(ours["IoU (%)"].columns) == ["H1", "H2", "avg"]
    table = side_by_side(ours, None)
    assert set(table.index.get_level_values(1)) == {"ours (real)"}
    assert "does not report this dataset" in describe_comparison(table, own, None, "smoke")


def test_synthetic_rows_are_labelled_synthetic_and_use_every_paper_site() -> None:
    synth = _federation(list("ABCDEF"), True)
    ours = paper_table(_histories(list("ABCDEF"), [0.5] * 6), federation=synth)
    table = side_by_side(ours, reference_table(synth))
    assert ("FedAvg", "ours (synthetic)") in table.index and table.attrs["note"] == ""
    full = reference_table("prostate")
    paper = table.xs("paper (real data)", level=1)
    assert paper.loc["FedAvg", ("IoU (%)", "avg")] == full.loc["FedAvg", ("IoU (%)", "avg")]  # the published one
