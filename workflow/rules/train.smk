# One job per combination of the grid: results/trials/<id>/ holds what the trial recorded.


rule train:
    input:
        SWEEP.code_files,
    output:
        metrics="results/trials/{trial}/metrics.json",
        params="results/trials/{trial}/params.json",
        history="results/trials/{trial}/history.csv",
    log:
        "logs/trials/{trial}.log",
    params:
        trial=trial_params,
        settings=trial_settings,
        objective=objective,
    wildcard_constraints:
        trial="[0-9a-f]{12}",
    threads: 1
    # A run block, not a script: in the main snakemake process (the default profile's
    # force-use-threads) it hands the trial to a warm worker process; see kerasgrid/workers.py.
    run:
        train(params, output, threads, log)
