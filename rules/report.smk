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
        curation=LAYOUT.pattern("review_curation"),
        check=LAYOUT.pattern("review_check"),
        check_tiles=LAYOUT.pattern("review_check_tiles"),
    params:
        results=lambda wc, output: os.path.dirname(output.report),
        curation=curation_all(),
        curation_path=CURATION,
        rerun=f"python -m pipeline run {SHEET} --results {RESULTS}",
        settings=json.dumps(
            {k: v for k, v in config.items() if k not in ("sessions", "results", "curation")}, sort_keys=True
        ),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    shell:
        "python -m pipeline report --results {params.results:q} --out {output.report:q} "
        "--review-index {output.review:q} --review-curation {output.curation:q} "
        "--review-check {output.check:q} "
        "--curation {params.curation:q} --curation-path {params.curation_path:q} "
        "--rerun {params.rerun:q} --settings {params.settings:q} > {log:q} 2>&1"
