"""Shared fixtures: reference data from tests/data, or ../shared when a test needs more."""
from __future__ import annotations

import gc
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
IN_TREE_REFERENCE = DATA / "reference"
SHARED = Path(os.environ.get("TRANSPOSE_SHARED", ROOT.parent / "shared"))
SHARED_REFERENCE = SHARED / "reference"
VARIANTS = ("tp-r-a3", "tp-r-a4", "tp-h-s", "tp-h-a4", "tp-h-a6")

torch.set_num_threads(min(2, os.cpu_count() or 1))


def reference_file(name: str) -> Path:
    """A reference fixture: the in-tree copy when there is one, else ../shared's; else skip."""
    for base in (IN_TREE_REFERENCE, SHARED_REFERENCE):
        if (base / name).exists():
            return base / name
    pytest.skip(f"{name} is neither in tests/data/reference nor in {SHARED_REFERENCE} "
                f"(../shared is absent)")


def reference_dir() -> Path:
    return reference_file("make_weights.py").parent


def _make_weights_module():
    path = reference_file("make_weights.py")
    spec = importlib.util.spec_from_file_location("make_weights", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def reference_state_dict(variant: str) -> dict[str, torch.Tensor]:
    """The deterministic random weights the official fixtures were made with."""
    return _make_weights_module().build_state_dict(str(reference_file(f"{variant}.keys.json")))


def reference_model(variant: str):
    from core.models import build_model
    model = build_model(variant)
    model.load_state_dict(reference_state_dict(variant), strict=True)
    return model.eval()


@pytest.fixture(scope="session")
def reference_input() -> dict[str, np.ndarray]:
    with np.load(reference_file("input.npz")) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def tolerances() -> dict:
    import json
    return json.loads(reference_file("tolerances.json").read_text())


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    return reference_file("astronaut.png")


@pytest.fixture(scope="session")
def random_tp_r_a3_checkpoint(tmp_path_factory) -> Path:
    """A bare official-layout state_dict file of TP-R-A3 (deterministic weights)."""
    path = tmp_path_factory.mktemp("ckpt") / "tp_r_a3_random.pth"
    torch.save(reference_state_dict("tp-r-a3"), path)
    return path


@pytest.fixture
def one_thread():
    """One torch thread: tiny models only lose from OpenMP's barriers on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def settings(tmp_path):
    """GUI settings in a file of their own (never the user's)."""
    from PySide6.QtCore import QSettings
    return QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    """The main window on MediaPipe, shown, with its engine loaded."""
    from app.main_window import MainWindow
    w = MainWindow(settings, engine_overrides={"model": "mediapipe"}, probe_cameras=False)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: w.controller.engine is not None, timeout=30_000)
    yield w
    w.close()


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After a Qt test (its widgets closed): collect its garbage here, on the GUI thread.
    Left for later, the cycles of its windows' Python wrappers were collected by whichever
    thread allocated next, a worker of the next test's window among them; finalising Qt
    objects there hung the suite (a worker in gc.collect, the event loop waiting)."""
    if "qtbot" in getattr(item, "fixturenames", ()):
        gc.collect()
