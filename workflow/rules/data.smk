rule prepare_data:
    output:
        splits=f"{RESULTS}/data/{{dataset}}/splits.safetensors",
        info=f"{RESULTS}/data/{{dataset}}/info.json",
    params:
        spec=lambda w: json.dumps(config["datasets"][w.dataset], sort_keys=True),
        out=lambda w: f"{RESULTS}/data/{w.dataset}",
    log:
        f"{RESULTS}/logs/prepare_data/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_data/{{dataset}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python scripts/prepare_data.py --spec {params.spec:q} --out {params.out:q} > {log:q} 2>&1"
