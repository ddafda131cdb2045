# virtkit: `make demo` and `make test` each do all set-up on a fresh Debian 12 machine (as root) and are
# idempotent; see scripts/setup-host.
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: setup demo test lint type unit sanity integration bench clean lab-down

setup:
	@scripts/setup-host

demo: setup
	$(PY) -m virtkit.cli.main demo $(DEMO_ARGS)

test: setup lint type unit sanity integration

lint:
	$(VENV)/bin/ruff check src tests integration bench examples
	$(VENV)/bin/ruff format --check src tests integration bench examples
	$(VENV)/bin/lint-imports --no-cache

type:
	$(VENV)/bin/mypy --strict src

unit:
	$(VENV)/bin/pytest -q tests $(PYTEST_ARGS)

# ansible-test sanity on the collection (validate-modules, pylint, import, yamllint ...), in its own venvs.
sanity:
	scripts/ansible-sanity

integration:
	$(VENV)/bin/pytest -q integration -p no:cacheprovider $(PYTEST_ARGS)

bench: setup
	$(PY) bench/lifecycle.py

lab-down:
	-$(PY) -m virtkit.cli.main lab down

clean: lab-down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .ansible-test-home src/ansible_collections/virtkit/kvm/tests/output
