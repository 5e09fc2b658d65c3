ANALYSIS = config["analysis"]


# Per run: the hidden states and the layer-wise analysis, in one job that loads the model once
# (its import costs more than the work); analyze_exit_run also runs the early-exit study
# (docs/method.md §6, §7) for the runs of the exit study, and takes precedence for them.
EXITS = config["exits"]  # analysis_args (common.smk) gives both per-run rules their options


rule analyze_run:
    wildcard_constraints:
        experiment=STORED,
    input:
        model=rules.train.output.model,
        splits=lambda w: f"{data_dir(w)}/splits.safetensors",
    output:
        **HIDDEN_FILES,
        **ANALYSIS_FILES,
    params:
        options=lambda w, output, threads: analysis_args(w, output, threads),
    log:
        f"{RESULTS}/logs/analyze_run/{RUN}.log",
    benchmark:
        f"{RESULTS}/benchmarks/analyze_run/{RUN}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python scripts/analyze_run.py --model {input.model:q} {params.options} > {log:q} 2>&1"


rule analyze_exit_run:
    wildcard_constraints:
        experiment=EXIT_STORED,
        method=EXIT_METHODS,
    input:
        model=rules.train.output.model,
        splits=lambda w: f"{data_dir(w)}/splits.safetensors",
    output:
        **HIDDEN_FILES,
        **ANALYSIS_FILES,
        **EXIT_FILES,
    params:
        options=lambda w, output, threads: analysis_args(w, output, threads),
        policies=EXITS["policies"],
        sweep_points=EXITS["sweep_points"],
        max_drop=EXITS["max_accuracy_drop"],
        batch_sizes=EXITS["timing"]["batch_sizes"],
        samples=EXITS["timing"]["samples"],
        warmup=EXITS["timing"]["warmup"],
        repeats=EXITS["timing"]["repeats"],
    log:
        f"{RESULTS}/logs/analyze_run/{RUN}.log",
    benchmark:
        f"{RESULTS}/benchmarks/analyze_run/{RUN}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python scripts/analyze_run.py --model {input.model:q} {params.options}"
        " --policies {params.policies:q} --sweep-points {params.sweep_points:q}"
        " --max-drop {params.max_drop:q} --batch-sizes {params.batch_sizes:q}"
        " --samples {params.samples:q} --warmup {params.warmup:q} --repeats {params.repeats:q}"
        " --sweep-out {output.sweep:q} --operating-points-out {output.operating_points:q}"
        " --exit-counts-out {output.exit_counts:q} --saturation-out {output.saturation:q}"
        " --timing-out {output.timing:q} > {log:q} 2>&1"


ruleorder: analyze_exit_run > analyze_run


# A language model's run: the files analyze_exit_run writes but the hidden states, computed from
# the model in streaming passes over the tokens (every token's states are too many to store),
# plus real early-exit greedy decoding timed against full depth.
rule analyze_tokens:
    wildcard_constraints:
        experiment=TOKEN_LEVEL,
    input:
        model=rules.train.output.model,
        splits=lambda w: f"{data_dir(w)}/splits.safetensors",
    output:
        **ANALYSIS_FILES,
        **EXIT_FILES,
        **DECODING_FILES,
    params:
        spec=run_spec_json,
        data=data_dir,
        similarity_split=ANALYSIS["similarity_split"],
        cka=ANALYSIS["cka_estimators"],
        token_samples=ANALYSIS["token_samples"],
        train_samples=train_samples_arg,
        policies=EXITS["policies"],
        sweep_points=EXITS["sweep_points"],
        max_drop=EXITS["max_accuracy_drop"],
        prompts=EXITS["decoding"]["prompts"],
        prompt_length=EXITS["decoding"]["prompt_length"],
        steps=EXITS["decoding"]["steps"],
        warmup=EXITS["timing"]["warmup"],
        repeats=EXITS["timing"]["repeats"],
        decoding=json.dumps({key: EXITS[key] for key in ("speculative", "generation")},
                            sort_keys=True),
    log:
        f"{RESULTS}/logs/analyze_tokens/{RUN}.log",
    benchmark:
        f"{RESULTS}/benchmarks/analyze_tokens/{RUN}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "python scripts/analyze_tokens.py --spec {params.spec:q} --data {params.data:q}"
        " --model {input.model:q} --similarity-split {params.similarity_split:q}"
        " --cka {params.cka:q} --token-samples {params.token_samples:q} {params.train_samples}"
        " --policies {params.policies:q} --sweep-points {params.sweep_points:q}"
        " --max-drop {params.max_drop:q} --prompts {params.prompts:q}"
        " --prompt-length {params.prompt_length:q} --steps {params.steps:q}"
        " --warmup {params.warmup:q} --repeats {params.repeats:q}"
        " --accuracy-out {output.layer_accuracy:q} --similarity-out {output.similarity:q}"
        " --cos-per-sample-out {output.cos_per_sample:q} --agreement-out {output.agreement:q}"
        " --norm-ratio-out {output.norm_ratio:q} --sweep-out {output.sweep:q}"
        " --operating-points-out {output.operating_points:q}"
        " --exit-counts-out {output.exit_counts:q} --saturation-out {output.saturation:q}"
        " --timing-out {output.timing:q} --decoding-spec {params.decoding:q}"
        " --speculative-out {output.speculative:q} --generation-out {output.generation:q}"
        " --threads {threads} > {log:q} 2>&1"


rule summarize:
    input:
        runs=lambda w: experiment_runs(w.experiment, list(ANALYSIS_FILES.values())),
        # a language model's unigram and bigram baselines, beside its layers in the table
        baselines=lambda w: [PLAN.data_info(w.experiment)]
        if w.experiment in PLAN.token_experiments else [],
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
        baselines=lambda w, input: " ".join(f"--baselines {shlex.quote(f)}"
                                            for f in input.baselines),
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
        " --table {params.table:q} --metric {params.metric} {params.baselines}"
        " > {log:q} 2>&1"


rule cross_model_similarity:
    input:
        standard=lambda w: experiment_runs(w.experiment, HIDDEN_FILES["test"], ["standard"]),
        aligned=lambda w: experiment_runs(w.experiment, HIDDEN_FILES["test"], ["aligned"]),
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

