rule stats:
    """Every statistic (pipeline.stats.run_stats) from synapses.csv alone."""
    input:
        LAYOUT.pattern("synapses"),
    output:
        STATS_FILES,
    params:
        outdir=lambda wc, output: os.path.dirname(output[0]),
        opts=lambda wc: "--kesten-bins {kesten_bins} --markov-bins {markov_bins} "
        "--n-boot {n_boot} --seed {seed} --min-cells-per-type {min_cells_per_type} "
        "--min-animals-per-type {min_animals_per_type} --type-test {type_test}".format(
            **config["stats"]
        )
        + (" --drop-uncertain" if config["stats"].get("drop_uncertain") else ""),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/stats.log",
    benchmark:
        f"{RESULTS}/benchmarks/stats.tsv"
    shell:
        "python -m pipeline stats {input:q} --out {params.outdir:q} "
        "{params.opts} > {log:q} 2>&1"
