"""benchmarks/science_diff.py, which the README quotes for what re-running the science record's
studies changed: errors against the truth table, CIs holding it and tests finding the
difference, counted over the same studies before and now."""
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from science_diff import compare_conclusions, compare_quantities  # noqa: E402


def _quantities(estimates, covers):
    return pd.DataFrame({
        "study": "effect", "seed": [1, 2], "cell_type": "PV", "quantity": "turnover_per_interval",
        "estimate": estimates, "estimate_truth": [0.03, 0.05], "covers_truth_table": covers,
        "has_ci": [True, True]})


def test_quantities_are_compared_over_the_same_studies_against_the_truth_table():
    before = _quantities([0.05, 0.04], [False, True])
    now = _quantities([0.035, 0.05], [True, True])
    row = compare_quantities(before, now).iloc[0]
    assert row["studies"] == 2
    assert row["mean before"] == pytest.approx(0.045) and row["mean now"] == pytest.approx(0.0425)
    assert row["truth table"] == pytest.approx(0.04)
    assert row["|error| before"] == pytest.approx((0.02 + 0.01) / 2)
    assert row["|error| now"] == pytest.approx((0.005 + 0.0) / 2)
    assert row["CIs holding it, before"] == 1 and row["now"] == 2


def test_a_study_only_one_side_has_is_left_out():
    before = _quantities([0.05, 0.04], [False, True]).iloc[:1]
    row = compare_quantities(before, _quantities([0.035, 0.05], [True, True])).iloc[0]
    assert row["studies"] == 1 and row["|error| now"] == pytest.approx(0.005)


def test_a_difference_is_found_when_significant_with_the_right_sign_on_the_images():
    def conclusions(significant, right_sign):
        return pd.DataFrame({"seed": [1, 2, 1], "source": ["images", "images", "truth"],
                             "test": "survival_day", "significant": significant,
                             "right_sign": right_sign})
    before = conclusions([True, True, True], [True, False, True])
    now = conclusions([True, False, True], [True, True, True])
    row = compare_conclusions(before, now).iloc[0]
    assert row["studies"] == 2 and row["found before"] == 1 and row["found now"] == 1
    both = conclusions([True, True, False], [True, True, False])
    assert compare_conclusions(before, both).iloc[0]["found now"] == 2
