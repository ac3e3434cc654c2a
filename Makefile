# cleanroom: two commands on a fresh machine with only Python 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help demo test test-slow bench bench-quick install clean

help:  ## show this help
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the pinned dependencies

demo: $(STAMP)  ## run the whole story on an embedded store in .demo/
	$(BIN)/cleanroom demo --workdir .demo

test: $(STAMP)  ## run the test suite (fast tests; a few minutes)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)  ## run the long statistical, load and 1M-row tests
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)  ## performance record: privacy tax, concurrency, peers at 100k+1M (QUICK=1: 100k only)
	$(BIN)/python bench/record.py $(if $(QUICK),--quick) $(BENCH_ARGS)

bench-quick: $(STAMP)  ## the quick performance record (100k, installed peers only; < 3 min once set up)
	$(BIN)/python bench/record.py --quick $(BENCH_ARGS)

clean:  ## remove the virtual environment and demo output
	rm -rf $(VENV) .demo .cleanroom
