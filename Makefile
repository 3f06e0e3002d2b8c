# Two commands for a newcomer: `make run` and `make test`. Everything else is a convenience.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
TOOLS  := $(VENV)/.locked
PROTOS := $(shell find proto -name '*.proto')
PORT   ?= 50051
HTTP_PORT     ?= 3001
DYNAMODB_PORT ?= 8000

.PHONY: run run-dynamodb test proto lint lock bench bench-engine clean check-proto image image-test

LOCK   := requirements/dev.lock
RUNTIME_LOCK := requirements/runtime.lock
IMAGE  ?= vexil:latest
BASE_IMAGE ?= python:3.11-slim

# Installs exactly what the lock names (versions and hashes, pip and setuptools included), then the
# project itself without build isolation, so nothing depends on what an index serves today.
# `pip check` fails when pyproject.toml asks for something the lock does not hold: run `make lock`.
$(TOOLS): $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(LOCK)
	touch $(TOOLS)

$(STAMP): $(TOOLS) pyproject.toml
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $(STAMP)

## Re-resolve the lock from pyproject.toml (the only way the toolchain moves). The runtime lock (what
## the container image installs) is the server's dependencies at the versions the dev lock tested.
## It needs only the locked tools, not the project: a dependency just added to pyproject.toml is not
## in the lock yet, so the project would not install.
lock: $(TOOLS)
	$(BIN)/uv pip compile pyproject.toml requirements/build.in --extra dev --extra openfeature \
	  --generate-hashes --universal --python-version 3.11 --no-header --quiet -o $(LOCK)
	$(BIN)/uv pip compile pyproject.toml requirements/build.in -c $(LOCK) \
	  --generate-hashes --universal --python-version 3.11 --no-header --quiet -o $(RUNTIME_LOCK)

## Serve the demo flags on localhost:$(PORT) (gRPC) with the embedded store: environment `local`
## holds them, `staging` starts empty (a target for `vexil flags import`).
run: $(STAMP)
	$(BIN)/vexil serve --port $(PORT) --env local --environments local,staging --store memory \
	  --flags server/demo-flags.yaml

## The same from DynamoDB: the emulator (moto_server, from the venv) on $(DYNAMODB_PORT), the table,
## the demo flags imported; Ctrl-C stops the server and the emulator.
run-dynamodb: $(STAMP)
	$(PY) -m scripts.run_dynamodb --port $(PORT) --http-port $(HTTP_PORT) --dynamodb-port $(DYNAMODB_PORT)

## Run the whole test suite (starts and stops the DynamoDB emulator itself).
test: $(STAMP)
	$(PY) -m pytest -q

## Regenerate the protobuf and gRPC code from proto/ (never edit the generated files).
proto: $(STAMP)
	$(PY) proto/generate.py

## ruff, and mypy over the whole `vexil` namespace (tools/typecheck.py); the suite runs both too.
lint: $(STAMP)
	$(BIN)/ruff check server clients tests bench scripts tools
	$(BIN)/ruff format --check server clients tests bench scripts tools
	$(PY) tools/typecheck.py

## Engine speed against the flagd reference (exit code non-zero if the two ever disagree).
## Benchmarks (about 12 minutes; QUICK=1: about 3): table on stdout, JSON under bench-results/.
## h2load (Debian's nghttp2-client) generates the load; if it cannot be installed, a Python load
## generator is used instead and the table says so.
bench: $(STAMP)
	@command -v h2load >/dev/null 2>&1 || { echo "installing h2load (nghttp2-client)"; \
	  { apt-get install -y -qq nghttp2-client >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq nghttp2-client >/dev/null 2>&1; }; } || \
	  echo "h2load unavailable: using the Python load generator (see the table)"; }
	$(PY) -m bench.run $(if $(QUICK),--quick,)

bench-engine: $(STAMP)
	$(PY) bench/engine.py $(if $(QUICK),--quick,--json bench-results/engine.json)

## The server's container image (Containerfile; podman or docker), from $(RUNTIME_LOCK).
image: $(STAMP)
	$(PY) scripts/image.py build --tag $(IMAGE) --base $(BASE_IMAGE)

## Build the image on a local Debian base (debootstrap, no registry needed) and check it runs as a
## cluster runs it: health, Evaluate, /readyz, non-root, read-only root, SIGTERM -> exit 0.
image-test: $(STAMP)
	$(PY) scripts/image.py test --local-base

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
