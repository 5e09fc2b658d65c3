ANALYSIS = config["analysis"]


rule analyze_run:
    wildcard_constraints:
        experiment=STORED,
    input:
        train=rules.extract.output.train,
        val=rules.extract.output.val,
        test=rules.extract.output.test,
    output:
        accuracy=f"{RESULTS}/analysis/{{experiment}}/{{method}}/seed{{seed}}/layer_accuracy.csv",
        similarity=f"{RESULTS}/analysis/{{experiment}}/{{method}}/seed{{seed}}/similarity.csv",
        per_sample=f"{RESULTS}/analysis/{{experiment}}/{{method}}/seed{{seed}}/cos_per_sample.csv",
        agreement=f"{RESULTS}/analysis/{{experiment}}/{{method}}/seed{{seed}}/agreement.csv",
        norm_ratio=f"{RESULTS}/analysis/{{experiment}}/{{method}}/seed{{seed}}/norm_ratio.csv",
    params:
        spec_hash=run_spec_hash,
        similarity_split=ANALYSIS["similarity_split"],
        cka=ANALYSIS["cka_estimators"],
        rbf_threshold=ANALYSIS["rbf_threshold"],
        batch_size=cka_batch_size_arg,
        metric=experiment_metric,
    log:
        f"{RESULTS}/logs/analyze_run/{{experiment}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/analyze_run/{{experiment}}/{{method}}/seed{{seed}}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python scripts/analyze_run.py --hidden train {input.train:q} --hidden val {input.val:q}"
        " --hidden test {input.test:q}"
        " --spec-hash {params.spec_hash:q} --similarity-split {params.similarity_split:q}"
        " --cka {params.cka:q} --rbf-threshold {params.rbf_threshold} {params.batch_size}"
        " --metric {params.metric}"
        " --accuracy-out {output.accuracy:q} --similarity-out {output.similarity:q}"
        " --cos-per-sample-out {output.per_sample:q} --agreement-out {output.agreement:q}"
        " --norm-ratio-out {output.norm_ratio:q}"
        " --threads {threads} > {log:q} 2>&1"


rule summarize:
    input:
        lambda w: experiment_runs(w.experiment, rules.analyze_run.output),
    output:
        accuracy=f"{RESULTS}/analysis/{{experiment}}/layer_accuracy.csv",
        similarity=f"{RESULTS}/analysis/{{experiment}}/similarity.csv",
        per_sample=f"{RESULTS}/analysis/{{experiment}}/cos_per_sample.csv",
        agreement=f"{RESULTS}/analysis/{{experiment}}/agreement.csv",
        norm_ratio=f"{RESULTS}/analysis/{{experiment}}/norm_ratio.csv",
        table=table_in_report(multiext(f"{RESULTS}/tables/{{experiment}}/layerwise_accuracy",
                                       ".csv", ".md", ".tex"),
                              "layerwise_accuracy_table", REPORT_ACCURACY,
                              "layer-wise accuracy table"),
    params:
        runs=summarize_args,
        out_dir=lambda w: f"{RESULTS}/analysis/{w.experiment}",
        table=lambda w: f"{RESULTS}/tables/{w.experiment}/layerwise_accuracy",
        metric=experiment_metric,
    log:
        f"{RESULTS}/logs/summarize/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize/{{experiment}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python scripts/summarize.py {params.runs} --out-dir {params.out_dir:q}"
        " --table {params.table:q} --metric {params.metric} > {log:q} 2>&1"


rule cross_model_similarity:
    input:
        standard=lambda w: experiment_runs(w.experiment, rules.extract.output.test, ["standard"]),
        aligned=lambda w: experiment_runs(w.experiment, rules.extract.output.test, ["aligned"]),
    output:
        f"{RESULTS}/analysis/{{experiment}}/cross_model_cka.csv",
    params:
        seeds=lambda w: EXPERIMENTS[w.experiment]["seeds"],
    log:
        f"{RESULTS}/logs/cross_model_similarity/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/cross_model_similarity/{{experiment}}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python scripts/cross_model.py --seeds {params.seeds} --a {input.standard:q}"
        " --b {input.aligned:q} --out {output:q} --threads {threads} > {log:q} 2>&1"

