"""Scoring results against the simulator's ground truth."""
from __future__ import annotations

import numpy as np
import pandas as pd
from pathlib import Path
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from ..contract import Layout
from ..core.optics import Z_SCALE

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
    if not (n_pred and n_true):
        f1 = float("nan")
    else:
        f1 = 2 * p * r / (p + r) if (p + r) > 0 else 0.0
    return {"precision": p, "recall": r, "f1": f1}


def _spacing_of(params: dict, cell: str) -> np.ndarray:
    return np.asarray(params[cell]["spacing"], float)


def score_detection(det_vox: np.ndarray, true_vox: np.ndarray, spacing, *,
                    gate_um: float = 0.6, z_scale: float = 1.0 / PSF_ANISOTROPY) -> dict:
    """Precision/recall/F1 of detected vs true positions (voxel units, one session; the
    gate as :func:`match_points`)."""
    ia, ib = match_points(np.asarray(det_vox) * spacing, np.asarray(true_vox) * spacing,
                          gate_um=gate_um, z_scale=z_scale)
    return {**precision_recall(len(true_vox), len(det_vox), len(ia)), "n_true": len(true_vox),
            "n_detected": len(det_vox), "n_matched": len(ia)}


def registration_error_um(transform, session_um, reference_um) -> np.ndarray:
    """Distance (um) between true session positions mapped by ``transform`` (a 4x4 matrix or
    a register stage JSON dict, with its warp) and their true reference-frame positions
    (exact also when the truth has rotation or a warp)."""
    from ..core.frames import to_reference
    return np.linalg.norm(to_reference(transform, session_um) - np.asarray(reference_um), axis=1)


def _links(tracks: pd.DataFrame):
    """``tracks`` (with ``true_id``) sorted by track and session, each row's successor in its
    track (``session_index``, ``true_id``), and which rows link to the very next session."""
    t = tracks.sort_values(["synapse_id", "session_index"])
    nxt = t.groupby("synapse_id")[["session_index", "true_id"]].shift(-1)
    return t, nxt, (nxt["session_index"] == t["session_index"] + 1).to_numpy()


def score_links(tracks: pd.DataFrame, truth_ids: np.ndarray, true_links: set) -> dict:
    """Precision and recall of links between consecutive sessions.

    ``truth_ids`` gives, per row of ``tracks``, the true synapse id it matched (-1 if none);
    ``true_links`` holds (true_id, session_index) for true synapses detected at that session
    and the next.  A predicted link is right when both ends match the same true synapse.
    """
    t, nxt, linked = _links(tracks.assign(true_id=truth_ids))
    pred = t[linked]
    correct = (pred["true_id"].to_numpy() >= 0) & (pred["true_id"].to_numpy() ==
                                                    nxt.loc[linked, "true_id"].to_numpy())
    found = {(tid, s) for tid, s, ok in zip(pred["true_id"], pred["session_index"], correct) if ok}
    out = precision_recall(len(true_links), len(pred), int(correct.sum()))
    out["recall"] = len(found & true_links) / len(true_links) if true_links else float("nan")
    p, r = out["precision"], out["recall"]
    out["f1"] = 2 * p * r / (p + r) if (p + r) > 0 else (0.0 if np.isfinite(p + r) else float("nan"))
    return out


def wrong_links(tracks: pd.DataFrame, truth_ids: np.ndarray) -> dict:
    """What the wrong links between consecutive sessions are (:func:`score_links`' ends):
    ``links_wrong_false_end``, those with an end on a detection no true synapse matched (a
    false detection kept across sessions: linking can do nothing about it), and
    ``links_wrong_swapped``, those joining two different true synapses (a tracking error)."""
    t, nxt, linked = _links(tracks.assign(true_id=truth_ids))
    a = t.loc[linked, "true_id"].to_numpy()
    b = nxt.loc[linked, "true_id"].to_numpy()
    return {"links_wrong_false_end": int(((a < 0) | (b < 0)).sum()),
            "links_wrong_swapped": int(((a >= 0) & (b >= 0) & (a != b)).sum())}


def pair_scores(tracks: pd.DataFrame, truth_cell: pd.DataFrame) -> dict:
    """How tracking treats close pairs (truth with ``partner_id``, the simulator's
    ``close_pair_fraction``).  ``tracks`` carries ``true_id`` (:func:`assign_true_ids`) and
    ``session``.

    ``pair_link_precision``: the share of links with an end on a pair member whose two ends
    match the same true synapse.  A pair closer than the optics resolve is one detection,
    matched to either member, so this counts every such link as an identity alternation.
    ``pair_unit_link_precision`` scores such a detection as the pair (the members present
    in that session that no other detection matched): a link is right when its two ends share
    a member.  ``pair_switch_tracks``: tracks with detections matched to each member of a
    pair, each alone (the members resolved apart, and the track jumping between them).
    """
    mates = truth_cell[truth_cell["partner_id"] > 0].drop_duplicates("synapse_id")
    mate_of = dict(zip(mates["synapse_id"], mates["partner_id"]))
    present = truth_cell[truth_cell["present"] == 1]
    present = set(zip(present["synapse_id"], present["session"].astype(str)))
    t, nxt, linked = _links(tracks)
    t, nxt = t.reset_index(drop=True), nxt.reset_index(drop=True)
    linked = np.flatnonzero(linked)
    sess = t["session"].astype(str)
    matched = set(zip(t["true_id"], sess))
    units = []
    for tid, ss in zip(t["true_id"], sess):
        mate = mate_of.get(tid)
        stands_for_both = mate is not None and (mate, ss) in present and (mate, ss) not in matched
        units.append(frozenset((tid, mate)) if stands_for_both else frozenset((tid,)))
    a, b = t["true_id"].to_numpy()[linked], nxt["true_id"].to_numpy()[linked]
    on_pair = np.array([x in mate_of or y in mate_of for x, y in zip(a, b)], bool)
    right = (a >= 0) & (a == b)
    unit_right = np.array([a[k] >= 0 and bool(units[i] & units[i + 1])
                           for k, i in enumerate(linked)], bool)
    alone = pd.Series([next(iter(u)) if len(u) == 1 else -1 for u in units], index=t.index)
    ids = alone[alone > 0].groupby(t["synapse_id"]).agg(set)
    switches = sum(any(mate_of.get(i) in s for i in s) for s in ids)
    share = (lambda ok: float(ok[on_pair].mean()) if on_pair.any() else np.nan)
    return {"pair_link_precision": share(right), "pair_unit_link_precision": share(unit_right),
            "pair_links": int(on_pair.sum()), "pair_switch_tracks": int(switches)}


def session_order(truth_cell: pd.DataFrame) -> list[str]:
    return list(truth_cell.sort_values("day")["session"].drop_duplicates())


def assign_true_ids(tracks: pd.DataFrame, truth_cell: pd.DataFrame, spacing, *,
                    gate_um: float = 0.6, z_scale: float = 1.0 / PSF_ANISOTROPY) -> np.ndarray:
    """Per row of ``tracks`` (session, z, y, x in that session's voxels) the id of the true
    synapse it matches (one-to-one per session, the gate as :func:`match_points`), or -1."""
    true_id = np.full(len(tracks), -1)
    for sess in session_order(truth_cell):
        tp = truth_cell[(truth_cell["session"] == sess) & (truth_cell["present"] == 1)]
        idx = np.flatnonzero((tracks["session"].astype(str) == sess).to_numpy())
        ia, ib = match_points(tracks.iloc[idx][["z", "y", "x"]].to_numpy() * spacing,
                              tp[["z", "y", "x"]].to_numpy() * spacing, gate_um=gate_um,
                              z_scale=z_scale)
        true_id[idx[ia]] = tp["synapse_id"].to_numpy()[ib]
    return true_id


def track_true_ids(tracks: pd.DataFrame) -> pd.Series:
    """Per track (``synapse_id``) the true synapse most of its detections matched
    (``tracks["true_id"]`` from :func:`assign_true_ids`); tracks matching none are absent."""
    matched = tracks[tracks["true_id"] >= 0]
    return matched.groupby("synapse_id")["true_id"].agg(lambda v: v.value_counts().index[0])


def true_links_of(tracks: pd.DataFrame, true_id: np.ndarray) -> set:
    """(true id, session index) of true synapses detected at that session and the next."""
    ok = true_id >= 0
    seen = set(zip(true_id[ok], tracks["session_index"].to_numpy()[ok]))
    return {(t, s) for t, s in seen if (t, s + 1) in seen}


def turnover_error_pp(tracks: pd.DataFrame, truth_cell: pd.DataFrame) -> dict:
    """Mean absolute error (percentage points) of the fractions added and lost per interval,
    with presence = a punctum of the track detected in that session."""
    sessions = session_order(truth_cell)
    pred = pd.crosstab(tracks["synapse_id"], tracks["session"].astype(str)).reindex(
        columns=sessions, fill_value=0).to_numpy() > 0
    true = truth_cell.pivot(index="synapse_id", columns="session", values="present")[sessions].to_numpy() > 0
    out = {}
    for name, m in (("pred", pred), ("true", true)):
        before, after = m[:, :-1], m[:, 1:]
        out[f"added_{name}"] = ((after & ~before).sum(0) / np.maximum(after.sum(0), 1))
        out[f"lost_{name}"] = ((before & ~after).sum(0) / np.maximum(before.sum(0), 1))
    return {"added_abs_error_pp": 100 * float(np.mean(np.abs(out["added_pred"] - out["added_true"]))),
            "lost_abs_error_pp": 100 * float(np.mean(np.abs(out["lost_pred"] - out["lost_true"])))}


#: a spine (simulated with ``spines``) is found by a detection within 1 um of its head (issue 26)
SPINE_GATE_UM = 1.0


def _gate_of(params: dict, cell: str) -> dict:
    """The match gate for ``cell``: :data:`SPINE_GATE_UM` for a spine cell, else the default."""
    return {"gate_um": SPINE_GATE_UM} if params.get(cell, {}).get("spines") else {}


def read_run(dataset: Path, results: Path):
    """(truth, params, layout, synapses) of a workflow run on a simulated dataset."""
    import json

    truth = pd.read_csv(dataset / "truth" / "synapses.csv")
    params = json.loads((dataset / "truth" / "params.json").read_text())
    layout = Layout(results)
    return truth, params, layout, pd.read_csv(layout.synapses)


def cells_with_true_ids(truth: pd.DataFrame, params: dict, layout: Layout,
                        synapses: pd.DataFrame):
    """Per simulated cell of a run (:func:`read_run`): (cell, its truth rows, its tracks and
    its ``synapses`` rows, both with ``true_id``: per track row the true synapse it matches,
    per synapse row the one its track matched most, NaN for none), as
    :func:`evaluate_results` matches them."""
    for cell, tcell in truth.groupby("cell"):
        tracks = pd.read_csv(layout.path("track", cell=cell))
        tracks["true_id"] = assign_true_ids(tracks, tcell, _spacing_of(params, cell),
                                            **_gate_of(params, cell))
        ours = synapses[synapses["cell"] == cell].copy()
        ours["true_id"] = ours["synapse_id"].map(track_true_ids(tracks))
        yield cell, tcell, tracks, ours


def evaluate_results(dataset: Path, results: Path) -> pd.DataFrame:
    """Score a pipeline run on a simulated dataset; one row per metric and cell (a spine
    cell's detections matched within :data:`SPINE_GATE_UM`, a punctum's within 0.6 um)."""
    import json

    truth, params, layout, synapses = read_run(dataset, results)
    rows = []
    for cell, tcell, tracks, res_all in cells_with_true_ids(truth, params, layout, synapses):
        spacing = _spacing_of(params, cell)
        gate = _gate_of(params, cell)
        sessions = session_order(tcell)
        det_scores, called_scores, reg_err = [], [], []
        for sess in sessions:
            tp = tcell[(tcell["session"] == sess) & (tcell["present"] == 1)]
            det = pd.read_csv(layout.path("detect", cell=cell, session=sess))
            det_scores.append(score_detection(det[["z", "y", "x"]].to_numpy(),
                                              tp[["z", "y", "x"]].to_numpy(), spacing, **gate))
            # the final table's rows called present, scored as detections: what a user
            # reading synapses.csv sees in this session (tracks carried through sessions
            # where they were not detected, calls right or wrong)
            called = res_all[(res_all["session"] == sess) & (res_all["present"] == 1)]
            called_scores.append(score_detection(called[["z", "y", "x"]].to_numpy(float),
                                                 tp[["z", "y", "x"]].to_numpy(), spacing,
                                                 **gate))
            est = json.loads(layout.path("register", cell=cell, session=sess).read_text())
            reg_err.append(registration_error_um(est, tp[["z", "y", "x"]].to_numpy() * spacing,
                                                 tp[["z_um", "y_um", "x_um"]].to_numpy()))
        links = score_links(tracks, tracks["true_id"].to_numpy(),
                            true_links_of(tracks, tracks["true_id"].to_numpy()))
        res = res_all[res_all["present"] == 1]
        both = res.merge(tcell[tcell["present"] == 1][["synapse_id", "session", "weight"]],
                         left_on=["true_id", "session"], right_on=["synapse_id", "session"],
                         suffixes=("", "_true"))
        both = both[(both["weight"] > 0) & (both["weight_true"] > 0)]
        r_w = np.corrcoef(np.log(both["weight"]), np.log(both["weight_true"]))[0, 1] \
            if len(both) > 2 else np.nan
        # log weight change of synapses persisting in both truth and result
        r_dw = _log_change_r(res_all, tcell, sessions)
        norm = normalisation_error_pct(res_all, tcell)
        det_df, called_df = pd.DataFrame(det_scores), pd.DataFrame(called_scores)
        errs = np.concatenate(reg_err) if reg_err else np.array([np.nan])
        for metric, value in (
                ("detection_precision", det_df["precision"].mean()),
                ("detection_recall", det_df["recall"].mean()),
                ("detection_f1", det_df["f1"].mean()),
                ("called_precision", called_df["precision"].mean()),
                ("called_recall", called_df["recall"].mean()),
                ("registration_error_um_median", float(np.median(errs))),
                ("registration_error_um_p95", float(np.percentile(errs, 95))),
                ("link_precision", links["precision"]), ("link_recall", links["recall"]),
                ("link_f1", links["f1"]),
                *wrong_links(tracks, tracks["true_id"].to_numpy()).items(),
                ("log_weight_r", r_w), ("log_change_r", r_dw),
                *((f"normalisation_error_pct_{k}", v) for k, v in norm.items()),
                *turnover_error_pp(tracks, tcell).items(),
                *(pair_scores(tracks, tcell).items() if "partner_id" in tcell else ())):
            rows.append({"cell": cell, "metric": metric, "value": value})
    rows += population_scores(truth, synapses, params)
    return pd.DataFrame(rows)


def normalisation_error_pct(res: pd.DataFrame, truth: pd.DataFrame) -> dict:
    """Cross-session error of each normalisation method, in percent.

    Both methods are applied to the result's raw intensities.  For each session, the median
    over synapses present there in both the result and the truth of (our weight / true
    weight) is that session's scale; with perfect normalisation it is the same in every
    session.  The error is the mean absolute deviation of the sessions' scales from their
    median, relative to it.  ``res`` needs ``true_id`` (the true synapse of each row).
    """
    from ..core.normalise import NORMALISATIONS, normalise_cell_weights

    if "intensity" not in res.columns or res["intensity"].isna().all():
        return {m: float("nan") for m in NORMALISATIONS}   # e.g. an imported weight matrix
    out = {}
    for method in NORMALISATIONS:
        w = normalise_cell_weights(res, method)
        ours = res.assign(w=w)
        ours = ours[(ours["present"] == 1) & (ours["w"] > 0)].dropna(subset=["true_id"])
        ours = ours.assign(true_id=ours["true_id"].astype(int))
        true_w = truth[truth["present"] == 1][["synapse_id", "session", "weight"]]
        both = ours.merge(true_w.rename(columns={"synapse_id": "true_id", "weight": "weight_true"}),
                          on=["true_id", "session"])
        scale = (both["w"] / both["weight_true"]).groupby(both["session"]).median()
        out[method] = float(100 * np.mean(np.abs(scale / scale.median() - 1))) if len(scale) > 1 \
            else float("nan")
    return out


def _log_change_r(res: pd.DataFrame, truth: pd.DataFrame, sessions) -> float:
    """r of log(w_t+1 / w_t), ours vs truth, for synapses present in both sessions in both."""
    ours = res[res["present"] == 1].dropna(subset=["true_id"])
    ours = ours.assign(true_id=ours["true_id"].astype(int)).drop_duplicates(["true_id", "session"])
    wo = ours.pivot(index="true_id", columns="session", values="weight")
    wt = truth[truth["present"] == 1].pivot(index="synapse_id", columns="session", values="weight")
    xs, ys = [], []
    for a, b in zip(sessions[:-1], sessions[1:]):
        if not {a, b} <= set(wo.columns) or not {a, b} <= set(wt.columns):
            continue
        ids = wo.index.intersection(wt.index)
        o = np.log(wo.loc[ids, b] / wo.loc[ids, a])
        t = np.log(wt.loc[ids, b] / wt.loc[ids, a])
        ok = np.isfinite(o) & np.isfinite(t)
        xs.append(o[ok])
        ys.append(t[ok])
    if not xs or sum(len(x) for x in xs) < 3:
        return float("nan")
    return float(np.corrcoef(np.concatenate(xs), np.concatenate(ys))[0, 1])


def _hazard_rows(key: str, name: str, table: pd.DataFrame) -> list[dict]:
    """Slope of the logistic loss hazard on ln weight, with its 95 % CI."""
    from ..stats.hazard import at_risk_intervals, fit_loss_logistic
    from ..stats.table import consecutive_pairs

    r = at_risk_intervals(consecutive_pairs(table))
    if r["lost"].sum() < 2:
        return []
    row = fit_loss_logistic(r)[1]
    return [{"cell": key, "metric": f"hazard_slope_{name}{sfx}", "value": row[col]}
            for sfx, col in (("", "coef"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high"))]


def turnover_vs_truth(t_true: pd.DataFrame, t_ours: pd.DataFrame) -> dict:
    """Turnover and survival of one group (a cell type or a cell), ours against the truth.

    Both tables as from :func:`pipeline.stats.table.prepare_table`.  Returns the mean
    fractions added and lost per interval (``added_true``, ``added_ours``, ...), the mean
    absolute error of the per-interval fractions in percentage points (``added_error_pp``,
    ``lost_error_pp``) and survival to the truth's last day (``survival_true``,
    ``survival_ours``).
    """
    from ..stats.survival import survival, turnover

    a = turnover(t_true).set_index("day")
    b = turnover(t_ours).set_index("day").reindex(a.index)
    s_true, s_ours = survival(t_true), survival(t_ours)
    last = s_true["day"].max()
    out = {}
    for col in ("added", "lost"):
        out[f"{col}_true"] = a[col].mean()
        out[f"{col}_ours"] = b[col].mean()
        out[f"{col}_error_pp"] = 100 * float(np.nanmean(np.abs(b[col] - a[col])))
    for name, table in (("true", s_true), ("ours", s_ours)):
        v = table[table["day"] == last]["survival"]
        out[f"survival_{name}"] = float(v.iloc[0]) if len(v) else np.nan
    return out


def hide_unobserved_like(full: pd.DataFrame, cut: pd.DataFrame, *, gate_um: float = 0.6,
                         z_scale: float = Z_SCALE) -> pd.DataFrame:
    """``full`` (a run's synapses.csv) with ``present`` emptied wherever the same synapse was
    not observed in ``cut`` (a run of the same cells with some sessions imaged shallower).
    Synapses of the two runs are matched per cell by their mean reference-frame position
    (nearest, within ``gate_um``, z scaled by ``z_scale``); unmatched ones are left as they are.
    """
    from scipy.spatial import cKDTree

    out = []
    scale = np.array([z_scale, 1.0, 1.0])
    for cell, f in full.groupby("cell"):
        c = cut[cut["cell"] == cell]
        pos_f = f.groupby("synapse_id")[["z_um", "y_um", "x_um"]].mean()
        pos_c = c.groupby("synapse_id")[["z_um", "y_um", "x_um"]].mean()
        d, i = cKDTree(pos_c.to_numpy() * scale).query(pos_f.to_numpy() * scale)
        twin = dict(zip(pos_f.index, np.where(d < gate_um, pos_c.index.to_numpy()[
            np.minimum(i, len(pos_c) - 1)], -1)))
        hidden = set(zip(*c.loc[c["observed"] == 0, ["synapse_id", "session"]].to_numpy().T))
        hide = [(twin[s], sess) in hidden for s, sess in zip(f["synapse_id"], f["session"])]
        out.append(f.assign(present=f["present"].astype(float).mask(hide)))
    return pd.concat(out, ignore_index=True)


def censoring_comparison(cut: pd.DataFrame, full: pd.DataFrame) -> pd.DataFrame:
    """Per cell type: survival to the last day and mean fractions added and lost per interval
    of a run with shallower sessions (``cut``), against the full-depth run on the same observed
    synapse-sessions (:func:`hide_unobserved_like`), and what counting the unobserved as
    absent would have given (the old rule)."""
    from ..stats.survival import survival, turnover
    from ..stats.table import prepare_table

    tables = {"censored": prepare_table(cut),
              "full_same_synapses": prepare_table(hide_unobserved_like(full, cut)),
              "unobserved_counted_absent": prepare_table(
                  cut.assign(present=cut["present"].fillna(0), observed=1))}
    rows = []
    for ctype in sorted(tables["censored"]["cell_type"].unique()):
        row = {"cell_type": ctype}
        for name, t in tables.items():
            t = t[t["cell_type"] == ctype]
            s, turn = survival(t), turnover(t)
            row[f"survival_{name}"] = float(s.loc[s["day"] == s["day"].max(), "survival"].iloc[0])
            row[f"added_{name}"] = float(turn["added"].mean())
            row[f"lost_{name}"] = float(turn["lost"].mean())
        for q in ("survival", "added", "lost"):
            row[f"{q}_difference"] = row[f"{q}_censored"] - row[f"{q}_full_same_synapses"]
        cells = tables["censored"][tables["censored"]["cell_type"] == ctype]
        row["not_observed_rows"] = int((cells["observed"] == 0).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def binned_kesten(table: pd.DataFrame) -> dict:
    """The published binned-moment Kesten fit (``a, c, b, d``) on a prepared table's
    consecutive pairs, as stats/kesten.csv fits them; NaNs where there are too few pairs."""
    from ..stats.kesten_models import fit_kesten_binned
    from ..stats.table import consecutive_pairs, weighed_pairs

    pairs = weighed_pairs(consecutive_pairs(table))
    try:
        return fit_kesten_binned(pairs["w_t"], pairs["w_next"])
    except ValueError:
        return {c: np.nan for c in "acbd"}


def population_scores(truth: pd.DataFrame, synapses: pd.DataFrame, params: dict) -> list[dict]:
    """Turnover, log-normal sigma and Kesten fits: ours vs the truth table vs the generator."""
    from ..stats.distributions import fit_lognormal
    from ..stats.table import prepare_table

    rows = []
    t_true = prepare_table(truth[["cell", "cell_type", "synapse_id", "session", "day", "present", "weight"]])
    t_ours = prepare_table(synapses)
    versions = {"ours": t_ours}
    if "present_detected" in synapses.columns:  # the per-session calls beside the joint ones
        versions["ours_detection"] = prepare_table(synapses.assign(present=synapses["present_detected"]))
    for ct in sorted(t_true["cell_type"].unique()):
        key = f"type:{ct}"
        true_ct = t_true[t_true.cell_type == ct]
        scores = {name: turnover_vs_truth(true_ct, tab[tab.cell_type == ct])
                  for name, tab in versions.items()}
        first = scores["ours"]
        for col in ("added", "lost"):
            rows.append({"cell": key, "metric": f"{col}_true", "value": first[f"{col}_true"]})
        rows.append({"cell": key, "metric": "survival_last_true", "value": first["survival_true"]})
        gen = next(v for c, v in params.items() if v["cell_type"] == ct)
        rows.append({"cell": key, "metric": "hazard_slope_generating", "value": gen["loss_logit"][1]})
        rows += _hazard_rows(key, "truth_table", true_ct)
        for name, tab in versions.items():
            for col in ("added", "lost"):
                rows.append({"cell": key, "metric": f"{col}_{name}", "value": scores[name][f"{col}_ours"]})
                rows.append({"cell": key, "metric": f"{col}_abs_error_pp" + name[4:],
                             "value": scores[name][f"{col}_error_pp"]})
            rows.append({"cell": key, "metric": f"survival_last_{name}",
                         "value": scores[name]["survival_ours"]})
            rows += _hazard_rows(key, name, tab[tab.cell_type == ct])
        rows.append({"cell": key, "metric": "sigma_generating", "value": gen["weight_lognormal"][1]})
        for name, tab in (("truth_table", t_true), ("ours", t_ours)):
            d0 = tab[(tab.cell_type == ct) & (tab.day == tab.day.min()) & (tab.present == 1)]
            rows.append({"cell": key, "metric": f"sigma_{name}", "value": fit_lognormal(d0["weight"])["sigma"]})
        for coef, value in zip("acbd", gen["kesten"]):
            rows.append({"cell": key, "metric": f"kesten_{coef}_generating", "value": value})
        for name, tab in (("truth_table", t_true), ("ours", t_ours)):
            fit = binned_kesten(tab[tab.cell_type == ct])
            for coef in "acbd":
                rows.append({"cell": key, "metric": f"kesten_{coef}_{name}", "value": fit[coef]})
    return rows
