rule ingest:
    """Read one session's stack (any supported format) into a standard (c, z, y, x) TIFF."""
    input:
        sheet=SHEET,
        check=f"{RESULTS}/check/{{cell}}.json",
        image=lambda wc: SESSIONS.loc[
            (SESSIONS["cell"] == wc.cell) & (SESSIONS["session"] == wc.session), "abs_path"
        ].iloc[0],
    output:
        stack=f"{RESULTS}/ingest/{{cell}}/{{session}}.tif",
        meta=f"{RESULTS}/ingest/{{cell}}/{{session}}.json",
    params:
        voxel=config["voxel_um"] or "none",
        voxel_first="--config-voxel-first" if config["voxel_um_overrides_files"] else "",
        max_saturated=config["ingest"]["max_saturated_fraction"],
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/ingest/{{cell}}/{{session}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/ingest/{{cell}}/{{session}}.tsv"
    shell:
        "python -m pipeline ingest --sheet {input.sheet:q} --cell {wildcards.cell} "
        "--session {wildcards.session} --voxel-um {params.voxel:q} {params.voxel_first} "
        "--max-saturated {params.max_saturated} --out {output.stack:q} "
        "> {log:q} 2>&1"
