"""Agreement of a run with a lab's own annotations (``evaluate --annotations``).

The annotation plays the truth's part, with the same scorers as ``evaluate --truth``: detections
of each session matched one-to-one to the annotated points within an anisotropic gate (recall;
precision only when the annotation is complete, else the number of detections nobody
annotated), the links between consecutive sessions of the tracks (of our links between
annotated points, the share joining the same annotated synapse; of the annotator's links, the
share we make), the presence calls of the synapses both followed, turnover and survival from
each, and the correlation of log weights where the annotation has intensities.  Per cell, and
pooled as the mean over cells with a bootstrap CI over cells.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .evaluate import (assign_true_ids, score_detection, score_links, session_order,
                       track_true_ids, true_links_of, turnover_vs_truth)

#: the columns of ``evaluation/annotations.csv`` that hold a score
SCORES = ["recall", "precision", "unannotated_detections", "link_agreement", "link_recall",
          "presence_agreement", "added_error_pp", "lost_error_pp", "survival_annotation",
          "survival_pipeline", "log_weight_r"]


def _as_truth(ann: pd.DataFrame, days: dict) -> pd.DataFrame:
    """The annotation in the truth table's form (``synapse_id`` = annotation id)."""
    return ann.assign(synapse_id=ann["annotation_id"],
                      day=ann["session"].map(days).astype(float))


def cell_agreement(ann: pd.DataFrame, *, detections: dict[str, pd.DataFrame],
                   tracks: pd.DataFrame, synapses: pd.DataFrame, spacing, gate_um: float,
                   z_scale: float, complete: bool) -> tuple[dict, pd.DataFrame]:
    """Scores of one cell and its per-synapse agreement.

    ``ann``: the cell's annotation in session voxels (``z, y, x``); ``detections``: session ->
    the detect stage's table; ``tracks``: the track stage's table; ``synapses``: the cell's
    rows of synapses.csv; ``spacing``: voxel size (z, y, x) um.
    """
    spacing = np.asarray(spacing, float)
    days = synapses.drop_duplicates("session").set_index("session")["day"].to_dict()
    order = session_order(synapses)
    truth = _as_truth(ann, days)
    gate = {"gate_um": gate_um, "z_scale": z_scale}
    det_scores = []
    for session in order:
        pts = truth[(truth["session"] == session) & (truth["present"] == 1)]
        det = detections.get(session, pd.DataFrame(columns=["z", "y", "x"]))
        det_scores.append(score_detection(det[["z", "y", "x"]].to_numpy(float),
                                          pts[["z", "y", "x"]].to_numpy(float), spacing, **gate))
    det_df = pd.DataFrame(det_scores)
    n_det, n_match = int(det_df["n_detected"].sum()), int(det_df["n_matched"].sum())
    t = tracks.copy()
    t["true_id"] = assign_true_ids(t, truth, spacing, **gate)
    links = score_links(t, t["true_id"].to_numpy(), true_links_of(t, t["true_id"].to_numpy()))
    # presence, turnover and survival of the synapses both followed
    id_map = track_true_ids(t)
    key = synapses["track_id"] if "track_id" in synapses.columns else synapses["synapse_id"]
    ours = synapses.assign(annotation_id=key.map(id_map)).dropna(subset=["annotation_id"])
    ours["annotation_id"] = ours["annotation_id"].astype(int)
    ours = ours.drop_duplicates(["annotation_id", "session"])
    followed = sorted(set(ours["annotation_id"]))
    seen = truth[truth["present"] == 1].groupby("annotation_id")["session"].agg(set)
    grid = pd.MultiIndex.from_product([followed, order], names=["annotation_id", "session"])
    mine = ours.set_index(["annotation_id", "session"])["present"].reindex(grid)
    theirs = pd.Series([int(s in seen.get(a, set())) for a, s in grid], index=grid)
    observed = mine.notna()
    agree = (mine[observed] == theirs[observed])
    per_synapse = pd.DataFrame({
        "annotation_id": followed,
        "synapse_id": ours.groupby("annotation_id")["synapse_id"].first().reindex(followed)
        .astype(int).to_numpy(),
        "sessions_compared": observed.groupby(level=0).sum().reindex(followed).to_numpy(int),
        "sessions_agreeing": agree.groupby(level=0).sum().reindex(followed, fill_value=0)
        .to_numpy(int)})
    per_synapse["agreement"] = per_synapse["sessions_agreeing"] / per_synapse[
        "sessions_compared"].replace(0, np.nan)
    cell_type = synapses["cell_type"].iloc[0] if len(synapses) else ""
    rows = pd.DataFrame({"annotation_id": [a for a, _ in grid], "session": [s for _, s in grid],
                         "present": theirs.to_numpy()})
    t_ann = _stats_table(rows.rename(columns={"annotation_id": "synapse_id"}), days, cell_type)
    t_ours = _stats_table(pd.DataFrame({"synapse_id": [a for a, _ in grid],
                                        "session": [s for _, s in grid],
                                        "present": mine.to_numpy()}), days, cell_type)
    turn = turnover_vs_truth(t_ann, t_ours) if followed else {}
    r = np.nan
    if ann["intensity"].notna().any():
        theirs_w = truth.loc[truth["present"] == 1, ["annotation_id", "session", "intensity"]]
        both = ours.merge(theirs_w.rename(columns={"intensity": "annotated_intensity"}),
                          on=["annotation_id", "session"])
        both = both[(both["weight"] > 0) & (both["annotated_intensity"] > 0)
                    & (both["present"] == 1)]
        if len(both) > 2:
            r = float(np.corrcoef(np.log(both["weight"]),
                                  np.log(both["annotated_intensity"]))[0, 1])
    scores = {
        "annotated_points": int((truth["present"] == 1).sum()), "detections": n_det,
        "matched": n_match, "recall": det_df["recall"].mean(),
        "precision": det_df["precision"].mean() if complete else np.nan,
        "unannotated_detections": np.nan if complete else n_det - n_match,
        "link_agreement": links["precision"], "link_recall": links["recall"],
        "presence_agreement": float(agree.mean()) if len(agree) else np.nan,
        "added_error_pp": turn.get("added_error_pp", np.nan),
        "lost_error_pp": turn.get("lost_error_pp", np.nan),
        "survival_annotation": turn.get("survival_true", np.nan),
        "survival_pipeline": turn.get("survival_ours", np.nan), "log_weight_r": r,
        "synapses_followed": len(followed)}
    return scores, per_synapse


def _stats_table(rows: pd.DataFrame, days: dict, cell_type: str) -> pd.DataFrame:
    from ..stats.table import prepare_table

    t = rows.assign(cell="c", cell_type=cell_type, day=rows["session"].map(days), weight=1.0)
    return prepare_table(t[["cell", "cell_type", "synapse_id", "session", "day", "present",
                            "weight"]])


def pooled(per_cell: pd.DataFrame, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean over cells of every score, with a percentile bootstrap CI over cells (NaN with
    fewer than 3 cells: a CI over one or two cells says nothing)."""
    rng = np.random.default_rng(seed)
    out = {"cell": "all", "n_cells": len(per_cell)}
    for col in SCORES + ["annotated_points", "detections", "matched", "synapses_followed"]:
        v = per_cell[col].to_numpy(float)
        fin = v[np.isfinite(v)]
        agg = np.sum if col in ("annotated_points", "detections", "matched",
                                "synapses_followed", "unannotated_detections") else np.mean
        out[col] = float(agg(fin)) if len(fin) else np.nan
        if col in SCORES and col != "unannotated_detections":
            lo = hi = np.nan
            if len(fin) >= 3:
                boots = [np.mean(rng.choice(fin, len(fin))) for _ in range(n_boot)]
                lo, hi = np.percentile(boots, [2.5, 97.5])
            out[f"{col}_ci_low"], out[f"{col}_ci_high"] = lo, hi
    return out


def to_session_voxels(ann: pd.DataFrame, *, spacing, transform: dict | None) -> pd.DataFrame:
    """One cell-session's annotated points in that session's voxels, whatever their frame."""
    from ..core.frames import to_session

    spacing = np.asarray(spacing, float)
    out = ann.copy()
    pts = out[["z", "y", "x"]].to_numpy(float, copy=True)
    for frame in set(out["frame"]):
        sel = (out["frame"] == frame).to_numpy()
        if frame == "session_um":
            pts[sel] = pts[sel] / spacing
        elif frame == "reference_um":
            if transform is None:
                raise ValueError("reference-frame annotations need the session's registration")
            pts[sel] = to_session(transform, pts[sel]) / spacing
    out[["z", "y", "x"]] = pts
    out["frame"] = "voxels"
    return out


def evaluate_annotations(ann: pd.DataFrame, results, *, complete: bool = False,
                         gate_um: float = 0.6, axial_gate_um: float = 3.0,
                         n_boot: int = 2000) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score a run folder against annotations (session names already the run's, see
    :func:`pipeline.inputs.annotations.name_sessions`).  Returns the per-cell and pooled
    scores (last row ``cell`` = ``all``) and the per-synapse agreement."""
    import json
    from pathlib import Path

    from ..contract import Layout

    layout = Layout(Path(results))
    synapses = pd.read_csv(layout.synapses)
    rows, per_synapse = [], []
    for cell, a in ann.groupby("cell"):
        mine = synapses[synapses["cell"] == cell]
        sessions = session_order(mine)
        parts, detections, spacing = [], {}, None
        for session in sessions:
            meta = json.loads(layout.path("ingest_meta", cell=cell, session=session).read_text())
            spacing = np.asarray(meta["voxel_um"], float)
            reg = layout.path("register", cell=cell, session=session)
            transform = json.loads(reg.read_text()) if reg.exists() else None
            parts.append(to_session_voxels(a[a["session"] == session], spacing=spacing,
                                           transform=transform))
            detections[session] = pd.read_csv(layout.path("detect", cell=cell, session=session))
        scores, syn = cell_agreement(
            pd.concat(parts, ignore_index=True), detections=detections,
            tracks=pd.read_csv(layout.path("track", cell=cell)), synapses=mine,
            spacing=spacing, gate_um=gate_um, z_scale=gate_um / axial_gate_um,
            complete=complete)
        rows.append({"cell": cell, "n_cells": 1, **scores})
        per_synapse.append(syn.assign(cell=cell))
    per_cell = pd.DataFrame(rows)
    table = pd.concat([per_cell, pd.DataFrame([pooled(per_cell, n_boot=n_boot)])],
                      ignore_index=True)
    syn = pd.concat(per_synapse, ignore_index=True) if per_synapse else pd.DataFrame()
    return table, syn
