"""One catalogue: every name resolves the same way in every subcommand and the GUI, and an
unknown name gets one message listing the real choices."""
from __future__ import annotations

import subprocess
import sys

import pytest

from core import catalogue
from core.errors import InputError
from core.models import zoo

from conftest import ROOT


def test_zoo_entries_are_the_zoo():
    listed = [e.name for e in catalogue.pose_models() if e.what.startswith("official")]
    assert listed == list(zoo.ZOO)


def test_names_are_spelled_one_way():
    assert catalogue.find("pose", "TP_R_A3").name == "tp-r-a3"
    assert catalogue.find("pose", " BlazePose ").name == "mediapipe"
    assert catalogue.find("pose", "movenet-thunder").name == "movenet"
    assert catalogue.find("detector", "YOLOX").name == "yolox-nano"
    assert catalogue.find("detector", "mediapipe").name == "blazepose"
    assert catalogue.find("pose", "no-such-model") is None


def test_unknown_names_list_the_real_choices():
    from core.detection import create_detector
    from core.pose.backends import create_pose_backend
    with pytest.raises(InputError) as e:
        create_pose_backend("tp-x-huge")
    msg = str(e.value)
    for name in ("auto", "mediapipe", "movenet", *zoo.ZOO, "FILE.pth"):
        assert name in msg
    assert "main.py models" in msg
    with pytest.raises(InputError, match="--detector takes one of auto, yolox-nano, blazepose"):
        create_detector("yolo-huge")


def test_a_configuration_without_weights_says_train_it():
    from core.pose.backends import create_pose_backend
    with pytest.raises(InputError, match="train --config tfpose-tiny"):
        create_pose_backend("tfpose-tiny")


def test_shipped_model_by_its_name(tmp_path, monkeypatch):
    shipped = catalogue.shipped_weights()
    if shipped is None:
        pytest.skip("no TransPose-M shipped in resources/models")
    monkeypatch.setenv(zoo.ENV_CACHE, str(tmp_path))          # nothing downloaded
    from core.pose.backends import create_pose_backend
    _, by_name = create_pose_backend(shipped.stem, progress=False)
    _, by_auto = create_pose_backend("auto", progress=False)
    assert by_name == by_auto and "shipped" in by_name


def test_mediapipe_names_do_not_import_torch():
    code = ("import sys; from core import catalogue; "
            "assert catalogue.find('pose', 'blazepose').family == 'blazepose'; "
            "assert catalogue.find('pose', 'movenet').family == 'movenet'; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
