# One command runs the main job (`make demo`), one runs the tests (`make test`).
# Both build .venv on first use: torch is installed first and pinned, because an unpinned
# torch pulls a multi-GB CUDA build. Override on GPU hosts, e.g. TORCH_SPEC="torch==2.13.0".
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && echo $$p && break; done)
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint docs venv clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: Python 3.11+ not found" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[worker,test,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m lstmq.producer.demo

test: lint docs
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

# The quick loop while editing: no test that starts lstmq processes, nothing slow. CI runs `make test`.
test-fast: lint
	$(BIN)/python -m pytest -ra -m "not processes and not slow" $(PYTEST_ARGS)

# ruff: pyflakes, bugbear, isort, pyupgrade and the formatter (configured in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The docs site: a broken link or anchor fails the build (--strict; not with --quiet, which hides the
# warnings strict counts); the CLI and HTTP API references are generated. Output in site/.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/lstmq bench end-to-end

clean:
	rm -rf $(VENV) .lstmq site
