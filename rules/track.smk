rule track:
    """Link the puncta of all sessions of a cell into synapse tracks."""
    input:
        puncta=per_session(LAYOUT.pattern("detect")),
        transforms=per_session(LAYOUT.pattern("register")),
        meta=per_session(LAYOUT.pattern("ingest_meta")),
    output:
        tracks=LAYOUT.pattern("track"),
        detections=LAYOUT.pattern("track_detections"),
    params:
        options=options("track"),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/track/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/track/{{cell}}.tsv"
    shell:
        "python -m pipeline track --puncta {input.puncta:q} --transforms {input.transforms:q} "
        "--meta {input.meta:q} --options {params.options:q} --out {output.tracks:q} "
        "--detections-out {output.detections:q} > {log:q} 2>&1"


rule curate:
    """A person's reject/merge/split rows for this cell (curation.tsv) applied to its tracks."""
    input:
        tracks=LAYOUT.pattern("track"),
        meta=per_session(LAYOUT.pattern("ingest_meta")),
    output:
        LAYOUT.pattern("curate"),
    params:
        curation=lambda wc: curation_of(wc.cell),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/curate/{{cell}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/curate/{{cell}}.tsv"
    shell:
        "python -m pipeline curate --tracks {input.tracks:q} --meta {input.meta:q} "
        "--curation {params.curation:q} --out {output:q} > {log:q} 2>&1"
