"""Lesson 01's experiment helpers: the site table, equal-budget schedules, score tables and computed findings."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from fedlab.data.synthetic import make_federation
from fedlab.data.synthetic.styles import PIXEL_MM, SITE_STYLES
from fedlab.experiments.fedavg import (
    describe_comparison,
    describe_optimizer_state,
    describe_schedules,
    equal_budget_schedules,
    mechanism_table,
    score_table,
)
from fedlab.experiments.lcfed import reference_table
from fedlab.federation.history import History


@pytest.fixture(scope="module")
def federation():
    return make_federation("prostate", image_size=32, cases_scale=0.25, seed=0)


def test_mechanism_table_reads_sizes_and_styles_from_the_federation(federation):
    table = mechanism_table(federation)
    assert list(table.index) == federation.site_names
    for site, style in zip(federation, SITE_STYLES["prostate"], strict=True):
        row = table.loc[site.name]
        assert (row["train"], row["val"], row["test"]) == (len(site.train), len(site.val), len(site.test))
        assert row["annotation margin (px@64)"] == style.annotation_margin
        assert row["annotation margin (mm)"] == pytest.approx(style.annotation_margin * PIXEL_MM["prostate"])
        assert row["endorectal coil"] == style.endorectal_coil
    assert table.loc["B", "modelled on"] == "BMC"


def test_mechanism_table_follows_heterogeneity_and_refuses_real_data(federation):
    flat = mechanism_table(make_federation("prostate", image_size=32, cases_scale=0.25, seed=0, heterogeneity=0))
    assert (flat["annotation margin (px@64)"] == 0).all() and flat["gamma"].nunique() == 1
    with pytest.raises(ValueError, match="synthetic"):
        mechanism_table(dataclasses.replace(federation, synthetic=False))


@pytest.mark.parametrize(("rounds", "steps", "expected"), [
    (30, 20, [(30, 20), (10, 60), (5, 120)]),
    (3, 4, [(3, 4), (1, 12)]),
    (1, 5, [(1, 5)]),
    (12, 7, [(12, 7), (4, 21), (2, 42)]),
])
def test_equal_budget_schedules_are_distinct_and_keep_the_budget(rounds, steps, expected):
    schedules = equal_budget_schedules(rounds, steps)
    assert schedules == expected
    assert all(r * e == rounds * steps for r, e in schedules)
    assert len(set(schedules)) == len(schedules)


def test_equal_budget_schedules_reject_bad_input():
    with pytest.raises(ValueError, match="rounds"):
        equal_budget_schedules(0, 5)
    with pytest.raises(ValueError, match="factors"):
        equal_budget_schedules(10, 5, factors=(1, 0))


def _final(values: dict[str, dict[str, float]], metric: str = "iou") -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "site": s, "metric": metric, "value": v}
                         for m, per_site in values.items() for s, v in per_site.items()])


def test_score_table_gives_percent_and_the_site_mean():
    final = pd.concat([_final({"Local": {"A": 0.5, "B": 0.7}, "FedAvg": {"A": 0.6, "B": 0.6}}),
                       _final({"Local": {"A": 2.0, "B": 4.0}, "FedAvg": {"A": 1.0, "B": 1.0}}, "assd")])
    table = score_table(final, metrics=("iou", "assd"))
    assert table.loc["A", ("IoU (%)", "Local")] == pytest.approx(50.0)
    assert table.loc["avg", ("IoU (%)", "Local")] == pytest.approx(60.0)
    assert table.loc["avg", ("ASSD (px)", "Local")] == pytest.approx(3.0)  # distances keep their unit
    with pytest.raises(ValueError, match="hd95"):
        score_table(final, metrics=("hd95",))


def _iou(local, fedavg, mix, sites=("A", "B", "C")):
    return pd.DataFrame({"Local": local, "FedAvg": fedavg, "Mix": mix}, index=list(sites))


def test_describe_comparison_states_the_order_it_sees():
    # FedAvg last: the sentence must not say "between"
    lines = describe_comparison(_iou([70, 60, 50], [65, 55, 45], [80, 70, 60]), {"A": 100, "B": 50, "C": 10})
    text = "\n".join(lines)
    assert "FedAvg is below both Local and Mix" in text and "between" not in text
    assert "order: Mix > Local > FedAvg" in text
    assert "FedAvg beats Local at 0 of 3 sites" in text
    assert "C (10 training images; gain -5.0, rank" in text
    lines = describe_comparison(_iou([60, 60, 40], [65, 61, 50], [70, 70, 60]), {"A": 100, "B": 50, "C": 10})
    text = "\n".join(lines)
    assert "FedAvg is between Local and Mix: +5.3 points against Local" in text
    assert "gain +10.0, rank 1 of 3" in text and "the small sites gained more" in text


def test_describe_comparison_quotes_the_paper_and_the_margins(federation):
    sites = federation.site_names
    iou = _iou(np.full(6, 60.0), np.full(6, 61.0), np.full(6, 70.0), sites)
    iou.loc["F", "FedAvg"] = 55.0
    sizes = {s.name: len(s.train) for s in federation}
    text = "\n".join(describe_comparison(iou, sizes, federation, reference_table("prostate")))
    assert "+9.1 IoU points above Local on average" in text  # 80.85 - 71.79 in the paper's Table 1
    assert "F (+0.6)" in text  # F did not gain; its annotation margin is quoted
    with pytest.raises(ValueError, match="Mix"):
        describe_comparison(iou.drop(columns="Mix"), sizes)


def _history(method: str, curve: dict[int, float], final_iou: float) -> History:
    h = History(method=method, sites=["A", "B"])
    for rnd, value in curve.items():
        for site in h.sites:
            h.record(site, "dice", value, "test", rnd)
    for site in h.sites:
        h.record(site, "iou", final_iou, "test", max(curve), stage="final")
    return h


def test_describe_optimizer_state_compares_shared_rounds_and_kept_models():
    fresh = _history("FedAvg", {0: 0.1, 2: 0.5, 4: 0.6, 6: 0.7}, 0.55)
    persistent = _history("FedAvg", {0: 0.1, 2: 0.4, 4: 0.58, 6: 0.69}, 0.53)
    text = "\n".join(describe_optimizer_state(fresh, persistent))
    assert "Round 2: site-mean test dice 0.500 with a fresh optimiser, 0.400 with a persistent one (+0.100)" in text
    assert "Round 6" in text and "Round 0" not in text
    assert "test IoU 55.0 % fresh, 53.0 % persistent (+2.0 points)" in text


def test_describe_schedules_names_the_best_and_a_short_preset():
    table = pd.DataFrame({"rounds": [3, 1], "local_steps": [4, 12], "MiB": [4.5, 1.5], "test_iou": [20.0, 25.0]})
    text = "\n".join(describe_schedules(table, "smoke", requested=3))
    assert "allow only 2 distinct schedules" in text
    assert "Best: 1 rounds" in text and "3x the bytes" in text and "-5.0 IoU points" in text
    one = describe_schedules(table.iloc[:1], "smoke")
    assert any("nothing to compare" in line for line in one)
