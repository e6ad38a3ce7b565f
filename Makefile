# The two commands a newcomer needs: `make run` and `make test`. Each bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint proto bench clean

# llama-cpp-python compiles from source the first time (a few minutes on 2 cores); pip caches the
# wheel, so later installs on the same machine take seconds.
$(STAMP): pyproject.toml requirements-nodeps.txt
	$(PYTHON) -m venv $(VENV)
	CMAKE_ARGS="$${CMAKE_ARGS:--DGGML_NATIVE=OFF}" $(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	touch $(STAMP)

# Serves the embedded defaults: local intents + SmolLM2, Piper/eSpeak NG, SQLite under data/.
run: $(STAMP)
	$(BIN)/nexy-server serve

test: $(STAMP) lint
	$(BIN)/python server/scripts/run_all_tests.py --level all

lint: $(STAMP)
	$(BIN)/ruff check server
	$(BIN)/ruff format --check server
	$(BIN)/mypy

proto: $(STAMP)
	cd server && ../$(BIN)/python -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. nexy/transport/grpc/streaming.proto

bench: $(STAMP)
	$(BIN)/python server/scripts/bench_turn.py --write docs/BENCHMARKS.md
	$(BIN)/python server/scripts/bench_embedded.py --write docs/BENCHMARKS.md

clean:
	rm -rf $(VENV)
