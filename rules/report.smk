rule report:
    """One HTML page linking the tables, plots, registration QC and the review pages
    (review/index.html: every synapse, least certain first)."""
    input:
        synapses=f"{RESULTS}/synapses.csv",
        stats=STATS_FILES,
        checks=expand(f"{RESULTS}/check/{{cell}}.json", cell=CELLS),
        presence=lambda wc: [f"{RESULTS}/presence/{c}/summary.json" for c in checked_cells()],
        review=lambda wc: [f"{RESULTS}/review/{c}" for c in checked_cells()],
        qc=lambda wc: [
            f"{RESULTS}/register/{c}/{s}_qc.png" for c in checked_cells() for s in sessions_of(c)
        ],
    output:
        report=f"{RESULTS}/report.html",
        review=f"{RESULTS}/review/index.html",
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
