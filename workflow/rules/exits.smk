# Early exit, saturation and effective depth (docs/method.md §6, §7) per experiment: the
# summaries, tables and figures of what each run's analysis job wrote (analysis.smk).
# Depth-study runs (standard_d<depth>) are trained and analysed like any run and only feed the
# depth study.
EXIT_SUMMARY = f"{RESULTS}/analysis/{{experiment}}"


rule summarize_exits:
    input:
        lambda w: experiment_runs(w.experiment, list(EXIT_FILES.values()),
                                  PLAN.exit_methods(w.experiment)),
    output:
        sweep=f"{EXIT_SUMMARY}/exit_sweep.csv",
        operating_points=f"{EXIT_SUMMARY}/exit_operating_points.csv",
        exit_counts=f"{EXIT_SUMMARY}/exit_counts.csv",
        saturation=f"{EXIT_SUMMARY}/saturation.csv",
        timing=f"{EXIT_SUMMARY}/exit_timing.csv",
        table=table_in_report(multiext(f"{RESULTS}/tables/{{experiment}}/multi_exit", ".csv",
                                       ".md", ".tex"),
                              "multi_exit_table", REPORT_EXITS, "early-exit operating points"),
    params:
        runs=lambda w: run_args(w, list(EXIT_FILES.values()), PLAN.exit_methods(w.experiment)),
        table=lambda w: f"{RESULTS}/tables/{w.experiment}/multi_exit",
    log:
        f"{RESULTS}/logs/summarize_exits/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize_exits/{{experiment}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python scripts/summarize_exits.py {params.runs} --sweep-out {output.sweep:q}"
        " --operating-points-out {output.operating_points:q}"
        " --exit-counts-out {output.exit_counts:q} --saturation-out {output.saturation:q}"
        " --timing-out {output.timing:q} --table {params.table:q} > {log:q} 2>&1"


rule depth_study:
    input:
        accuracy=lambda w: experiment_runs(w.experiment, ANALYSIS_FILES["layer_accuracy"],
                                           PLAN.trained_runs(w.experiment)),
        logs=lambda w: experiment_runs(w.experiment, rules.train.output.log,
                                       PLAN.trained_runs(w.experiment)),
    output:
        accuracy=f"{EXIT_SUMMARY}/depth_study_accuracy.csv",
        val_curves=f"{EXIT_SUMMARY}/depth_study_val_accuracy.csv",
        effective_depth=f"{EXIT_SUMMARY}/effective_depth.csv",
        table=table_in_report(multiext(f"{RESULTS}/tables/{{experiment}}/effective_depth",
                                       ".csv", ".md", ".tex"),
                              "effective_depth", REPORT_SATURATION, "effective depth"),
    params:
        runs=lambda w: run_args(w, [ANALYSIS_FILES["layer_accuracy"]],
                                PLAN.trained_runs(w.experiment)),
        logs=lambda w: run_args(w, [rules.train.output.log], PLAN.trained_runs(w.experiment),
                                flag="--log"),
        epsilon=config["analysis"]["effective_depth_epsilon"],
        table=lambda w: f"{RESULTS}/tables/{w.experiment}/effective_depth",
    log:
        f"{RESULTS}/logs/depth_study/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/depth_study/{{experiment}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python scripts/depth_study.py {params.runs} {params.logs} --epsilon {params.epsilon:q}"
        " --accuracy-out {output.accuracy:q} --val-curves-out {output.val_curves:q}"
        " --effective-depth-out {output.effective_depth:q}"
        " --table {params.table:q} > {log:q} 2>&1"


rule parameter_table:
    input:
        splits=lambda w: f"{data_dir(w)}/splits.safetensors",
        info=lambda w: f"{data_dir(w)}/info.json",
    output:
        table_in_report(multiext(f"{RESULTS}/tables/{{experiment}}/parameter_savings", ".csv",
                                 ".md", ".tex"),
                        "parameter_savings", REPORT_EXITS, "parameter savings"),
    params:
        model=lambda w: json.dumps(EXPERIMENTS[w.experiment]["model"], sort_keys=True),
        data=data_dir,
        table=lambda w: f"{RESULTS}/tables/{w.experiment}/parameter_savings",
    log:
        f"{RESULTS}/logs/parameter_table/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/parameter_table/{{experiment}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python scripts/parameter_table.py --experiment {wildcards.experiment:q}"
        " --model-spec {params.model:q} --data {params.data:q} --table {params.table:q}"
        " > {log:q} 2>&1"


# A language model's decoding, gathered over runs: self-speculative decoding (lossless early
# exit) and text sampled with the exit fixed at each layer (paper Fig 9 c, d).
rule summarize_decoding:
    wildcard_constraints:
        experiment=TOKEN_LEVEL,
    input:
        lambda w: experiment_runs(w.experiment, list(DECODING_FILES.values())),
    output:
        speculative=f"{EXIT_SUMMARY}/speculative.csv",
        generation=f"{EXIT_SUMMARY}/generation.csv",
        table=table_in_report(multiext(f"{RESULTS}/tables/{{experiment}}/speculative", ".csv",
                                       ".md", ".tex"),
                              "speculative_table", REPORT_EXITS, "self-speculative decoding"),
    params:
        runs=lambda w: run_args(w, list(DECODING_FILES.values())),
        table=lambda w: f"{RESULTS}/tables/{w.experiment}/speculative",
    log:
        f"{RESULTS}/logs/summarize_decoding/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarize_decoding/{{experiment}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python scripts/summarize_decoding.py {params.runs} --speculative-out {output.speculative:q}"
        " --generation-out {output.generation:q} --table {params.table:q} > {log:q} 2>&1"
