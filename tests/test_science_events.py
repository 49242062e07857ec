"""benchmarks/science_events.py's account of the true gains and losses our calls miss, which the
README quotes for why the pyramidal turnover of make bench-science ran low."""
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from science_events import missed_events  # noqa: E402

SESSIONS = [f"s{k}" for k in range(6)]


def _rows(ident, where, present, detected=None, weight=1.0):
    detected = present if detected is None else detected
    return [{"cell": "c1", "cell_type": "pyr", "synapse_id": ident, "session": s, "day": 4 * k,
             "present": present[k], "detected": detected[k], "weight": weight * present[k],
             "z_um": where[0], "y_um": where[1], "x_um": where[2]} for k, s in enumerate(SESSIONS)]


def test_missed_gains_and_losses_are_named_by_cause(tmp_path):
    a, b, c, d, e = (5, 5, 5), (5, 5.8, 5), (5, 10, 5), (5, 15, 5), (5, 20, 5)
    truth = pd.DataFrame(
        _rows(1, a, [1, 1, 1, 0, 0, 0])              # lost after s2 ...
        + _rows(2, b, [0, 0, 0, 1, 1, 1])            # ... and a neighbour born 0.8 um away
        + _rows(3, c, [1, 1, 1, 1, 0, 0])            # lost after s3, and our calls say so
        + _rows(4, d, [0, 0, 1, 1, 1, 1], weight=0.1)  # born too faint to detect
        + _rows(5, e, [1, 1, 0, 0, 0, 0]))           # lost, but its track is called present
    first_a_then_b = _rows(1, a, [1] * 6)
    for r in first_a_then_b[3:]:
        r["y_um"] = b[1]
    ours = pd.DataFrame(first_a_then_b + _rows(2, c, [1, 1, 1, 1, 0, 0])
                        + _rows(3, e, [1] * 6, detected=[1, 1, 0, 0, 0, 0]))
    (tmp_path / "data" / "truth").mkdir(parents=True)
    (tmp_path / "results").mkdir()
    truth.to_csv(tmp_path / "data" / "truth" / "synapses.csv", index=False)
    ours.to_csv(tmp_path / "results" / "synapses.csv", index=False)

    out = missed_events(tmp_path).set_index("true_id")
    assert len(out) == 5
    assert out.loc[3, "found"] and out.loc[3, "kind"] == "loss" and out.loc[3, "interval"] == 3
    why = out.loc[~out["found"], "why"].to_dict()
    assert why == {1: "track_holds_another", 2: "track_holds_another", 4: "not_detected",
                   5: "called_through"}
    assert out.loc[2, "kind"] == "birth" and out.loc[2, "interval"] == 2
    assert out.loc[4, "weight"] == 0.1
