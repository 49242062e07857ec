"""The detector's finding as evidence for the presence calls: calibration and its effect."""
import numpy as np
import pandas as pd
import pytest
from scipy import special

from pipeline.core.detection_evidence import (DEFAULT_ABSENT_RATE, detection_log_factors,
                                              fit_detection_curve, interior_rows)
from pipeline.core.errors import InputError
from pipeline.core.presence_hmm import fit_presence
from pipeline.params import PresenceParams
from pipeline.stages.presence import detection_absent_rate, textured_cell


def test_interior_rows_lie_strictly_between_the_first_and_last_detection():
    det = np.array([[0, 1, 0, 1, 1, 0], [0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 1]], bool)
    observed = np.ones(det.shape, bool)
    observed[2, 3] = False
    inner = interior_rows(det, observed)
    assert inner[0].tolist() == [False, False, True, True, False, False]
    assert not inner[1].any()                         # one detection: nothing between
    assert inner[2].tolist() == [False, True, True, False, True, False]   # unobserved left out


def test_the_detection_curve_is_recovered_and_never_falls_with_signal():
    rng = np.random.default_rng(4)
    x = rng.uniform(-2, 12, 6000)
    y = rng.random(x.size) < special.expit(-3.0 + 0.9 * x)
    a, b = fit_detection_curve(x, y)
    assert abs(a + 3.0) < 0.25 and abs(b - 0.9) < 0.08
    _, slope = fit_detection_curve(x, rng.random(x.size) < special.expit(3.0 - 0.9 * x))
    assert slope == 0.0


def test_factors_favour_presence_where_found_and_absence_where_bright_and_missed():
    rng = np.random.default_rng(5)
    z = rng.uniform(0, 20, (40, 8))
    det = rng.random(z.shape) < special.expit(-3.0 + 0.9 * z)
    det[:, 0] = det[:, -1] = True                    # every row interior but the ends
    factors, cal = detection_log_factors(z, det, np.ones(z.shape, bool), absent_rate=0.02)
    assert cal["calibrated"]
    found_bright = det & (z > 8)
    missed_bright = ~det & (z > 8)
    assert (factors[..., 1] > factors[..., 0])[found_bright].all()
    assert (factors[..., 1] < factors[..., 0])[missed_bright].all()
    few, cal = detection_log_factors(z[:2], det[:2], np.ones((2, 8), bool), absent_rate=0.02)
    assert not cal["calibrated"] and not few.any()  # too few rows to calibrate: no evidence


def _cell(seed):
    """50 bright synapses present throughout; 20 dim ones (3 noise SDs) born at the fifth
    session, which the detector finds as often as that signal allows; 20 tracks of one false
    detection each at places without a synapse."""
    rng = np.random.default_rng(seed)
    bright = np.exp(rng.normal(np.log(15), 0.5, (50, 1))) * np.exp(rng.normal(0, 0.2, (50, 8)))
    dim = np.zeros((20, 8))
    dim[:, 4:] = 3.0
    snr = np.vstack([bright, dim, np.zeros((20, 8))]) + rng.normal(0, 1, (90, 8))
    det = rng.random(snr.shape) < special.expit(-1.8 + 0.75 * snr)
    det[50:70, :4] = False
    det[70:] = False
    det[np.arange(70, 90), rng.integers(0, 8, 20)] = True
    truth = np.zeros(snr.shape, bool)
    truth[:50] = True
    truth[50:70, 4:] = True
    return snr, det, truth, rng.normal(0, 1, 300)


def test_dim_synapses_the_detector_finds_are_called_present_and_false_ones_stay_absent():
    kw = dict(own_signal_reach=0, dim_present=False, signal_memory=False, lost_for_good=True)
    wrong = {"without": 0, "with": 0}
    for seed in range(4):
        snr, det, truth, null = _cell(seed)
        observed = np.ones(snr.shape, bool)
        factors, cal = detection_log_factors(snr, det, observed, absent_rate=0.02)
        assert cal["calibrated"] and abs(cal["b"] - 0.75) < 0.25
        for name, detection in (("without", None), ("with", factors)):
            called = fit_presence(snr, observed, null_snr=null, detection=detection,
                                  **kw)["p_present"] >= 0.5
            wrong[name] += int((called != truth).sum())
            assert called[:50].mean() > 0.98            # bright synapses: present either way
            assert called[70:].mean() < 0.02            # one false detection: still absent
    # the signal alone calls many of the dim synapses' sessions absent; the detector's
    # findings there speak for them (known answer: 132 wrong calls -> 48 on these cells)
    assert wrong["with"] < 0.6 * wrong["without"]


def test_auto_turns_the_evidence_on_in_cells_of_puncta_without_morphology_or_textured():
    one = pd.DataFrame({"morphology_level": [np.nan, np.nan]})
    two = pd.DataFrame({"morphology_level": [1.0, 1.2]})
    for setting in ("auto", "one_channel"):
        assert detection_absent_rate(one, setting, target="puncta") == DEFAULT_ABSENT_RATE
        assert detection_absent_rate(one, setting, target="spines") is None
        assert detection_absent_rate(two, setting, target="puncta") is None
    assert detection_absent_rate(two, "auto", target="puncta", textured=True) == DEFAULT_ABSENT_RATE
    assert detection_absent_rate(two, "one_channel", target="puncta", textured=True) is None
    assert detection_absent_rate(two, "auto", target="spines", textured=True) is None
    assert detection_absent_rate(two, 0.05, target="puncta") == 0.05
    assert detection_absent_rate(one, None, target="puncta", textured=True) is None


def test_a_cell_is_textured_where_the_track_stage_named_a_session():
    def cell(*factors):
        return {"sessions": [{"session": f"s{i}", "texture_factor": f}
                             for i, f in enumerate(factors)]}
    assert textured_cell(cell(1.0, 1.1, 2.1))              # one session is enough
    assert not textured_cell(cell(1.0, 1.19, None))        # smooth, or not measured
    assert not textured_cell({"sessions": [{"session": "s0"}]})   # a table before the column
    assert not textured_cell(None)
    assert not textured_cell(cell(2.1), limit=None)


def test_a_setting_that_is_not_a_probability_is_refused_by_name():
    for bad in ("on", 1.5, 0, True):
        with pytest.raises(InputError, match="detection_evidence"):
            PresenceParams(detection_evidence=bad)
    assert PresenceParams().detection_evidence == "auto"
