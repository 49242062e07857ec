"""benchmarks/spine_draws.py, which BENCHMARKS_SPINES.md quotes for the spine settings over
several draws: the core rule applied to lax detections, and the draws meeting the targets."""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from spine_draws import LAX_CORE, score, summarise  # noqa: E402


def _rows():
    truth = np.array([[5.0, 10, 10], [5.0, 40, 40], [5.0, 70, 70]])
    # a hit off the core, a hit at core ratio 0.58, a false one at 0.7
    det = pd.DataFrame({"z": [5.0, 5.0, 5.0], "y": [10.0, 40.0, 100.0], "x": [10.0, 40.0, 100.0],
                        "core_ratio": [0.2, 0.58, 0.7]})
    return [{"session": 0, "fine": None, "detected_core": LAX_CORE, "det": det, "truth": truth}]


def test_the_core_rule_keeps_detections_below_the_share():
    spacing = np.array([0.8, 0.1, 0.1])
    strict = score(spacing, _rows(), fine=None, core_share=0.5)
    assert strict == pytest.approx({"precision": 1.0, "recall": 1 / 3})
    middle = score(spacing, _rows(), fine=None, core_share=0.6)
    assert middle == pytest.approx({"precision": 1.0, "recall": 2 / 3})
    lax = score(spacing, _rows(), fine=None, core_share=0.75)
    assert lax == pytest.approx({"precision": 2 / 3, "recall": 2 / 3})


def test_a_draw_meets_the_targets_only_with_both():
    scores = pd.DataFrame({"setting": ["a", "a", "a", "b"], "draw": ["1", "2", "3", "1"],
                           "precision": [0.86, 0.84, 0.90, 0.95],
                           "recall": [0.91, 0.95, 0.89, 0.90]})
    out = summarise(scores).set_index("setting")
    assert out.loc["a", "draws meeting both targets"] == 1 and out.loc["a", "draws"] == 3
    assert out.loc["a", "precision, worst"] == pytest.approx(0.84)
    assert out.loc["a", "recall, mean"] == pytest.approx((0.91 + 0.95 + 0.89) / 3)
    assert out.loc["b", "draws meeting both targets"] == 1
