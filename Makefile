# The two commands of the README: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv

.PHONY: run test venv
run: venv
	bash scripts/run.sh

test: venv
	bash scripts/test.sh

venv: $(VENV)/.installed

# Reinstalled whenever requirements.txt changes.
$(VENV)/.installed: requirements.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@
