# Config validation and the helpers the rules call. The logic lives in the kerasgrid package.

import json

from snakemake.utils import validate

from kerasgrid.config import check, config_source, load_schema, sweep_from_config
from kerasgrid.grid import canonical
from kerasgrid.results import winner_lines

SCHEMA_FILE = "../schemas/config.schema.yaml"
SCHEMA = load_schema(workflow.source_path(SCHEMA_FILE))
CONFIG_SOURCE = config_source(workflow.overwrite_configfiles)

check(config, SCHEMA, CONFIG_SOURCE)  # one-paragraph errors naming file, key and fix
validate(config, SCHEMA_FILE)  # fills in the schema's defaults
SWEEP = sweep_from_config(config, CONFIG_SOURCE)


def trial_params(wildcards):
    return canonical(SWEEP.trials[wildcards.trial])


def trial_settings(wildcards):
    return canonical(SWEEP.settings())


def objective(wildcards, input):
    # A function of `input`, so that Snakemake does not count it among the params that trigger a
    # rerun: the objective ranks trials but does not change what a trial computes.
    return {**SWEEP.objective, "source": CONFIG_SOURCE}


def trial_metrics(wildcards):
    return expand("results/trials/{trial}/metrics.json", trial=SWEEP.trials)


def print_winner(best_params_path):
    for line in winner_lines(best_params_path):
        print(line)
