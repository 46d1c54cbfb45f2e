# Confirming the finalists (kerasgrid.results.confirm): once every candidate is ranked on the fraction,
# the `finalists` checkpoint names the best confirm.top, and each trains again on all the data as
# a `confirm` job, in results/trials/<id>/confirm/. A confirmation depends on its trial alone, not
# on the ranking, so a finalist that stays one is never confirmed twice.

from kerasgrid.records import read_json
from kerasgrid.sweep import runs

# Seconds of work on small files: on a cluster it runs where snakemake runs, not as a job.
localrules: finalists


def confirmed_metrics(wildcards):
    """Each finalist's confirmation records, one per seed: the leaderboard ranks the finalists by them."""
    chosen = read_json(checkpoints.finalists.get().output.finalists)["finalists"]
    return [str(runs.run_dir(f"results/trials/{trial}", seed, SWEEP.seed, confirm=True) / "metrics.json")
            for trial in sorted(chosen) for seed in SWEEP.seeds]


def confirm_settings(wildcards):
    return SWEEP.confirm_settings(run_seed(wildcards))


checkpoint finalists:
    input:
        metrics=trial_metrics,
    output:
        finalists="results/finalists.json",
    log:
        "logs/finalists.log",
    params:
        objective=ranking_objective,
        top=SWEEP.confirm.top,
        source=config_file,
    script:
        "../../scripts/finalists.py"


rule confirm:
    input:
        SWEEP.code_files,
    output:
        metrics="results/trials/{trial}/confirm{seed_path}/metrics.json" if REPEATED else "results/trials/{trial}/confirm/metrics.json",
    log:
        "logs/confirm/{trial}{seed_path}.log" if REPEATED else "logs/confirm/{trial}.log",
    params:
        # As the train rule's, with data.fraction 1 and confirm.budget.
        settings=confirm_settings,
    wildcard_constraints:
        trial="[0-9a-f]{12}",
    message:
        (
            "{TRAIN_MESSAGES:{wildcards.trial}{wildcards.seed_path}@all}"
            if REPEATED
            else "{TRAIN_MESSAGES:{wildcards.trial}@all}"
        )
    threads: 1
    resources:
        gpu=trial_gpus,  # as train's
    run:
        train(wildcards, params, output, threads, resources, log, confirm=True)
