# One job per combination of the grid (per seed, with repeats): results/trials/<id>/ holds what
# the trial recorded, results/trials/<id>/seeds/<seed>/ what each further seed did.


rule train:
    input:
        SWEEP.code_files,
    # The trial also writes params.json and history.csv beside metrics.json; only metrics.json,
    # written last and atomically, is declared: it marks the trial finished, and every further
    # declared file costs Snakemake time per job on 10k+ grids.
    output:
        metrics="results/trials/{trial}{seed_path}/metrics.json" if REPEATED else "results/trials/{trial}/metrics.json",
    log:
        "logs/trials/{trial}{seed_path}.log" if REPEATED else "logs/trials/{trial}.log",
    params:
        # What the trial's result depends on besides its params (which its id already names):
        # a change here retrains every trial. The objective is not here: it only ranks.
        settings=run_settings,
    wildcard_constraints:
        trial="[0-9a-f]{12}",
    # "Model 5 of 16: act=relu, lr=0.01, units=128 (trial 307daa763fbd)" (see TrainMessages).
    message:
        "{TRAIN_MESSAGES:{wildcards.trial}{wildcards.seed_path}}" if REPEATED else "{TRAIN_MESSAGES:{wildcards.trial}}"
    threads: 1
    priority: TRAIN_PRIORITY  # with halving, the longest of a rung's jobs first
    resources:
        # The trial's worker sees only its own GPUs (see the README's GPUs section).
        gpu=trial_gpus,
        # On a cluster, minutes from the pace of the runs finished here (see running.smk).
        **TRIAL_RUNTIME,
    # A run block, not a script: in the main snakemake process (the default profile's
    # force-use-threads) it hands the trial to a warm worker process; see kerasgrid/running/workers.py.
    run:
        train(wildcards, params, output, threads, resources, log)
