checkpoint check:
    """Every input check of ingest on all sessions of a cell, recorded (never raised) in JSON:
    with --keep-going, cells with a bad file are left out of collect/stats and named in the report."""
    input:
        sheet=SHEET,
        images=lambda wc: SESSIONS.loc[SESSIONS["cell"] == wc.cell, "abs_path"].tolist(),
    output:
        LAYOUT.pattern("check"),
    params:
        voxel=config["voxel_um"] or "none",
        voxel_first="--config-voxel-first" if config["voxel_um_overrides_files"] else "",
        max_saturated=config["ingest"]["max_saturated_fraction"],
        swapped=config["ingest"]["swapped_channels"] or "off",  # YAML reads off as false
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/check/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/check/{{cell}}.tsv"
    shell:
        "python -m pipeline check --sheet {input.sheet:q} --cell {wildcards.cell} "
        "--voxel-um {params.voxel:q} {params.voxel_first} --max-saturated {params.max_saturated} "
        "--swapped-channels {params.swapped} "
        "--out {output:q} > {log:q} 2>&1"
