"""Accuracy, speed and memory of the pipeline and of peer tools on the same simulated data.

    python benchmarks/run_benchmark.py --workdir results/bench --out BENCHMARKS.md

For each regime: simulate a cell (8 sessions of 512x512x34 two-channel stacks), run our
Snakemake pipeline on it (wall time, per-stage time and peak memory from Snakemake's
``benchmark:`` files), score it against the truth, then run the peers on the same data:
detection with blob_log and trackpy.locate at their best settings (found by a sweep on a
separate simulated stack), tracking with trackpy.link and laptrack given our detections and
transforms, and registration with phase_cross_correlation alone.  Every figure in the
written table comes from this run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

def reseeded(regime_args: list[str], seed: int | None) -> list[str]:
    """A copy of a regime's simulator options with ``--seed`` set to ``seed`` (another draw of
    the regime; None: its own seed)."""
    out = list(regime_args)
    if seed is not None:
        out[out.index("--seed") + 1] = str(seed)
    return out


def varied(regime_args: list[str], *, seed: int | None = None,
           cells: str | None = None) -> list[str]:
    """A copy of a regime's simulator options with another ``seed`` (:func:`reseeded`) and
    another cell type ``cells`` (pyr, PV; None: each its own)."""
    out = reseeded(regime_args, seed)
    if cells:
        out[out.index("--cells") + 1] = cells
    return out


#: remounting as an independent simulation showed it (issue 31): rotations of 5-7 degrees
#: (beyond the old search bound), tilt, shifts of several um cutting the field, a smooth
#: warp, dense PV shaft clusters (neighbours 0.6-1.6 um apart) and a sparse end of the field
#: where puncta lie several um beyond every other
HARD_REGISTRATION = ["--cells", "PV", "--seed", "404", "--synapse-density-per-um", "2",
                     "--min-separation-um", "0.6", "--shift-sd-um", "1.5,5,5",
                     "--rotation-deg", "7", "--rotation-min-deg", "5", "--tilt-deg", "1.5",
                     "--warp-um", "0.4", "--sparse-fraction", "0.35",
                     "--sparse-density-factor", "0.05"]
REGIMES = {
    "pyr_typical": ["--cells", "pyr", "--seed", "101"],
    "PV_typical": ["--cells", "PV", "--seed", "202"],
    "low_signal_large_motion": ["--cells", "pyr", "--seed", "303", "--photons-per-weight", "500",
                                "--shift-sd-um", "1.5,4,4", "--rotation-deg", "5",
                                "--tilt-deg", "1", "--warp-um", "0.3"],
    "hard_registration": HARD_REGISTRATION,
    # the same regime, another draw (seed 444): a dense cluster of puncta in s02 that the
    # point pairs moved off as a whole (~0.5-0.8 um, three tracks shifted by one neighbour),
    # which the error map called reliable before the agreed-shift measure (83e17f5) and which
    # the register stage now moves back (`register.patch_length_um`, 8ea46d5); seed 404 has
    # no such cluster, so without this cell make bench did not show the failure
    "hard_registration_cluster": reseeded(HARD_REGISTRATION, 444),
    # detection that one session can derail (issue 24): diffuse PSD-95 patchy along the shaft
    # (and twice the default), and one session (s03) with a bright object in the morphology
    # channel only, on which that session's estimate of the morphology share collapses
    "channel_departure": ["--cells", "PV", "--seed", "505", "--shaft-texture", "0.5",
                          "--diffuse-psd95", "0.06", "--red-blob-sessions", "3"],
    # one channel (issue 25): PSD-95 alone, no morphology channel, 8-bit stacks each scaled to
    # its own range, as many labs' files come
    "single_channel": ["--cells", "pyr", "--seed", "606", "--single-channel", "true",
                       "--bit-depth", "8"],
    # PSD-95 alone on a PV cell: puncta crowded along the shaft, whose line openings took
    # their light with it (SD of ln weight 0.76 against the truth's 0.43, survival 0.815
    # against 0.889, before the measurement was over the 6 um lines' shaft,
    # weights.weight_shaft_line_um)
    "single_channel_PV": ["--cells", "PV", "--seed", "616", "--single-channel", "true",
                          "--bit-depth", "8"],
    # PSD-95 alone with a brighter shaft (issue 24's ridge test): the diffuse PSD-95 at 0.2
    # of the fill (the default 0.03; peak ~9 photons over a background of 2, a punctum of
    # weight 1 peaking at ~24), as an overexpressed or knock-in PSD-95 can show it.  The line
    # openings take a noisy shaft ~10 % short (more where it runs between their 8 directions),
    # and the ridge left over is where false puncta arise
    "single_channel_bright_shaft": ["--cells", "pyr", "--seed", "626", "--single-channel",
                                    "true", "--bit-depth", "8", "--diffuse-psd95", "0.2"],
    # close pairs (issue 24): 14 % of the first session's PV synapses in pairs 0.3-0.4 um
    # apart laterally (12-14 % of those present in each session), closer than the optics
    # resolve; tracking must not alternate between the two members
    "close_pairs": ["--cells", "PV", "--seed", "808", "--close-pair-fraction", "0.14"],
}
#: the spine regimes (issue 26), without the peers (their detectors find puncta): make bench
#: runs them through the whole workflow after this script (regime_run.py, its report appended
#: to BENCHMARKS.md), detection_benchmark.py detects them alone; a spiny dendrite's fill, one 8-bit channel scaled per stack, heads
#: 0.4-1 um on necks 0.5-2 um (a fifth stubby), spines born and lost, two sessions imaged
#: 20 % shallower (the top and the bottom planes left out) and brightness varying 20 %
SPINE_REGIMES = {
    "spines": ["--cells", "pyr", "--seed", "707", "--spines", "true", "--bit-depth", "8",
               "--crop-sessions", "3,6", "--crop-depth-fraction", "0.8",
               "--crop-depth-offset", "0.5", "--brightness-sd", "0.2"],
    # the cost target: 6 sessions of ~20 M voxels (40 x 708 x 708)
    "spines_20M": ["--cells", "pyr", "--seed", "717", "--spines", "true", "--bit-depth", "8",
                   "--crop-sessions", "3", "--crop-depth-fraction", "0.8",
                   "--crop-depth-offset", "0.5", "--brightness-sd", "0.2",
                   "--n-sessions", "6", "--shape", "40,708,708"],
}
COMMON = ["--n-sessions", "8", "--shape", "34,512,512"]
#: the same cells with one session imaged at half its depth (the top 17 of 34 planes)
CROPPED = {"pyr_typical": ["--crop-sessions", "4", "--crop-depth-fraction", "0.5"],
           "PV_typical": ["--crop-sessions", "4", "--crop-depth-fraction", "0.5"]}
CALIBRATION = ["--cells", "pyr", "--seed", "999", "--n-sessions", "2", "--shape", "34,512,512"]
BLOB_THRESHOLDS = [0.05, 0.07, 0.1, 0.14, 0.2]
TRACKPY_GRID = [(d, m) for d in (0.7, 1.0) for m in (150, 300, 600)]
STAGES = ["check", "ingest", "channels", "detect", "register", "track", "curate", "weights", "presence", "review", "collect", "stats", "report"]


def run(cmd, **kw):
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
    return time.perf_counter() - t0


def simulate(out: Path, args) -> None:
    """Always simulate afresh: data left by an earlier run may come from another simulator."""
    if out.exists():
        shutil.rmtree(out)
    run([sys.executable, "-m", "pipeline", "simulate", "--out", str(out), *COMMON, *args])


# --------------------------------------------------------------------------- peers (children)
def _in_child(fn, *args):
    """Run ``fn(*args)`` in a fresh process; return (result, seconds, peak RSS in MB)."""
    ctx = mp.get_context("spawn")
    pool = ctx.Pool(1)
    try:
        return pool.apply(_measured, (fn, *args))
    finally:  # let the worker exit on its own (terminate() interrupts it mid-write)
        pool.close()
        pool.join()


def _measured(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    secs = time.perf_counter() - t0
    return out, secs, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _session_stacks(results: Path, cell: str):
    from pipeline.contract import Layout
    from pipeline.inputs.stacks import load_ingested

    layout = Layout(results)
    metas = sorted((json.loads(p.read_text())
                    for p in layout.path("ingest_meta", cell=cell).parent.glob("*.json")),
                   key=lambda m: m["day"])
    for m in metas:
        stack, meta = load_ingested(layout.path("ingest", cell=cell, session=m["session"]))
        yield m["session"], stack, np.asarray(meta["voxel_um"])


def _detect_all(tool: str, results: str, cell: str, setting: dict):
    import peers

    fn = peers.detect_blob_log if tool == "blob_log" else peers.detect_trackpy
    return {sess: fn(stack[0], spacing=sp, **setting)
            for sess, stack, sp in _session_stacks(Path(results), cell)}


def _time_detection(results: str, cell: str, workers: int):
    """detect_puncta on every session of a cell, as the detect stage calls it: seconds (after
    one untimed call on the first session, so that imports and first-call costs are out),
    and, in a separate call on the first session, the peak of memory allocated during the
    call (tracemalloc, which numpy reports its arrays to, and which slows the call down),
    beside the size of the two-channel float32 stack it is given."""
    import tracemalloc

    from pipeline.stages.detect import detect_puncta

    rows, warm = [], False
    for sess, stack, sp in _session_stacks(Path(results), cell):
        morphology = stack[1] if len(stack) > 1 else None      # the single-channel regime
        if not warm:
            detect_puncta(stack[0], spacing=sp, morphology=morphology, workers=workers)
            tracemalloc.start()
            detect_puncta(stack[0], spacing=sp, morphology=morphology, workers=workers)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            warm = True
        t0 = time.perf_counter()
        detect_puncta(stack[0], spacing=sp, morphology=morphology, workers=workers)
        rows.append({"session": sess, "seconds": time.perf_counter() - t0,
                     "peak_mb": peak / 2 ** 20, "stack_mb": stack.nbytes / 2 ** 20})
    return rows


def _register_all(results: str, cell: str):
    import peers

    stacks = list(_session_stacks(Path(results), cell))
    ref = stacks[0][1][-1]  # morphology channel (last), as a lab would
    return {sess: peers.register_skimage(ref, stack[-1], spacing=sp)
            for sess, stack, sp in stacks}


def _link(tool: str, tracks_csv: str):
    import peers

    puncta = pd.read_csv(tracks_csv)
    if tool == "trackpy.link":
        return peers.link_trackpy(puncta, search_range_um=1.0, memory=1)
    return peers.link_laptrack(puncta, cutoff_um=1.0, max_gap=1)


def _calibrate_one(tool: str, results: str, cell: str, settings: list, truth_csv: str, spacing):
    from pipeline.truth.evaluate import score_detection

    truth = pd.read_csv(truth_csv)
    t0 = truth[(truth.session == "s00") & (truth.present == 1)][["z", "y", "x"]].to_numpy()
    stack = next(_session_stacks(Path(results), cell))[1][0]
    import peers

    fn = peers.detect_blob_log if tool == "blob_log" else peers.detect_trackpy
    rows = []
    for st in settings:
        det = fn(stack, spacing=spacing, **st)
        rows.append({"tool": tool, **st, **score_detection(det.to_numpy(), t0, spacing)})
    return rows


# --------------------------------------------------------------------------- our pipeline
def run_ours(data: Path, results: Path, cores: int) -> dict:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(results.parent / ".snakemake_work"), "--cores", str(cores),
           "--forceall", "--config", f"sessions={data / 'sessions.tsv'}", f"results={results}"]
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    wall = run(cmd, env=env)
    stages = {}
    for stage in STAGES:
        files = list((results / "benchmarks").glob(f"{stage}/**/*.tsv")) + \
            list((results / "benchmarks").glob(f"{stage}.tsv"))
        tab = pd.concat([pd.read_csv(f, sep="\t") for f in files]) if files else pd.DataFrame()
        stages[stage] = {"jobs": len(tab), "seconds": float(tab["s"].sum()) if len(tab) else np.nan,
                         "max_rss_mb": float(tab["max_rss"].max()) if len(tab) else np.nan}
    # registration and tracking of the cell again, alone: the issue's "register and track one
    # cell of 8 sessions" time.  Span: first register job's start to the track job's end (from
    # the jobs' benchmark files: written at each job's end, duration inside); the command's wall
    # adds Snakemake's own start-up.
    cmd = [c for c in cmd if c != "--forceall"] + ["--forcerun", "register", "--until", "track"]
    reg_wall = run(cmd, env=env)
    ends = {f: f.stat().st_mtime for f in (results / "benchmarks").glob("register/**/*.tsv")}
    starts = [t - float(pd.read_csv(f, sep="\t")["s"].iloc[-1]) for f, t in ends.items()]
    track_end = max(f.stat().st_mtime for f in (results / "benchmarks").glob("track/**/*.tsv"))
    return {"wall_s": wall, "stages": stages, "register_track_wall_s": reg_wall,
            "register_track_span_s": track_end - min(starts)}


# --------------------------------------------------------------------------- scoring helpers
def score_detections(dets: dict, truth: pd.DataFrame, spacing) -> dict:
    from pipeline.truth.evaluate import score_detection

    rows = [score_detection(d[["z", "y", "x"]].to_numpy(),
                            truth[(truth.session == s) & (truth.present == 1)][["z", "y", "x"]].to_numpy(),
                            spacing) for s, d in dets.items()]
    df = pd.DataFrame(rows)
    return {"detection_precision": df.precision.mean(), "detection_recall": df.recall.mean(),
            "detection_f1": df.f1.mean()}


def score_registration(mats: dict, truth: pd.DataFrame, spacing) -> dict:
    from pipeline.truth.evaluate import registration_error_um

    errs = np.concatenate([
        registration_error_um(m, truth[(truth.session == s) & (truth.present == 1)][["z", "y", "x"]].to_numpy() * spacing,
                              truth[(truth.session == s) & (truth.present == 1)][["z_um", "y_um", "x_um"]].to_numpy())
        for s, m in mats.items()])
    return {"registration_error_um_median": float(np.median(errs)),
            "registration_error_um_p95": float(np.percentile(errs, 95))}


def score_tracks(tracks: pd.DataFrame, truth: pd.DataFrame, spacing) -> dict:
    from pipeline.truth.evaluate import assign_true_ids, score_links, true_links_of, turnover_error_pp

    true_id = assign_true_ids(tracks, truth, spacing)
    links = score_links(tracks, true_id, true_links_of(tracks, true_id))
    return {"link_precision": links["precision"], "link_recall": links["recall"],
            "link_f1": links["f1"], **turnover_error_pp(tracks, truth)}


# --------------------------------------------------------------------------- main
def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.platform()}"


def versions() -> str:
    from importlib.metadata import version

    names = ["numpy", "scipy", "scikit-image", "pandas", "tifffile", "snakemake", "trackpy", "laptrack"]
    return ", ".join(f"{n} {version(n)}" for n in names) + f", Python {platform.python_version()}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=str(ROOT / "results" / "bench"))
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--cores", type=int, default=2)
    args = ap.parse_args(argv)
    work = Path(args.workdir).resolve()
    if work.exists():  # nothing from an earlier run may leak into this one's table
        shutil.rmtree(work)
    work.mkdir(parents=True)
    t_start = time.perf_counter()
    from pipeline.contract import Layout
    from pipeline.truth.evaluate import censoring_comparison, evaluate_results
    from registration_benchmark import pipeline_sessions

    # 1. calibrate the peers' detection settings on a separate simulated stack
    cal = work / "calibration"
    simulate(cal / "data", CALIBRATION)
    run_ours(cal / "data", cal / "results", args.cores)
    spacing = np.array([0.8, 0.0887, 0.0887])
    cal_rows = []
    for tool, settings in (("blob_log", [{"threshold": t} for t in BLOB_THRESHOLDS]),
                           ("trackpy.locate", [{"diameter_um": d, "minmass": m} for d, m in TRACKPY_GRID])):
        rows, _, _ = _in_child(_calibrate_one, tool, str(cal / "results"), "pyr01", settings,
                               str(cal / "data" / "truth" / "synapses.csv"), spacing)
        cal_rows += rows
    cal_df = pd.DataFrame(cal_rows)
    best = {tool: cal_df[cal_df.tool == tool].sort_values("f1", ascending=False).iloc[0]
            for tool in ("blob_log", "trackpy.locate")}
    best_setting = {"blob_log": {"threshold": float(best["blob_log"]["threshold"])},
                    "trackpy.locate": {"diameter_um": float(best["trackpy.locate"]["diameter_um"]),
                                       "minmass": float(best["trackpy.locate"]["minmass"])}}

    # 2. regimes
    table, model_rows, speed, det_speed, reg_sessions = [], [], {}, [], []
    for regime, sim_args in REGIMES.items():
        data, results = work / regime / "data", work / regime / "results"
        simulate(data, sim_args)
        ours = run_ours(data, results, args.cores)
        speed[regime] = ours
        scores = evaluate_results(data, results)
        truth = pd.read_csv(data / "truth" / "synapses.csv")
        cell = truth["cell"].iloc[0]
        tcell = truth[truth.cell == cell]
        per_cell = scores[scores.cell == cell].set_index("metric")["value"].to_dict()
        peak = max(v["max_rss_mb"] for v in ours["stages"].values() if np.isfinite(v["max_rss_mb"]))
        table.append({"regime": regime, "tool": "ours (pipeline)", **per_cell,
                      "time_s": ours["wall_s"], "peak_mb": peak})
        model_rows.append(scores[scores.cell.str.startswith("type:")].assign(regime=regime))
        reg_sessions.append(pipeline_sessions(data, results).assign(regime=regime))
        for tool in ("blob_log", "trackpy.locate"):
            dets, secs, mb = _in_child(_detect_all, tool, str(results), cell, best_setting[tool])
            table.append({"regime": regime, "tool": f"{tool} (detection)",
                          **score_detections(dets, tcell, spacing), "time_s": secs, "peak_mb": mb})
        for workers in (1, 2):
            rows, _, _ = _in_child(_time_detection, str(results), cell, workers)
            det_speed.append(pd.DataFrame(rows).assign(regime=regime, workers=workers))
        mats, secs, mb = _in_child(_register_all, str(results), cell)
        table.append({"regime": regime, "tool": "phase_cross_correlation (registration)",
                      **score_registration(mats, tcell, spacing), "time_s": secs, "peak_mb": mb})
        tracks_csv = Layout(results).path("track", cell=cell)
        ours_tracks = pd.read_csv(tracks_csv)
        for tool in ("trackpy.link", "laptrack"):
            ids, secs, mb = _in_child(_link, tool, str(tracks_csv))
            table.append({"regime": regime, "tool": f"{tool} (tracking, our detections)",
                          **score_tracks(ours_tracks.assign(synapse_id=ids), tcell, spacing),
                          "time_s": secs, "peak_mb": mb})

    # 3. censoring: the same cells with one session at half its depth, against the full run
    censoring = []
    for regime, crop_args in CROPPED.items():
        data, results = work / f"{regime}_cropped" / "data", work / f"{regime}_cropped" / "results"
        simulate(data, REGIMES[regime] + crop_args)
        run_ours(data, results, args.cores)
        full = pd.read_csv(Layout(work / regime / "results").synapses)
        censoring.append(censoring_comparison(pd.read_csv(Layout(results).synapses), full)
                         .assign(regime=regime))
    censoring = pd.concat(censoring, ignore_index=True)
    censoring.to_csv(work / "censoring.csv", index=False)

    reg_sessions = pd.concat(reg_sessions, ignore_index=True)
    reg_sessions.to_csv(work / "registration_sessions.csv", index=False)
    results_df = pd.DataFrame(table)
    models = pd.concat(model_rows, ignore_index=True)
    det_speed = pd.concat(det_speed, ignore_index=True)
    det_speed.to_csv(work / "detection_speed.csv", index=False)
    results_df.to_csv(work / "scores.csv", index=False)
    models.to_csv(work / "models.csv", index=False)
    cal_df.to_csv(work / "calibration.csv", index=False)
    total = time.perf_counter() - t_start
    write_markdown(Path(args.out), results_df, models, cal_df, best_setting, speed, total, args,
                   det_speed, censoring, reg_sessions)
    print(f"wrote {args.out} ({total / 60:.1f} min)")


def _fmt(v, nd=3):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return f"{v:.{nd}f}" if isinstance(v, (float, np.floating)) else str(v)


def _censoring_section(censoring: pd.DataFrame) -> list[str]:
    lines = ["## Censoring: one session imaged at half its depth", "",
             "The pyr and PV typical cells simulated again with the same seeds, session s04 cut to "
             "the top 17 of its 34 planes (`--crop-sessions 4 --crop-depth-fraction 0.5`; every "
             "other session identical), run through the whole pipeline, and compared with the "
             "full-depth run on the same synapse-sessions (the full run's synapses matched by "
             "position, hidden where the cropped run did not observe them; "
             "`pipeline.truth.evaluate.censoring_comparison`). Survival to the last session and "
             "mean fractions added and lost per interval; the last column set counts the "
             "unobserved as absent, as the pipeline did before `observed` existed.", "",
             "| regime | not observed rows | survival: cropped / full, same synapses (diff) "
             "| added: cropped / full (diff) | lost: cropped / full (diff) "
             "| if unobserved counted absent: survival / added / lost |",
             "|---|---|---|---|---|---|"]
    for r in censoring.itertuples():
        cells = [f"{getattr(r, f'{q}_censored'):.3f} / {getattr(r, f'{q}_full_same_synapses'):.3f}"
                 f" ({getattr(r, f'{q}_difference'):+.3f})" for q in ("survival", "added", "lost")]
        old = " / ".join(f"{getattr(r, f'{q}_unobserved_counted_absent'):.3f}"
                         for q in ("survival", "added", "lost"))
        lines.append(f"| {r.regime} ({r.cell_type}) | {r.not_observed_rows} | "
                     + " | ".join(cells) + f" | {old} |")
    return lines + [""]


def _registration_section(reg: pd.DataFrame) -> list[str]:
    """Per regime: the pooled figure beside the worst session, and how QC judged them."""
    from registration_benchmark import summary

    sums = pd.DataFrame([summary(regime, grp) for regime, grp in reg.groupby("regime", sort=False)])
    worst = reg.loc[reg.groupby("regime", sort=False)["lateral_p95_um"].idxmax()]
    lines = ["", "## Registration per session", "",
             "Residual (um) of every true synapse present and in view, after the register "
             "stage's transform, lateral (y, x) and axial (z); per session, then the worst "
             "session of each regime. A session or row counts as flagged when the register "
             "stage's error map puts it above `register.misregistered_um` (0.5 um). Targets "
             "(issue 31): lateral median <= 0.10, every session's lateral p95 <= 0.35 and axial "
             "p95 <= 0.6, every session with p95 > 0.5 flagged.", "",
             sums.round(3).to_markdown(index=False), "", "Worst session of each regime:", "",
             worst[["regime", "cell", "session", "n", "lateral_median_um", "lateral_p95_um",
                    "axial_p95_um", "true_rotation_deg", "rotation_deg", "model", "n_matches",
                    "reliable", "flagged_regions", "rows_wrong", "wrong_flagged"]]
             .round(3).to_markdown(index=False),
             "", "Every session: `results/bench/registration_sessions.csv`.", ""]
    return lines


def write_markdown(path, scores, models, cal, best, speed, total, args, det_speed, censoring,
                   reg_sessions):
    cols = [("detection_precision", "det P"), ("detection_recall", "det R"), ("detection_f1", "det F1"),
            ("registration_error_um_median", "reg err med (um)"),
            ("registration_error_um_p95", "reg err p95 (um)"),
            ("link_precision", "link P"), ("link_recall", "link R"), ("link_f1", "link F1"),
            ("added_abs_error_pp", "added err, tracks (pp)"), ("lost_abs_error_pp", "lost err, tracks (pp)"),
            ("log_weight_r", "r log w"), ("log_change_r", "r log Δw"),
            ("time_s", "time (s)"), ("peak_mb", "peak MB")]
    cmd = f"make bench  (= python benchmarks/run_benchmark.py --workdir {Path(args.workdir)} --out {Path(args.out).name} --cores {args.cores})"
    lines = [
        "# Benchmarks", "",
        f"Date: {dt.date.today().isoformat()} · machine: {machine()} · cores used: {args.cores}",
        f"Command: `{cmd}` · whole run: {total / 60:.1f} min", f"Versions: {versions()}", "",
        "Every number below was written by that command in that run; nothing is edited by hand.",
        "Simulated data: `python -m pipeline simulate` with 8 sessions of 34x512x512 two-channel "
        "16-bit stacks (0.8 x 0.0887 x 0.0887 um), one cell per regime; regime options:", ""]
    for regime, a in REGIMES.items():
        lines.append(f"- `{regime}`: `{' '.join(COMMON + a)}`")
    lines += ["", "## Accuracy, speed and memory", "",
              "Detection scores are means over sessions; link scores are over consecutive sessions; "
              "added/lost errors (from the tracks, i.e. per-session detection; the joint calls are "
              "scored in the presence section) are mean absolute differences per interval in "
              "percentage points. "
              "Ours: `time` is the end-to-end wall time of the Snakemake run (all stages, "
              f"{args.cores} cores) and `peak MB` the largest job's max RSS. Peers: time and "
              "peak RSS of a fresh process running the tool on all sessions of the cell (given our "
              "detections and transforms for the tracking peers).", ""]
    lines.append("| regime | tool | " + " | ".join(c[1] for c in cols) + " |")
    lines.append("|---|---|" + "---|" * len(cols))
    for r in scores.to_dict("records"):
        lines.append(f"| {r['regime']} | {r['tool']} | " + " | ".join(
            _fmt(r.get(c), 1 if c in ("time_s", "peak_mb", "added_abs_error_pp", "lost_abs_error_pp") else 3)
            for c, _ in cols) + " |")
    lines += ["", "## Detection and weights", "",
              "Detection F1 against the simulator's truth (ours and the peers, from the table "
              "above); r of log weight and of log weight change vs the truth; the cross-session "
              "normalisation error of both methods, applied to the same measured intensities "
              "(per session, the median of our weight / true weight over synapses present in "
              "both; the error is the mean absolute deviation of those session scales from their "
              "median); `detect_puncta` alone on each full-size session (in-process, after a "
              "warm-up call; seconds with 1 and 2 threads), and the peak memory it allocates "
              "(tracemalloc, a separate call on the first session) over the two-channel float32 "
              "stack it is given.", "",
              "| regime | det F1 ours | det F1 blob_log | det F1 trackpy | r log w | r log Δw | "
              "norm. error percentile_40_60 (%) | norm. error median_ratio (%) | "
              "detect s/session, 1 thread (median / max) | 2 threads (median / max) | "
              "detect peak memory / stack (max) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for regime in REGIMES:
        sc = scores[scores.regime == regime].set_index("tool")
        ours = sc.loc["ours (pipeline)"]
        sp = det_speed[det_speed.regime == regime]
        one, two = sp[sp.workers == 1]["seconds"], sp[sp.workers == 2]["seconds"]
        ratio = (sp["peak_mb"] / sp["stack_mb"]).max()
        lines.append(
            f"| {regime} | {_fmt(ours.get('detection_f1'))} | "
            f"{_fmt(sc.loc['blob_log (detection)'].get('detection_f1'))} | "
            f"{_fmt(sc.loc['trackpy.locate (detection)'].get('detection_f1'))} | "
            f"{_fmt(ours.get('log_weight_r'))} | {_fmt(ours.get('log_change_r'))} | "
            f"{_fmt(ours.get('normalisation_error_pct_percentile_40_60'), 1)} | "
            f"{_fmt(ours.get('normalisation_error_pct_median_ratio'), 1)} | "
            f"{one.median():.2f} / {one.max():.2f} | {two.median():.2f} / {two.max():.2f} | "
            f"{ratio:.1f}x ({sp['peak_mb'].max():.0f} MB over {sp['stack_mb'].iloc[0]:.0f} MB) |")
    lines += ["", "## Our per-stage time and memory (Snakemake `benchmark:` files)", "",
              "| regime | end-to-end wall (s) | " + " | ".join(f"{s} s / MB" for s in STAGES) + " |",
              "|---|---|" + "---|" * len(STAGES)]
    for regime, sp in speed.items():
        lines.append(f"| {regime} | {sp['wall_s']:.1f} | " + " | ".join(
            f"{_fmt(sp['stages'][s]['seconds'], 1)} / {_fmt(sp['stages'][s]['max_rss_mb'], 0)}"
            for s in STAGES) + " |")
    lines += ["", "Stage seconds are summed over that stage's jobs (each includes ~1 s of Python "
              "start-up); two jobs run at once on 2 cores.", "",
              "Register + track alone (the same command again with `--forcerun register --until "
              "track`): span from the first register job's start to the track job's end, and "
              "the command's wall time (adds Snakemake's start-up).", "",
              "| regime | register + track span (s) | command wall (s) | register jobs |",
              "|---|---|---|---|"]
    for regime, sp in speed.items():
        lines.append(f"| {regime} | {sp['register_track_span_s']:.1f} | "
                     f"{sp['register_track_wall_s']:.1f} | {sp['stages']['register']['jobs']} |")
    lines += ["",
              "## Models: fitted vs generating parameters", "",
              "Log-normal sigma of ln weight on the first session, and the binned-moment Kesten fit "
              "(README procedure) on: the simulator's own truth table (`truth_table`: the "
              "method's bias with perfect measurement) and our `synapses.csv` (`ours`).", "",
              "| regime | cell type | quantity | generating | truth table | ours |", "|---|---|---|---|---|---|"]
    for (regime, ct), grp in models.groupby(["regime", "cell"]):
        m = grp.set_index("metric")["value"]
        for q in ["sigma"] + [f"kesten_{c}" for c in "acbd"]:
            lines.append(f"| {regime} | {ct.split(':')[1]} | {q} | {_fmt(m.get(q + '_generating'))} | "
                         f"{_fmt(m.get(q + '_truth_table'))} | {_fmt(m.get(q + '_ours'))} |")
        lines.append(f"| {regime} | {ct.split(':')[1]} | survival to last session | — | "
                     f"{_fmt(m.get('survival_last_true'))} | {_fmt(m.get('survival_last_ours'))} |")
    lines += ["", "## Presence: per-session detection vs joint calls (all sessions' evidence)", "",
              "The same run's `synapses.csv` scored twice: `present_detected` (a punctum detected "
              "in that session) and `present` (the presence stage's hidden Markov model over "
              "each track; for puncta, one in which a lost synapse does not return). Turnover is the mean over intervals; errors are mean absolute differences "
              "per interval (percentage points); the hazard is the logistic slope of loss on "
              "ln weight with its 95 % CI (generating slope beside the truth).", "",
              "| regime | cell type | quantity | truth | per-session detection | joint calls |",
              "|---|---|---|---|---|---|"]

    def _slope(m, name):
        return (f"{_fmt(m.get(f'hazard_slope_{name}'), 2)} [{_fmt(m.get(f'hazard_slope_{name}_ci_low'), 2)}, "
                f"{_fmt(m.get(f'hazard_slope_{name}_ci_high'), 2)}]")

    for (regime, ct), grp in models.groupby(["regime", "cell"]):
        m = grp.set_index("metric")["value"]
        t = ct.split(":")[1]
        for q in ("added", "lost"):
            lines.append(f"| {regime} | {t} | {q} per interval | {_fmt(m.get(q + '_true'))} | "
                         f"{_fmt(m.get(q + '_ours_detection'))} | {_fmt(m.get(q + '_ours'))} |")
            lines.append(f"| {regime} | {t} | {q}: error (pp) | 0 | "
                         f"{_fmt(m.get(q + '_abs_error_pp_detection'), 1)} | "
                         f"{_fmt(m.get(q + '_abs_error_pp'), 1)} |")
        lines.append(f"| {regime} | {t} | survival to last session | {_fmt(m.get('survival_last_true'))} | "
                     f"{_fmt(m.get('survival_last_ours_detection'))} | {_fmt(m.get('survival_last_ours'))} |")
        lines.append(f"| {regime} | {t} | loss hazard slope | {_fmt(m.get('hazard_slope_generating'), 2)} "
                     f"(truth table {_slope(m, 'truth_table')}) | {_slope(m, 'ours_detection')} | "
                     f"{_slope(m, 'ours')} |")
    lines += [""] + _censoring_section(censoring)
    lines += _registration_section(reg_sessions)
    lines += ["## Peer settings (sweep on a separate simulated stack, seed 999)", "",
              f"Chosen: blob_log {best['blob_log']}, trackpy.locate {best['trackpy.locate']}. "
              "Tracking peers use our gate (1.0 um, z scaled by 0.5) and gap (1 session); "
              "phase_cross_correlation runs on the morphology channel with upsample_factor=10.", "",
              "| tool | setting | precision | recall | F1 |", "|---|---|---|---|---|"]
    for r in cal.to_dict("records"):
        setting = ", ".join(f"{k}={r[k]}" for k in ("threshold", "diameter_um", "minmass")
                            if k in r and pd.notna(r.get(k)))
        lines.append(f"| {r['tool']} | {setting} | {_fmt(r['precision'])} | {_fmt(r['recall'])} | {_fmt(r['f1'])} |")
    lines += ["", "## Targets (from the benchmark issue) and where we stand", "",
              "detection F1 ≥ 0.95 at typical signal; link F1 ≥ 0.97 and added/lost within 1 pp; "
              "registration error ≤ 0.15 um; log-weight r ≥ 0.95; Kesten and log-normal "
              "parameters within 10 %; a full-size cell end-to-end in under 60 s on 2 cores with "
              "peak memory under 2 GB; better than every peer on every score. See the tables above "
              "(the `pyr_typical` row is the full-size cell).", ""]
    Path(path).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
