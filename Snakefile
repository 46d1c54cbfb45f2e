"""kerasgrid: one training job per combination of the config's grid, then a ranked leaderboard.

Run `snakemake --cores N`; a user's own sweep: `snakemake --cores N --configfile my.yaml`, from
any folder: `snakemake -s $(kerasgrid workflow) --cores N --configfile my.yaml`.
"""

import os

from kerasgrid.config import missing_config, read_config
from kerasgrid.errors import exit_with_paragraph


# A config given on the command line is the whole sweep: the demo config.yaml is read only when
# none is given, so that its grid never merges into a user's. Run from another folder (your own
# project, `snakemake -s <this file>`), config.yaml means that folder's.
if not workflow.overwrite_configfiles:
    with exit_with_paragraph():  # the paragraph alone, not after Snakemake's location and frames
        if not os.path.exists("config.yaml"):
            raise missing_config(os.getcwd(), workflow.main_snakefile)
        read_config("config.yaml")  # a YAML syntax error with its line: Snakemake's own message names neither

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/running.smk"
include: "workflow/rules/train.smk"


if SWEEP.halving:

    include: "workflow/rules/halving.smk"


if SWEEP.adaptive:

    include: "workflow/rules/adaptive.smk"


if SWEEP.confirm:

    include: "workflow/rules/confirm.smk"


include: "workflow/rules/aggregate.smk"


if SWEEP.several_objectives:

    include: "workflow/rules/pareto.smk"


include: "workflow/rules/drawing.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/importance.smk"


if SWEEP.mlflow:

    include: "workflow/rules/mlflow.smk"


# The description heading `snakemake --report results/report.html`.
report: "workflow/report/workflow.rst"


rule all:
    input:
        "results/leaderboard.tsv",
        "results/best_params.yaml",
        "results/best_model.yaml",  # and best_model.keras (or .weights.h5): see rule best_model
        "results/leaderboard.html",
        rules.plots.output,
        rules.importance.output,
        search_plots,
        front_files,
        mlflow_record,  # with `mlflow`: the sweep's runs logged to MLflow
    default_target: True


onstart:
    run_started()


onsuccess:
    run_ended("results/leaderboard.tsv", "results/best_params.yaml", "results/best_model.yaml", TRAINING_DATA,
              MLFLOW_RECORD)


onerror:
    run_ended()
