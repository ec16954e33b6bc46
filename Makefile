# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv themselves and are idempotent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0
IMAGE ?= tests/data/reference/astronaut.png
# Our own shipped weights when resources/models holds them, else the official TP-R-A3
# (downloaded once into the user's cache; offline, the command says what to fetch).
WEIGHTS ?= $(firstword $(wildcard resources/models/*.pth) tp-r-a3)

.PHONY: setup test demo bench clean system-deps

setup: $(STAMP)

system-deps:
	@bash packaging/install_system_deps.sh

# torch first (on this machine pip takes the local CPU wheel), then the project with dev extras.
$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "torch==$(TORCH_VERSION)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest

# Until the video pipeline lands, the demo predicts on a real photo and draws the
# skeleton with the attention (dependency area) of the left wrist.
demo: $(STAMP)
	@mkdir -p out
	$(PY) main.py predict "$(IMAGE)" --weights "$(WEIGHTS)" --flip \
		--json out/demo.json --draw out/demo.png --attention left_wrist
	@echo "demo outputs: out/demo.json out/demo.png"

bench: $(STAMP)
	$(PY) benchmarks/model_speed.py

clean:
	rm -rf $(VENV) out .pytest_cache
