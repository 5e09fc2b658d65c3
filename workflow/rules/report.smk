# The study as a whole: the paper's claims checked on this run's results, then the summary
# that DVC and readers see (metrics.json for `dvc metrics`, results/plots/ for `dvc plots`, the
# runtime table from every job's benchmark file, and SUMMARY.md). `snakemake --report` adds
# every figure and table marked with in_report (see the top of figures.smk).


rule check_claims:
    input:
        files_of("check_claims"),
    output:
        json=f"{RESULTS}/tables/claims.json",
        table=table_in_report(multiext(f"{RESULTS}/tables/claims", ".csv", ".md", ".tex"),
                              "claims", REPORT_CLAIMS, "claims C1-C13", "all experiments"),
    params:
        spec=job_spec("check_claims"),
        table=table_stem,
    log:
        f"{RESULTS}/logs/check_claims.log",
    benchmark:
        f"{RESULTS}/benchmarks/check_claims/claims.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/check_claims.py --spec {params.spec:q} --json {output.json:q}"
        " --table {params.table:q} > {log:q} 2>&1"


# Reads every final figure and table (so it runs last) and the benchmark files of the jobs
# before it; the PNG copies under results/plots/figures/ exist for `dvc plots show` only.
rule study_summary:
    input:
        PLAN.final_targets(),
        PLAN.study_summary_inputs(),
        claims=rules.check_claims.output.json,
    output:
        metrics=f"{RESULTS}/metrics.json",
        summary=f"{RESULTS}/SUMMARY.md",
        runtime=table_in_report(multiext(f"{RESULTS}/tables/runtime", ".csv", ".md", ".tex"),
                                "runtime", REPORT_RUNTIME, "runtime per step", "all jobs"),
        plots=PLAN.study_plot_files(),
    params:
        spec=job_spec("study_summary"),
        runtime=lambda w, output: os.path.splitext(output.runtime[0])[0],
    log:
        f"{RESULTS}/logs/study_summary.log",
    benchmark:
        f"{RESULTS}/benchmarks/study_summary/summary.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/summarize_study.py --spec {params.spec:q} --metrics {output.metrics:q}"
        " --summary {output.summary:q} --runtime {params.runtime:q} > {log:q} 2>&1"
