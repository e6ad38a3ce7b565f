# The two commands a newcomer needs: `make run` and `make test`. Each bootstraps .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint browser proto bench clean

# Flags for `make run`, e.g. make run ARGS="--grpc-port 50061 --http-port 8061".
ARGS ?=
# Seconds between "still installing" lines while pip works quietly.
HEARTBEAT ?= 30

# llama-cpp-python compiles from source the first time (minutes on 2 cores, and pip prints
# nothing meanwhile); pip caches the wheel, so later installs on the same machine take seconds.
# Progress lines, a heartbeat and the elapsed time say what is happening instead of pip's noise.
$(STAMP): pyproject.toml requirements-nodeps.txt
	@echo "Creating $(VENV) with $(PYTHON)..."
	@$(PYTHON) -m venv $(VENV)
	@echo "Installing dependencies into $(VENV). The first time on a machine llama-cpp-python"
	@echo "compiles llama.cpp from source: about 4-7 minutes on 2 cores. Later installs reuse"
	@echo "pip's cached wheel and take seconds."
	@started=$$(date +%s); \
	( while sleep $(HEARTBEAT); do \
		echo "  still installing ($$(( $$(date +%s) - started )) s so far)..."; done ) & ticker=$$!; \
	CMAKE_ARGS="$${CMAKE_ARGS:--DGGML_NATIVE=OFF}" \
		$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]' \
	&& $(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt; \
	status=$$?; kill $$ticker 2>/dev/null; \
	if [ $$status -ne 0 ]; then echo "Installing dependencies failed (pip exit $$status)."; exit $$status; fi; \
	echo "Dependencies installed in $$(( $$(date +%s) - started )) s."
	@touch $(STAMP)

# Serves the embedded defaults: local intents + SmolLM2, Piper/eSpeak NG, SQLite under data/.
run: $(STAMP)
	$(BIN)/nexy-server serve $(ARGS)

test: $(STAMP) lint browser
	$(BIN)/python server/scripts/run_all_tests.py --level all

# The playground's browser test drives Debian's chromium and chromedriver. As root, install them
# when missing (a failed install fails the run); otherwise say that the test will be skipped.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing chromium and chromium-driver (Debian packages) for the browser test..."; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null \
		&& echo "Installed $$(/usr/bin/chromium --version 2>/dev/null)."; \
	else \
		echo "chromium/chromedriver are missing and this is not root: the browser test will skip"; \
		echo "(install them with: apt-get install chromium chromium-driver)"; \
	fi

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
