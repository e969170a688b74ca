# One entry point for every routine: the README, .ci/run and pre-commit call these.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: venv test lint format demo bench clean browser

$(BIN)/relive: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/relive

lint: venv
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

test: lint browser
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider $(PYTEST_ARGS)

# The live-reload browser test drives headless Chromium (Debian's package). Installed here
# where we can (root with apt, as in CI); elsewhere that one test skips and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1 \
		|| { echo "installing chromium for the browser test"; \
		     (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
		     || echo "could not install chromium: the browser test will skip"; }

format: venv
	$(BIN)/ruff format src tests bench examples
	$(BIN)/ruff check --fix src tests bench examples

demo: venv
	$(BIN)/python examples/demo/run_demo.py

bench: venv
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache
