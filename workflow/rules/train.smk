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
    script:
        "../../scripts/train.py"
