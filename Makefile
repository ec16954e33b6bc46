# Two entry points for a fresh machine: `make demo` and `make test`.
# Both create .venv themselves and are idempotent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0
IMAGE ?= ../shared/reference/astronaut.png

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

# Until the video pipeline lands, the demo predicts on a real photo. It uses the
# shipped weights when resources/models holds them; otherwise it says so and stops.
demo: $(STAMP)
	$(PY) main.py demo --image "$(IMAGE)" --out out

bench: $(STAMP)
	$(PY) benchmarks/model_speed.py

clean:
	rm -rf $(VENV) out .pytest_cache
