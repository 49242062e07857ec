# review/index.html (the table of every synapse) is the report rule's
ruleorder: report > review


rule review:
    """Review page of one cell: projections with every synapse marked, QC, crops across sessions."""
    input:
        table=f"{RESULTS}/presence/{{cell}}/synapses.csv",
        stacks=per_session(f"{RESULTS}/ingest/{{cell}}/{{session}}.tif"),
        meta=per_session(f"{RESULTS}/ingest/{{cell}}/{{session}}.json"),
        transforms=per_session(f"{RESULTS}/register/{{cell}}/{{session}}.json"),
        qc=per_session(f"{RESULTS}/register/{{cell}}/{{session}}_qc.png"),
    output:
        directory(f"{RESULTS}/review/{{cell}}"),
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
