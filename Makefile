# The two commands of the quick start: `make demo` and `make test`.
# Both build .venv from nothing when it is missing, so a fresh clone needs only python3.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench bytecode clean

$(STAMP): pyproject.toml setup.cfg
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,plots,bench]'
	touch $(STAMP)

# Every daemon a run or a test starts imports fedd afresh. Where
# PYTHONDONTWRITEBYTECODE is set, as in many CI images, Python caches no compiled
# module and each start compiles them all again: about a third of its start-up.
# compileall writes the cache regardless, and only for files that changed.
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q fedd daemon peer crypto learner topology bench

demo: bytecode
	$(BIN)/fedd demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Most tests wait on daemons and sockets, so one worker per core runs the
# suite in about two thirds of the time. Each test file stays on one worker:
# its module fixtures (a Docker engine, a built image, a federation's data)
# are made once.
pytest: bytecode
	$(BIN)/pytest -n auto --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m bench.learner
	$(BIN)/python -m bench.secagg

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
