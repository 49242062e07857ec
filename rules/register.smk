rule register:
    """Transform of one session into its cell's reference session, with a QC figure."""
    input:
        reference=lambda wc: LAYOUT.pattern("ingest").format(cell=wc.cell, session=reference_session(wc.cell)),
        reference_puncta=lambda wc: LAYOUT.pattern("detect").format(cell=wc.cell, session=reference_session(wc.cell)),
        stack=LAYOUT.pattern("ingest"),
        puncta=LAYOUT.pattern("detect"),
    output:
        transform=LAYOUT.pattern("register"),
        qc=LAYOUT.pattern("register_qc"),
    params:
        options=options("register"),
    conda:
        "../envs/pipeline.yaml"
    log:
        f"{RESULTS}/logs/register/{{cell}}/{{session}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/register/{{cell}}/{{session}}.tsv"
    shell:
        "python -m pipeline register --reference {input.reference:q} "
        "--reference-puncta {input.reference_puncta:q} --stack {input.stack:q} "
        "--puncta {input.puncta:q} --options {params.options:q} --out {output.transform:q} "
        "--qc {output.qc:q} > {log:q} 2>&1"
