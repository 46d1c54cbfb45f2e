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
	$(BIN)/python -m pip install --quiet --constraint requirements.lock --editable '.[test]'
	touch $@

sweep: install
	$(BIN)/snakemake --cores all

# Both cores: most tests wait on a process (Snakemake, a worker's TensorFlow import, SLURM) as much
# as they compute. The SLURM tests share one cluster, so they run one after another on one worker.
test: install
	$(BIN)/python -m pytest --numprocesses 2 --dist loadgroup --durations 20
