# One entry point for every routine: the README, .ci/run and pre-commit call these.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: venv test lint format demo bench clean browser plots docs

$(BIN)/relive: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

venv: $(BIN)/relive

lint: venv
	$(BIN)/ruff check src tests bench examples docs
	$(BIN)/ruff format --check src tests bench examples docs
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
	$(BIN)/ruff format src tests bench examples docs
	$(BIN)/ruff check --fix src tests bench examples docs

# The demo needs relive alone (and watchdog): its own light environment, not the dev extras.
DEMO_VENV ?= .venv-demo

$(DEMO_VENV)/bin/relive: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install -q -e .
	@touch $@

demo: $(DEMO_VENV)/bin/relive
	$(DEMO_VENV)/bin/python examples/demo/run_demo.py

bench: venv
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python bench/run_all.py

# The documentation site: mkdocs.yml, docs/, the API reference from the docstrings and the
# benchmark plots drawn from bench/results/*.json. --strict: a broken link or reference fails.
$(VENV)/.docs-extra: $(BIN)/relive pyproject.toml
	$(BIN)/python -m pip install -q -e '.[docs]'
	@touch $@

plots: $(VENV)/.docs-extra
	$(BIN)/python bench/plots.py --out docs/generated/bench
	$(BIN)/python docs/pipeline_diagram.py docs/generated/pipeline.svg

docs: plots
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) $(DEMO_VENV) build dist site docs/generated .mypy_cache .ruff_cache
