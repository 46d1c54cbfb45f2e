# MLflow tracking (the config's `mlflow`; kerasgrid/results/tracking.py). Each trial is logged by
# the process that trained it, once its files are written; this last step logs whatever was not
# (trials trained before the key was set, or while the tracker was down), then the sweep's parent
# run with the leaderboard (and with several objectives the Pareto front), best_params.yaml, the
# hyperparameters' importance, the plots and the winner's model.

# Requests to the tracker from where snakemake runs: on a cluster, the compute nodes may not reach it.
localrules: mlflow_runs


rule mlflow_runs:
    input:
        leaderboard="results/leaderboard.tsv",
        best="results/best_params.yaml",
        best_model="results/best_model.yaml",
        page="results/leaderboard.html",
        plots=rules.plots.output,
        importance=rules.importance.output,
        search_plots=search_plots,
        front=front_files,
    output:
        record=MLFLOW_RECORD,
    log:
        "logs/mlflow_runs.log",
    # A tracker that is down does not fail this step (nothing is lost; results/mlflow.json and the
    # run's last lines say what was not logged, and `kerasgrid mlflow` logs it later); anything
    # else would only fail again.
    retries: 0
    params:
        # Another tracker or experiment: the sweep is logged there too; the trials retrain nothing.
        target=mlflow_target,
        source=config_file,
    script:
        "../../scripts/mlflow_runs.py"
