# Agentry: every target creates or reuses .venv by itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
STACK  ?= dev
STACKS := $(sort $(patsubst Pulumi.%.yaml,%,$(wildcard Pulumi.*.yaml)))
LAMBDAS  := $(wildcard lambdas/*/pyproject.toml)
SOURCES  := $(filter-out %.egg-info,$(wildcard lambdas/*/agentry_*)) lambdas/support/infrastructure.py platform/agentry_platform stacks/agentry_stacks policies/agentry_policies

.PHONY: venv test test-fast lint typecheck contracts pytest demo plan check lock up preview chaos bench clean

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
	$(BIN)/actionlint -color=false .github/workflows/*.yml

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

# Every stack found (Pulumi.<stack>.yaml): the policy pack's rules with its pack config, then the
# limits check. A stack without policies/<stack>.json fails, saying what to add.
check: venv
	@test -n "$(STACKS)" || { echo "make check: no Pulumi.<stack>.yaml found" >&2; exit 2; }
	@set -e; for stack in $(STACKS); do \
		echo "$(BIN)/agentry check $$stack"; $(BIN)/agentry check $$stack; \
		echo "$(BIN)/agentry limits $$stack"; $(BIN)/agentry limits $$stack; \
	done

# The bundle's hashed lock (lambdas/bundle.lock): run after changing a pin of lambdas/ or
# constraints.txt. Needs the package index; the lock itself holds names, versions and hashes only.
lock: venv
	$(BIN)/agentry lock

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
