rule stats:
    """Log-normal fits, survival, turnover and the Kesten fit from synapses.csv alone."""
    input:
        f"{RESULTS}/synapses.csv",
    output:
        STATS_FILES,
    params:
        outdir=f"{RESULTS}/stats",
        bins=config["stats"]["kesten_bins"],
    log:
        f"{RESULTS}/logs/stats.log",
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m pipeline stats {input:q} --out {params.outdir:q} "
        "--kesten-bins {params.bins} > {log:q} 2>&1"
