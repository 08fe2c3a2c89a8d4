# seamless-daemon: set-up, demo, tests, benchmark and system install.
#   make demo                 build a tiny random checkpoint (or MODEL=<hub id|folder>), export it, translate
#   make test                 run the test suite (and the torch-free edge install check)
#   make bench                benchmark ONNX Runtime (fp32, int8) against PyTorch on the small preset
#   make bench-large          the same at the released model's size (random weights; ~25 GB disk, ~1 h)
#   make install              install daemon, units, config and system user (root, Debian-like)

VENV      ?= .venv
PY        := $(VENV)/bin/python
MODEL     ?=
PRESET    ?= tiny
PRECISION ?= fp32
TGT_LANG  ?=
DEMO_DIR  ?= demo
PYTEST_ARGS ?=

PREFIX      ?= /opt/seamless-daemon
CONFIG_DIR  ?= /etc/seamless-daemon
UNIT_DIR    ?= /etc/systemd/system
BIN_DIR     ?= /usr/local/bin
SERVICE_USER ?= seamless-daemon

.PHONY: setup demo test test-edge bench bench-large install uninstall lint clean

setup:
	scripts/setup-env.sh $(VENV)

demo: setup
	VENV=$(VENV) MODEL="$(MODEL)" PRESET=$(PRESET) PRECISION=$(PRECISION) TGT_LANG="$(TGT_LANG)" \
		scripts/demo.sh $(DEMO_DIR)

test: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest $(PYTEST_ARGS)
	scripts/check-edge-install.sh

bench: setup
	$(PY) bench/bench_pipeline.py --preset small --precisions fp32,int8 --out bench/results

bench-large: setup
	$(PY) bench/bench_pipeline.py --preset large --precisions fp32,int8 --repeats 3 --max-new-tokens 20 --out bench/results-large

lint: setup
	$(VENV)/bin/ruff check daemon export tests bench
	$(VENV)/bin/lint-imports

install:
	scripts/install-system.sh "$(PREFIX)" "$(CONFIG_DIR)" "$(UNIT_DIR)" "$(BIN_DIR)" "$(SERVICE_USER)"

uninstall:
	scripts/install-system.sh --uninstall "$(PREFIX)" "$(CONFIG_DIR)" "$(UNIT_DIR)" "$(BIN_DIR)" "$(SERVICE_USER)"

clean:
	rm -rf $(DEMO_DIR) bench/results .pytest_cache
