# Longitudinal in vivo synapse imaging: sessions sheet -> per-synapse tables -> statistics.
# Usage: snakemake --cores 8 --config sessions=/data/exp1/sessions.tsv results=/data/exp1/results
# (config.yaml beside this file holds the defaults; --configfile takes a copy of it)
import os


configfile: os.path.join(workflow.basedir, "config.yaml")


include: "rules/common.smk"
include: "rules/check.smk"
include: "rules/ingest.smk"
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
        f"{RESULTS}/synapses.csv",
        STATS_FILES,
        f"{RESULTS}/report.html",
        f"{RESULTS}/review/index.html",
        # every cell, also one whose file is bad: its ingest job then fails naming the file
        # (named here, not only through the report's checkpoint-dependent inputs, so that each
        # cell's jobs are in the first DAG and form one group job on a cluster)
        expand(f"{RESULTS}/presence/{{cell}}/summary.json", cell=CELLS),
        expand(f"{RESULTS}/review/{{cell}}", cell=CELLS),
    default_target: True
