rule dendrite:
    """Each session's length of dendrite (pipeline.stages.dendrite): synapse density per um."""
    input:
        stacks=per_session(LAYOUT.pattern("ingest")),
    output:
        LAYOUT.pattern("dendrite"),
    params:
        options=options("dendrite"),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/dendrite/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/dendrite/{{cell}}.tsv"
    shell:
        "python -m pipeline dendrite --stacks {input.stacks:q} --options {params.options:q} "
        "--out {output:q} > {log:q} 2>&1"
