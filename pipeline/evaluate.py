"""Scoring results against the simulator's ground truth."""
from __future__ import annotations

import numpy as np
import pandas as pd
from pathlib import Path
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

# axial/lateral FWHM of the two-photon PSF: z errors are scaled down by this before gating
PSF_ANISOTROPY = 5.0


def match_points(a_um: np.ndarray, b_um: np.ndarray, *, gate_um: float = 0.6,
                 z_scale: float = 1.0 / PSF_ANISOTROPY) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching (Hungarian) of two point sets (z, y, x in um) within a gate.

    Distances are Euclidean after multiplying z differences by ``z_scale``.  Returns the
    index arrays ``(ia, ib)`` of matched pairs.
    """
    a = np.asarray(a_um, float).reshape(-1, 3) * [z_scale, 1, 1]
    b = np.asarray(b_um, float).reshape(-1, 3) * [z_scale, 1, 1]
    if len(a) == 0 or len(b) == 0:
        return np.array([], int), np.array([], int)
    d = cdist(a, b)
    cost = np.where(d <= gate_um, d, 1e6)
    ia, ib = linear_sum_assignment(cost)
    ok = d[ia, ib] <= gate_um
    return ia[ok], ib[ok]


def precision_recall(n_true: int, n_pred: int, n_match: int) -> dict:
    p = n_match / n_pred if n_pred else float("nan")
    r = n_match / n_true if n_true else float("nan")
    f1 = 2 * p * r / (p + r) if n_pred and n_true and (p + r) > 0 else float("nan")
    return {"precision": p, "recall": r, "f1": f1}


def _spacing_of(params: dict, cell: str) -> np.ndarray:
    return np.asarray(params[cell]["spacing"], float)


def score_detection(det_vox: np.ndarray, true_vox: np.ndarray, spacing) -> dict:
    """Precision/recall/F1 of detected vs true positions (voxel units, one session)."""
    ia, ib = match_points(np.asarray(det_vox) * spacing, np.asarray(true_vox) * spacing)
    return {**precision_recall(len(true_vox), len(det_vox), len(ia)), "n_true": len(true_vox),
            "n_detected": len(det_vox)}


def registration_error_um(matrix, session_um, reference_um) -> np.ndarray:
    """Distance (um) between true session positions mapped by ``matrix`` and their true
    reference-frame positions (exact also when the truth has rotation or a warp)."""
    from .register import transform_points
    return np.linalg.norm(transform_points(matrix, session_um) - np.asarray(reference_um), axis=1)


def score_links(tracks: pd.DataFrame, truth_ids: np.ndarray, true_links: set) -> dict:
    """Precision and recall of links between consecutive sessions.

    ``truth_ids`` gives, per row of ``tracks``, the true synapse id it matched (-1 if none);
    ``true_links`` holds (true_id, session_index) for true synapses detected at that session
    and the next.  A predicted link is right when both ends match the same true synapse.
    """
    t = tracks.assign(true_id=truth_ids).sort_values(["synapse_id", "session_index"])
    nxt = t.groupby("synapse_id")[["session_index", "true_id"]].shift(-1)
    linked = nxt["session_index"] == t["session_index"] + 1
    pred = t[linked]
    correct = (pred["true_id"].to_numpy() >= 0) & (pred["true_id"].to_numpy() ==
                                                    nxt.loc[linked, "true_id"].to_numpy())
    found = {(tid, s) for tid, s, ok in zip(pred["true_id"], pred["session_index"], correct) if ok}
    out = precision_recall(len(true_links), len(pred), int(correct.sum()))
    out["recall"] = len(found & true_links) / len(true_links) if true_links else float("nan")
    p, r = out["precision"], out["recall"]
    out["f1"] = 2 * p * r / (p + r) if (p + r) > 0 else float("nan")
    return out


def evaluate_results(dataset: Path, results: Path) -> pd.DataFrame:
    """Score a pipeline run on a simulated dataset; one row per metric and cell."""
    import json

    truth = pd.read_csv(dataset / "truth" / "synapses.csv")
    params = json.loads((dataset / "truth" / "params.json").read_text())
    synapses = pd.read_csv(results / "synapses.csv")
    rows = []
    for cell, tcell in truth.groupby("cell"):
        spacing = _spacing_of(params, cell)
        tracks = pd.read_csv(results / "track" / cell / "tracks.csv")
        sessions = sorted(tcell["session"].unique(), key=lambda s: tcell.loc[tcell.session == s, "day"].iloc[0])
        det_scores, reg_err = [], []
        tracks["true_id"] = -1
        for k, sess in enumerate(sessions):
            tp = tcell[(tcell["session"] == sess) & (tcell["present"] == 1)]
            det = pd.read_csv(results / "detect" / cell / f"{sess}.csv")
            det_scores.append(score_detection(det[["z", "y", "x"]].to_numpy(),
                                              tp[["z", "y", "x"]].to_numpy(), spacing))
            est = json.loads((results / "register" / cell / f"{sess}.json").read_text())["matrix"]
            reg_err.append(registration_error_um(est, tp[["z", "y", "x"]].to_numpy() * spacing,
                                                 tp[["z_um", "y_um", "x_um"]].to_numpy()))
            sel = tracks["session"].astype(str) == sess
            ia, ib = match_points(tracks.loc[sel, ["z", "y", "x"]].to_numpy() * spacing,
                                  tp[["z", "y", "x"]].to_numpy() * spacing)
            idx = np.flatnonzero(sel.to_numpy())
            tracks.iloc[idx[ia], tracks.columns.get_loc("true_id")] = tp["synapse_id"].to_numpy()[ib]
        matched = tracks[tracks["true_id"] >= 0]
        seen = set(zip(matched["true_id"], matched["session_index"]))
        true_links = {(tid, s) for tid, s in seen if (tid, s + 1) in seen}
        links = score_links(tracks, tracks["true_id"].to_numpy(), true_links)
        # weights: result synapse -> the true synapse most of its detections matched
        id_map = matched.groupby("synapse_id")["true_id"].agg(lambda v: v.value_counts().index[0])
        res = synapses[(synapses["cell"] == cell) & (synapses["present"] == 1)].copy()
        res["true_id"] = res["synapse_id"].map(id_map)
        both = res.merge(tcell[tcell["present"] == 1][["synapse_id", "session", "weight"]],
                         left_on=["true_id", "session"], right_on=["synapse_id", "session"],
                         suffixes=("", "_true"))
        both = both[(both["weight"] > 0) & (both["weight_true"] > 0)]
        r_w = np.corrcoef(np.log(both["weight"]), np.log(both["weight_true"]))[0, 1] \
            if len(both) > 2 else np.nan
        det_df = pd.DataFrame(det_scores)
        errs = np.concatenate(reg_err) if reg_err else np.array([np.nan])
        for metric, value in (
                ("detection_precision", det_df["precision"].mean()),
                ("detection_recall", det_df["recall"].mean()),
                ("detection_f1", det_df["f1"].mean()),
                ("registration_error_um_median", float(np.median(errs))),
                ("registration_error_um_p95", float(np.percentile(errs, 95))),
                ("link_precision", links["precision"]), ("link_recall", links["recall"]),
                ("link_f1", links["f1"]), ("log_weight_r", r_w)):
            rows.append({"cell": cell, "metric": metric, "value": value})
    return pd.DataFrame(rows)
