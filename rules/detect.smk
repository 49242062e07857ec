rule detect:
    """Detect PSD-95 puncta in one session."""
    input:
        stack=LAYOUT.pattern("ingest"),
        channels=LAYOUT.pattern("channels"),
    output:
        LAYOUT.pattern("detect"),
    params:
        options=options("detect"),
        spines=options("spines"),
    threads: 2
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/detect/{{cell}}/{{session}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/detect/{{cell}}/{{session}}.tsv"
    shell:
        "python -m pipeline detect --stack {input.stack:q} --channels {input.channels:q} "
        "--options {params.options:q} --spine-options {params.spines:q} "
        "--threads {threads} --out {output:q} > {log:q} 2>&1"
