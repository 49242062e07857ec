# review/index.html (the table of every synapse) is the report rule's
ruleorder: report > review


rule review:
    """Review page of one cell: projections with every synapse marked, QC, crops across sessions."""
    input:
        table=LAYOUT.pattern("presence"),
        stacks=per_session(LAYOUT.pattern("ingest")),
        meta=per_session(LAYOUT.pattern("ingest_meta")),
        transforms=per_session(LAYOUT.pattern("register")),
        qc=per_session(LAYOUT.pattern("register_qc")),
    output:
        directory(LAYOUT.pattern("review_cell")),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/review/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/review/{{cell}}.tsv"
    shell:
        "python -m pipeline review --table {input.table:q} --stacks {input.stacks:q} "
        "--meta {input.meta:q} --transforms {input.transforms:q} --out-dir {output:q} "
        "> {log:q} 2>&1"
