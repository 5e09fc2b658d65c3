# Per run: the hidden states and the layer-wise analysis, in one job that loads the model once
# (its import costs more than the work); analyze_exit_run also runs the early-exit study
# (docs/method.md §6, §7) for the runs of the exit study, and takes precedence for them. Both
# read the plan's analysis spec (StudyPlan.analysis_spec), which says whether a run's analysis
# includes the exit study.


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
        spec=job_spec("analyze_run"),
        data=data_dir,
        outputs=output_options,
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
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/analyze_run.py --spec {params.spec:q} --data {params.data:q}"
        " --model {input.model:q} {params.outputs} --threads {threads} > {log:q} 2>&1"


use rule analyze_run as analyze_exit_run with:
    wildcard_constraints:
        experiment=EXIT_STORED,
        method=EXIT_METHODS,
    output:
        **HIDDEN_FILES,
        **ANALYSIS_FILES,
        **EXIT_FILES,


ruleorder: analyze_exit_run > analyze_run


# A language model's run: the files analyze_exit_run writes but the hidden states, computed from
# the model in streaming passes over the tokens (every token's states are too many to store),
# plus real early-exit greedy decoding timed against full depth and self-speculative decoding.
rule analyze_tokens:
    wildcard_constraints:
        experiment=TOKEN_LEVEL,
    input:
        model=rules.train.output.model,
        splits=lambda w: f"{data_dir(w)}/splits.safetensors",
        # one model scores every method's generated text (docs/method.md §10)
        judge=lambda w: PLAN.coherence_judge(w.experiment, int(w.seed))["weights"],
    output:
        **ANALYSIS_FILES,
        **EXIT_FILES,
        **DECODING_FILES,
    params:
        spec=job_spec("analyze_tokens"),
        data=data_dir,
        outputs=output_options,
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
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/analyze_tokens.py --spec {params.spec:q} --data {params.data:q}"
        " --model {input.model:q} --judge {input.judge:q} {params.outputs}"
        " --threads {threads} > {log:q} 2>&1"


rule summarize:
    input:
        files_of("summarize"),
    output:
        **{name: f"{RESULTS}/analysis/{{experiment}}/{name}.csv"
           for name in [*ANALYSIS_FILES, "depth_use"]},
        table=table_in_report(multiext(f"{RESULTS}/tables/{{experiment}}/layerwise_accuracy",
                                       ".csv", ".md", ".tex"),
                              "layerwise_accuracy_table", REPORT_ACCURACY,
                              "layer-wise accuracy table"),
        depth_table=table_in_report(multiext(f"{RESULTS}/tables/{{experiment}}/depth_use",
                                             ".csv", ".md", ".tex"),
                                    "depth_use_table", REPORT_ACCURACY, "depth use table"),
    params:
        spec=job_spec("summarize"),
        outputs=output_options,
        table=table_stem,
        depth_table=lambda w, output: os.path.splitext(output.depth_table[0])[0],
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
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/summarize.py --spec {params.spec:q} {params.outputs}"
        " --table {params.table:q} --depth-table {params.depth_table:q} > {log:q} 2>&1"


rule cross_model_similarity:
    input:
        files_of("cross_model_similarity"),
    output:
        f"{RESULTS}/analysis/{{experiment}}/cross_model_cka.csv",
    params:
        spec=job_spec("cross_model_similarity"),
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
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/cross_model.py --spec {params.spec:q} --out {output:q}"
        " --threads {threads} > {log:q} 2>&1"


# A model with a text tower (CLIP): every run's stored image states of the similarity split
# against the text tower's states of the class prompts, layer by layer (paper Figs 22-23).
rule image_text_similarity:
    wildcard_constraints:
        experiment=one_of(PLAN.image_text_experiments),
    input:
        files_of("image_text_similarity"),
    output:
        f"{RESULTS}/analysis/{{experiment}}/image_text.csv",
    params:
        spec=job_spec("image_text_similarity"),
    log:
        f"{RESULTS}/logs/image_text_similarity/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/image_text_similarity/{{experiment}}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/image_text.py --spec {params.spec:q} --out {output:q}"
        " --threads {threads} > {log:q} 2>&1"
