"""kerasgrid: one training job per combination of the config's grid, then a ranked leaderboard.

Run `snakemake --cores N`; a user's own sweep: `snakemake --cores N --configfile my.yaml`.
"""

# A config given on the command line is the whole sweep: the demo config.yaml is read only when
# none is given, so that its grid never merges into a user's.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"


if SWEEP.halving:

    include: "workflow/rules/halving.smk"


if SWEEP.confirm:

    include: "workflow/rules/confirm.smk"


include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"


# The description heading `snakemake --report results/report.html`.
report: "workflow/report/workflow.rst"


rule all:
    input:
        "results/leaderboard.tsv",
        "results/best_params.yaml",
        "results/best_model.keras",
        "results/leaderboard.html",
        rules.plots.output,
    default_target: True


onstart:
    run_started()


onsuccess:
    run_ended("results/leaderboard.tsv", "results/best_params.yaml", TRAINING_DATA)


onerror:
    run_ended()
