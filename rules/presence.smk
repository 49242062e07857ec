rule presence:
    """Present/absent per synapse and session from all sessions' evidence (two-state HMM)."""
    input:
        table=LAYOUT.pattern("weights"),
        null=LAYOUT.pattern("null"),
        detections=LAYOUT.pattern("track_detections"),
    output:
        table=LAYOUT.pattern("presence"),
        summary=LAYOUT.pattern("presence_summary"),
    params:
        options=options("presence"),
        curation=lambda wc: curation_of(wc.cell),
        target=lambda wc: target_of(wc.cell),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/presence/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/presence/{{cell}}.tsv"
    shell:
        "python -m pipeline presence {input.table:q} --null {input.null:q} --options {params.options:q} "
        "--out {output.table:q} --summary {output.summary:q} --curation {params.curation:q} "
        "--target {params.target:q} --detections {input.detections:q} "
        "> {log:q} 2>&1"
