# One-command set-up: `make demo` runs the hub with a local speaker, `make test` the suite.
# Both install what is missing first and are quick when nothing is.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint install system-deps clean lock

demo: install
	$(BIN)/legato-hub up

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/control_latency.py $(BENCH_ARGS)
	$(BIN)/python bench/audio_engine.py $(AUDIO_BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict bench/control_latency.py bench/latency bench/audio_engine.py bench/audio

install: system-deps $(STAMP)

system-deps:
	@scripts/install-system-deps.sh

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[hub,speaker,dev]'
	@touch $(STAMP)

# Re-pin every dependency to what is installed now (run after changing pyproject.toml).
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
