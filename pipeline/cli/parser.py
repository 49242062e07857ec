"""The command line: ``python -m pipeline <command> ...`` (one subcommand per stage)."""
from __future__ import annotations

import argparse
from dataclasses import fields

from ..inputs.discover import DEFAULT_PATTERN
from ..params import TYPE_TESTS, IngestParams, ReviewParams, StatsParams
from . import commands, run

DESCRIPTION = "Longitudinal in vivo synapse imaging: sessions sheet -> per-synapse tables -> statistics."


def _simulation_fields():
    """(name, default) of every SimulationParams field settable from the command line."""
    from ..truth.simulate import SimulationParams

    return [(f.name, f.default) for f in fields(SimulationParams)
            if f.name not in ("cell_type", "seed")]


def _parse_field(text: str, default):
    if isinstance(default, tuple) or default is None and "," in text:
        vals = [float(v) for v in text.split(",") if v.strip()]
        # an empty default tuple holds session indices (crop_sessions)
        whole = isinstance(default, tuple) and (not default or isinstance(default[0], int))
        return tuple(int(v) if whole else v for v in vals)
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(text)
    return float(text)


def simulation_overrides(args) -> dict:
    """The SimulationParams fields given on the command line, parsed."""
    return {name: _parse_field(getattr(args, name), default)
            for name, default in _simulation_fields() if getattr(args, name) is not None}


def _reading_options(p: argparse.ArgumentParser) -> None:
    """How a session's file is read (the ingest and check commands read it the same way)."""
    p.add_argument("--voxel-um", default=None, help="fallback z,y,x from the config")
    p.add_argument("--config-voxel-first", action="store_true",
                   help="--voxel-um wins over the file's metadata (the sheet's column still first)")
    p.add_argument("--max-saturated", type=float, default=IngestParams.max_saturated_fraction,
                   help="largest fraction of PSD-95 voxels at full scale (default %(default)s)")
    p.add_argument("--swapped-channels", default=IngestParams.swapped_channels,
                   choices=["warn", "error", "off"],
                   help="channels that look swapped: warn, error or off (default %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pipeline", description=DESCRIPTION)

    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the whole workflow on a sessions sheet",
                       description="Runs the Snakemake workflow (--keep-going) with this "
                                   "interpreter, shows one line per finished job (Snakemake's log "
                                   "goes to RESULTS/logs/run-*.log) and ends with a summary: cells "
                                   "done and failed with the first real error, sessions flagged, "
                                   "where the outputs are. Exit status 1 when anything failed.")
    p.add_argument("sheet", help="the sessions sheet (TSV)")
    p.add_argument("--results", required=True, help="output folder (never the imaging folder)")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--profile", default=None, help="a Snakemake profile, e.g. profiles/slurm")
    p.add_argument("--configfile", default=None, help="a copy of config.yaml with your settings")
    p.set_defaults(func=run.run, snakemake_args=[])   # options after `--` go to Snakemake

    p = sub.add_parser("simulate", help="write a simulated imaging directory with ground truth",
                       description="Every parameter of pipeline.truth.simulate.SimulationParams can be "
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
    p.set_defaults(func=commands.cmd_simulate)

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
    p.set_defaults(func=commands.cmd_discover)

    p = sub.add_parser("check-sheet", help="validate a sessions sheet (and image headers)")
    p.add_argument("sheet")
    p.add_argument("--images", action="store_true", help="also probe every image header")
    p.add_argument("--voxel-um", default=None)
    p.set_defaults(func=commands.cmd_check_sheet)

    p = sub.add_parser("ingest", help="read one session's stack into a standard TIFF")
    p.add_argument("--sheet", required=True)
    p.add_argument("--cell", required=True)
    p.add_argument("--session", required=True)
    _reading_options(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=commands.cmd_ingest)

    p = sub.add_parser("check", help="check every session of a cell as ingest would (JSON)")
    p.add_argument("--sheet", required=True)
    p.add_argument("--cell", required=True)
    _reading_options(p)
    p.add_argument("--out", required=True)
    p.set_defaults(func=commands.cmd_check)

    for name, what, section, func in (
            ("channels", "each session's morphology share of the PSD-95 channel, checked "
                         "against the cell's other sessions", "detect", commands.cmd_channels),
            ("dendrite", "dendrite length per session of one cell (the morphology channel's "
                         "skeleton), for density per um", "dendrite", commands.cmd_dendrite)):
        p = sub.add_parser(name, help=what)       # a per-cell command over its ingested stacks
        p.add_argument("--stacks", nargs="+", required=True, help="the cell's ingested stacks")
        p.add_argument("--options", default="{}", help=f"the config's {section} section (JSON)")
        p.add_argument("--out", required=True)
        p.set_defaults(func=func)

    p = sub.add_parser("detect", help="detect PSD-95 puncta (or a fill's spine heads) in one "
                                      "ingested stack")
    p.add_argument("--stack", required=True)
    p.add_argument("--channels", default=None,
                   help="the channels stage's JSON: the morphology share to subtract")
    p.add_argument("--options", default="{}")
    p.add_argument("--spine-options", default="{}",
                   help="the config's spines section (JSON), for a cell with target spines")
    p.add_argument("--threads", type=int, default=1, help="threads for the image filters")
    p.add_argument("--out", required=True)
    p.set_defaults(func=commands.cmd_detect)

    p = sub.add_parser("register", help="register one session to the reference session")
    for name in ("--reference", "--reference-puncta", "--stack", "--puncta", "--out", "--qc"):
        p.add_argument(name, required=True)
    p.add_argument("--options", default="{}")
    p.set_defaults(func=commands.cmd_register)

    p = sub.add_parser("track", help="link puncta of all sessions of a cell")
    p.add_argument("--puncta", nargs="+", required=True)
    p.add_argument("--transforms", nargs="+", required=True)
    p.add_argument("--meta", nargs="+", required=True, help="ingest sidecar JSON per session")
    p.add_argument("--options", default="{}")
    p.add_argument("--out", required=True)
    p.add_argument("--detections-out", default=None,
                   help="JSON: detections per session, their plausibility, warnings")
    p.set_defaults(func=commands.cmd_track)

    p = sub.add_parser("curate", help="apply a cell's reject/merge/split curation rows to its tracks")
    p.add_argument("--tracks", required=True)
    p.add_argument("--meta", nargs="+", required=True, help="ingest sidecar JSON per session, in order")
    p.add_argument("--curation", default="[]", help="JSON list of the cell's curation rows")
    p.add_argument("--null", default=None,
                   help="the weights stage's null_snr.csv: signal where no synapse is")
    p.add_argument("--out", required=True)
    p.set_defaults(func=commands.cmd_curate)

    p = sub.add_parser("weights", help="measure every synapse in every session of a cell")
    p.add_argument("--tracks", required=True)
    p.add_argument("--stacks", nargs="+", required=True)
    p.add_argument("--transforms", nargs="+", required=True)
    p.add_argument("--spine-options", default="{}",
                   help="the config's spines section (JSON), for a cell with target spines")
    p.add_argument("--channels", default=None,
                   help="the channels stage's JSON: each session's morphology share")
    p.add_argument("--options", default="{}")
    p.add_argument("--out", required=True)
    p.add_argument("--null-out", default=None,
                   help="CSV of the signal at places on the cell without a synapse")
    p.set_defaults(func=commands.cmd_weights)

    p = sub.add_parser(
        "review", help="serve a run's review pages on this computer, saving curation edits "
        "(review RESULTS); the workflow's stage: one cell's pages (review --table ...)")
    p.add_argument("results", nargs="?", default=None,
                   help="a results folder: serve its review pages on http://127.0.0.1")
    p.add_argument("--port", type=int, default=8765, help="port to serve on (0: any free one)")
    p.add_argument("--sheet", default=None,
                   help="the run's sessions sheet (default: the one `pipeline run` recorded)")
    p.add_argument("--curation", default=None,
                   help="where edits are saved (default: the config's curation, else "
                        "RESULTS/curation.tsv)")
    p.add_argument("--table", help="the cell's presence table")
    p.add_argument("--stacks", nargs="+")
    p.add_argument("--meta", nargs="+")
    p.add_argument("--transforms", nargs="+")
    p.add_argument("--crop-um", type=float, default=ReviewParams.crop_um,
                   help="half-width of the crops (um)")
    p.add_argument("--crop-depth-um", type=float, default=ReviewParams.crop_depth_um,
                   help="half-depth of the x-z crops (um)")
    p.add_argument("--out-dir")
    p.set_defaults(func=commands.cmd_review)

    p = sub.add_parser("collect", help="concatenate per-cell tables into synapses.csv")
    p.add_argument("--inputs", nargs="+", required=True)
    p.add_argument("--dendrites", nargs="*", default=[],
                   help="the cells' dendrite tables: their length joins each session's rows")
    p.add_argument("--out", required=True)
    p.set_defaults(func=commands.cmd_collect)

    p = sub.add_parser("presence", help="joint presence calls for one cell (after weights)")
    p.add_argument("table", help="the weights stage's per-cell synapses.csv")
    p.add_argument("--options", default="{}", help="JSON of the config's presence section")
    p.add_argument("--out", required=True)
    p.add_argument("--summary", required=True, help="JSON: calls changed, fitted parameters")
    p.add_argument("--curation", default="[]", help="JSON list of the cell's curation rows")
    p.add_argument("--null", default=None,
                   help="the weights stage's null_snr.csv: signal where no synapse is")
    p.add_argument("--target", default="puncta", choices=["puncta", "spines"],
                   help="what the cell's synapses are (sheet column target): the warning for a "
                        "cell whose absent state was not measured says where it is measured")
    p.add_argument("--detections", default=None,
                   help="the track stage's detections.json for the cell: a session with a "
                        "textured shaft turns presence.detection_evidence 'auto' on")
    p.set_defaults(func=commands.cmd_presence)

    p = sub.add_parser("stats", help="statistics from a long per-synapse table")
    p.add_argument("synapses")
    p.add_argument("--out", required=True)
    p.add_argument("--kesten-bins", type=int, default=StatsParams.kesten_bins,
                   help="bins of the published binned-moment Kesten fit (default %(default)s)")
    p.add_argument("--markov-bins", type=int, default=StatsParams.markov_bins,
                   help="weight bins of the Markov chain, besides the absent state "
                        "(default %(default)s)")
    p.add_argument("--n-boot", type=int, default=StatsParams.n_boot,
                   help="bootstrap resamples (default %(default)s)")
    p.add_argument("--seed", type=int, default=StatsParams.seed,
                   help="seed for resampling (bootstrap)")
    p.add_argument("--min-cells-per-type", type=int, default=StatsParams.min_cells_per_type,
                   help="cell-type comparisons give p-values only with this many cells per type "
                        "(default %(default)s)")
    p.add_argument("--min-animals-per-type", type=int,
                   default=StatsParams.min_animals_per_type,
                   help="where cells share animals, this many animals per type "
                        "(default %(default)s)")
    p.add_argument("--type-test", choices=TYPE_TESTS,
                   default=StatsParams.type_test,
                   help="where animals hold cells of both types: compare the types within "
                        "animals (each animal a block) or over each type's animal means "
                        "(default %(default)s)")
    p.add_argument("--drop-uncertain", action="store_true",
                   help="leave out synapses with any presence_uncertain row")
    p.set_defaults(func=commands.cmd_stats)

    p = sub.add_parser("import-matrix",
                       help="long per-synapse table from a wide synapse x session weight matrix")
    p.add_argument("matrix", help="CSV: synapse_id, cell, [cell_type,] d0, d4, ... (0/empty = absent)")
    p.add_argument("--out", required=True)
    p.add_argument("--cell-type", default=None, help="cell type when the matrix has no such column")
    p.set_defaults(func=commands.cmd_import_matrix)

    p = sub.add_parser("report", help="write the HTML report")
    p.add_argument("--results", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--failures", nargs="*", default=[])
    p.add_argument("--review-index", default=None,
                   help="also write the review index (every synapse) here")
    p.add_argument("--review-curation", default=None,
                   help="also write the pages' curation script (the rows in effect) here")
    p.add_argument("--review-check", default=None,
                   help="also write the sample-check page here (review/check.html) and the "
                        "tiles it draws beside it (check_tiles.csv)")
    p.add_argument("--curation", default="[]", help="JSON list of every curation row in effect")
    p.add_argument("--curation-path", default="", help="the curation file the workflow read")
    p.add_argument("--rerun", default="", help="the command that reruns the workflow")
    p.add_argument("--settings", default=None,
                   help="JSON of the run's configuration (the Methods name what differs from "
                        "the defaults)")
    p.set_defaults(func=commands.cmd_report)

    p = sub.add_parser("export", help="tracks for napari/trackpy and MapManagerCore points.csv "
                                       "from a run's synapses.csv")
    p.add_argument("--results", required=True)
    p.add_argument("--out", default=None, help="folder (default RESULTS/exports)")
    p.set_defaults(func=commands.cmd_export)

    p = sub.add_parser("evaluate", help="score a run against simulator truth (--truth) or a "
                                         "lab's own annotations (--annotations)")
    p.add_argument("--truth", default=None, help="the simulated dataset's folder")
    p.add_argument("--annotations", default=None,
                   help="a points table (CSV/TSV), a MapManager map folder or MapManagerCore "
                        "points.csv")
    p.add_argument("--sample-check", nargs="?", const="", default=None, metavar="FILE",
                   help="score the marks of the review page's sample check (default "
                        "RESULTS/sample_check.tsv) as precision and recall of the whole run")
    p.add_argument("--results", required=True)
    p.add_argument("--complete", action="store_true",
                   help="the annotation covers every synapse: also report precision")
    p.add_argument("--cell", default=None, help="the cell a MapManager map annotates")
    p.add_argument("--units", choices=("um", "voxels"), default="um",
                   help="units of a MapManager legacy map's x, y, z (default um)")
    p.add_argument("--gate-um", default="0.6,3.0",
                   help="matching gate 'lateral,axial' in um (annotators click heads, tips or "
                        "centres: widen it to match their habit)")
    p.add_argument("--out", default=None)
    p.set_defaults(func=commands.cmd_evaluate)
    return ap
