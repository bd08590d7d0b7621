# `make repro`: set up .venv and run the whole DVC pipeline.  `make test`: set up .venv and run the tests.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install repro test

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $(STAMP)

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro
	@echo; PATH="$(CURDIR)/$(BIN):$$PATH" digits results
	@echo; echo "The report, with its figures: reports/report.md. Working alone needs no 'dvc push' (README: Team)."

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" python -m pytest
