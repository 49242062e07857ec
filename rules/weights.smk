rule weights:
    """Measure every synapse of a cell in every session (also where it was not detected)."""
    input:
        tracks=LAYOUT.pattern("curate"),
        stacks=per_session(LAYOUT.pattern("ingest")),
        transforms=per_session(LAYOUT.pattern("register")),
        channels=LAYOUT.pattern("channels"),
    output:
        table=LAYOUT.pattern("weights"),
        null=LAYOUT.pattern("null"),
    params:
        options=options("weights"),
        spines=options("spines"),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/weights/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/weights/{{cell}}.tsv"
    shell:
        "python -m pipeline weights --tracks {input.tracks:q} --stacks {input.stacks:q} "
        "--transforms {input.transforms:q} --channels {input.channels:q} "
        "--options {params.options:q} --spine-options {params.spines:q} "
        "--out {output.table:q} "
        "--null-out {output.null:q} "
        "> {log:q} 2>&1"


rule collect:
    """The per-synapse table of all cells: <results>/synapses.csv."""
    input:
        tables=lambda wc: [LAYOUT.pattern("presence").format(cell=c) for c in checked_cells()],
        dendrites=lambda wc: [LAYOUT.pattern("dendrite").format(cell=c) for c in checked_cells()],
    output:
        LAYOUT.pattern("synapses"),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/collect.log",
    benchmark:
        f"{RESULTS}/benchmarks/collect.tsv"
    shell:
        "python -m pipeline collect --inputs {input.tables:q} --dendrites {input.dendrites:q} "
        "--out {output:q} > {log:q} 2>&1"
