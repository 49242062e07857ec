rule report:
    """One HTML page linking the tables, plots, registration QC and the review pages
    (review/index.html: every synapse, least certain first)."""
    input:
        synapses=LAYOUT.pattern("synapses"),
        stats=STATS_FILES,
        checks=expand(LAYOUT.pattern("check"), cell=CELLS),
        presence=lambda wc: [LAYOUT.pattern("presence_summary").format(cell=c) for c in checked_cells()],
        review=lambda wc: [LAYOUT.pattern("review_cell").format(cell=c) for c in checked_cells()],
        qc=lambda wc: [
            LAYOUT.pattern("register_qc").format(cell=c, session=s) for c in checked_cells() for s in sessions_of(c)
        ],
    output:
        report=LAYOUT.pattern("report"),
        review=LAYOUT.pattern("review_index"),
    params:
        results=lambda wc, output: os.path.dirname(output.report),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    shell:
        "python -m pipeline report --results {params.results:q} --out {output.report:q} "
        "--review-index {output.review:q} > {log:q} 2>&1"
