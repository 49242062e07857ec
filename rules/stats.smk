rule stats:
    """Log-normal fits, survival, turnover and the Kesten fit from synapses.csv alone."""
    input:
        f"{RESULTS}/synapses.csv",
    output:
        STATS_FILES,
    params:
        outdir=lambda wc, output: os.path.dirname(output[0]),
        bins=config["stats"]["kesten_bins"],
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/stats.log",
    benchmark:
        f"{RESULTS}/benchmarks/stats.tsv"
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m pipeline stats {input:q} --out {params.outdir:q} "
        "--kesten-bins {params.bins} > {log:q} 2>&1"
