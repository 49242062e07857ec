rule report:
    """One HTML page linking the tables, plots and registration QC."""
    input:
        synapses=f"{RESULTS}/synapses.csv",
        stats=STATS_FILES,
        checks=expand(f"{RESULTS}/check/{{cell}}.json", cell=CELLS),
        presence=lambda wc: [f"{RESULTS}/presence/{c}/summary.json" for c in checked_cells()],
        qc=lambda wc: [
            f"{RESULTS}/register/{c}/{s}_qc.png" for c in checked_cells() for s in sessions_of(c)
        ],
    output:
        f"{RESULTS}/report.html",
    params:
        results=lambda wc, output: os.path.dirname(output[0]),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    shell:
        "python -m pipeline report --results {params.results:q} --out {output:q} > {log:q} 2>&1"
