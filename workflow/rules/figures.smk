SUMMARY = rules.summarize.output


rule figure_layerwise_accuracy:
    input:
        accuracy=SUMMARY.accuracy,
    output:
        pdf=f"{RESULTS}/figures/{{experiment}}/layerwise_accuracy.pdf",
        png=f"{RESULTS}/figures/{{experiment}}/layerwise_accuracy.png",
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
        " --accuracy {input.accuracy:q} --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"


rule figure_heatmaps:
    input:
        similarity=SUMMARY.similarity,
    output:
        pdf=f"{RESULTS}/figures/{{experiment}}/{{measure}}_heatmaps.pdf",
        png=f"{RESULTS}/figures/{{experiment}}/{{measure}}_heatmaps.png",
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
        png=f"{RESULTS}/figures/{{experiment}}/curves_vs_last_{{method}}.png",
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
