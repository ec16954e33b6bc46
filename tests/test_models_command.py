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


def test_the_parser_and_a_mediapipe_run_do_without_torch(tmp_path):
    """torch (about 1 s and 150 MB) only where a torch model runs: every command's parser
    (main.py --help, a mistyped file name) and `annotate --model mediapipe` with the
    default YOLOX detector imported it through the train options, the attention maps and
    core.models' package (the detector's download cache lives there)."""
    code = ("import sys, main; main.build_parser(); print('torch' in sys.modules); "
            f"rc = main.main(['annotate', {str(ROOT / 'tests/data/clip_person.mp4')!r}, "
            f"'--out', {str(tmp_path)!r}, '--model', 'mediapipe']); "
            "print('torch' in sys.modules); sys.exit(rc)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:1] + out.stdout.split()[-1:] == ["False", "False"], out.stdout
    assert (tmp_path / "clip_person.json").is_file()


def test_the_train_help_names_the_real_default_configuration():
    from core.commands.train import HELP_DEFAULT_CONFIG
    from core.training.configs import DEFAULT_TRAIN_CONFIG
    assert HELP_DEFAULT_CONFIG == DEFAULT_TRAIN_CONFIG
