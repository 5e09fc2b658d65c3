# Early exit, saturation and effective depth (docs/method.md §6, §7) per experiment: the
# summaries, tables and figures of what each run's analysis job wrote (analysis.smk).
# Depth-study runs (standard_d<depth>) are trained and analysed like any run and only feed the
# depth study.
EXIT_SUMMARY = f"{RESULTS}/analysis/{{experiment}}"


rule summarize_exits:
    input:
        files_of("summarize_exits"),
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
        spec=job_spec("summarize_exits"),
        outputs=output_options,
        table=table_stem,
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
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/summarize_exits.py --spec {params.spec:q} {params.outputs}"
        " --table {params.table:q} > {log:q} 2>&1"


rule depth_study:
    input:
        files_of("depth_study"),
    output:
        accuracy=f"{EXIT_SUMMARY}/depth_study_accuracy.csv",
        val_curves=f"{EXIT_SUMMARY}/depth_study_val_accuracy.csv",
        effective_depth=f"{EXIT_SUMMARY}/effective_depth.csv",
        table=table_in_report(multiext(f"{RESULTS}/tables/{{experiment}}/effective_depth",
                                       ".csv", ".md", ".tex"),
                              "effective_depth", REPORT_SATURATION, "effective depth"),
    params:
        spec=job_spec("depth_study"),
        outputs=output_options,
        table=table_stem,
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
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/depth_study.py --spec {params.spec:q} {params.outputs}"
        " --table {params.table:q} > {log:q} 2>&1"


rule parameter_table:
    input:
        splits=lambda w: f"{data_dir(w)}/splits.safetensors",
        info=lambda w: f"{data_dir(w)}/info.json",
    output:
        table=table_in_report(multiext(f"{RESULTS}/tables/{{experiment}}/parameter_savings",
                                       ".csv", ".md", ".tex"),
                              "parameter_savings", REPORT_EXITS, "parameter savings"),
    params:
        spec=job_spec("parameter_table"),
        data=data_dir,
        table=table_stem,
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
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/parameter_table.py --spec {params.spec:q} --data {params.data:q}"
        " --table {params.table:q} > {log:q} 2>&1"


# A language model's decoding, gathered over runs: self-speculative decoding (lossless early
# exit) and text sampled with the exit fixed at each layer (paper Fig 9 c, d).
rule summarize_decoding:
    wildcard_constraints:
        experiment=TOKEN_LEVEL,
    input:
        files_of("summarize_decoding"),
    output:
        speculative=f"{EXIT_SUMMARY}/speculative.csv",
        generation=f"{EXIT_SUMMARY}/generation.csv",
        table=table_in_report(multiext(f"{RESULTS}/tables/{{experiment}}/speculative", ".csv",
                                       ".md", ".tex"),
                              "speculative_table", REPORT_EXITS, "self-speculative decoding"),
    params:
        spec=job_spec("summarize_decoding"),
        outputs=output_options,
        table=table_stem,
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
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/summarize_decoding.py --spec {params.spec:q} {params.outputs}"
        " --table {params.table:q} > {log:q} 2>&1"
