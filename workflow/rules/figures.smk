# Every figure goes into the HTML report (`snakemake --report results/report.html`): wrap its PNG
# in in_report(path, caption, category, result) from common.smk, with a one-line caption in
# workflow/report/<caption>.rst (Jinja may use snakemake.wildcards / params), a category
# (REPORT_SIMILARITY, REPORT_ACCURACY, REPORT_SATURATION, REPORT_EXITS; text experiments go to
# REPORT_TEXT by themselves) and the experiment as subcategory; a table's CSV goes in through
# table_in_report(multiext(...), ...). Figure rules added later follow the same pattern, and a
# figure with a counterpart in the paper draws the paper's digitized values beside ours
# (layerwise.reference), labelled "paper ...".
SUMMARY = rules.summarize.output


rule figure_layerwise_accuracy:
    input:
        accuracy=SUMMARY.accuracy,
    output:
        pdf=f"{RESULTS}/figures/{{experiment}}/layerwise_accuracy.pdf",
        png=in_report(f"{RESULTS}/figures/{{experiment}}/layerwise_accuracy.png",
                      "layerwise_accuracy", REPORT_ACCURACY, "layer-wise accuracy"),
    params:
        metric=experiment_metric,
        reference=reference_arg,
        loss_reference=loss_reference_arg,
    log:
        f"{RESULTS}/logs/figures/{{experiment}}/layerwise_accuracy.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{experiment}}/layerwise_accuracy.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/plot.py layerwise_accuracy --experiment {wildcards.experiment:q}"
        " --accuracy {input.accuracy:q} --metric {params.metric} {params.reference}"
        " {params.loss_reference}"
        " --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


rule figure_heatmaps:
    input:
        similarity=SUMMARY.similarity,
    output:
        pdf=f"{RESULTS}/figures/{{experiment}}/{{measure}}_heatmaps.pdf",
        png=in_report(f"{RESULTS}/figures/{{experiment}}/{{measure}}_heatmaps.png", "heatmaps",
                      REPORT_SIMILARITY, "{measure} heatmaps"),
    log:
        f"{RESULTS}/logs/figures/{{experiment}}/{{measure}}_heatmaps.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{experiment}}/{{measure}}_heatmaps.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/plot.py heatmaps --experiment {wildcards.experiment:q}"
        " --similarity {input.similarity:q} --measure {wildcards.measure:q}"
        " --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


rule figure_curves_vs_last:
    input:
        accuracy=SUMMARY.accuracy,
        similarity=SUMMARY.similarity,
    output:
        pdf=f"{RESULTS}/figures/{{experiment}}/curves_vs_last_{{method}}.pdf",
        png=in_report(f"{RESULTS}/figures/{{experiment}}/curves_vs_last_{{method}}.png",
                      "curves_vs_last", REPORT_SIMILARITY, "similarity to the last layer, {method}"),
    log:
        f"{RESULTS}/logs/figures/{{experiment}}/curves_vs_last_{{method}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{experiment}}/curves_vs_last_{{method}}.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/plot.py curves_vs_last --experiment {wildcards.experiment:q}"
        " --accuracy {input.accuracy:q} --similarity {input.similarity:q}"
        " --method {wildcards.method:q} --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


rule figure_cos_boxplot:
    input:
        per_sample=SUMMARY.per_sample,
    output:
        pdf=f"{RESULTS}/figures/{{experiment}}/cos_boxplot.pdf",
        png=in_report(f"{RESULTS}/figures/{{experiment}}/cos_boxplot.png", "cos_boxplot",
                      REPORT_SIMILARITY, "per-sample COS"),
    log:
        f"{RESULTS}/logs/figures/{{experiment}}/cos_boxplot.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{experiment}}/cos_boxplot.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/plot.py cos_boxplot --experiment {wildcards.experiment:q}"
        " --per-sample {input.per_sample:q} --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


rule figure_adjacent_cos:
    input:
        similarity=SUMMARY.similarity,
        norm_ratio=lambda w: SUMMARY.norm_ratio if PLAN.has_norm_ratio(w.experiment) else [],
    output:
        pdf=f"{RESULTS}/figures/{{experiment}}/adjacent_cos.pdf",
        png=in_report(f"{RESULTS}/figures/{{experiment}}/adjacent_cos.png", "adjacent_cos",
                      REPORT_SIMILARITY, "adjacent-layer COS"),
    params:
        norm_ratio=lambda w, input: (f"--norm-ratio {shlex.quote(input.norm_ratio)}"
                                     if input.norm_ratio else ""),
    log:
        f"{RESULTS}/logs/figures/{{experiment}}/adjacent_cos.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{experiment}}/adjacent_cos.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/plot.py adjacent_cos --experiment {wildcards.experiment:q}"
        " --similarity {input.similarity:q} {params.norm_ratio}"
        " --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


rule figure_cross_model:
    input:
        similarity=rules.cross_model_similarity.output[0],
    output:
        pdf=f"{RESULTS}/figures/{{experiment}}/cross_model_cka.pdf",
        png=in_report(f"{RESULTS}/figures/{{experiment}}/cross_model_cka.png", "cross_model_cka",
                      REPORT_SIMILARITY, "CKA standard vs aligned"),
    log:
        f"{RESULTS}/logs/figures/{{experiment}}/cross_model_cka.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{experiment}}/cross_model_cka.tsv"
    conda:
        CONDA_ENV
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python scripts/plot.py cross_model --experiment {wildcards.experiment:q}"
        " --similarity {input.similarity:q} --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


rule figure_residual_ablation:
    input:
        without_acc=residual_ablation_input("without", "layer_accuracy.csv"),
        without_sim=residual_ablation_input("without", "similarity.csv"),
        with_acc=residual_ablation_input("with", "layer_accuracy.csv"),
        with_sim=residual_ablation_input("with", "similarity.csv"),
    output:
        pdf=f"{RESULTS}/figures/residual_ablation.pdf",
        png=in_report(f"{RESULTS}/figures/residual_ablation.png", "residual_ablation",
                      REPORT_SIMILARITY, "residual ablation", "residual ablation"),
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
        png=in_report(f"{RESULTS}/figures/text_layerwise.png", "text_layerwise", REPORT_TEXT,
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
