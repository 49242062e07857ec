rule weights:
    """Measure every synapse of a cell in every session (also where it was not detected)."""
    input:
        tracks=f"{RESULTS}/curate/{{cell}}/tracks.csv",
        stacks=per_session(f"{RESULTS}/ingest/{{cell}}/{{session}}.tif"),
        transforms=per_session(f"{RESULTS}/register/{{cell}}/{{session}}.json"),
    output:
        table=f"{RESULTS}/weights/{{cell}}/synapses.csv",
        null=f"{RESULTS}/weights/{{cell}}/null_snr.csv",
    params:
        options=options("weights"),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/weights/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/weights/{{cell}}.tsv"
    shell:
        "python -m pipeline weights --tracks {input.tracks:q} --stacks {input.stacks:q} "
        "--transforms {input.transforms:q} --options {params.options:q} --out {output.table:q} "
        "--null-out {output.null:q} "
        "> {log:q} 2>&1"


rule collect:
    """The per-synapse table of all cells: <results>/synapses.csv."""
    input:
        lambda wc: [f"{RESULTS}/presence/{c}/synapses.csv" for c in checked_cells()],
    output:
        f"{RESULTS}/synapses.csv",
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/collect.log",
    benchmark:
        f"{RESULTS}/benchmarks/collect.tsv"
    shell:
        "python -m pipeline collect --inputs {input:q} --out {output:q} > {log:q} 2>&1"
