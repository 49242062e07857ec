rule ingest:
    """Read one session's stack (any supported format) into a standard (c, z, y, x) TIFF."""
    input:
        sheet=SHEET,
        check=LAYOUT.pattern("check"),
        image=lambda wc: SESSIONS.loc[
            (SESSIONS["cell"] == wc.cell) & (SESSIONS["session"] == wc.session), "abs_path"
        ].iloc[0],
    output:
        stack=LAYOUT.pattern("ingest"),
        meta=LAYOUT.pattern("ingest_meta"),
    params:
        voxel=config["voxel_um"] or "none",
        voxel_first="--config-voxel-first" if config["voxel_um_overrides_files"] else "",
        max_saturated=config["ingest"]["max_saturated_fraction"],
        swapped=config["ingest"]["swapped_channels"] or "off",  # YAML reads off as false
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/ingest/{{cell}}/{{session}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/ingest/{{cell}}/{{session}}.tsv"
    shell:
        "python -m pipeline ingest --sheet {input.sheet:q} --cell {wildcards.cell} "
        "--session {wildcards.session} --voxel-um {params.voxel:q} {params.voxel_first} "
        "--max-saturated {params.max_saturated} --swapped-channels {params.swapped} "
        "--out {output.stack:q} "
        "> {log:q} 2>&1"
