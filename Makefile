# `make sweep`: install everything and run the default sweep. `make test`: install and run all tests.
# `make oldest`: the default sweep on the oldest versions pyproject.toml allows, in an environment of its own.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

OLDEST := .venv-oldest

.PHONY: install sweep test oldest

install: $(VENV)/.installed

# requirements.lock pins every package, transitive ones included, to what the tests ran against.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --constraint requirements.lock --editable '.[test,tensorflow,jax,torch]'
	touch $@

sweep: install
	$(BIN)/snakemake --cores all

# Both cores: most tests wait on a process (Snakemake, a worker's TensorFlow import, SLURM) as much
# as they compute. Each test file runs on one worker, so the SLURM tests share their cluster one
# after another. (Not `--dist loadgroup`: pytest-xdist 3.8 cannot group tests under pytest 9, whose
# node ids it no longer rewrites, and it spreads a group over both workers without a word.)
test: install
	$(BIN)/python -m pytest --numprocesses 2 --dist loadfile --durations 20

# The lower end of every range pyproject.toml declares (tests/declared.py), TensorFlow's included, installed
# afresh with kerasgrid built as a wheel; tests/oldest_sweep.py runs the default sweep there and checks every
# trial. Not part of `make test`: installing TensorFlow 2.16 takes minutes. (tests/test_install.py checks in the
# suite that these versions resolve together.)
oldest:
	rm -rf $(OLDEST)
	$(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install --quiet --upgrade pip packaging
	$(OLDEST)/bin/python tests/declared.py lower tensorflow > $(OLDEST)/constraints.txt
	$(OLDEST)/bin/python -m pip install --quiet --constraint $(OLDEST)/constraints.txt '.[tensorflow]'
	$(OLDEST)/bin/python tests/oldest_sweep.py
