"""Detection alone, per session, on the benchmark's regimes: the morphology share each session
used, and detection precision, recall and F1 against the simulator's truth, per session and
for the worst session.

    python benchmarks/detection_benchmark.py [--regimes channel_departure,...] [--out FILE]
                                             [--detect local_noise=always ...]
                                             [--spines head_fwhm_um=0.2 ...]
    make bench-detection             # every regime, into BENCHMARKS_DETECTION.md
    python benchmarks/detection_benchmark.py --regimes spines --out BENCHMARKS_SPINES.md

Each regime's cell is simulated in memory exactly as ``make bench`` simulates it (same options,
same seed) and detected with the functions the workflow's channels and detect stages call
(each session's own estimate of the morphology share, checked against the cell's, then
detection with the share chosen).  A single-channel regime is also detected as its twin with
a morphology channel (the same photons): column ``f1 with fill``, what a fill would give.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def detect_spine_cell(sim, spine_settings: dict | None = None) -> pd.DataFrame:
    """Every session of a simulated fill, by the detect stage's puncta detector (what a fill
    given as target puncta gets) and its spine detector (target spines, with
    ``spine_settings`` other than config's); one row per session, scored with a 1 um gate."""
    from pipeline.params import SpinesParams
    from pipeline.stages.detect import detect_session, detect_spine_session
    from pipeline.truth.evaluate import SPINE_GATE_UM, score_detection

    spine_params = SpinesParams(**(spine_settings or {}))
    spacing = np.asarray(sim.params.spacing)
    rows = []
    for k, image in enumerate(sim.images):
        session = f"s{k:02d}"
        t = sim.truth[(sim.truth.session == session) & (sim.truth.present == 1)
                      & (sim.truth.in_view == 1)]
        row = {"session": session, "planes": image.shape[1], "n_true": len(t)}
        for name, find in (("puncta detector", lambda im: detect_session(im, spacing=spacing)),
                           ("spine detector", lambda im: detect_spine_session(im, spacing=spacing,
                                                                              params=spine_params))):
            t0 = time.perf_counter()
            det = find(image.astype(np.float32))
            secs = time.perf_counter() - t0
            score = score_detection(det[["z", "y", "x"]].to_numpy(),
                                    t[["z", "y", "x"]].to_numpy(), spacing, gate_um=SPINE_GATE_UM)
            row.update({f"{name}: n": len(det), f"{name}: precision": score["precision"],
                        f"{name}: recall": score["recall"], f"{name}: f1": score["f1"],
                        f"{name}: s": secs})
        rows.append(row)
    return pd.DataFrame(rows)


def spine_summary(regime: str, per_session: pd.DataFrame) -> dict:
    out = {"regime": regime, "sessions": len(per_session)}
    for name in ("puncta detector", "spine detector"):
        out.update({f"{name}: precision (median)": per_session[f"{name}: precision"].median(),
                    f"{name}: recall (median)": per_session[f"{name}: recall"].median(),
                    f"{name}: worst F1": per_session[f"{name}: f1"].min(),
                    f"{name}: s per session": per_session[f"{name}: s"].mean()})
    return out


def chosen_shares(stacks: dict, params=None) -> dict:
    """The channels stage's choice for each session of a cell (session -> ``estimate``,
    ``used``, ``departs``), from its (c, z, y, x) ``stacks`` and the detect settings."""
    from pipeline.params import DetectParams
    from pipeline.stages.channels import pooled_shares, session_share

    params = params or DetectParams()
    return pooled_shares({s: session_share(v) for s, v in stacks.items()},
                         departure=params.share_departure,
                         policy=params.departing_share)["sessions"]


def detected_sessions(sim, settings: dict | None = None, threads: int = 2):
    """Detect every session of a simulated cell as the workflow does (the channels stage's
    share for each session, then the detect stage on ``threads`` threads, as its rule has);
    yields, per session, its name, detections, true synapses present and in view, the
    channels stage's choice (``estimate``, ``used``, ``departs``) and the seconds taken."""
    from pipeline.params import DetectParams
    from pipeline.stages.detect import detect_session

    params = DetectParams(**(settings or {}))
    spacing = np.asarray(sim.params.spacing)
    stacks = {f"s{k:02d}": image.astype(np.float32) for k, image in enumerate(sim.images)}
    chosen = chosen_shares(stacks, params)
    for session, stack in stacks.items():
        t0 = time.perf_counter()
        det = detect_session(stack, spacing=spacing, params=params,
                             share=chosen[session]["used"], workers=threads)
        secs = time.perf_counter() - t0
        t = sim.truth[(sim.truth.session == session) & (sim.truth.present == 1)
                      & (sim.truth.in_view == 1)]
        yield session, det, t, chosen[session], secs


def detect_cell(sim, settings: dict | None = None, threads: int = 2) -> pd.DataFrame:
    """Every session of a simulated cell detected as the workflow does
    (:func:`detected_sessions`) and scored; one row per session."""
    from pipeline.truth.evaluate import score_detection

    spacing = np.asarray(sim.params.spacing)
    rows = []
    for session, det, t, share, secs in detected_sessions(sim, settings, threads):
        score = score_detection(det[["z", "y", "x"]].to_numpy(), t[["z", "y", "x"]].to_numpy(),
                                spacing)
        n_false = len(det) - int(round(score["precision"] * len(det))) if len(det) else 0
        rows.append({"session": session, "n_true": len(t), "n_detected": len(det),
                     "share_estimate": share["estimate"],
                     "share_used": share["used"],
                     "departs": share["departs"],
                     "precision": score["precision"], "recall": score["recall"],
                     "f1": score["f1"], "false_share": n_false / max(len(det), 1),
                     "seconds": secs})
    return pd.DataFrame(rows)


def with_fill(args: list[str]) -> list[str] | None:
    """A single-channel regime's twin: the same cell, seed and photons, saved as the default
    two 16-bit channels (the PSD-95 channel is identical before the 8-bit scaling); None for
    a regime with a morphology channel."""
    if "--single-channel" not in args:
        return None
    out = list(args)
    for flag in ("--single-channel", "--bit-depth"):
        if flag in out:
            i = out.index(flag)
            del out[i:i + 2]
    return out


def summary(regime: str, per_session: pd.DataFrame) -> dict:
    """Pooled and worst-session figures of one regime."""
    return {"regime": regime, "sessions": len(per_session),
            "F1 (median over sessions)": per_session.f1.median(),
            "worst session F1": per_session.f1.min(),
            "worst session false share": per_session.false_share.max(),
            "sessions > 10 % false": int((per_session.false_share > 0.10).sum()),
            "share estimates": (f"{per_session.share_estimate.min():.3f}-"
                                f"{per_session.share_estimate.max():.3f}"
                                if per_session.share_estimate.notna().any()
                                else "no morphology channel"),
            "sessions departing": int(per_session.departs.sum()),
            "s per session": per_session.seconds.mean(),
            **({"worst session F1 with fill": per_session["f1 with fill"].min()}
               if "f1 with fill" in per_session else {})}


def main(argv=None) -> int:
    from registration_benchmark import simulated_cell, write_report
    from run_benchmark import COMMON, REGIMES, SPINE_REGIMES, reseeded

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--regimes", default=",".join(REGIMES))
    ap.add_argument("--out", default=None)
    ap.add_argument("--seed", type=int, default=None,
                    help="simulate each regime with this seed instead of its own (another "
                         "draw of the same regime)")
    ap.add_argument("--detect", action="append", default=[], metavar="KEY=VALUE",
                    help="a detect setting other than its default (value as in config.yaml)")
    ap.add_argument("--spines", action="append", default=[], metavar="KEY=VALUE",
                    help="a spines setting other than its default, for a spine regime")
    ap.add_argument("--threads", type=int, default=2,
                    help="threads of the detect stage (its rule has 2; the detections do not "
                         "depend on it, the seconds do)")
    args = ap.parse_args(argv)
    settings, spine_settings = (
        {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in items)}
        for items in (args.detect, args.spines))
    started = time.perf_counter()
    lines, sums = [], []

    for regime in args.regimes.split(","):
        if regime in SPINE_REGIMES:
            per = detect_spine_cell(
                simulated_cell(COMMON + reseeded(SPINE_REGIMES[regime], args.seed)),
                spine_settings)
            sums.append(spine_summary(regime, per))
            lines += [f"### {regime} (1 um gate)", "",
                      per.round(3).to_markdown(index=False), ""]
            continue
        per = detect_cell(simulated_cell(COMMON + reseeded(REGIMES[regime], args.seed)), settings,
                          args.threads)
        twin = with_fill(reseeded(REGIMES[regime], args.seed))
        if twin is not None:    # what the same photons give with a morphology channel
            per["f1 with fill"] = detect_cell(simulated_cell(COMMON + twin), settings,
                                              args.threads)["f1"].to_numpy()
        sums.append(summary(regime, per))
        lines += [f"### {regime}", "", per.round(3).to_markdown(index=False), ""]
    write_report("Detection per session", f"detection_benchmark.py --regimes {args.regimes}"
                 + (f" --seed {args.seed}" if args.seed is not None else "")
                 + "".join(f" --detect {item}" for item in args.detect)
                 + "".join(f" --spines {item}" for item in args.spines),
                 started, "Detection alone, in memory, each session as the workflow detects "
                 "it; precision and recall against the true synapses present and in view "
                 "(0.6 um gate; 1 um for a spine regime, detected as target puncta and as target "
                 "spines).",
                 sums, lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
