"""The commands: read files -> call one function -> write files.  The only place that knows
paths; the science is in ``pipeline.stages``, ``pipeline.stats`` and ``pipeline.review``."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import InputError
from ..inputs.curation import ROW_FIELDS as CURATION_FIELDS
from ..params import (DendriteParams, DetectParams, PresenceParams, RegisterParams,
                      ReviewParams, SpinesParams, TrackParams, WeightsParams, from_options)
from .files import atomic_dir, atomic_path, read_json, read_table, write_json, write_table


def _triple(text: str | None):
    if text is None or str(text).strip().lower() in ("", "none", "null"):
        return None
    return tuple(float(v) for v in str(text).split(","))


def _curation_rows(text: str | None) -> pd.DataFrame:
    """The cell's curation rows, passed by the rules as JSON (see rules/common.smk)."""
    return pd.DataFrame(json.loads(text or "[]"), columns=CURATION_FIELDS)


def _ingested(paths):
    """Each ingested stack with its metadata, one at a time (each stack read once)."""
    from ..inputs.stacks import load_ingested

    for path in paths:
        yield load_ingested(path)


# --------------------------------------------------------------------------- set-up
def cmd_simulate(args) -> None:
    from ..truth.simulate import SimulationParams, write_dataset
    from .parser import simulation_overrides

    overrides = simulation_overrides(args)
    cells = [(f"{ct}{k + 1:02d}", SimulationParams(cell_type=ct, seed=args.seed + 1000 * k,
                                                   **overrides))
             for k, ct in enumerate(args.cells.split(","))]
    out = write_dataset(args.out, cells)
    print(f"wrote {out}/sessions.tsv, images/ and truth/ (parameters in truth/params.json)")


def cmd_discover(args) -> None:
    from ..inputs.discover import check_discover_paths, discover_sessions

    root, out = Path(args.root).resolve(), Path(args.out).resolve()
    check_discover_paths(root, out, force=args.force)
    sheet, notes = discover_sessions(root, sheet_folder=out.parent, pattern=args.pattern,
                                     cell_type=args.cell_type,
                                     psd95_channel=args.psd95_channel,
                                     morphology_channel=args.morphology_channel)
    with atomic_path(out) as tmp:
        sheet.to_csv(tmp, sep="\t", index=False)
    print(f"wrote {out}: {sheet['cell'].nunique()} cell(s), {len(sheet)} session(s)")
    for line in notes:
        print(f"  - {line}")
    print(f"then: python -m pipeline check-sheet {out} --images")


def cmd_check_sheet(args) -> None:
    from ..inputs.sheet import describe_images, read_sessions

    sessions = read_sessions(args.sheet)
    files = describe_images(sessions, config_voxel=_triple(args.voxel_um)) if args.images else []
    for rec in files:
        print(rec["line"] or rec["problem"])
    for warning in (w for rec in files for w in rec["warnings"]):
        print(f"warning: {warning}")
    problems = [rec["problem"] for rec in files if rec["problem"]]
    if problems:
        raise InputError(f"{args.sheet}: {len(problems)} image problem(s):\n  - " +
                         "\n  - ".join(problems))
    print(f"{args.sheet}: {len(sessions)} sessions of {sessions['cell'].nunique()} cell(s) OK")


# --------------------------------------------------------------------------- per session
def cmd_ingest(args) -> None:
    from ..inputs.session import load_session, session_metadata, session_row
    from ..inputs.sheet import read_sessions
    from ..inputs.stacks import write_stack

    row = session_row(read_sessions(args.sheet), args.sheet, args.cell, args.session)
    stack, voxel, channels, warnings = load_session(
        row, config_voxel=_triple(args.voxel_um), max_saturated=args.max_saturated,
        config_voxel_first=args.config_voxel_first, swapped=args.swapped_channels)
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    with atomic_path(args.out) as tmp:
        write_stack(tmp, stack, voxel_um=voxel, metadata=session_metadata(row, stack, channels))
        os.replace(tmp.with_suffix(".json"), Path(args.out).with_suffix(".json"))
    print(f"{row['abs_path']}: {stack.shape} voxel {voxel} um -> {args.out}")


def cmd_check(args) -> None:
    """Check every session of a cell as ingest would; record, never raise, what is wrong."""
    from ..inputs.session import load_session, session_row
    from ..inputs.sheet import read_sessions

    sessions = read_sessions(args.sheet)
    results = []
    for session in sessions.loc[sessions["cell"] == args.cell, "session"]:
        row = session_row(sessions, args.sheet, args.cell, session)
        warnings = []
        try:
            warnings = load_session(row, config_voxel=_triple(args.voxel_um),
                                    max_saturated=args.max_saturated,
                                    config_voxel_first=args.config_voxel_first,
                                    swapped=args.swapped_channels)[3]
            error = ""
        except InputError as exc:
            error = str(exc)
        results.append({"session": session, "path": row["abs_path"], "ok": not error,
                        "error": error, "warnings": warnings})
        print(f"{row['abs_path']}: {'ok' if not error else error}")
    write_json({"cell": args.cell, "ok": all(r["ok"] for r in results), "sessions": results},
               args.out)


def cmd_channels(args) -> None:
    from ..stages.channels import pooled_shares, session_share, single_channel_note, spines_note

    params = from_options(DetectParams, args.options)
    estimates, cell, target = {}, "", "puncta"
    for stack, meta in _ingested(args.stacks):
        estimates[str(meta["session"])] = session_share(stack)
        cell, target = meta["cell"], meta.get("target", "puncta")
    result = pooled_shares(estimates, cell=cell, departure=params.share_departure,
                           policy=params.departing_share)
    one_channel = estimates and all(v is None for v in estimates.values())
    result["notes"] = ([spines_note(cell)] if target == "spines" else
                       [single_channel_note(cell, params)] if one_channel else [])
    result["spine_cells"] = [cell] if target == "spines" else []
    write_json(result, args.out)
    for note in result["notes"]:
        print(note)
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)


def cmd_dendrite(args) -> None:
    from ..stages.dendrite import lengths_table, session_length

    params = from_options(DendriteParams, args.options)
    rows = [session_length(stack, meta, params=params) for stack, meta in _ingested(args.stacks)]
    table = lengths_table(rows)
    write_table(table, args.out, float_format="%.4g")
    print(table.to_string(index=False))


def cmd_detect(args) -> None:
    from ..inputs.stacks import load_ingested
    from ..contract import chosen_for
    from ..stages.detect import detect_session, detect_spine_session, single_channel_choice

    stack, meta = load_ingested(args.stack)
    if meta.get("target") == "spines":
        heads = detect_spine_session(stack, spacing=meta["voxel_um"],
                                     params=from_options(SpinesParams, args.spine_options))
        write_table(heads, args.out, float_format="%.5g")
        return print(f"{args.stack}: {len(heads)} spine heads (target spines: the fill alone)")
    channels = read_json(args.channels) if args.channels else None
    params = from_options(DetectParams, args.options)
    puncta = detect_session(stack, spacing=meta["voxel_um"], workers=args.threads, params=params,
                            share=chosen_for(channels, meta["session"]).get("used"))
    write_table(puncta, args.out, float_format="%.5g")
    print(f"{args.stack}: {len(puncta)} puncta")
    if stack.shape[0] == 1:
        print(single_channel_choice(puncta, params))


def cmd_register(args) -> None:
    from ..inputs.stacks import load_ingested
    from ..review.qc import registration_figure
    from ..stages.register import register_to_reference

    ref, ref_meta = load_ingested(args.reference)
    same_file = Path(args.stack).resolve() == Path(args.reference).resolve()
    mov, meta = (ref, ref_meta) if same_file else load_ingested(args.stack)
    points = [pd.read_csv(p)[["z_um", "y_um", "x_um"]].to_numpy()
              for p in (args.reference_puncta, args.puncta)]
    result = register_to_reference(
        ref, mov, spacing=meta["voxel_um"], reference_spacing=ref_meta["voxel_um"],
        cell=meta["cell"], session=meta["session"], reference_session=ref_meta["session"],
        reference_points_um=points[0], moving_points_um=points[1],
        params=from_options(RegisterParams, args.options))
    channel = 1 if len(result["channels"]) > 1 else 0   # the QC figure shows the morphology
    with atomic_path(args.qc) as tmp:
        registration_figure(ref[channel], mov[channel], result, spacing=meta["voxel_um"],
                            reference_spacing=ref_meta["voxel_um"], path=tmp)
    write_json(result, args.out)
    print(f"{meta['session']} -> {ref_meta['session']}: shift {np.round(result['shift_um'], 3)} "
          f"um, {result['n_matches']} matched puncta, reliable={result['reliable']}")


# --------------------------------------------------------------------------- per cell
def cmd_track(args) -> None:
    from ..stages.track import detection_counts, session_texture, track_cell

    puncta, metas = [pd.read_csv(p) for p in args.puncta], [read_json(m) for m in args.meta]
    params = from_options(TrackParams, args.options)
    tracks, unreliable = track_cell(puncta, [read_json(t) for t in args.transforms], metas,
                                    params=params)
    counts = detection_counts([len(p) for p in puncta], metas, unreliable=unreliable,
                              textures=[session_texture(p) for p in puncta],
                              shaft_snrs=[session_texture(p, "shaft_snr") for p in puncta],
                              max_per_1000um3=params.max_detections_per_1000um3,
                              departure=params.detections_departure,
                              warn_texture=params.warn_texture_factor,
                              warn_shaft=params.warn_shaft_snr)
    for w in counts["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    write_table(tracks, args.out, float_format="%.5g")
    if args.detections_out:
        write_json(counts, args.detections_out)
    print(f"{len(tracks)} puncta in {tracks['synapse_id'].nunique()} tracks")


def cmd_curate(args) -> None:
    from ..stages.curate import curate_tracks

    actions = _curation_rows(args.curation)
    out = curate_tracks(pd.read_csv(args.tracks), actions,
                        sessions=[read_json(m)["session"] for m in args.meta])
    write_table(out, args.out, float_format="%.5g")   # as the track stage wrote it
    print(f"{len(actions)} curation row(s) applied to the tracks; "
          f"{out.loc[out['curated'] == 1, 'synapse_id'].nunique()} synapse(s) changed")


def cmd_weights(args) -> None:
    from ..stages.weights import measure_cell

    sessions = ((stack, meta, read_json(tf))
                for (stack, meta), tf in zip(_ingested(args.stacks), args.transforms))
    channels = read_json(args.channels) if args.channels else None
    table, nulls = measure_cell(sessions, pd.read_csv(args.tracks),
                                params=from_options(WeightsParams, args.options),
                                channels=channels,
                                spines=from_options(SpinesParams, args.spine_options))
    write_table(table, args.out)
    if args.null_out:
        write_table(nulls, args.null_out)
    print(f"{table['cell'].iloc[0]}: {table['synapse_id'].nunique()} synapses x "
          f"{len(args.stacks)} sessions")


def cmd_presence(args) -> None:
    from ..contract import PRESENCE_TABLE
    from ..stages.presence import presence_cell, textured_cell

    null = (pd.read_csv(args.null, dtype={"session": str}) if args.null
            else pd.DataFrame({"snr": [], "session": []}))
    out, summary = presence_cell(pd.read_csv(args.table),
                                 null_snr=null["snr"].to_numpy() if args.null else None,
                                 null_sessions=null["session"].to_numpy(),
                                 null_levels=(null["morphology_level"].to_numpy()
                                              if "morphology_level" in null else None),
                                 curation=_curation_rows(args.curation),
                                 target=args.target,
                                 textured=textured_cell(read_json(args.detections)
                                                        if args.detections else None),
                                 params=from_options(PresenceParams, args.options))
    write_table(out, args.out, columns=[c for c in PRESENCE_TABLE if c in out.columns])
    write_json(summary, args.summary)
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"{summary['cell']}: {summary['changed_to_present']} calls changed to present, "
          f"{summary['changed_to_absent']} to absent, {summary['uncertain']} uncertain, "
          f"{summary['fragments_merged']} track pieces merged")


def cmd_review(args) -> int | None:
    """``review RESULTS`` serves a run's pages; ``review --table ...`` makes one cell's."""
    if args.results:
        from ..review.server import serve

        return serve(args)
    missing = [f"--{n.replace('_', '-')}" for n in ("table", "stacks", "meta", "transforms", "out_dir")
               if not getattr(args, n)]
    if missing:
        raise InputError(f"review: give a results folder to serve (review RESULTS), or "
                         f"{', '.join(missing)} to make one cell's pages")
    return _review_cell(args)


def _review_cell(args) -> None:
    import matplotlib.image

    from ..review.cell_review import cell_review

    metas = [read_json(p) for p in args.meta]
    transforms = [read_json(p) for p in args.transforms]
    reference = next(m for m in metas if m["session"] == transforms[0]["reference_session"])
    hrefs = [os.path.relpath(Path(tf).with_name(f"{Path(tf).stem}_qc.png"), args.out_dir)
             for tf in args.transforms]
    sessions = ((stack, meta, tf, href) for (stack, meta), tf, href
                in zip(_ingested(args.stacks), transforms, hrefs))
    images, html = cell_review(pd.read_csv(args.table), sessions, reference=reference,
                               params=ReviewParams(crop_um=args.crop_um,
                                                   crop_depth_um=args.crop_depth_um))
    with atomic_dir(args.out_dir) as out:
        for name, rgb in images.items():
            matplotlib.image.imsave(out / name, rgb)
        (out / "index.html").write_text(html)
    print(f"{args.out_dir}: {pd.read_csv(args.table)['synapse_id'].nunique()} synapses x {len(metas)} sessions")


# --------------------------------------------------------------------------- all cells
def cmd_collect(args) -> None:
    from ..contract import ABSENT_COLUMNS, DENDRITE_COLUMNS

    table = pd.concat([pd.read_csv(p) for p in args.inputs], ignore_index=True)
    if args.dendrites:   # each session's dendrite length beside its rows (density per um)
        lengths = pd.concat([pd.read_csv(p, dtype={"cell": str, "session": str})
                             for p in args.dendrites], ignore_index=True)
        table = table.merge(lengths[["cell", "session", *DENDRITE_COLUMNS]],
                            on=["cell", "session"], how="left", validate="many_to_one")
    # columns added after dendrite_length_um come after it: earlier columns keep their places
    late = [c for c in ABSENT_COLUMNS if c in table.columns]
    table = table[[c for c in table.columns if c not in late] + late]
    write_table(table, args.out)
    print(f"{args.out}: {len(table)} rows, {table['cell'].nunique()} cell(s)")


def cmd_stats(args) -> None:
    from ..stats import run_stats
    from ..stats.table import drop_uncertain_synapses

    table = read_table(args.synapses)
    if args.drop_uncertain:
        table, n_left_out = drop_uncertain_synapses(table)
        print(f"left out {n_left_out} synapse(s) with an uncertain call")
    with atomic_dir(args.out) as tmp:
        run_stats(table, tmp, n_bins=args.kesten_bins, markov_bins=args.markov_bins,
                  n_boot=args.n_boot, seed=args.seed,
                  min_cells_per_type=args.min_cells_per_type,
                  min_animals_per_type=args.min_animals_per_type, type_test=args.type_test)
    print(f"statistics written to {args.out}/")


def cmd_import_matrix(args) -> None:
    from ..stats.table import long_from_matrix

    long = long_from_matrix(read_table(args.matrix), cell_type=args.cell_type)
    with atomic_path(args.out) as tmp:
        long.to_csv(tmp, index=False)
    print(f"{len(long)} rows ({long['cell'].nunique()} cells, {long['synapse_id'].nunique()} "
          f"synapse ids, {long['session'].nunique()} sessions) written to {args.out}")


def cmd_report(args) -> None:
    from ..contract import Layout
    from ..review.pages import index_page
    from ..review.pictures import summarise_synapses
    from ..review.report import write_report

    with atomic_path(args.out) as tmp:
        write_report(Path(args.results), tmp, failures=args.failures,
                     settings=json.loads(args.settings) if args.settings else None)
    print(f"report: {args.out}")
    if args.review_index:
        table = pd.read_csv(Layout(args.results).synapses)
        cells = sorted(table["cell"].astype(str).unique())
        with atomic_path(args.review_index) as tmp:
            tmp.write_text(index_page(summarise_synapses(table), cells=cells))
        print(f"review index: {args.review_index}")
    if args.review_check:
        _write_check(Path(args.results), Path(args.review_check))
    if args.review_curation:
        from ..review.curation_ui import curation_script

        rows = _curation_rows(args.curation)
        with atomic_path(args.review_curation) as tmp:
            tmp.write_text(curation_script(rows, path=args.curation_path, rerun=args.rerun,
                                           key=str(Path(args.results).resolve())))


def _write_check(results: Path, page: Path) -> None:
    from ..contract import Layout
    from ..review.check_page import build_check

    tiles, text = build_check(results)
    with atomic_path(Layout(results).path("review_check_tiles")) as tmp:
        tiles.to_csv(tmp, index=False)
    with atomic_path(page) as tmp:
        tmp.write_text(text)
    print(f"sample check: {page} ({len(tiles)} tiles)")


def cmd_export(args) -> None:
    from ..contract import Layout
    from ..review.exports import points_table, tracks_table

    layout = Layout(args.results)
    synapses = read_table(layout.synapses)
    spacing = {}
    for cell, g in synapses.groupby("cell"):
        first = g.sort_values("day")["session"].iloc[0]
        reg = read_json(layout.path("register", cell=cell, session=first))
        ref = reg.get("reference_session", first)
        spacing[cell] = read_json(layout.path("ingest_meta", cell=cell, session=ref))["voxel_um"]
    out = Path(args.out) if args.out else layout.root / "exports"
    write_table(tracks_table(synapses, reference_spacing=spacing), out / "tracks.csv")
    for cell, g in synapses.groupby("cell"):
        write_table(points_table(g), out / str(cell) / "points.csv")
    print(f"{out / 'tracks.csv'} (napari, trackpy) and {out}/<cell>/points.csv (MapManagerCore)")


def cmd_evaluate(args) -> None:
    given = [a for a in (args.truth, args.annotations, args.sample_check) if a is not None]
    if len(given) != 1:
        raise InputError("evaluate: give --truth (a simulated dataset), --annotations (a "
                         "lab's own) or --sample-check (the review page's), one of them")
    if args.annotations:
        return _evaluate_annotations(args)
    if args.sample_check is not None:
        return _evaluate_sample_check(args)
    from ..truth.evaluate import evaluate_results

    scores = evaluate_results(Path(args.truth), Path(args.results))
    print(scores.to_string(index=False))
    if args.out:
        scores.to_csv(args.out, index=False)


def _evaluate_sample_check(args) -> None:
    from ..contract import Layout
    from ..inputs.check_marks import read_marks
    from ..truth.sample_check import score_sample

    layout = Layout(args.results)
    tiles_path = layout.path("review_check_tiles")
    if not tiles_path.exists():
        raise InputError(f"{tiles_path}: no sample-check tiles; run the workflow into "
                         f"{args.results} first (the report rule draws them)")
    marks = read_marks(Path(args.sample_check or layout.path("sample_check")))
    table, per_tile = score_sample(read_table(tiles_path), read_table(layout.synapses), marks)
    out = Path(args.out) if args.out else layout.root / "evaluation" / "sample_check.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_table(table, out)
    write_table(per_tile, out.with_name(out.stem + "_tiles.csv"))
    shown = ["cell", "tiles_checked", "shown", "wrong", "missed", "precision",
             "precision_ci_low", "precision_ci_high", "recall", "recall_ci_low", "recall_ci_high"]
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    stale = per_tile.loc[per_tile["stale"], "tile"].tolist()
    if stale:
        print(f"not scored, changed since checked (check again): {', '.join(stale)}")
    print(f"written: {out}; the pooled row 'all' is the whole run")
    if not args.out:
        from ..review.report import refresh_evaluation_sections

        if refresh_evaluation_sections(layout.root):
            print("report.html: section 'Sample check' updated")


def _evaluate_annotations(args) -> None:
    from ..contract import Layout
    from ..inputs.annotations import name_sessions, read_annotations
    from ..truth.agreement import evaluate_annotations
    from ..truth.evaluate import session_order

    layout = Layout(args.results)
    synapses = pd.read_csv(layout.synapses, usecols=["cell", "session", "day"])
    order = {c: session_order(g) for c, g in synapses.groupby("cell")}
    ann = name_sessions(read_annotations(args.annotations, cell=args.cell, units=args.units),
                        order)
    lateral, axial = (float(v) for v in args.gate_um.split(","))
    table, per_synapse = evaluate_annotations(ann, args.results, complete=args.complete,
                                              gate_um=lateral, axial_gate_um=axial)
    out = Path(args.out) if args.out else layout.root / "evaluation" / "annotations.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_table(table, out)
    write_table(per_synapse, out.with_name(out.stem + "_synapses.csv"))
    shown = ["cell", "annotated_points", "recall", "precision", "unannotated_detections",
             "link_agreement", "link_recall", "presence_agreement", "added_error_pp",
             "lost_error_pp", "log_weight_r"]
    print(table[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"written: {out} (per synapse: {out.with_name(out.stem + '_synapses.csv')}); "
          f"matched within {lateral:g} um laterally, {axial:g} um axially")
    if not args.out:
        from ..review.report import refresh_evaluation_sections

        if refresh_evaluation_sections(layout.root):
            print("report.html: section 'Agreement with your annotations' updated")

