# `make repro`: set up .venv and run the whole DVC pipeline.  `make test`: set up .venv and run the tests.
# `make lock`: re-resolve every dependency to the newest release pyproject.toml allows, into requirements.lock.
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock

.PHONY: install repro test lock

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro
	@echo; PATH="$(CURDIR)/$(BIN):$$PATH" digits results
	@echo; echo "The report, with its figures: reports/report.md. Working alone needs no 'dvc push' (README: Team)."

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" python -m pytest

lock:
	rm -rf .lock-venv
	python3 -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	{ sed -n '1,2p' $(LOCK); .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(LOCK).tmp
	mv $(LOCK).tmp $(LOCK)
	rm -rf .lock-venv
	@echo "requirements.lock rewritten: review 'git diff requirements.lock', then run 'make test'"
