"""Presence of each synapse in each session, decided from every session's evidence.

Per-session detection turns one missed punctum into a false loss plus a false gain.  Here the
signal measured at each track's registered position in every session (``snr``: integrated
PSD-95 over local background, in units of its noise) feeds a two-state hidden Markov model
per track: absent -> present (birth) and present -> absent (loss) are rare, so a synapse
seen before and after a dim session is called present there, and a faint one-off blob is not.
The model's parameters (initial presence, birth and loss rates, the signal of absent and of
present synapses) are fitted to the cell's own tracks by expectation-maximisation.  The model
is :mod:`pipeline.core.presence_hmm` (arrays in and out); here are the tables: tracks into
arrays, fragments merged, calls and weights back into rows, curation, warnings.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..contract import CURATION_CALLS
from ..core import presence_hmm
from ..core.absent_width import absent_sd_factor
from ..core.detection_evidence import DEFAULT_ABSENT_RATE, detection_log_factors
from ..core.optics import Z_SCALE
from ..core.normalise import normalise_cell_weights
from ..core.presence_hmm import CLEAR_SDS, MIN_NULL_PLACES, absent_state, posterior_signal
from ..inputs.curation import row_error
from ..params import PresenceParams, TrackParams

#: a present synapse measured no more than this many absent-state SDs above the absent centre
#: gets the model's estimate of its signal as its weight (``weight_imputed``; docs/outputs.md).
#: One SD, not ``CLEAR_SDS``: it takes out the slivers (a deblended detection left with
#: nothing, ln w of -5) and leaves most measurements of dim present synapses as measured; the
#: estimates, shrunk toward the cell's log-normal, would narrow the SD of ln weight
IMPUTE_SDS = 1.0


def absent_departures(null_snr, sessions, *, cell: str,
                      limit: float = PresenceParams.warn_absent_departure) -> tuple[dict, list]:
    """How far each session's places without a synapse (``null_snr``, measured in session
    ``sessions``) sit from those of the cell's other sessions: their median minus the others'
    centre, over the others' spread (:func:`absent_state`).  The model has one absent state
    for the cell; a session whose background is estimated high (or low) moves every absent
    synapse there toward present (or a dim present one toward absent) without any other
    sign.  Returns the departures by session and a warning for each beyond ``limit``."""
    null = pd.DataFrame({"snr": np.asarray(null_snr, float),
                         "session": np.asarray(sessions).astype(str)})
    null = null[np.isfinite(null["snr"])]
    departure, warnings = {}, []
    if null["session"].nunique() < 2:
        return departure, warnings
    for s, own in null.groupby("session", sort=False)["snr"]:
        centre, sd = absent_state(null.loc[null["session"] != s, "snr"])
        d = (own.median() - centre) / sd if sd > 0 else 0.0
        departure[s] = round(float(d), 3)
        if abs(d) > limit:
            effect = ("absent synapses there look present" if d > 0
                      else "dim present synapses there look absent")
            warnings.append(
                f"cell {cell}, session {s}: places without a synapse measure {d:+.1f} SDs "
                f"from the cell's other sessions (median signal {own.median():.1f} vs "
                f"{centre:.1f}): {effect}; check that session's background (detector "
                "offset, bleed-through share, a dim or clipped stack)")
    return departure, warnings


def unmeasured_absent_warning(null_snr, *, cell: str, target: str = "puncta") -> list:
    """A warning (in a list; empty when all is well) when fewer than
    :data:`MIN_NULL_PLACES` places without a synapse were measured on the cell: the absent
    state is then assumed centred on zero (:func:`fit_presence`), but a PSD-95 aperture on the
    dendrite measures its diffuse light, so synapses lost from the shaft are called present
    (on the simulated single-channel regime, before the weights stage measured such places
    there: survival 1.00 against 0.74, 0.1 % lost per interval against 5.1 %).  ``target``
    'spines': the places lie beside the shaft's core; without them the absent state's width
    is fitted to the spines' own rows (6.7 noise units on the simulated spines regime before
    the places were measured, and spines of 6-15 units were called absent)."""
    null = np.asarray(null_snr, float)
    n = int(np.isfinite(null).sum())
    if n >= MIN_NULL_PLACES:
        return []
    if target == "spines":
        return [f"cell {cell}: the absent state was not measured ({n} places beside the "
                f"shaft without a spine, fewer than {MIN_NULL_PLACES}: no shaft core found in "
                "the fill); it was fitted to the spines' own rows instead, which can make it "
                "several noise units wide and call clear spines absent: check losses and "
                "survival on the review pages, and the fill's shaft in the detect logs"]
    return [f"cell {cell}: the absent state was not measured ({n} places without a synapse on "
            f"the cell, fewer than {MIN_NULL_PLACES}: no cell seen in the morphology channel, "
            "or without one no dendrite seen in the PSD-95 channel or weights.shaft_line_um "
            "null); an absent synapse is assumed to measure zero, but on a bright shaft it "
            "measures the shaft's light and is called present: check losses and survival on "
            "the review pages"]


def fit_presence(snr, observed, *, own_signal_reach: int = PresenceParams.own_signal_reach,
                 dim_present: bool = PresenceParams.dim_present,
                 signal_memory: bool = PresenceParams.signal_memory, **options) -> dict:
    """:func:`pipeline.core.presence_hmm.fit_presence` with the presence settings' defaults
    (``lost_for_good`` in ``options``, else the model's own, on: the stage resolves the
    setting's 'puncta' per cell)."""
    return presence_hmm.fit_presence(snr, observed, own_signal_reach=own_signal_reach,
                                     dim_present=dim_present, signal_memory=signal_memory,
                                     **options)


# --------------------------------------------------------------------------- tracks
def merge_fragments(table: pd.DataFrame, *,
                    max_distance_um: float = PresenceParams.merge_distance_um,
                    z_scale: float = Z_SCALE, max_shared: int = 1) -> tuple[pd.DataFrame, int]:
    """Join tracks of one synapse that tracking left in pieces.

    Two tracks whose detected positions (reference frame, mean over detections; z scaled by
    ``z_scale``) lie within ``max_distance_um`` and were detected together in at most
    ``max_shared`` sessions are one synapse: measuring both at every session would count it
    twice (tracks a curation row changed, ``curated`` = 1, are never merged).  A shared
    session is one where the synapse was detected as two puncta (its blob split by noise, or
    a noise peak beside it): the next session links to either piece, so the one synapse
    became a loss plus a birth.  Two synapses this close that both exist are detected
    together in most sessions and stay apart.

    Per session the merged synapse keeps the row of the piece detected there, else of the
    piece with the most detections; where several pieces were detected, that row's
    ``intensity`` and ``snr`` become their sums (the weights stage shared the synapse's light
    between them), the noise taken from the kept row.
    Returns the table and the number of pieces merged away.
    """
    det = table[table["detected"] == 1]
    if "curated" in table.columns:  # a person decided what these tracks are: leave them be
        det = det[~det["synapse_id"].isin(table.loc[table["curated"] == 1, "synapse_id"])]
    pos = det.groupby("synapse_id")[["z_um", "y_um", "x_um"]].mean()
    sessions = det.groupby("synapse_id")["session"].agg(frozenset)
    ids = pos.index.to_numpy()
    xyz = pos.to_numpy() * np.array([z_scale, 1.0, 1.0])
    d = np.sqrt(((xyz[:, None] - xyz[None]) ** 2).sum(-1))
    iu = np.triu_indices(len(ids), 1)
    order = np.argsort(d[iu], kind="stable")
    group = {i: i for i in ids}
    members = {i: {i} for i in ids}
    seen = {i: set(sessions[i]) for i in ids}
    merged = 0
    for k in order:
        a, b = ids[iu[0][k]], ids[iu[1][k]]
        if d[iu[0][k], iu[1][k]] > max_distance_um:
            break
        ga, gb = group[a], group[b]
        if ga == gb or len(seen[ga] & seen[gb]) > max_shared:
            continue
        keep, drop = (ga, gb) if len(seen[ga]) >= len(seen[gb]) else (gb, ga)
        for m in members.pop(drop):
            group[m] = keep
            members[keep].add(m)
        seen[keep] |= seen.pop(drop)
        merged += 1
    if not merged:
        return table, 0
    t = table.copy()
    t["track_id"] = t["synapse_id"]
    t["synapse_id"] = t["synapse_id"].map(lambda i: group.get(i, i))
    # per (synapse, session): the detected piece's row, else the piece with the most detections
    # (ties: the lowest id), the one the weights stage measured as the punctum (the others
    # hold the residual beside it, see weights.distinct_puncta)
    n_det = t.groupby("track_id")["detected"].transform("sum")
    t["_rank"] = np.where(t["detected"] == 1, 0, 1)
    t["_n"] = -n_det
    t = t.sort_values(["synapse_id", "session", "_rank", "_n", "track_id"], kind="stable")
    both = t[t["detected"] == 1].groupby(["synapse_id", "session"])
    several = both["intensity"].sum()[both.size() > 1] if "intensity" in t.columns else []
    t = t.drop_duplicates(["synapse_id", "session"]).drop(columns=["_rank", "_n"])
    if len(several):
        key = pd.MultiIndex.from_arrays([t["synapse_id"], t["session"]])
        total = several.reindex(key).to_numpy()
        hit = np.isfinite(total)
        noise = (t.loc[hit, "intensity"] / t.loc[hit, "snr"]).where(t.loc[hit, "snr"] != 0)
        t.loc[hit, "intensity"] = total[hit]
        t.loc[hit, "snr"] = total[hit] / noise
    return t.sort_values(["synapse_id", "day"], ignore_index=True), merged


def split_at_gaps(table: pd.DataFrame) -> pd.DataFrame:
    """The published convention: a synapse absent for a session and back later becomes two.

    Each run of presence keeps all sessions' rows but is present only during its run; new
    runs get new ``synapse_id`` values (``track_id`` keeps the original).
    """
    t = table.sort_values(["synapse_id", "day"], kind="stable").reset_index(drop=True)
    if "track_id" not in t.columns:
        t["track_id"] = t["synapse_id"]
    pres = t["present"].to_numpy() == 1
    # a session where the synapse was not observed is no absence: the run goes on through it
    seen = t["present"].groupby(t["synapse_id"]).ffill().to_numpy() == 1
    same = t["synapse_id"].to_numpy()
    start = pres & ~np.r_[False, seen[:-1] & (same[1:] == same[:-1])]
    run = t.assign(_start=start).groupby("synapse_id")["_start"].cumsum().to_numpy()
    n_runs = pd.Series(run).groupby(t["synapse_id"]).transform("max").to_numpy()
    if (n_runs <= 1).all():
        return t
    next_id = int(t["synapse_id"].max()) + 1
    pieces = [t[n_runs <= 1]]
    for sid, g in t[n_runs > 1].groupby("synapse_id"):
        r = run[g.index]
        for k in range(1, r.max() + 1):
            piece = g.copy()
            piece["present"] = ((r == k) & (g["present"] == 1)).astype(float).where(
                g["present"].notna())
            piece["synapse_id"] = sid if k == 1 else next_id
            next_id += k > 1
            pieces.append(piece)
    return pd.concat(pieces).sort_values(["synapse_id", "day"], ignore_index=True)


def detection_absent_rate(table: pd.DataFrame, setting, *, target: str,
                          textured: bool = False) -> float | None:
    """P(detected | absent) for the cell's detection evidence, or None (off): the setting's
    number; with 'one_channel', :data:`DEFAULT_ABSENT_RATE` in a cell of puncta whose weights
    table has no morphology level anywhere (no morphology channel); with 'auto', also in a
    cell of puncta whose shaft is ``textured`` (a session the track stage named); else None."""
    if setting is None:
        return None
    if not isinstance(setting, str):
        return float(setting)
    one_channel = ("morphology_level" in table.columns
                   and table["morphology_level"].isna().all())
    on = one_channel or (setting == "auto" and textured)
    return DEFAULT_ABSENT_RATE if on and target == "puncta" else None


def textured_cell(detections: dict | None, *,
                  limit: float | None = TrackParams.warn_texture_factor) -> bool:
    """Whether the track stage's ``detections.json`` for a cell has a session whose
    ``texture_factor`` is ``limit`` or more (the sessions its warning names); False without
    it, or without the column."""
    if not detections or limit is None:
        return False
    return any((s.get("texture_factor") or 0) >= limit for s in detections.get("sessions", []))


def absent_widths(table: pd.DataFrame, null_snr, null_levels, *, on: bool):
    """Each row's ``absent_sd_factor`` (:func:`~pipeline.core.absent_width.absent_sd_factor`
    at its ``morphology_level``) and each null measurement's (None: 1 for all); 1 everywhere
    when ``on`` is False or the levels are missing."""
    ones = np.ones(len(table))
    if (null_snr is None or not on or null_levels is None
            or "morphology_level" not in table.columns or len(null_levels) != len(null_snr)):
        return ones, None
    null, levels = np.asarray(null_snr, float), np.asarray(null_levels, float)
    # one curve from the null places, read at the rows' levels and at their own
    both = absent_sd_factor(np.r_[table["morphology_level"].to_numpy(float), levels],
                            levels, null)
    return both[:len(table)], both[len(table):]


def model_snr(table: pd.DataFrame, params: dict) -> pd.Series:
    """The rows' snr in units of the cell's absent SD: about the absent centre ``mu0``, over
    the row's ``absent_sd_factor`` (1 where the column is missing or empty), so that one
    level (``CLEAR_SDS`` absent SDs) means the same everywhere."""
    factor = (table["absent_sd_factor"].fillna(1.0) if "absent_sd_factor" in table.columns
              else 1.0)
    return params["mu0"] + (table["snr"] - params["mu0"]) / factor


def call_presence(table: pd.DataFrame, *, model: str = PresenceParams.model,
                  uncertain=PresenceParams.uncertain, gaps: str = PresenceParams.gaps,
                  merge_distance_um: float = PresenceParams.merge_distance_um,
                  warn_not_observed: float = PresenceParams.warn_not_observed,
                  warn_absent_departure: float = PresenceParams.warn_absent_departure,
                  warn_spines_undetected: float | None = PresenceParams.warn_spines_undetected,
                  own_signal_reach: int = PresenceParams.own_signal_reach,
                  dim_present: bool = PresenceParams.dim_present,
                  signal_memory: bool = PresenceParams.signal_memory,
                  lost_for_good: bool | str = PresenceParams.lost_for_good,
                  absent_by_brightness: bool = PresenceParams.absent_by_brightness,
                  detection_evidence: float | str | None = PresenceParams.detection_evidence,
                  null_snr=None, null_sessions=None, null_levels=None,
                  target: str = "puncta", textured: bool = False) -> tuple[pd.DataFrame, dict]:
    """Present/absent per synapse and session for one cell's table (from the weights stage).

    Adds ``p_present`` (posterior probability), ``present_detected`` (the per-session call:
    detected with positive signal), ``presence_uncertain`` (p between the ``uncertain``
    bounds, in view) and ``weight_imputed`` (1 where a present synapse measured <= 0 and ``intensity``
    holds the model's estimate of its signal instead); ``present`` becomes the joint call (p >= 0.5) with ``model="hmm"`` or stays the
    per-session call with ``model="detection"``.  ``gaps="split"`` applies the published
    convention (see ``split_at_gaps``).  ``null_snr``: the signal measured where no synapse is
    (:func:`fit_presence`); ``null_sessions``: the session of each, to name a session whose
    absent state departs from the cell's (:func:`absent_departures`, beyond
    ``warn_absent_departure`` SDs; a cell of spines whose rows called present were more than
    ``warn_spines_undetected`` undetected: :func:`spines_undetected_warning`).  A ``null_snr``
    too short to measure the absent state is named in the summary's warnings
    (:func:`unmeasured_absent_warning`; ``target``: the sheet's, 'puncta' or 'spines').
    ``absent_by_brightness`` with ``null_levels`` (the null
    places' ``morphology_level``) and the table's: each row's absent state is as much wider
    than the cell's as the null places scatter more widely at its brightness
    (:func:`~pipeline.core.absent_width.absent_sd_factor`, the new column
    ``absent_sd_factor``), and so is the noise of a present synapse's measurement.  Returns
    the table and a summary of what changed.  ``own_signal_reach``, ``dim_present``,
    ``signal_memory``, ``lost_for_good``: see :func:`fit_presence` (``lost_for_good`` may also
    be 'puncta': on where ``target`` is 'puncta').  ``detection_evidence``: whether the
    detector found each row is evidence too (:func:`detection_absent_rate`,
    :mod:`pipeline.core.detection_evidence`; the calibration in the summary's
    ``params["detection_curve"]``; ``textured``: the cell's shaft is, :func:`textured_cell`).
    """
    lost_for_good = (lost_for_good is True
                     or (lost_for_good == "puncta" and target == "puncta"))
    t = table.copy()
    if "observed" not in t.columns:      # a table from before the column existed
        t["observed"] = t["in_view"]
    observed = t["observed"] == 1
    # not observed (outside the stack, or a session not reliably registered): no call at all
    t["present_detected"] = ((t["detected"] == 1) & (t["intensity"] > 0)).astype(float).where(
        observed)
    n_pieces = 0
    if model == "hmm":
        t, n_pieces = merge_fragments(t, max_distance_um=merge_distance_um)
        observed = t["observed"] == 1
        # sessions in time order; a repeat session (a second one on the same day) shares its
        # day's time step
        t["session"] = t["session"].astype(str)
        order = t[["session", "day"]].drop_duplicates("session").sort_values("day", kind="stable")
        sessions = order["session"].tolist()
        steps = pd.factorize(order["day"], sort=True)[0]
        t["absent_sd_factor"], null_width = absent_widths(
            t, null_snr, null_levels, on=absent_by_brightness)
        snr = t.pivot(index="synapse_id", columns="session", values="snr").reindex(columns=sessions)
        seen = t.pivot(index="synapse_id", columns="session",
                       values="observed").reindex(columns=sessions)
        width = t.pivot(index="synapse_id", columns="session",
                        values="absent_sd_factor").reindex(columns=sessions).fillna(1.0)
        observed_rows = seen.fillna(0).to_numpy() == 1
        detection, calibration = None, None
        absent_rate = detection_absent_rate(t, detection_evidence, target=target,
                                            textured=textured)
        if absent_rate is not None:
            found = t.pivot(index="synapse_id", columns="session",
                            values="detected").reindex(columns=sessions).fillna(0)
            detection, calibration = detection_log_factors(
                snr.to_numpy(), found.to_numpy(), observed_rows,
                absent_rate=absent_rate, width=width.to_numpy())
        fit = fit_presence(snr.to_numpy(), observed_rows, null_snr=null_snr,
                           width=width.to_numpy(), null_width=null_width,
                           steps=steps, own_signal_reach=own_signal_reach,
                           dim_present=dim_present, signal_memory=signal_memory,
                           lost_for_good=lost_for_good, detection=detection)
        p = pd.DataFrame(fit["p_present"], index=snr.index, columns=sessions)
        t["p_present"] = p.stack().reindex(
            pd.MultiIndex.from_arrays([t["synapse_id"], t["session"]])).to_numpy()
        # where not observed there is nothing to call: p_present there is the model's guess
        # from the other sessions, and `present` is left empty (the statistics skip the row)
        t["present"] = (t["p_present"] >= 0.5).astype(float).where(observed)
        params = fit["params"]
        if calibration is not None:
            params = {**params, "detection_curve": {**calibration, "absent_rate": absent_rate}}
        # a synapse called present from its other sessions may measure <= 0 here, or a sliver
        # above (whose log is an outlier of every log-scale statistic); its weight is then the
        # model's estimate of its signal (flagged), never a non-positive number or a sliver
        sliver = ~(model_snr(t, params) > params["mu0"] + IMPUTE_SDS * params["tau0"])
        fill = (t["present"] == 1) & (~(t["intensity"] > 0) | sliver)
        t["weight_imputed"] = fill.astype(int)
        if fill.any():
            noise = (t["intensity"] / t["snr"]).where(t["snr"] != 0)
            noise = noise.fillna(noise[noise > 0].median())
            if "signal" in fit:     # the track's other sessions speak for this one's signal
                expected = pd.DataFrame(fit["signal"], index=snr.index, columns=sessions)
                signal = expected.stack().reindex(pd.MultiIndex.from_arrays(
                    [t.loc[fill, "synapse_id"], t.loc[fill, "session"]])).to_numpy()
            else:
                signal = posterior_signal(t.loc[fill, "snr"], params,
                                          t.loc[fill, "absent_sd_factor"].to_numpy())
            t.loc[fill, "intensity"] = signal * noise[fill].abs()
    elif model == "detection":
        t["p_present"] = np.nan
        t["absent_sd_factor"] = np.nan      # no absent state
        t["weight_imputed"] = 0
        t["present"] = t["present_detected"]
        params = {}
    else:
        raise ValueError(f"unknown presence model {model!r}; use 'hmm' or 'detection'")
    lo, hi = uncertain
    t["presence_uncertain"] = ((t["p_present"] > lo) & (t["p_present"] < hi)
                               & (t["observed"] == 1)).astype(int)
    if "track_id" not in t.columns:
        t["track_id"] = t["synapse_id"]
    n_before = t["synapse_id"].nunique()
    if gaps == "split":
        t = split_at_gaps(t)
    elif gaps != "keep":
        raise ValueError(f"unknown gap convention {gaps!r}; use 'keep' or 'split'")
    summary = {
        "model": model, "rows": int(len(t)),
        "changed_to_present": int(((t["present"] == 1) & (t["present_detected"] == 0)).sum()),
        "changed_to_absent": int(((t["present"] == 0) & (t["present_detected"] == 1)).sum()),
        "uncertain": int(t["presence_uncertain"].sum()),
        "weights_imputed": int(t["weight_imputed"].sum()),
        "fragments_merged": int(n_pieces), "synapses_split": int(t["synapse_id"].nunique() - n_before),
        "never_present": int((t.groupby("synapse_id")["present"].max() == 0).sum()),
        "params": params,
        **not_observed_summary(t, warn_fraction=warn_not_observed),
    }
    if model == "hmm":    # how far the absent state was widened (1: one width for the cell)
        factor = t.loc[t["observed"] == 1, "absent_sd_factor"]
        summary["absent_sd_factor"] = ({"median": round(float(factor.median()), 3),
                                        "largest": round(float(factor.max()), 3)}
                                       if len(factor) else {})
    if lost_for_good and model == "hmm":
        summary["gaps_bridged"] = bridged_gaps(t, params)
        if summary["gaps_bridged"]:
            summary["warnings"].append(
                f"cell {t['cell'].iloc[0]}: {summary['gaps_bridged']} synapses called present "
                f"through 2 or more sessions at noise level between sessions where they were "
                "clearly seen (presence.lost_for_good: a lost synapse does not return); if "
                "synapses in this preparation come back at the same place, these may be a loss "
                "and a new synapse: check them on the review pages, or set lost_for_good false")
    summary["undetected_present_share"] = undetected_present_share(t)
    if target == "spines":
        summary["warnings"] += spines_undetected_warning(
            summary["undetected_present_share"], cell=str(t["cell"].iloc[0]),
            limit=warn_spines_undetected)
    if null_snr is not None:
        summary["warnings"] += unmeasured_absent_warning(null_snr, cell=str(t["cell"].iloc[0]),
                                                         target=target)
    if null_snr is not None and null_sessions is not None:
        summary["absent_departure"], departs = absent_departures(
            null_snr, null_sessions, cell=str(t["cell"].iloc[0]), limit=warn_absent_departure)
        summary["warnings"] += departs
    return t, summary


def undetected_present_share(table: pd.DataFrame) -> float | None:
    """The share of a cell's rows called present (``present`` 1) that were not detected there
    (``detected`` 0): calls that rest on the measured signal alone.  None: no row present."""
    present = table["present"] == 1
    if not present.any():
        return None
    return round(float((table.loc[present, "detected"] == 0).mean()), 3)


def spines_undetected_warning(share: float | None, *, cell: str,
                              limit: float | None) -> list[str]:
    """A cell of spines whose rows called present were more than ``limit`` undetected, named.

    Why: where a spine is not detected its call rests on the head light measured at its
    place, which beside a brighter head or on the shaft's edge is not its own.  On six
    simulated spine cells survival to the last session came out 0.07-0.21 above the truth
    where this share was 0.255-0.314, and 0.03-0.06 above where it was 0.177-0.212
    (BENCHMARKS_SPINES.md, "Necks in the measurement")."""
    if limit is None or share is None or share <= limit:
        return []
    return [f"cell {cell}: {100 * share:.0f} % of the spines' rows called present were not "
            f"detected in that session (presence.warn_spines_undetected {limit:g}): those calls "
            "rest on the head light measured at each spine's place, which beside a brighter "
            "head or on a neck or the shaft's edge is not its own; on simulated cells like this "
            "survival came out 0.07-0.21 above the truth. Check the tracks detected once or "
            "twice on the review pages before publishing survival or turnover"]


def bridged_gaps(table: pd.DataFrame, params: dict, *, min_sessions: int = 2) -> int:
    """Synapses called present through ``min_sessions`` or more consecutive observed sessions
    that measured at noise level (no more than ``CLEAR_SDS`` absent-state SDs above its centre)
    between sessions where they were clearly seen: a dip of one synapse, or a loss and a new
    synapse at its place, which a model whose lost synapses do not return cannot tell apart."""
    if "mu0" not in params:
        return 0
    level = params["mu0"] + CLEAR_SDS * params["tau0"]
    t = table[table["observed"] == 1].sort_values(["synapse_id", "day"], kind="stable")
    t = t.assign(_model_snr=model_snr(t, params))
    n = 0
    for _, g in t.groupby("synapse_id", sort=False):
        present = g["present"].to_numpy() == 1
        clear = present & (g["_model_snr"].to_numpy() > level)
        noise = present & ~clear
        run, seen_clear = 0, False
        for is_clear, is_noise in zip(clear, noise):
            if is_clear:
                if seen_clear and run >= min_sessions:
                    n += 1
                    break
                seen_clear, run = True, 0
            elif is_noise:
                run += 1
            else:
                run = 0
    return n


def not_observed_summary(table: pd.DataFrame, *,
                         warn_fraction: float = PresenceParams.warn_not_observed) -> dict:
    """Per session, how many of the cell's synapses were not observed (outside the stack or
    in a session not reliably registered: censored in every statistic), and a warning for each
    session that leaves out more than ``warn_fraction`` of them."""
    t = table.sort_values("day", kind="stable")
    missing = (t["observed"] != 1).groupby(t["session"].astype(str), sort=False).sum()
    n = int(t["synapse_id"].nunique())
    warnings = [f"cell {t['cell'].iloc[0]}, session {s}: {int(k)} of {n} synapses "
                f"({k / n:.0%}) not observed (outside its stack or badly registered), censored "
                "in the statistics; check the stack's depth and registration"
                for s, k in missing.items() if n and k / n > warn_fraction]
    return {"not_observed": {s: int(k) for s, k in missing.items()}, "synapses": n,
            "warnings": warnings}


def curate_calls(table: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Apply one cell's present/absent rows to the presence stage's table (``present``,
    ``p_present``, ``curated``).  A forced call keeps the measured weight as it is.

    A person's merge is respected: a merged synapse is present in every session in which one
    of its pieces was detected (``detected``), whatever the model says, unless a row of the
    file marks that session absent (present/absent rows are applied after)."""
    out = table.copy()
    if "curated" not in out.columns:
        out["curated"] = 0
    # ids of the curation file are track ids: the presence stage keeps them in `track_id`
    key = out["track_id"] if "track_id" in out.columns else out["synapse_id"]
    if "detected" in out.columns:
        merged = actions.loc[actions["action"] == "merge", "synapse_id"].astype(int)
        sel = key.isin(set(merged)) & (out["detected"] == 1)
        _force(out, sel, 1)
    for row in actions[actions["action"].isin(CURATION_CALLS)].itertuples():
        sel = key == int(row.synapse_id)
        if not sel.any():
            raise row_error(row, "no such synapse after the identity actions")
        sel &= out["session"].astype(str) == row.session
        if not sel.any():
            raise row_error(row, f"no session '{row.session}' for this synapse")
        _force(out, sel, int(row.action == "present"))
    return out


def weight_at_noise(table: pd.DataFrame, params: dict) -> pd.Series:
    """1 where a synapse called present measured no more than ``CLEAR_SDS`` absent-state SDs
    above the absent state's centre (``params``: the HMM's ``mu0``, ``tau0``): present by its
    other sessions, or a person's call, but its weight is within the noise of none.  0
    everywhere without a fitted absent state (``model: detection`` calls only detections)."""
    if "mu0" not in params:
        return pd.Series(0, index=table.index)
    level = params["mu0"] + CLEAR_SDS * params["tau0"]
    return ((table["present"] == 1) & ~(model_snr(table, params) > level)).astype(int)


def _force(out: pd.DataFrame, sel, call: int) -> None:
    """Set a person's call on the rows ``sel`` of the presence table (in place)."""
    out.loc[sel, "present"] = call
    if "observed" in out.columns:     # the person saw it there
        out.loc[sel, "observed"] = 1
    if "p_present" in out.columns:
        out.loc[sel, "p_present"] = float(call)
    if "presence_uncertain" in out.columns:
        out.loc[sel, "presence_uncertain"] = 0
    out.loc[sel, "curated"] = 1


def presence_cell(table: pd.DataFrame, *, null_snr=None, null_sessions=None, null_levels=None,
                  curation: pd.DataFrame | None = None, target: str = "puncta",
                  textured: bool = False,
                  params: PresenceParams = PresenceParams()) -> tuple[pd.DataFrame, dict]:
    """The presence stage on one cell's weights table: joint calls (:func:`call_presence`),
    then a person's present/absent rows (``curation``, :func:`curate_calls`), then the
    per-session normalisation again, since the synapses called present changed.
    ``target``: the sheet's ('puncta' or 'spines': the warning for a cell without null places
    says what they are); ``textured``: its shaft is (:func:`textured_cell`, for
    ``presence.detection_evidence: auto``).  Returns the table and a summary (calls
    changed, fitted parameters)."""
    out, summary = call_presence(table, model=params.model, null_snr=null_snr,
                                 null_sessions=null_sessions, target=target, textured=textured,
                                 uncertain=tuple(params.uncertain), gaps=params.gaps,
                                 merge_distance_um=params.merge_distance_um,
                                 warn_not_observed=params.warn_not_observed,
                                 warn_absent_departure=params.warn_absent_departure,
                                 warn_spines_undetected=params.warn_spines_undetected,
                                 own_signal_reach=params.own_signal_reach,
                                 dim_present=params.dim_present,
                                 signal_memory=params.signal_memory,
                                 lost_for_good=params.lost_for_good,
                                 absent_by_brightness=params.absent_by_brightness,
                                 detection_evidence=params.detection_evidence,
                                 null_levels=null_levels)
    if curation is not None and len(curation):
        out = curate_calls(out, curation)
    n_calls = 0 if curation is None else int(curation["action"].isin(CURATION_CALLS).sum())
    summary["curated_calls"] = n_calls
    # the per-session scale follows the synapses now called present
    out["weight"] = normalise_cell_weights(out, str(out["normalisation"].iloc[0]))
    out["weight_at_noise"] = weight_at_noise(out, summary["params"])
    summary["weights_at_noise"] = int(out["weight_at_noise"].sum())
    summary["cell"] = str(out["cell"].iloc[0])
    if "curated" not in out.columns:
        out["curated"] = 0
    return out, summary
