# Agentry: every target creates or reuses .venv by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  ?= dev
LAMBDAS  := $(wildcard lambdas/*/pyproject.toml)
SOURCES  := $(filter-out %.egg-info,$(wildcard lambdas/*/agentry_*)) lambdas/support/infrastructure.py platform/agentry_platform stacks/agentry_stacks policies/agentry_policies

.PHONY: venv test test-fast lint typecheck contracts pytest demo plan check up preview chaos bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml $(LAMBDAS) platform/pyproject.toml stacks/pyproject.toml policies/pyproject.toml policies/requirements.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check pip==25.3
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt \
		-r policies/requirements.txt \
		$(foreach dist,$(dir $(LAMBDAS)),-e ./$(dist)) -e ./platform -e ./policies -e ./stacks -e .
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy $(SOURCES)

contracts: venv
	$(BIN)/lint-imports

pytest: venv
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck contracts check pytest

# The unit layer and the pure tests: no moto, no sockets, in seconds (see tests/conftest.py).
test-fast: venv
	$(BIN)/pytest -m unit -q

demo: venv
	$(BIN)/agentry local run --goal "Book a flight from New York to San Francisco for tomorrow"

plan: venv
	$(BIN)/agentry plan $(STACK)

check: venv
	$(BIN)/agentry check dev
	$(BIN)/agentry check prod

# With the Pulumi CLI and AWS credentials: deploy a stack with the policy pack enforced.
up: venv
	pulumi up --stack $(STACK) --policy-pack policies --policy-pack-config policies/$(STACK).json

preview: venv
	pulumi preview --stack $(STACK) --policy-pack policies --policy-pack-config policies/$(STACK).json

chaos: venv
	AGENTRY_CHAOS_SCENARIOS=3000 $(BIN)/pytest -n 2 tests/chaos -q

bench: venv
	$(BIN)/agentry bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
