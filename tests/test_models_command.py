"""`main.py models` (what is known and what works offline) and `main.py --version`."""
from __future__ import annotations

import json
import subprocess
import sys

import main
from core import catalogue as common
from core.models import zoo

from conftest import ROOT


def test_version_is_answered_without_importing_torch():
    out = subprocess.run([sys.executable, "-c",
                          "import sys, main; rc = main.main(['--version']); "
                          "print('torch' in sys.modules); sys.exit(rc)"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    line, torch_loaded = out.stdout.splitlines()
    assert line == f"transpose-studio {main.version()}"
    assert torch_loaded == "False"
    assert main.version().count(".") >= 2


def test_models_table_lists_pose_models_and_detectors(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(zoo.ENV_CACHE, str(tmp_path))          # nothing downloaded
    assert main.main(["models"]) == 0
    out = capsys.readouterr().out
    assert "Pose models (--model):" in out and "Person detectors (--detector):" in out
    for name in ("auto", "mediapipe", "movenet", *zoo.ZOO, "yolox-nano", "blazepose", "hog"):
        assert any(line.split()[:1] == [name] for line in out.splitlines()), name
    assert "needs a download" in out
    for f in common.SHIPPED_MODELS.glob("*.pth"):
        assert any(line.split()[:1] == [f.stem] for line in out.splitlines()), f.stem


def test_models_json_says_what_is_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(zoo.ENV_CACHE, str(tmp_path))
    assert main.main(["models", "--json"]) == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(capsys.readouterr().out)}
    assert rows[("pose", "tp-r-a3")]["offline"] == "needs a download"
    assert rows[("pose", "tp-r-a3")]["licence"].startswith("MIT")
    assert rows[("detector", "hog")]["offline"] == "built in"
    yolox = rows[("detector", "yolox-nano")]
    assert yolox["licence"] == "Apache-2.0"
    if (common.SHIPPED_MODELS / "yolox_nano_416x416.onnx").is_file():
        assert yolox["offline"] == "shipped"
        assert rows[("detector", "auto")]["offline"] == "-> yolox-nano (shipped)"
    shipped = sorted(common.SHIPPED_MODELS.glob("*.pth"))
    auto = rows[("pose", "auto")]["offline"]
    assert auto == (f"-> {shipped[0].stem} (shipped)" if shipped else
                    "-> mediapipe (no shipped TransPose weights)")
