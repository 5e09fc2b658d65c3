rule analyze_run:
    input:
        val=rules.extract.output.val,
        test=rules.extract.output.test,
    output:
        accuracy=f"{RESULTS}/analysis/{{experiment}}/{{method}}/seed{{seed}}/layer_accuracy.csv",
        similarity=f"{RESULTS}/analysis/{{experiment}}/{{method}}/seed{{seed}}/similarity.csv",
    params:
        spec_hash=run_spec_hash,
        similarity_split=config["analysis"]["similarity_split"],
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
        "python scripts/analyze_run.py --hidden val {input.val:q} --hidden test {input.test:q}"
        " --spec-hash {params.spec_hash:q} --similarity-split {params.similarity_split:q}"
        " --accuracy-out {output.accuracy:q} --similarity-out {output.similarity:q}"
        " --threads {threads} > {log:q} 2>&1"


rule summarize:
    input:
        accuracy=lambda w: experiment_runs(w.experiment, rules.analyze_run.output.accuracy),
        similarity=lambda w: experiment_runs(w.experiment, rules.analyze_run.output.similarity),
    output:
        accuracy=f"{RESULTS}/analysis/{{experiment}}/layer_accuracy.csv",
        similarity=f"{RESULTS}/analysis/{{experiment}}/similarity.csv",
        table=multiext(f"{RESULTS}/tables/{{experiment}}/layerwise_accuracy", ".csv", ".md", ".tex"),
    params:
        runs=lambda w, input: summarize_args(w, input),
        table=lambda w: f"{RESULTS}/tables/{w.experiment}/layerwise_accuracy",
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
        "python scripts/summarize.py {params.runs} --accuracy-out {output.accuracy:q}"
        " --similarity-out {output.similarity:q} --table {params.table:q} > {log:q} 2>&1"
