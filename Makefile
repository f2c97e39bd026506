# nanohub: every target sets itself up (a .venv with pinned dependencies).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help test demo bench fuzz soak gen check-gen clean test-renode

help:
	@echo "make demo   run the emulated hub through a treatment and a crisis"
	@echo "make test   run every test (host, protocol, simulator, firmware on the MicroPython VM)"
	@echo "make gen    regenerate the firmware codec, docs/protocol.md and the golden vectors"
	@echo "make bench  measure the protocol and the hub (writes docs/benchmarks.md)"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 13), "nanohub needs Python 3.10 to 3.13, this is " + sys.version.split()[0]'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/nanohub demo

gen: $(STAMP)
	$(BIN)/python -m nanohub.protocol.gen
	$(BIN)/python -m nanohub.protocol.vectors

check-gen: $(STAMP)
	$(BIN)/python -m nanohub.protocol.gen --check
	$(BIN)/python -m nanohub.protocol.vectors --check

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
