# Longitudinal in vivo synapse imaging: sessions sheet -> per-synapse tables -> statistics.
# Usage: snakemake --cores 8 --config sessions=/data/exp1/sessions.tsv results=/data/exp1/results
# (config.yaml beside this file holds the defaults; --configfile takes a copy of it)
import os


configfile: os.path.join(workflow.basedir, "config.yaml")


include: "rules/common.smk"
include: "rules/check.smk"
include: "rules/ingest.smk"
include: "rules/channels.smk"
include: "rules/dendrite.smk"
include: "rules/detect.smk"
include: "rules/register.smk"
include: "rules/track.smk"
include: "rules/weights.smk"
include: "rules/presence.smk"
include: "rules/review.smk"
include: "rules/stats.smk"
include: "rules/report.smk"


rule all:
    input:
        LAYOUT.pattern("synapses"),
        STATS_FILES,
        LAYOUT.pattern("report"),
        LAYOUT.pattern("review_index"),
        # every cell, also one whose file is bad: its ingest job then fails naming the file
        # (named here, not only through the report's checkpoint-dependent inputs, so that each
        # cell's jobs are in the first DAG and form one group job on a cluster)
        expand(LAYOUT.pattern("presence_summary"), cell=CELLS),
        expand(LAYOUT.pattern("dendrite"), cell=CELLS),
        expand(LAYOUT.pattern("review_cell"), cell=CELLS),
    default_target: True
