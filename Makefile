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

.PHONY: setup test demo demo-image bench clean system-deps package package-test

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

# The demo annotates a real video with the embedded default model (our shipped TransPose
# when resources/models holds it, else MediaPipe BlazePose; the choice is printed) and writes
# CSV, JSON and an overlay video to ./out. The default clip is Sports2D's demo.mp4 (BSD-3),
# extracted from the sports2d wheel on PyPI; or give your own: make demo VIDEO=path.
DEMO_CACHE ?= $(HOME)/.cache/transpose-studio/demo
VIDEO ?= $(DEMO_CACHE)/sports2d_demo.mp4
MODEL ?= auto

demo: $(STAMP)
	@if [ "$(VIDEO)" = "$(DEMO_CACHE)/sports2d_demo.mp4" ]; then $(PY) packaging/fetch_demo_video.py "$(VIDEO)"; fi
	@mkdir -p out
	$(PY) main.py annotate "$(VIDEO)" --out out --model "$(MODEL)" --overlay --force
	@echo "demo outputs are in $(CURDIR)/out"

# Single-image prediction with attention (needs TransPose weights: WEIGHTS=file.pth or a zoo name).
demo-image: $(STAMP)
	@mkdir -p out
	$(PY) main.py predict "$(IMAGE)" --weights "$(WEIGHTS)" --flip \
		--json out/demo.json --draw out/demo.png --attention left_wrist

bench: $(STAMP)
	$(PY) benchmarks/model_speed.py

# The desktop build: dist/TransPoseStudio/ (one folder, PyInstaller; README "Desktop build").
# PyInstaller takes 3-6 minutes on a 2-core machine; `make package-test` runs the frozen app
# headless beside the source checkout (packaging/smoke_test.sh, about 2 minutes).
PACKAGE_STAMP := $(VENV)/.package-installed

$(PACKAGE_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e ".[package]"
	@touch $@

package: $(PACKAGE_STAMP)
	$(VENV)/bin/pyinstaller --noconfirm --log-level WARN --distpath dist --workpath build \
		packaging/TransPoseStudio.spec
	@du -sh dist/TransPoseStudio

package-test:
	bash packaging/smoke_test.sh

clean:
	rm -rf $(VENV) out .pytest_cache build dist
