# Every figure goes into the HTML report (`snakemake --report results/report.html`) with a
# one-line caption in workflow/report/<caption>.rst, a category (text experiments go to
# REPORT_TEXT) and the experiment as subcategory, all named by the record of its kind
# (layerwise.report.figure_kinds). An experiment's figures are listed by the plan from those
# records (StudyPlan.figure_jobs: paths, inputs, the arguments of scripts/plot.py) and drawn by
# one job per experiment: each figure is a second of drawing after seconds of imports. A new
# figure of an experiment is a record, its drawing function, its caption file and a test, and
# no rule (a figure of the whole study also needs its rule here, like the two below). A figure
# with a counterpart in the paper draws the paper's digitized values beside ours
# (layerwise.reference), labelled "paper ...".
for _experiment in EXPERIMENTS:
    _jobs = PLAN.figure_jobs(_experiment)

    rule:
        name: f"figures_{_experiment.replace('-', '_')}"
        localrule: True  # seconds of plotting: on a cluster they run on the submitting host
        input:
            sorted({path for job in _jobs for path in job.inputs}),
        output:
            figure_outputs(_experiment, _jobs),
        params:
            batch=json.dumps([list(job.argv) for job in _jobs]),
        log:
            f"{RESULTS}/logs/figures/{_experiment}.log",
        benchmark:
            f"{RESULTS}/benchmarks/figures/{_experiment}.tsv"
        conda:
            CONDA_ENV
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            "python scripts/plot.py --batch {params.batch:q} > {log:q} 2>&1"


rule figure_residual_ablation:
    input:
        without_acc=residual_ablation_input("without", "layer_accuracy.csv"),
        without_sim=residual_ablation_input("without", "similarity.csv"),
        with_acc=residual_ablation_input("with", "layer_accuracy.csv"),
        with_sim=residual_ablation_input("with", "similarity.csv"),
    output:
        pdf=f"{RESULTS}/figures/residual_ablation.pdf",
        png=figure_in_report(f"{RESULTS}/figures/residual_ablation.png", "residual_ablation",
                             "residual ablation", "residual ablation"),
    log:
        f"{RESULTS}/logs/figures/residual_ablation.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/residual_ablation.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/plot.py residual_ablation"
        " --panel 'without residual connections' {input.without_acc:q} {input.without_sim:q}"
        " --panel 'with residual connections' {input.with_acc:q} {input.with_sim:q}"
        " --panel-reference fig12_mlp9_mnist.no_residual 'paper 9-layer MLP MNIST (Fig 12)'"
        " --panel-reference fig12_mlp9_mnist.residual 'paper 9-layer MLP MNIST (Fig 12)'"
        " --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


# Every text experiment's layer-wise metric in one figure, one panel per task (paper Fig 8).
rule figure_text_layerwise:
    input:
        accuracy=lambda w: [f"{RESULTS}/analysis/{name}/layer_accuracy.csv"
                            for name in TEXT_EXPERIMENTS],
    output:
        pdf=f"{RESULTS}/figures/text_layerwise.pdf",
        png=figure_in_report(f"{RESULTS}/figures/text_layerwise.png", "text_layerwise",
                             "layer-wise metric of every task", "all tasks"),
    params:
        panels=text_panel_args,
    log:
        f"{RESULTS}/logs/figures/text_layerwise.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/text_layerwise.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/plot.py text_layerwise {params.panels}"
        " --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"
