rule register:
    """Transform of one session into its cell's reference session, with a QC figure."""
    input:
        reference=lambda wc: f"{RESULTS}/ingest/{wc.cell}/{reference_session(wc.cell)}.tif",
        reference_puncta=lambda wc: f"{RESULTS}/detect/{wc.cell}/{reference_session(wc.cell)}.csv",
        stack=f"{RESULTS}/ingest/{{cell}}/{{session}}.tif",
        puncta=f"{RESULTS}/detect/{{cell}}/{{session}}.csv",
    output:
        transform=f"{RESULTS}/register/{{cell}}/{{session}}.json",
        qc=f"{RESULTS}/register/{{cell}}/{{session}}_qc.png",
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
