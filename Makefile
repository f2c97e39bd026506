# nanohub: every target sets itself up (a .venv with pinned dependencies).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help test test-quick demo bench fuzz soak gen check-gen clean test-renode

help:
	@echo "make demo   run the emulated hub through a treatment and a crisis"
	@echo "make test   run every test (host, protocol, simulator, firmware on the MicroPython VM)"
	@echo "make test-quick  the tests not marked slow (no emulated sessions, no 5-minute unread console)"
	@echo "make gen    regenerate the firmware codec, docs/protocol.md and the golden vectors"
	@echo "make bench  measure the protocol and the hub (writes docs/benchmarks.md)"
	@echo "make fuzz   long fuzzing runs (FUZZ_SECONDS per target, default 60), corpus kept in fuzz/corpus"
	@echo "make soak   presentation night on repeat through faulty links (SOAK_MINUTES, default 10)"

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 13), "nanohub needs Python 3.10 to 3.13, this is " + sys.version.split()[0]'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

test: $(STAMP)
	-sh scripts/ensure-qemu.sh
	-sh scripts/ensure-chromium.sh
	-sh scripts/ensure-ser2net.sh
	-sh scripts/ensure-mpwasm.sh
	$(BIN)/python -m pytest -q --durations=25

# The tests not marked slow (tests/conftest.py lists them): a few minutes less.
test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

demo: $(STAMP)
	$(BIN)/nanohub demo

gen: $(STAMP)
	$(BIN)/python -m nanohub.protocol.gen
	$(BIN)/python -m nanohub.protocol.vectors

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	-sh scripts/ensure-mpwasm.sh
	$(BIN)/python -m bench

# Robustness (issue 8): both print their figures; exit status 1 on any invariant violation.
FUZZ_SECONDS ?= 60
FUZZ_VM_SECONDS ?= 60
SOAK_MINUTES ?= 10

fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,fuzz]'
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS) --vm-seconds $(FUZZ_VM_SECONDS)

soak: $(STAMP)
	$(BIN)/python -m soak.run --minutes $(SOAK_MINUTES)

check-gen: $(STAMP)
	$(BIN)/python -m nanohub.protocol.gen --check
	$(BIN)/python -m nanohub.protocol.vectors --check

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis

# Renode board emulation (tests/renode/): runs only where renode-test is installed.
test-renode: $(STAMP)
	@if command -v renode-test >/dev/null 2>&1; then \
		sh tests/renode/run.sh; \
	else \
		echo "test-renode: NOT RUN: renode-test is not on PATH (Renode cannot be installed here;"; \
		echo "  see tests/renode/README.md). No Renode test passed or failed."; \
	fi
