# `make sweep`: install everything and run the default sweep. `make test`: install and run all tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install sweep test

install: $(VENV)/.installed

# requirements.lock pins every package, transitive ones included, to what the tests ran against.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint requirements.lock --editable '.[test,tensorflow,jax]'
	touch $@

sweep: install
	$(BIN)/snakemake --cores all

# Both cores: most tests wait on a process (Snakemake, a worker's TensorFlow import, SLURM) as much
# as they compute. Each test file runs on one worker, so the SLURM tests share their cluster one
# after another. (Not `--dist loadgroup`: pytest-xdist 3.8 cannot group tests under pytest 9, whose
# node ids it no longer rewrites, and it spreads a group over both workers without a word.)
test: install
	$(BIN)/python -m pytest --numprocesses 2 --dist loadfile --durations 20
