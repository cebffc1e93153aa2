# rota: the two commands are `make run` and `make test`; everything else is set-up they call.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install native pure run test lint typecheck unit bench bench-quick clean

# The virtualenv, then the hot modules compiled with mypyc when a C compiler is here
# (rota.native; pure Python otherwise, or with ROTA_PURE_PYTHON=1).
install: native

native: $(STAMP)
	$(BIN)/python tools/build_native.py

pure: $(STAMP)
	$(BIN)/python tools/build_native.py --clean

# The stamp depends on pyproject.toml, so a changed dependency list reinstalls.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "rota needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: install
	$(BIN)/rota example --config server_db.json

lint: install
	$(BIN)/ruff check src tests tools $(wildcard bench)
	$(BIN)/ruff format --check src tests tools $(wildcard bench)

typecheck: install
	$(BIN)/mypy --strict src

unit: install
	$(BIN)/pytest -q tests/unit

# The suite runs on what `make run` runs (compiled where a compiler exists), then, when
# that was compiled, once more on the pure-Python sources.
test: lint typecheck
	$(BIN)/pytest -q
	@if $(BIN)/python -c 'import sys, rota.native as n; sys.exit(not n.built())'; then \
		echo "and once more as pure Python:"; ROTA_PURE_PYTHON=1 $(BIN)/pytest -q; fi

bench: install
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.slow
	$(BIN)/python -m bench.observe

bench-quick: install
	$(BIN)/python -m bench.run --quick

clean:
	rm -rf $(VENV) build dist src/rota/_compiled src/*.egg-info .mypy_cache .ruff_cache .pytest_cache
