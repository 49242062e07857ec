"""The channels stage: each session's share of the morphology channel in the PSD-95 channel,
checked against the other sessions of its cell.

The share (bleed-through plus diffuse PSD-95 in the shaft) is a property of the microscope, the
fluorophores and the cell, so it varies little between one cell's sessions.  A session whose own
estimate departs from its siblings' is more likely an estimate gone wrong (a bright object in
the morphology channel only, a saturated fill) than a different cell: under-subtracted shaft
signal becomes chains of weak "puncta" born and lost in that session, and drags its weight
normaliser.  Such a session is named, with the value it got and the one it is given.
"""
from __future__ import annotations

import numpy as np

from ..core.channels import morphology_coefficient
from ..core.errors import InputError
from ..params import DetectParams

#: fewer sessions with an estimate than this: no majority to compare a session with
MIN_SESSIONS = 3


def session_share(stack: np.ndarray) -> float | None:
    """The morphology share of one ingested (c, z, y, x) stack, or None without a morphology
    channel (:func:`pipeline.core.channels.morphology_coefficient`)."""
    if stack.shape[0] < 2:
        return None
    return morphology_coefficient(stack[0], stack[1])


def pooled_shares(estimates: dict, *, cell: str = "", departure: float = DetectParams.share_departure,
                  policy: str = DetectParams.departing_share, floor: float = 0.01) -> dict:
    """Check each session's share against the cell's and choose the one detection uses.

    Parameters
    ----------
    estimates : session -> its own estimate (None: no morphology channel)
    departure : a session departs when its estimate is more than this factor above or below
        the median of the cell's sessions (and differs from it by more than ``floor``, so that
        shares near zero do not depart by ratio alone)
    policy : for a departing session, ``'pool'`` (use the cell's median), ``'keep'`` (use its
        own) or ``'error'`` (stop, naming it)

    Returns a dict with ``cell_share`` (the median, None when fewer than ``MIN_SESSIONS``
    sessions have an estimate), ``sessions`` (session -> ``estimate``, ``used``, ``departs``)
    and ``warnings`` (one line per departing session, for the run's summary and the report).
    """
    if policy not in ("pool", "keep", "error"):
        raise ValueError(f"departing_share must be pool, keep or error, not {policy!r}")
    known = {s: float(v) for s, v in estimates.items() if v is not None}
    cell_share = float(np.median(list(known.values()))) if len(known) >= MIN_SESSIONS else None
    sessions, warnings, departing = {}, [], []
    for s, v in estimates.items():
        departs = bool(cell_share is not None and v is not None
                       and abs(v - cell_share) > floor
                       and (v > cell_share * departure or v * departure < cell_share))
        used = cell_share if departs and policy == "pool" else v
        sessions[s] = {"estimate": v, "used": used, "departs": departs}
        if departs:
            departing.append(s)
            warnings.append(
                f"cell {cell}, session {s}: morphology share of the PSD-95 channel estimated at "
                f"{v:.3f}, departing from its {len(known) - 1} siblings (median {cell_share:.3f}; "
                f"more than {departure:g}x); detection used {used:.3f}. Look for an object in "
                "the morphology channel only (autofluorescence, another cell) or a saturated "
                "fill in that session; detect.departing_share: keep uses the session's own.")
    if departing and policy == "error":
        raise InputError("; ".join(warnings).replace(
            "detect.departing_share: keep uses", "detect.departing_share: pool or keep use"))
    return {"cell": cell, "cell_share": cell_share, "departure": departure, "policy": policy,
            "sessions": sessions, "warnings": warnings}


def single_channel_note(cell: str, params: DetectParams) -> str:
    """What detection does for a cell imaged without a morphology channel, for the run's
    summary and the report (a choice the reader of the numbers must know)."""
    if not params.shaft_line_um:
        return (f"cell {cell}: no morphology channel; nothing is subtracted from the PSD-95 "
                "channel (detect.shaft_line_um is null), so the shaft's diffuse PSD-95 can "
                "pass for puncta")
    near = ("" if params.shaft_distance_um is None else
            f", puncta kept within {params.shaft_distance_um:g} um of the dendrite it outlines")
    return (f"cell {cell}: no morphology channel; the shaft's diffuse PSD-95 is estimated from "
            f"the PSD-95 channel ({params.shaft_line_um:g} um line openings) and subtracted "
            "(the weights stage measures the absent state on the dendrite it outlines, "
            "weights.shaft_line_um, and measures over the shaft of longer lines, "
            "weights.weight_shaft_line_um), "
            f"the threshold is in the noise around each peak (local_noise: "
            f"{params.local_noise}{_local_threshold(params)}){near}")


def _local_threshold(params) -> str:
    """The threshold in the noise around each peak, and how that noise is measured."""
    if params.local_noise == "never":
        return ""
    level = params.threshold if params.local_threshold is None else params.local_threshold
    flanks = ("" if params.local_flanks_um is None else
              ", measured without puncta's flanks")
    return f", {level:g} of it{flanks}"


def spines_note(cell: str) -> str:
    """What detection and weights do for a cell whose synapses are spines of a cell fill."""
    return (f"cell {cell}: spines of a cell fill (target spines): heads are found beside the "
            "shaft in a matched-filtered z-projection, the shaft estimated along its own "
            "direction and its core left out (a spine that sits on the shaft's core is not "
            "found); each spine's weight is its head's intensity over its shaft's. Accuracy on "
            "simulated spiny dendrites: BENCHMARKS_SPINES.md; check the spines on the review "
            "pages")
