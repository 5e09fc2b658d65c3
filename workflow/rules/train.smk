# Only the final weights, the log and provenance are declared: Snakemake deletes declared
# outputs before it reruns a job, so the resumable checkpoint lives in an undeclared folder.
rule train:
    wildcard_constraints:
        method=TRAINED_METHODS,
    input:
        splits=lambda w: f"{data_dir(w)}/splits.safetensors",
        info=lambda w: f"{data_dir(w)}/info.json",
        # the pretraining every run of the experiment fine-tunes, where it has one
        init=lambda w: pretrained_model(w) or [],
    output:
        model=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/model.safetensors",
        log=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/train_log.csv",
        provenance=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/provenance.json",
    params:
        spec=job_spec("train"),
        data=data_dir,
        checkpoint=lambda w: f"{RESULTS}/checkpoints/{w.experiment}/{w.method}/seed{w.seed}/last.pt",
        # One process per GPU the profile gives the job (resources.gpu; torchrun for > 1).
        processes=lambda w, resources: max(1, int(resources.get("gpu", 0) or 0)),
    log:
        f"{RESULTS}/logs/train/{{experiment}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{experiment}}/{{method}}/seed{{seed}}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/train.py --spec {params.spec:q} --data {params.data:q}"
        " --checkpoint {params.checkpoint:q} --model {output.model:q} --log {output.log:q}"
        " --provenance {output.provenance:q} --threads {threads}"
        " --processes {params.processes} --init {input.init:q} > {log:q} 2>&1"


# The standard model every run of an experiment with a `pretrain` section starts from (the
# paper fine-tunes pretrained GPT-2 with each method): its own spec, seed and schedule.
rule pretrain:
    wildcard_constraints:
        experiment=one_of(PLAN.pretrained_experiments),
    input:
        splits=lambda w: f"{data_dir(w)}/splits.safetensors",
        info=lambda w: f"{data_dir(w)}/info.json",
    output:
        model=f"{RESULTS}/runs/{{experiment}}/pretrain/model.safetensors",
        log=f"{RESULTS}/runs/{{experiment}}/pretrain/train_log.csv",
        provenance=f"{RESULTS}/runs/{{experiment}}/pretrain/provenance.json",
    params:
        spec=job_spec("pretrain"),
        data=data_dir,
        checkpoint=lambda w: f"{RESULTS}/checkpoints/{w.experiment}/pretrain/last.pt",
        processes=lambda w, resources: max(1, int(resources.get("gpu", 0) or 0)),
    log:
        f"{RESULTS}/logs/pretrain/{{experiment}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/pretrain/{{experiment}}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/train.py --spec {params.spec:q} --data {params.data:q}"
        " --checkpoint {params.checkpoint:q} --model {output.model:q} --log {output.log:q}"
        " --provenance {output.provenance:q} --threads {threads}"
        " --processes {params.processes} > {log:q} 2>&1"



# A post-hoc run (the tuned lens): the same seed's run of its base method, frozen, with an
# affine translator per layer fitted on the training split; written where a training run
# writes, so that every analysis reads it as one more method. A classifier's lens reads the
# base run's stored training-split states, a language model's streams the training blocks.
rule fit_lens:
    wildcard_constraints:
        method=POST_HOC_METHODS,
    input:
        base=lambda w: f"{RESULTS}/runs/{w.experiment}/{post_hoc_base(w)}/seed{w.seed}/model.safetensors",
        splits=lambda w: f"{data_dir(w)}/splits.safetensors",
        states=lambda w: [] if w.experiment in PLAN.token_experiments else [
            HIDDEN_FILES["train"].format(experiment=w.experiment, method=post_hoc_base(w),
                                         seed=w.seed)],
    output:
        model=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/model.safetensors",
        log=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/train_log.csv",
        provenance=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/provenance.json",
    params:
        spec=job_spec("fit_lens"),
        data=data_dir,
    log:
        f"{RESULTS}/logs/fit_lens/{{experiment}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fit_lens/{{experiment}}/{{method}}/seed{{seed}}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/fit_lens.py --spec {params.spec:q} --data {params.data:q}"
        " --base-model {input.base:q} --states {input.states:q} --model {output.model:q}"
        " --log {output.log:q} --provenance {output.provenance:q} --threads {threads}"
        " > {log:q} 2>&1"


# A run of a pretrained checkpoint as published (method `pretrained`): the weights
# model.pretrained names, written where a training run writes its own, so that every analysis
# reads it as one more method; its log holds the validation accuracy of the head it came with.
rule load_pretrained:
    wildcard_constraints:
        method=AS_LOADED_METHODS,
    input:
        splits=lambda w: f"{data_dir(w)}/splits.safetensors",
        info=lambda w: f"{data_dir(w)}/info.json",
    output:
        model=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/model.safetensors",
        log=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/train_log.csv",
        provenance=f"{RESULTS}/runs/{{experiment}}/{{method}}/seed{{seed}}/provenance.json",
    params:
        spec=job_spec("load_pretrained"),
        data=data_dir,
    log:
        f"{RESULTS}/logs/load_pretrained/{{experiment}}/{{method}}/seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/load_pretrained/{{experiment}}/{{method}}/seed{{seed}}.tsv"
    threads: 1
    conda:
        CONDA_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m layerwise.usage --beside {log:q} --"
        " python scripts/load_pretrained.py --spec {params.spec:q} --data {params.data:q}"
        " --model {output.model:q} --log {output.log:q} --provenance {output.provenance:q}"
        " --threads {threads} > {log:q} 2>&1"
