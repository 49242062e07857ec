"""Command layer: ``python -m pipeline <stage> ...``.

The only module that knows both file paths and algorithms: each command reads files, calls
the science modules (pure functions on arrays and tables) and writes files.  Outputs are
written to a temporary name and renamed, so an interrupted command leaves nothing that looks
complete.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from .core.errors import InputError

SYNAPSE_COLUMNS = ["cell", "cell_type", "synapse_id", "session", "day", "present", "z", "y", "x",
                   "z_um", "y_um", "x_um", "weight", "intensity", "snr", "background",
                   "in_view", "detected", "link_distance_um", "animal"]
#: added by the presence stage
PRESENCE_COLUMNS = ["p_present", "present_detected", "presence_uncertain", "track_id",
                    "weight_imputed"]
#: added by the track stage: how sure each link is (pipeline.track.link_confidence)
LINK_COLUMNS = ["link_confidence"]
#: 1 on every row of a synapse that a curation row changed (pipeline.curate)
CURATION_COLUMNS = ["curated"]
#: added by the weights stage: why a weight may be off (pipeline.weights.quality_flags)
QUALITY_COLUMNS = ["quality_flags"]
CURATION_FIELDS = ["action", "cell", "synapse_id", "session", "other_synapse_id", "note", "row"]


@contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; rename it to ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file private (0600); results are shared like any file the user writes
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _triple(text: str | None):
    if text is None or str(text).strip().lower() in ("", "none", "null"):
        return None
    return tuple(float(v) for v in str(text).split(","))


def _options(text: str | None) -> dict:
    return json.loads(text) if text else {}


# --------------------------------------------------------------------------- commands
def _simulation_fields():
    """(name, default) of every SimulationParams field settable from the command line."""
    from dataclasses import fields

    from .truth.simulate import SimulationParams

    return [(f.name, f.default) for f in fields(SimulationParams)
            if f.name not in ("cell_type", "seed")]


def _parse_field(text: str, default):
    if isinstance(default, tuple) or default is None and "," in text:
        vals = [float(v) for v in text.split(",")]
        return tuple(int(v) if isinstance(default, tuple) and isinstance(default[0], int)
                     else v for v in vals)
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(text)
    return float(text)


def cmd_simulate(args) -> None:
    from .truth.simulate import SimulationParams, write_dataset

    overrides = {name: _parse_field(getattr(args, name), default)
                 for name, default in _simulation_fields() if getattr(args, name) is not None}
    cells = []
    for k, ct in enumerate(args.cells.split(",")):
        prm = SimulationParams(cell_type=ct, seed=args.seed + 1000 * k, **overrides)
        cells.append((f"{ct}{k + 1:02d}", prm))
    out = write_dataset(args.out, cells)
    print(f"wrote {out}/sessions.tsv, images/ and truth/ (parameters in truth/params.json)")


def cmd_discover(args) -> None:
    from .inputs.discover import acquisition_date, assign_days, day_from_name, sessions_from_paths
    from .inputs.stacks import probe_stack

    root, out = Path(args.root).resolve(), Path(args.out).resolve()
    if not root.is_dir():
        raise InputError(f"{root}: not a directory; pass the top folder of the imaging data")
    if out == root or root in out.parents:
        raise InputError(f"{out} is inside the imaging directory {root}; the pipeline never "
                         "writes there: put the sheet elsewhere (e.g. beside the results)")
    if out.exists() and not args.force:
        raise InputError(f"{out} exists (it may hold your edits); choose another --out or pass "
                         "--force to replace it")
    paths = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    table, problems = sessions_from_paths(paths, args.pattern)
    if table.empty:
        raise InputError(f"{root}: no file matches the layout pattern '{args.pattern}' (paths "
                         "relative to ROOT, e.g. '{animal}/{cell}/{session}/*.tif'); "
                         + (f"{len(problems)} session(s) were ambiguous:\n  - "
                            + "\n  - ".join(problems) if problems else "pass --pattern"))
    rows = []
    for rec in table.to_dict("records"):
        image = root / rec["path"]
        number, date = day_from_name(rec["session_name"])
        source = "date in the session name" if date else ""
        if number is None and date is None:
            date = acquisition_date(image)
            source = "acquisition date in the file's metadata" if date else ""
        n_channels, note = None, ""
        try:
            info = probe_stack(image)
            n_channels = info.n_channels
            if rec["files"] > 1 and info.n_planes != rec["files"]:
                note = f"{rec['files']} files but {info.n_planes} planes: check this folder"
        except InputError as exc:
            note = f"unreadable: {exc}"
        rows.append({**rec, "day_number": number, "date": date, "date_source": source,
                     "n_channels": n_channels, "notes": note})
    found = assign_days(pd.DataFrame(rows))
    single = found["n_channels"] == 1
    sheet = pd.DataFrame({
        "cell": found["cell"], "cell_type": args.cell_type or "", "session": found["session"],
        "day": found["day"].map(lambda d: "" if pd.isna(d) else f"{d:g}"),
        "path": [os.path.relpath(root / p, out.parent) for p in found["path"]],
        "animal": found["animal"],
        "psd95_channel": args.psd95_channel,
        "morphology_channel": np.where(single, "", str(args.morphology_channel)),
        "voxel_um": "",
        "notes": [("; ".join(x for x in (n, f"day from {s}" if s else "") if x))
                  for n, s in zip(found["notes"], found["day_source"])],
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        sheet.to_csv(tmp, sep="\t", index=False)
    todo = []
    if not args.cell_type:
        todo.append("fill the cell_type column (or rerun with --cell-type)")
    no_day = sorted(found.loc[found["day"].isna(), "cell"].unique())
    if no_day:
        todo.append(f"fill 'day' for cell(s) {', '.join(no_day)} (no day number or date in the "
                    "session names, no acquisition date in the files)")
    bad = found.loc[found["notes"].str.startswith("unreadable"), "path"].tolist()
    if bad:
        todo.append(f"check unreadable file(s): {', '.join(bad)}")
    print(f"wrote {out}: {sheet['cell'].nunique()} cell(s), {len(sheet)} session(s)")
    for line in problems + todo:
        print(f"  - {line}")
    print(f"then: python -m pipeline check-sheet {out} --images")


def cmd_check_sheet(args) -> None:
    from .inputs.sheet import check_images, read_sessions

    sessions = read_sessions(args.sheet)
    problems = check_images(sessions, config_voxel=_triple(args.voxel_um)) if args.images else []
    if problems:
        raise InputError(f"{args.sheet}: {len(problems)} image problem(s):\n  - " +
                         "\n  - ".join(problems))
    print(f"{args.sheet}: {len(sessions)} sessions of {sessions['cell'].nunique()} cell(s) OK")


def _session_row(sessions, sheet, cell, session):
    sel = sessions[(sessions["cell"] == cell) & (sessions["session"] == session)]
    if sel.empty:
        raise InputError(f"{sheet}: no row for cell {cell} session {session}")
    return sel.iloc[0]


def _load_session(row, *, config_voxel, max_saturated, config_voxel_first=False):
    """Every input check of one session (the ingest and check stages share it)."""
    from .inputs.stacks import probe_stack, read_stack, resolve_voxel
    from .inputs.sheet import parse_voxel

    info = probe_stack(row["abs_path"])
    voxel = resolve_voxel(parse_voxel(row["voxel_um"]), info.voxel_um, config_voxel,
                          path=row["abs_path"], config_first=config_voxel_first)
    channels = [int(row["psd95_channel"])]
    if int(row["morphology_channel"]) >= 0:
        channels.append(int(row["morphology_channel"]))
    stack = read_stack(row["abs_path"], channels=channels,
                       max_saturated_fraction={channels[0]: max_saturated})
    return stack, voxel, channels


def cmd_ingest(args) -> None:
    from .inputs.stacks import write_stack
    from .inputs.sheet import read_sessions

    row = _session_row(read_sessions(args.sheet), args.sheet, args.cell, args.session)
    stack, voxel, channels = _load_session(row, config_voxel=_triple(args.voxel_um),
                                           max_saturated=args.max_saturated,
                                           config_voxel_first=args.config_voxel_first)
    from .inputs.stacks import probe_stack, saturated_fraction

    frac, top = saturated_fraction(stack[0], probe_stack(row["abs_path"]).dtype)
    meta = {"cell": row["cell"], "cell_type": row["cell_type"], "session": row["session"],
            "day": float(row["day"]), "animal": row["animal"], "source": row["abs_path"],
            "channels": ["psd95"] + (["morphology"] if len(channels) > 1 else []),
            "source_channels": channels,
            # the detector's full scale when some PSD-95 voxels reach it (weights flag them)
            "psd95_saturation_level": top if frac > 0 else None}
    with atomic_path(args.out) as tmp:
        write_stack(tmp, stack, voxel_um=voxel, metadata=meta)
        os.replace(tmp.with_suffix(".json"), Path(args.out).with_suffix(".json"))
    print(f"{row['abs_path']}: {stack.shape} voxel {voxel} um -> {args.out}")


def cmd_check(args) -> None:
    """Check every session of a cell as ingest would; record, never raise, what is wrong."""
    from .inputs.sheet import read_sessions

    sessions = read_sessions(args.sheet)
    results = []
    for session in sessions.loc[sessions["cell"] == args.cell, "session"]:
        row = _session_row(sessions, args.sheet, args.cell, session)
        try:
            _load_session(row, config_voxel=_triple(args.voxel_um), max_saturated=args.max_saturated,
                          config_voxel_first=args.config_voxel_first)
            error = ""
        except InputError as exc:
            error = str(exc)
        results.append({"session": session, "path": row["abs_path"], "ok": not error,
                        "error": error})
        print(f"{row['abs_path']}: {'ok' if not error else error}")
    report = {"cell": args.cell, "ok": all(r["ok"] for r in results), "sessions": results}
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(report, indent=1))


def cmd_detect(args) -> None:
    from .stages.detect import detect_puncta
    from .inputs.stacks import load_ingested

    stack, meta = load_ingested(args.stack)
    opts = _options(args.options)
    morphology = stack[1] if stack.shape[0] > 1 else None
    if not opts.pop("subtract_morphology", True):
        opts["morphology_coefficient_value"] = 0.0   # the channel still gives the cell mask
    puncta = detect_puncta(stack[0], spacing=meta["voxel_um"], morphology=morphology,
                           workers=args.threads, **opts)
    spacing = np.asarray(meta["voxel_um"])
    for ax, col in enumerate(("z", "y", "x")):
        puncta[f"{col}_um"] = puncta[col] * spacing[ax]
    with atomic_path(args.out) as tmp:
        puncta.to_csv(tmp, index=False, float_format="%.5g")
    print(f"{args.stack}: {len(puncta)} puncta")


def cmd_register(args) -> None:
    from .inputs.stacks import load_ingested
    from .stages.register import register_session

    ref, ref_meta = load_ingested(args.reference)
    same_file = Path(args.stack).resolve() == Path(args.reference).resolve()
    mov, meta = (ref, ref_meta) if same_file else load_ingested(args.stack)
    opts = _options(args.options)
    n_ch = min(ref.shape[0], mov.shape[0])           # correlate the channels both sessions have
    channel = 1 if n_ch > 1 else 0                  # the QC figure shows the morphology
    if meta["session"] == ref_meta["session"]:
        result = {"matrix": np.eye(4).tolist(), "warp": None, "shift_um": [0.0, 0.0, 0.0],
                  "rotation_deg": 0.0, "coarse_shift_um": [0.0, 0.0, 0.0], "peak": 1.0,
                  "n_matches": 0, "residual_um": 0.0, "overlap": 1.0, "reliable": True}
    else:
        pts = {}
        if opts.get("use_puncta", True):
            pts = {"reference_points_um": pd.read_csv(args.reference_puncta)[["z_um", "y_um", "x_um"]].to_numpy(),
                   "moving_points_um": pd.read_csv(args.puncta)[["z_um", "y_um", "x_um"]].to_numpy()}
        fine = {k: opts[k] for k in ("model", "max_rotation_deg", "min_matches",
                                     "warp_length_um") if k in opts}
        result = register_session(ref[:n_ch], mov[:n_ch], spacing=meta["voxel_um"],
                                  reference_spacing=ref_meta["voxel_um"], **pts, **fine)
    result.update({"cell": meta["cell"], "session": meta["session"],
                   "reference_session": ref_meta["session"],
                   "channels": ["psd95", "morphology"][:n_ch],
                   "convention": "matrix maps (z, y, x, 1) in um of this session's stack to the "
                                 "reference session's stack; then warp (if any) adds a smooth "
                                 "displacement (pipeline.register.to_reference)"})
    from .review.qc import registration_figure
    with atomic_path(args.qc) as tmp:
        registration_figure(ref[channel], mov[channel], result, spacing=meta["voxel_um"],
                            reference_spacing=ref_meta["voxel_um"], path=tmp)
    with atomic_path(args.out) as tmp:
        tmp.write_text(json.dumps(result, indent=1))
    print(f"{meta['session']} -> {ref_meta['session']}: shift {np.round(result['shift_um'], 3)} um, "
          f"{result['n_matches']} matched puncta, reliable={result['reliable']}")


def cmd_track(args) -> None:
    from .core.frames import to_reference
    from .stages.track import link_sessions

    metas = [json.loads(Path(m).read_text()) for m in args.meta]
    order = np.argsort([m["day"] for m in metas], kind="stable")
    frames = []
    for k, i in enumerate(order):
        tr = json.loads(Path(args.transforms[i]).read_text())
        p = pd.read_csv(args.puncta[i])
        ref_um = to_reference(tr, p[["z_um", "y_um", "x_um"]].to_numpy())
        frames.append(pd.DataFrame({
            "session": metas[i]["session"], "day": metas[i]["day"], "session_index": k,
            "z": p["z"], "y": p["y"], "x": p["x"], "z_um": ref_um[:, 0], "y_um": ref_um[:, 1],
            "x_um": ref_um[:, 2], "snr": p["snr"], "intensity": p["intensity"],
            "reliable_registration": bool(tr.get("reliable", True))}))
    puncta = pd.concat(frames, ignore_index=True)
    unreliable = puncta.loc[~puncta["reliable_registration"], "session"].unique()
    if len(unreliable):
        print(f"warning: registration unreliable for session(s) {', '.join(unreliable)}; "
              "their puncta are not tracked", file=sys.stderr)
        puncta = puncta[puncta["reliable_registration"]]
    tracks = link_sessions(puncta, **_options(args.options))
    with atomic_path(args.out) as tmp:
        tracks.to_csv(tmp, index=False, float_format="%.5g")
    print(f"{len(tracks)} puncta in {tracks['synapse_id'].nunique()} tracks")


def cmd_curate(args) -> None:
    from .stages.curate import curate_tracks

    tracks = pd.read_csv(args.tracks)
    actions = pd.DataFrame(json.loads(args.curation or "[]"), columns=CURATION_FIELDS)
    sessions = [json.loads(Path(m).read_text())["session"] for m in args.meta]
    out = curate_tracks(tracks, actions, sessions=sessions)
    with atomic_path(args.out) as tmp:
        out.to_csv(tmp, index=False, float_format="%.5g")  # as the track stage wrote it
    print(f"{len(actions)} curation row(s) applied to the tracks; "
          f"{out.loc[out['curated'] == 1, 'synapse_id'].nunique()} synapse(s) changed")


def cmd_weights(args) -> None:
    from .inputs.stacks import load_ingested
    from .core.frames import to_session
    from .stages.track import track_positions
    from .core.channels import remove_bleedthrough
    from .core.photometry import aperture_photometry
    from .stages.weights import (distinct_puncta, normalise_cell_weights,
                          null_positions, quality_flags)

    opts = _options(args.options)
    tracks = pd.read_csv(args.tracks)
    centres = track_positions(tracks)
    ids = centres.index.to_numpy()
    curated = (tracks.groupby("synapse_id")["curated"].max() if "curated" in tracks.columns
               else pd.Series(0, index=ids))
    n_detected = tracks.groupby("synapse_id").size().reindex(ids).to_numpy()
    rows, nulls = [], []
    for stack_path, tf in zip(args.stacks, args.transforms):
        stack, meta = load_ingested(stack_path)   # each stack read once
        spacing = np.asarray(meta["voxel_um"])
        transform = json.loads(Path(tf).read_text())
        det = tracks[tracks["session"].astype(str) == str(meta["session"])].set_index("synapse_id")
        # where the synapse was detected use its own position, elsewhere the track's centre
        ref_um = centres.to_numpy().copy()
        session_um = to_session(transform, ref_um)
        vox = session_um / spacing
        found = np.isin(ids, det.index)
        vox[found] = det.loc[ids[found], ["z", "y", "x"]].to_numpy()
        ref_um[found] = det.loc[ids[found], ["z_um", "y_um", "x_um"]].to_numpy()
        psd, k_morph = stack[0], 0.0
        if stack.shape[0] > 1 and opts.get("bleedthrough", "auto") != 0:
            from .core.channels import morphology_coefficient
            k_morph = opts.get("bleedthrough", "auto")
            if k_morph == "auto":  # estimated per session from the data
                k_morph = morphology_coefficient(stack[0], stack[1])
            psd = remove_bleedthrough(stack[0], stack[1], k_morph)
        aperture = opts.get("aperture_um", (1.6, 0.6, 0.6))
        null = np.zeros((0, 3))
        if stack.shape[0] > 1:   # places on the cell without a synapse: the absent state
            from .core.channels import cell_mask
            null = null_positions(cell_mask(stack[1], spacing=spacing), vox, spacing=spacing)
        both = np.vstack([vox, null])
        sources = np.r_[distinct_puncta(vox, found, spacing=spacing, priority=n_detected),
                        np.zeros(len(null), bool)]
        phot = aperture_photometry(psd, both, spacing=spacing, radius_um=aperture,
                                   saturation=meta.get("psd95_saturation_level"), raw=stack[0],
                                   sources=sources, template_fwhm_um=opts.get("deblend_fwhm_um"))
        nulls.append(pd.DataFrame({"session": meta["session"], "day": meta["day"],
                                   "z": null[:, 0], "y": null[:, 1], "x": null[:, 2],
                                   "snr": phot["snr"].to_numpy()[len(vox):]}))
        phot = phot.iloc[:len(vox)]
        link = det["link_distance_um"].reindex(ids).to_numpy()
        confidence = (det["link_confidence"].reindex(ids).to_numpy()
                      if "link_confidence" in det.columns else np.full(len(ids), np.nan))
        # a detection with no signal above its local background is not a credible punctum
        present = found & (phot["intensity"].to_numpy() > 0)
        flags = quality_flags(phot, vox, present, spacing=spacing, radius_um=aperture,
                              min_snr=opts.get("min_snr", 3.0))
        rows.append(pd.DataFrame({
            "cell": meta["cell"], "cell_type": meta["cell_type"], "synapse_id": ids,
            "session": meta["session"], "day": meta["day"], "present": present.astype(int),
            "z": vox[:, 0], "y": vox[:, 1], "x": vox[:, 2], "z_um": ref_um[:, 0],
            "y_um": ref_um[:, 1], "x_um": ref_um[:, 2], "intensity": phot["intensity"],
            "snr": phot["snr"], "background": phot["background"], "in_view": phot["in_view"],
            "detected": found.astype(int), "link_distance_um": link,
            "link_confidence": confidence,
            "animal": meta.get("animal", ""), "bleedthrough": k_morph,
            "curated": curated.reindex(ids).to_numpy(), "quality_flags": flags.to_numpy()}))
    table = pd.concat(rows, ignore_index=True)
    table["weight"] = normalise_cell_weights(table, opts.get("normalisation", "percentile_40_60"))
    table["normalisation"] = opts.get("normalisation", "percentile_40_60")
    table = table.sort_values(["synapse_id", "day"], ignore_index=True)
    with atomic_path(args.out) as tmp:
        table[SYNAPSE_COLUMNS + ["normalisation", "bleedthrough"] + CURATION_COLUMNS
              + LINK_COLUMNS + QUALITY_COLUMNS].to_csv(
            tmp, index=False, float_format="%.6g")
    if args.null_out:
        with atomic_path(args.null_out) as tmp:
            pd.concat(nulls, ignore_index=True).to_csv(tmp, index=False, float_format="%.6g")
    print(f"{meta['cell']}: {len(ids)} synapses x {len(args.stacks)} sessions")


def cmd_presence(args) -> None:
    from .stages.presence import call_presence
    from .stages.weights import normalise_cell_weights

    opts = _options(args.options)
    table = pd.read_csv(args.table)
    null = pd.read_csv(args.null)["snr"].to_numpy() if args.null else None
    out, summary = call_presence(table, model=opts.get("model", "hmm"), null_snr=null,
                                 uncertain=tuple(opts.get("uncertain", (0.2, 0.8))),
                                 gaps=opts.get("gaps", "keep"),
                                 merge_distance_um=opts.get("merge_distance_um", 0.5))
    actions = pd.DataFrame(json.loads(args.curation or "[]"), columns=CURATION_FIELDS)
    if len(actions):
        from .stages.curate import curate_calls

        out = curate_calls(out, actions)
    summary["curated_calls"] = int(actions["action"].isin(["present", "absent"]).sum())
    # the per-session scale follows the synapses now called present
    out["weight"] = normalise_cell_weights(out, str(out["normalisation"].iloc[0]))
    summary["cell"] = str(out["cell"].iloc[0])
    if "curated" not in out.columns:
        out["curated"] = 0
    cols = (SYNAPSE_COLUMNS + ["normalisation", "bleedthrough"] + PRESENCE_COLUMNS
            + CURATION_COLUMNS + [c for c in LINK_COLUMNS + QUALITY_COLUMNS if c in out.columns])
    with atomic_path(args.out) as tmp:
        out[cols].to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(args.summary) as tmp:
        tmp.write_text(json.dumps(summary, indent=1))
    print(f"{summary['cell']}: {summary['changed_to_present']} calls changed to present, "
          f"{summary['changed_to_absent']} to absent, {summary['uncertain']} uncertain, "
          f"{summary['fragments_merged']} track pieces merged")


@contextmanager
def atomic_dir(path: str | Path):
    """Yield a temporary folder next to ``path``; it replaces ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def cmd_review(args) -> None:
    import matplotlib.image
    from scipy import ndimage

    from .review import pictures as rv
    from .inputs.stacks import load_ingested
    from .review.pages import cell_page

    table = pd.read_csv(args.table)
    metas = [json.loads(Path(p).read_text()) for p in args.meta]
    qc = [json.loads(Path(p).read_text()) for p in args.transforms]
    ref_name = qc[0]["reference_session"]
    ref_meta = next(m for m in metas if m["session"] == ref_name)
    ref_spacing = np.asarray(ref_meta["voxel_um"], float)
    ref_shape = ref_meta["shape_czyx"][1:]
    summary = rv.summarise_synapses(table)
    px = float(ref_spacing[2])
    sessions, days, tiles = [], [], {}
    ids = np.sort(table["synapse_id"].unique())
    with atomic_dir(args.out_dir) as out:
        for stack_path, q, tf in zip(args.stacks, qc, args.transforms):
            stack, meta = load_ingested(stack_path)     # each stack read once
            spacing = np.asarray(meta["voxel_um"], float)
            name = str(meta["session"])
            sessions.append(name)
            days.append(float(meta["day"]))
            q["has_morphology"] = stack.shape[0] > 1
            q["qc_href"] = os.path.relpath(Path(tf).with_name(f"{Path(tf).stem}_qc.png"),
                                           args.out_dir)
            for ch, rgb in ((0, rv.GREEN), (1, rv.MAGENTA))[:stack.shape[0]]:
                proj = rv.reference_projection(stack[ch], q["matrix"], spacing=spacing,
                                               reference_spacing=ref_spacing,
                                               reference_shape=ref_shape)
                label = "psd95" if ch == 0 else "morphology"
                matplotlib.image.imsave(out / f"proj_{name}_{label}.png",
                                        rv.to_uint8(rv.colour(proj, rgb,
                                                              levels=rv.display_range(proj))))
            rows = table[table["session"].astype(str) == name].set_index("synapse_id").loc[ids]
            pos = rows[["z", "y", "x"]].to_numpy(float)
            half_z = max(int(round(args.crop_depth_um / spacing[0])), 1)
            half = max(int(round(args.crop_um / spacing[2])), 3)
            xy_rgb = xz_rgb = np.float32(0)
            # PSD-95 at full strength, the morphology dimmer so that puncta stay visible on it
            for ch, rgb, levels, gain in ((0, rv.GREEN, (50, 99.95), 1.0),
                                          (1, rv.MAGENTA, (50, 99.5), 0.6))[:stack.shape[0]]:
                xy, xz = rv.synapse_crops(stack[ch], pos, half_xy=half, half_z=half_z)
                lv = rv.display_range(stack[ch], low=levels[0], high=levels[1])
                xy_rgb = xy_rgb + gain * rv.colour(xy, rgb, levels=lv)
                xz_rgb = xz_rgb + gain * rv.colour(xz, rgb, levels=lv)
            ratio = spacing[2] / px
            if not np.isclose(ratio, 1, rtol=0.01):   # crops shown at the reference's pixel size
                xy_rgb = ndimage.zoom(xy_rgb, (1, ratio, ratio, 1), order=1)
                xz_rgb = ndimage.zoom(xz_rgb, (1, 1, ratio, 1), order=1)
            for k, sid in enumerate(ids):
                tiles.setdefault(sid, {})[name] = rv.session_tile(
                    np.clip(xy_rgb[k], 0, 1), np.clip(xz_rgb[k], 0, 1), z_stretch=spacing[0] / px)
            del stack
        width = tile_w = 0
        for sid in ids:
            strip = rv.strip_image([tiles[sid][s] for s in sessions])
            tile_w = max(tiles[sid][s].shape[1] for s in sessions)
            width = strip.shape[1]
            matplotlib.image.imsave(out / f"syn_{sid}.png", rv.to_uint8(strip))
        (out / "index.html").write_text(cell_page(
            table, summary, cell=str(metas[0]["cell"]), sessions=sessions, days=days,
            spacing=ref_spacing, shape_yx=ref_shape[1:], qc=qc, strip_width=width,
            tile_width=tile_w, gap=3))
    print(f"{args.out_dir}: {len(ids)} synapses x {len(sessions)} sessions")


def cmd_collect(args) -> None:
    table = pd.concat([pd.read_csv(p) for p in args.inputs], ignore_index=True)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    print(f"{args.out}: {len(table)} rows, {table['cell'].nunique()} cell(s)")


def cmd_stats(args) -> None:
    from .stats import run_stats

    table = _read_table_file(args.synapses)
    out = Path(args.out)
    if args.drop_uncertain and "presence_uncertain" in table.columns:
        unsure = table.loc[table["presence_uncertain"] == 1, ["cell", "synapse_id"]]
        keys = pd.MultiIndex.from_frame(table[["cell", "synapse_id"]])
        table = table[~keys.isin(pd.MultiIndex.from_frame(unsure))]
        print(f"left out {len(unsure.drop_duplicates())} synapse(s) with an uncertain call")
    with atomic_dir(out) as tmp:
        run_stats(table, tmp, n_bins=args.kesten_bins, markov_bins=args.markov_bins,
                  n_boot=args.n_boot, seed=args.seed)
    print(f"statistics written to {out}/")


def cmd_import_matrix(args) -> None:
    from .stats.table import long_from_matrix

    wide = _read_table_file(args.matrix)
    long = long_from_matrix(wide, cell_type=args.cell_type)
    with atomic_path(args.out) as tmp:
        long.to_csv(tmp, index=False)
    print(f"{len(long)} rows ({long['cell'].nunique()} cells, {long['synapse_id'].nunique()} "
          f"synapse ids, {long['session'].nunique()} sessions) written to {args.out}")


def _read_table_file(path) -> pd.DataFrame:
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV table ({exc})") from None


def cmd_report(args) -> None:
    from .review.report import write_report

    with atomic_path(args.out) as tmp:
        write_report(Path(args.results), tmp, failures=args.failures)
    print(f"report: {args.out}")
    if args.review_index:
        from .review.pictures import summarise_synapses
        from .review.pages import index_page

        table = pd.read_csv(Path(args.results) / "synapses.csv")
        cells = sorted(table["cell"].astype(str).unique())
        with atomic_path(args.review_index) as tmp:
            tmp.write_text(index_page(summarise_synapses(table), cells=cells))
        print(f"review index: {args.review_index}")


def cmd_evaluate(args) -> None:
    from .truth.evaluate import evaluate_results

    scores = evaluate_results(Path(args.truth), Path(args.results))
    print(scores.to_string(index=False))
    if args.out:
        scores.to_csv(args.out, index=False)


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__.splitlines()[0])
    from .inputs.discover import DEFAULT_PATTERN

    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write a simulated imaging directory with ground truth",
                       description="Every parameter of pipeline.simulate.SimulationParams can be "
                                   "set; tuples as comma-separated values (e.g. --shape 34,512,512)."
                                   " Unset dynamics take the cell type's defaults.")
    p.add_argument("--out", required=True)
    p.add_argument("--cells", default="pyr,PV", help="cell types, one cell each (e.g. pyr,PV)")
    p.add_argument("--seed", type=int, default=0)
    aliases = {"n_sessions": ["--sessions"], "n_dendrites": ["--dendrites"]}
    for name, default in _simulation_fields():
        flag = "--" + name.replace("_", "-")
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        p.add_argument(flag, *aliases.get(name, []), dest=name, default=None,
                       help=f"default: {shown if shown is not None else 'by cell type'}")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("discover", help="write a sessions sheet from an imaging directory tree",
                       description="Walks ROOT, matches file paths (relative to ROOT) against "
                                   "--pattern, reads each session's day from its name (day04, d4, "
                                   "2026-01-30, 20260130) or else the file's acquisition date, and "
                                   "writes a sheet for you to check and edit. Nothing is written "
                                   "under ROOT.")
    p.add_argument("root")
    p.add_argument("--out", required=True, help="the sessions sheet to write (TSV)")
    p.add_argument("--pattern", default=DEFAULT_PATTERN,
                   help="layout below ROOT; fields {animal} (optional), {cell}, {session}; * "
                        "matches within one folder level (default: %(default)s)")
    p.add_argument("--cell-type", default=None, help="cell_type of every cell (else left to fill)")
    p.add_argument("--psd95-channel", type=int, default=0)
    p.add_argument("--morphology-channel", type=int, default=1,
                   help="left empty for single-channel files")
    p.add_argument("--force", action="store_true", help="replace an existing sheet")
    p.set_defaults(func=cmd_discover)

    p = sub.add_parser("check-sheet", help="validate a sessions sheet (and image headers)")
    p.add_argument("sheet")
    p.add_argument("--images", action="store_true", help="also probe every image header")
    p.add_argument("--voxel-um", default=None)
    p.set_defaults(func=cmd_check_sheet)

    p = sub.add_parser("ingest", help="read one session's stack into a standard TIFF")
    p.add_argument("--sheet", required=True)
    p.add_argument("--cell", required=True)
    p.add_argument("--session", required=True)
    p.add_argument("--voxel-um", default=None, help="fallback z,y,x from the config")
    p.add_argument("--config-voxel-first", action="store_true",
                   help="--voxel-um wins over the file's metadata (the sheet's column still first)")
    p.add_argument("--max-saturated", type=float, default=0.01,
                   help="largest fraction of PSD-95 voxels at full scale (default 0.01)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("check", help="check every session of a cell as ingest would (JSON)")
    p.add_argument("--sheet", required=True)
    p.add_argument("--cell", required=True)
    p.add_argument("--voxel-um", default=None, help="fallback z,y,x from the config")
    p.add_argument("--config-voxel-first", action="store_true",
                   help="--voxel-um wins over the file's metadata (the sheet's column still first)")
    p.add_argument("--max-saturated", type=float, default=0.01)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("detect", help="detect PSD-95 puncta in one ingested stack")
    p.add_argument("--stack", required=True)
    p.add_argument("--options", default="{}")
    p.add_argument("--threads", type=int, default=1, help="threads for the image filters")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_detect)

    p = sub.add_parser("register", help="register one session to the reference session")
    for name in ("--reference", "--reference-puncta", "--stack", "--puncta", "--out", "--qc"):
        p.add_argument(name, required=True)
    p.add_argument("--options", default="{}")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("track", help="link puncta of all sessions of a cell")
    p.add_argument("--puncta", nargs="+", required=True)
    p.add_argument("--transforms", nargs="+", required=True)
    p.add_argument("--meta", nargs="+", required=True, help="ingest sidecar JSON per session")
    p.add_argument("--options", default="{}")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_track)

    p = sub.add_parser("curate", help="apply a cell's reject/merge/split curation rows to its tracks")
    p.add_argument("--tracks", required=True)
    p.add_argument("--meta", nargs="+", required=True, help="ingest sidecar JSON per session, in order")
    p.add_argument("--curation", default="[]", help="JSON list of the cell's curation rows")
    p.add_argument("--null", default=None,
                   help="the weights stage's null_snr.csv: signal where no synapse is")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_curate)

    p = sub.add_parser("weights", help="measure every synapse in every session of a cell")
    p.add_argument("--tracks", required=True)
    p.add_argument("--stacks", nargs="+", required=True)
    p.add_argument("--transforms", nargs="+", required=True)
    p.add_argument("--options", default="{}")
    p.add_argument("--out", required=True)
    p.add_argument("--null-out", default=None,
                   help="CSV of the signal at places on the cell without a synapse")
    p.set_defaults(func=cmd_weights)

    p = sub.add_parser("review", help="review pages of one cell (projections, crops, table)")
    p.add_argument("--table", required=True, help="the cell's presence table")
    p.add_argument("--stacks", nargs="+", required=True)
    p.add_argument("--meta", nargs="+", required=True)
    p.add_argument("--transforms", nargs="+", required=True)
    p.add_argument("--crop-um", type=float, default=1.5, help="half-width of the crops (um)")
    p.add_argument("--crop-depth-um", type=float, default=2.4, help="half-depth of the x-z crops (um)")
    p.add_argument("--out-dir", required=True)
    p.set_defaults(func=cmd_review)

    p = sub.add_parser("collect", help="concatenate per-cell tables into synapses.csv")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("presence", help="joint presence calls for one cell (after weights)")
    p.add_argument("table", help="the weights stage's per-cell synapses.csv")
    p.add_argument("--options", default="{}", help="JSON of the config's presence section")
    p.add_argument("--out", required=True)
    p.add_argument("--summary", required=True, help="JSON: calls changed, fitted parameters")
    p.add_argument("--curation", default="[]", help="JSON list of the cell's curation rows")
    p.add_argument("--null", default=None,
                   help="the weights stage's null_snr.csv: signal where no synapse is")
    p.set_defaults(func=cmd_presence)

    p = sub.add_parser("stats", help="statistics from a long per-synapse table")
    p.add_argument("synapses")
    p.add_argument("--out", required=True)
    p.add_argument("--kesten-bins", type=int, default=20,
                   help="bins of the published binned-moment Kesten fit (default 20)")
    p.add_argument("--markov-bins", type=int, default=5,
                   help="weight bins of the Markov chain, besides the absent state (default 5)")
    p.add_argument("--n-boot", type=int, default=500, help="bootstrap resamples (default 500)")
    p.add_argument("--seed", type=int, default=0, help="seed for resampling (bootstrap)")
    p.add_argument("--drop-uncertain", action="store_true",
                   help="leave out synapses with any presence_uncertain row")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("import-matrix",
                       help="long per-synapse table from a wide synapse x session weight matrix")
    p.add_argument("matrix", help="CSV: synapse_id, cell, [cell_type,] d0, d4, ... (0/empty = absent)")
    p.add_argument("--out", required=True)
    p.add_argument("--cell-type", default=None, help="cell type when the matrix has no such column")
    p.set_defaults(func=cmd_import_matrix)

    p = sub.add_parser("report", help="write the HTML report")
    p.add_argument("--results", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--failures", nargs="*", default=[])
    p.add_argument("--review-index", default=None,
                   help="also write the review index (every synapse) here")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("evaluate", help="score results against simulator truth")
    p.add_argument("--truth", required=True, help="the simulated dataset's folder")
    p.add_argument("--results", required=True)
    p.add_argument("--out", default=None)
    p.set_defaults(func=cmd_evaluate)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
