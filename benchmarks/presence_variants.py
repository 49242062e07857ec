"""Presence settings and candidate models beside the presence stage's defaults, on the presence
benchmark's cells: turnover errors and wrong calls against the simulator's truth.

    python benchmarks/presence_variants.py [--workdir results/bench_presence]
                                           [--regimes PV_typical,pyr_typical]
                                           [--presence KEY=VALUE ...]
                                           [--reach 1] [--within-sd 0] [--shrink 1]

Why: the ideal observer (``make bench-floor``) knows that a synapse's weight drifts from its
own last value; the presence stage's HMM by default scores each session's signal against the
log-normal of the whole cell's present synapses, so one dim session of a synapse can read as
absent, and the track comes back next session: a false loss and a false birth.

``--presence KEY=VALUE`` runs the stage with that presence setting beside its defaults
(e.g. ``lost_for_good=false``, ``signal_memory=true``; a two-state refinement such as
``dim_present=true`` with ``lost_for_good=false`` too).  ``--reach N`` (N > 0) is the stage's
option ``presence.own_signal_reach: N``
(:func:`pipeline.core.presence_hmm.own_signal_prior`): each session's present state centred on
the track's clearly present sessions within N sessions, that session left out.
``--reach 0`` is an experiment only (not in the stage): the stage's fitted HMM called again
with each track's present emission a log-normal around its mean log signal over all its
clearly present sessions (shrunk to the cell's mean by ``--shrink`` pseudo-sessions), of SD
``--within-sd`` (0: estimated, the within-track SD pooled over tracks seen twice or more).
Both are run on the weights tables ``make bench-presence`` left in ``--workdir`` and scored
with the benchmark's turnover errors (pp per interval), wrong calls (:func:`wrong_calls`),
survival to the last session (ours minus the truth's), the first session's sigma of ln
weight (:func:`first_session_sigma`) and the binned Kesten fit's a and b (:func:`kesten_ab`)
against the simulator's truth.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

COLS = ["cell", "cell_type", "synapse_id", "session", "day", "present", "weight"]


def track_emission_fit(fit, *, within_sd: float, shrink: float):
    """``fit`` (:func:`pipeline.stages.presence.fit_presence`) followed by a second call with
    per-track present emissions around each track's mean (the ``--reach 0`` experiment of the
    module docstring)."""
    from pipeline.core import presence_hmm as H

    def fitted(snr, observed, **kw):
        res = fit(snr, observed, **kw)
        prm, p1 = res["params"], res["p_present"]
        z = np.asarray(snr, float)
        obs = np.asarray(observed, bool) & np.isfinite(z)
        z = np.where(obs, z, 0.0)
        steps = kw.get("steps")
        steps = np.arange(z.shape[1]) if steps is None else np.asarray(steps, int)
        clear = H.clearly_present(z, obs, p1, prm)
        lz = np.log(np.maximum(z, 1e-6))
        n = clear.sum(1)
        own = np.where(n > 0, (lz * clear).sum(1) / np.maximum(n, 1), prm["m1"])
        sd = within_sd
        if sd <= 0:
            many = n >= 2
            dev = (lz - own[:, None]) * clear
            sd = (float(np.sqrt((dev[many] ** 2).sum() / max((n[many] - 1).sum(), 1)))
                  if many.any() else prm["s1"])
            sd = max(sd, 0.15)
        m = np.repeat(((n * own + shrink * prm["m1"]) / (n + shrink))[:, None], z.shape[1], 1)
        s = np.repeat(np.sqrt((sd ** 2 * n + prm["s1"] ** 2 * shrink) / (n + shrink))[:, None],
                      z.shape[1], 1)
        # the stage's emissions, the present one's prior per (track, session)
        log_e0, _ = H._log_emissions(z, prm)
        log_e1 = H._log_present_emission(z, m, s, prm)
        log_e, ob = H._by_step(np.stack([log_e0, log_e1]), obs, steps)
        p, _, loglik = H._forward_backward(log_e, ob, prm["pi1"], prm["birth"], prm["loss"])
        return {"p_present": p[:, steps], "params": {**prm, "loglik": loglik,
                                                      "within_track_sd": sd}}
    return fitted


def wrong_calls(ours: pd.DataFrame, truth_cell: pd.DataFrame) -> int:
    """Observed rows whose call is wrong: a track matched to a true synapse
    (:func:`science_events._match`; of several tracks matched to one, the one detected most)
    called otherwise than the truth there, or any other track called present.  Unlike the
    turnover errors, wrong calls at different intervals do not cancel."""
    from science_events import _match

    ours = ours.assign(session=ours["session"].astype(str))
    truth_cell = truth_cell.assign(session=truth_cell["session"].astype(str))
    sessions = list(ours.sort_values("day")["session"].drop_duplicates())
    match = pd.Series(_match(ours, truth_cell, sessions), dtype=float)
    n_det = ours.groupby("synapse_id")["detected"].sum().reindex(match.index)
    primary = n_det.groupby(match).idxmax()     # true id -> its track
    match = match[match.index.isin(primary.to_numpy())].to_dict()
    seen = ours[ours["observed"] == 1]
    true_present = truth_cell.set_index(["synapse_id", "session"])["present"]
    # a track matched to none has no key in the truth: expected absent
    key = pd.MultiIndex.from_arrays([seen["synapse_id"].map(match), seen["session"]])
    expected = true_present.reindex(key).fillna(0).to_numpy()
    return int((seen["present"].to_numpy() != expected).sum())


def first_session_sigma(table: pd.DataFrame) -> float:
    """The log-normal sigma of the first session's present weights (``make bench``'s "Models"
    row): a present row measured at noise level moves it most."""
    from pipeline.stats.distributions import fit_lognormal

    first = table[(table["day"] == table["day"].min()) & (table["present"] == 1)]
    return float(fit_lognormal(first["weight"])["sigma"])


def kesten_ab(table: pd.DataFrame) -> tuple[float, float]:
    """The binned-moment Kesten fit's ``a`` (multiplicative drift) and ``b`` (multiplicative
    variance) on a prepared table, as ``make bench``'s "Models" rows fit them
    (:func:`pipeline.truth.evaluate.binned_kesten`): the present rows' weights are what the
    weight statistics see."""
    from pipeline.truth.evaluate import binned_kesten

    fit = binned_kesten(table)
    return float(fit["a"]), float(fit["b"])


def main(argv=None) -> int:
    import yaml

    from pipeline.inputs.sheet import read_sessions
    from pipeline.params import PresenceParams, from_options
    from pipeline.stages import presence as P
    from pipeline.stats.table import prepare_table
    from pipeline.truth.evaluate import turnover_vs_truth

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default="results/bench_presence")
    ap.add_argument("--regimes", default="PV_typical,pyr_typical,hard_registration,channel_departure")
    ap.add_argument("--within-sd", type=float, default=0.0)
    ap.add_argument("--shrink", type=float, default=1.0)
    ap.add_argument("--reach", type=int, default=0,
                    help="> 0: the stage's presence.own_signal_reach (--within-sd and --shrink "
                         "then unused); 0: the experiment centred on each track's mean")
    ap.add_argument("--presence", action="append", default=[], metavar="KEY=VALUE",
                    help="instead of the experiment: the stage with this presence setting "
                         "other than its default (value as in config.yaml)")
    args = ap.parse_args(argv)
    work = Path(args.workdir)
    default_fit = P.fit_presence
    settings = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.presence)}
    if args.reach > 0:      # a two-state refinement: the two-state model under it
        settings.update(own_signal_reach=args.reach, lost_for_good=False)
    variant_params = from_options(PresenceParams, settings)
    if settings:
        variant, variant_name = default_fit, " ".join(f"{k}={v}" for k, v in settings.items())
    else:
        variant = track_emission_fit(default_fit, within_sd=args.within_sd, shrink=args.shrink)
        variant_name = "per-track"
    rows = []
    try:
        for regime in args.regimes.split(","):
            truth = pd.read_csv(work / regime / "data" / "truth" / "synapses.csv")
            targets = read_sessions(work / regime / "data" / "sessions.tsv",
                                    check_files=False).groupby("cell")["target"].first()
            for cell, tc in truth.groupby("cell"):
                target = str(targets[cell])
                folder = work / regime / "results" / "weights" / cell
                table = pd.read_csv(folder / "synapses.csv")
                null = pd.read_csv(folder / "null_snr.csv", dtype={"session": str})
                # the stage's own input: the null places' morphology levels (absent_by_brightness)
                levels = (null["morphology_level"].to_numpy()
                          if "morphology_level" in null.columns else None)
                found = work / regime / "results" / "track" / cell / "detections.json"
                textured = P.textured_cell(json.loads(found.read_text()) if found.exists() else None)
                t_true = prepare_table(tc[COLS])
                row = {"regime": regime, "cell": cell,
                       "sigma, truth table": first_session_sigma(t_true)}
                row["Kesten a, truth table"], row["Kesten b, truth table"] = kesten_ab(t_true)
                for name, fit, prm in (("stage", default_fit, PresenceParams()),
                                       (variant_name, variant, variant_params)):
                    P.fit_presence = fit
                    out, _ = P.presence_cell(table, null_snr=null["snr"].to_numpy(),
                                             null_sessions=null["session"].to_numpy(),
                                             null_levels=levels, params=prm, target=target,
                                             textured=textured)
                    prepared = prepare_table(out)
                    score = turnover_vs_truth(t_true, prepared)
                    row[f"added error, {name}"] = score["added_error_pp"]
                    row[f"lost error, {name}"] = score["lost_error_pp"]
                    row[f"wrong calls, {name}"] = wrong_calls(out, tc)
                    row[f"survival error, {name}"] = (score["survival_ours"]
                                                      - score["survival_true"])
                    row[f"sigma, {name}"] = first_session_sigma(prepared)
                    row[f"Kesten a, {name}"], row[f"Kesten b, {name}"] = kesten_ab(prepared)
                rows.append(row)
    finally:
        P.fit_presence = default_fit
    table = pd.DataFrame(rows)
    options = "".join(f" --presence {item}" for item in args.presence)
    print(f"`python benchmarks/presence_variants.py --workdir {args.workdir} --regimes "
          f"{args.regimes} --within-sd {args.within_sd} --shrink {args.shrink} "
          f"--reach {args.reach}{options}`\n")
    print(table.round(2).to_markdown(index=False))
    print()
    print(table.groupby("regime", sort=False).mean(numeric_only=True).round(2).to_markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
