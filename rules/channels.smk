rule channels:
    """Each session's morphology share of the PSD-95 channel, checked against its cell's other
    sessions (a departing session is named and, by default, given the cell's share)."""
    input:
        stacks=per_session(LAYOUT.pattern("ingest")),
    output:
        LAYOUT.pattern("channels"),
    params:
        options=options("detect", keys=["share_departure", "departing_share"]),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/channels/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/channels/{{cell}}.tsv"
    shell:
        "python -m pipeline channels --stacks {input.stacks:q} --options {params.options:q} "
        "--out {output:q} > {log:q} 2>&1"
