"""The output contract: every table's columns, the statistics' files and the results layout.

Users' scripts read these names; extend them, never rename.  The rules, the commands, the
report, the evaluation and the benchmarks all take the names from here.
"""
from __future__ import annotations

from pathlib import Path

# --------------------------------------------------------------------------- synapses.csv
#: one row per synapse per session (the published table's columns come first)
SYNAPSE_COLUMNS = ["cell", "cell_type", "synapse_id", "session", "day", "present", "z", "y", "x",
                   "z_um", "y_um", "x_um", "weight", "intensity", "snr", "background",
                   "in_view", "detected", "link_distance_um", "animal", "observed"]
#: added by the weights stage: how the weights were scaled and the morphology share removed
WEIGHTS_COLUMNS = ["normalisation", "bleedthrough"]
#: added by the presence stage
PRESENCE_COLUMNS = ["p_present", "present_detected", "presence_uncertain", "track_id",
                    "weight_imputed"]
#: added by the track stage: how sure each link is (pipeline.stages.track.link_confidence)
LINK_COLUMNS = ["link_confidence"]
#: 1 on every row of a synapse that a curation row changed (pipeline.stages.curate)
CURATED_COLUMNS = ["curated"]
#: added by the weights stage: why a weight may be off (pipeline.stages.weights.quality_flags)
QUALITY_COLUMNS = ["quality_flags"]

#: added by the weights stage from the register stage's error map (issue 31)
REGISTRATION_COLUMNS = ["registration_error_um"]
#: added by the track stage: the nearest competing candidate of each link (the review page
#: names it when a link is in doubt); last, so that earlier columns keep their places
COMPETITOR_COLUMNS = ["link_competitor_um"]

#: added by the presence stage, last: 1 where a synapse called present measured within the
#: noise of absence (turnover and survival count it present; an interval starting there has no
#: measured weight at its start, so the loss hazard and the Kesten fits leave it out)
NOISE_COLUMNS = ["weight_at_noise"]

#: added by collect from the dendrite stage: the length of dendrite in that session's stack
#: (empty without a morphology channel); density per um = synapses present / this
DENDRITE_COLUMNS = ["dendrite_length_um"]

#: added by the weights stage (its table and null_snr.csv, not synapses.csv): the morphology
#: channel at each place, smoothed, over its median at the session's null places (NaN without
#: a morphology channel); the presence stage widens the absent state where it is bright
MORPHOLOGY_COLUMNS = ["morphology_level"]

#: added by the presence stage, after dendrite_length_um in synapses.csv: how many times wider
#: than the cell's the absent state is at the row's place (1 where the cell's places without a
#: synapse measure alike at every brightness; pipeline.core.absent_width)
ABSENT_COLUMNS = ["absent_sd_factor"]

#: the weights stage's per-cell table, in this column order
WEIGHTS_TABLE = (SYNAPSE_COLUMNS + WEIGHTS_COLUMNS + CURATED_COLUMNS + LINK_COLUMNS
                 + QUALITY_COLUMNS + REGISTRATION_COLUMNS + COMPETITOR_COLUMNS
                 + MORPHOLOGY_COLUMNS)
#: the presence stage's per-cell table (and so synapses.csv), in this column order
PRESENCE_TABLE = (SYNAPSE_COLUMNS + WEIGHTS_COLUMNS + PRESENCE_COLUMNS + CURATED_COLUMNS
                  + LINK_COLUMNS + QUALITY_COLUMNS + REGISTRATION_COLUMNS + COMPETITOR_COLUMNS
                  + NOISE_COLUMNS + ABSENT_COLUMNS)

# --------------------------------------------------------------------------- curation.tsv
#: the curation file's columns, tab-separated, one action a row.  ``at_um`` ("z y x", the
#: synapse's mean detected position in the reference frame when the row was made; written by
#: the review page, may be empty) lets the curate stage see that a row's id now names another
#: place (the tracks renumbered by a new release or other settings)
CURATION_FILE_COLUMNS = ["action", "cell", "synapse_id", "session", "other_synapse_id", "note",
                         "at_um"]
#: actions on a synapse's identity (applied to the tracks, before weights are measured)
CURATION_IDENTITY = ("reject", "merge", "split")
#: a person's present/absent call for one session (applied after the presence stage)
CURATION_CALLS = ("present", "absent")
#: the sample-check file (``<results>/sample_check.tsv``, saved by the review page's sample
#: check): per tile checked a ``checked`` row (``claims``: the synapse ids shown, ';'-joined),
#: per synapse shown but not one a ``wrong`` row, per synapse missed a ``missed`` row (position
#: in the reference frame)
SAMPLE_CHECK_COLUMNS = ["tile", "cell", "session", "mark", "synapse_id", "y_um", "x_um",
                        "claims", "note"]
SAMPLE_CHECK_MARKS = ("checked", "wrong", "missed")

# --------------------------------------------------------------------------- stats/
#: the tables ``pipeline.stats.run_stats`` writes (``stats/<name>.csv``) and its plots (PNG,
#: each with an SVG twin)
STATS_TABLES = ("lognormal", "survival", "survival_by_quartile", "turnover", "hazard",
                "markov_transition", "markov_stationary", "markov_survival", "kesten",
                "celltype_comparison", "summary", "density")
STATS_PLOTS = ("weights_lognormal", "survival", "kesten", "markov_transition",
               "markov_stationary")


def stats_files() -> list[str]:
    """File names under ``stats/``: every table, then every plot (PNG, then its SVG twin)."""
    return ([f"{n}.csv" for n in STATS_TABLES] + [f"{n}.png" for n in STATS_PLOTS]
            + [f"{n}.svg" for n in STATS_PLOTS])


# --------------------------------------------------------------------------- results/
class Layout:
    """Where each stage writes under a results folder (a path each; all under ``root``).

    The Snakemake rules use the same names as patterns with ``{cell}`` and ``{session}``
    (:meth:`pattern`); everything else (report, evaluation, benchmarks) calls the methods.
    """

    PATTERNS = {
        "synapses": "synapses.csv",
        "report": "report.html",
        "stats": "stats",
        "review": "review",
        "review_index": "review/index.html",
        "review_curation": "review/curation.js",
        "review_check": "review/check.html",
        "review_check_tiles": "review/check_tiles.csv",
        "sample_check": "sample_check.tsv",
        "check": "check/{cell}.json",
        "ingest": "ingest/{cell}/{session}.tif",
        "ingest_meta": "ingest/{cell}/{session}.json",
        "channels": "channels/{cell}.json",
        "dendrite": "dendrite/{cell}.csv",
        "detect": "detect/{cell}/{session}.csv",
        "register": "register/{cell}/{session}.json",
        "register_qc": "register/{cell}/{session}_qc.png",
        "track": "track/{cell}/tracks.csv",
        "track_detections": "track/{cell}/detections.json",
        "curate": "curate/{cell}/tracks.csv",
        "weights": "weights/{cell}/synapses.csv",
        "null": "weights/{cell}/null_snr.csv",
        "presence": "presence/{cell}/synapses.csv",
        "presence_summary": "presence/{cell}/summary.json",
        "review_cell": "review/{cell}",
    }

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def pattern(self, name: str) -> str:
        """``<root>/<pattern>`` as a string with ``{cell}``/``{session}`` left to fill."""
        return f"{self.root.as_posix().rstrip('/')}/{self.PATTERNS[name]}"

    def path(self, name: str, cell: str = "", session: str = "") -> Path:
        return self.root / self.PATTERNS[name].format(cell=cell, session=session)

    @property
    def synapses(self) -> Path:
        return self.path("synapses")

    @property
    def report(self) -> Path:
        return self.path("report")

    @property
    def stats(self) -> Path:
        return self.path("stats")

    @property
    def review(self) -> Path:
        return self.path("review")

    def stage_folder(self, name: str) -> Path:
        """The top folder of a stage's outputs (e.g. ``<root>/register``)."""
        return self.root / self.PATTERNS[name].split("/")[0]

    def cell_folders(self, name: str) -> list[Path]:
        """Existing per-cell folders of a stage (e.g. every ``presence/<cell>``), sorted."""
        return sorted(p for p in self.stage_folder(name).glob("*") if p.is_dir())


def chosen_for(channels: dict | None, session) -> dict:
    """What the channels stage (``channels/<cell>.json``, from
    :func:`pipeline.stages.channels.pooled_shares`) chose for one session: ``estimate``,
    ``used``, ``departs``; empty without a channels result or for a session it does not list."""
    return ((channels or {}).get("sessions") or {}).get(str(session)) or {}
