# Every figure goes into the HTML report (`snakemake --report results/report.html`) with a
# one-line caption in workflow/report/<caption>.rst, a category (text experiments go to
# REPORT_TEXT) and the experiment as subcategory, all named by the record of its kind
# (layerwise.report.figure_kinds). The figures are listed by the plan from those records
# (StudyPlan.figure_jobs and study_figure_jobs: paths, inputs, the arguments of
# scripts/plot.py) and drawn by one job per experiment, and one for the figures of the whole
# study: each figure is a second of drawing after seconds of imports. A new figure is a record,
# its drawing function, its caption file and a test, and no rule. A figure with a counterpart
# in the paper draws the paper's digitized values beside ours (layerwise.reference), labelled
# "paper ...".
# One job per experiment (named after it), and one for the study's own figures.
FIGURE_JOBS = {**{name: (name, PLAN.figure_jobs(name)) for name in EXPERIMENTS},
               STUDY: ("all experiments", PLAN.study_figure_jobs())}  # report subcategory

for _name, (_subcategory, _jobs) in FIGURE_JOBS.items():
    if not _jobs:
        continue

    rule:
        name: figure_rule(_name)
        localrule: True  # seconds of plotting: on a cluster they run on the submitting host
        input:
            sorted({path for job in _jobs for path in job.inputs}),
        output:
            figure_outputs(_subcategory, _jobs),
        params:
            spec=job_spec("figures", experiment=_name),
        log:
            f"{RESULTS}/logs/figures/{_name}.log",
        benchmark:
            f"{RESULTS}/benchmarks/figures/{_name}.tsv"
        conda:
            CONDA_ENV
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            "python -m layerwise.usage --beside {log:q} --"
            " python scripts/plot.py --spec {params.spec:q} > {log:q} 2>&1"
