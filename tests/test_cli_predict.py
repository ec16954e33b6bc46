"""`main.py predict`: the table, the JSON schema, drawings, and one-line errors."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

import main
from core.keypoints import COCO_KEYPOINT_NAMES

from conftest import ROOT, reference_file


def test_predict_writes_json_table_and_drawing(tmp_path, capsys, astronaut_path,
                                               random_tp_r_a3_checkpoint):
    out_json, out_png = tmp_path / "pose.json", tmp_path / "pose.png"
    rc = main.main(["predict", str(astronaut_path), "--weights", str(random_tp_r_a3_checkpoint),
                    "--box", "18", "9.5", "350", "502", "--box", "100", "50", "200", "300",
                    "--flip", "--json", str(out_json), "--draw", str(out_png),
                    "--attention", "left_knee"])
    assert rc == 0
    captured = capsys.readouterr()
    assert "person 0" in captured.out and "person 1" in captured.out
    assert "right_ankle" in captured.out
    assert "model: TransPose tp-r-a3" in captured.err and "model:" not in captured.out  # logs: stderr
    doc = json.loads(out_json.read_text())
    assert doc["image"] == str(astronaut_path)
    assert doc["model"] == {"variant": "tp-r-a3", "weights": str(random_tp_r_a3_checkpoint)}
    assert [p["box"] for p in doc["people"]] == [[18, 9.5, 350, 502], [100, 50, 200, 300]]
    kps = np.array(doc["people"][0]["keypoints"])
    assert kps.shape == (len(COCO_KEYPOINT_NAMES), 3)
    with np.load(reference_file("tp-r-a3.npz")) as ref:
        stable = ref["stable_keypoints"]
        np.testing.assert_allclose(kps[stable, :2], ref["final_preds"][0][stable], atol=0.01)
    drawn = cv2.imread(str(out_png))
    assert drawn.shape == (512, 512, 3)
    assert np.abs(drawn.astype(int) - cv2.imread(str(astronaut_path)).astype(int)).sum() > 0


def _run(*args):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


@pytest.mark.parametrize("case", ["missing", "not_an_image", "box_outside", "bad_weights",
                                  "bad_keypoint", "draw_extension", "json_folder"])
def test_bad_inputs_give_one_clear_line(case, tmp_path, astronaut_path, random_tp_r_a3_checkpoint):
    """One `error:` line naming the culprit, and nothing computed first (no table)."""
    image, weights, extra = str(astronaut_path), str(random_tp_r_a3_checkpoint), []
    draw, json_out = str(tmp_path / "drawn.xyz"), str(tmp_path / "no" / "out.json")
    if case == "missing":
        image = str(tmp_path / "nope.jpg")
    elif case == "not_an_image":
        image = str(tmp_path / "notes.jpg")
        (tmp_path / "notes.jpg").write_text("this is text, not a JPEG")
    elif case == "box_outside":
        extra = ["--box", "900", "900", "50", "50"]
    elif case == "bad_keypoint":
        extra = ["--attention", "left_wristt", "--draw", str(tmp_path / "a.png")]
    elif case == "draw_extension":
        extra = ["--draw", draw]
    elif case == "json_folder":
        extra = ["--json", json_out]
    else:
        weights = str(tmp_path / "w.pth")
        (tmp_path / "w.pth").write_bytes(b"\x00garbage" * 10)
    r = _run("predict", image, "--weights", weights, *extra)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    named = {"missing": image, "not_an_image": image, "box_outside": "512x512",
             "bad_weights": weights, "bad_keypoint": "left_wristt", "draw_extension": draw,
             "json_folder": str(tmp_path / "no")}[case]
    assert named in errors[0]
    assert r.stdout == ""


def test_predict_finds_the_people_itself(tmp_path, capsys, random_tp_r_a3_checkpoint):
    """Without --box the detector finds each person (three frisbee players here)."""
    image = ROOT / "tests" / "data" / "detection" / "coco128_000000000625.jpg"
    out_json = tmp_path / "pose.json"
    rc = main.main(["predict", str(image), "--model", str(random_tp_r_a3_checkpoint),
                    "--no-flip", "--json", str(out_json)])
    assert rc == 0
    err = capsys.readouterr().err
    assert "detector: auto: shipped YOLOX-Nano" in err and "3 people" in err
    boxes = np.array([p["box"] for p in json.loads(out_json.read_text())["people"]])
    assert len(boxes) == 3
    assert (boxes[:, 2] < 200).all()          # person boxes, not the 640 px wide image


def test_predict_poses_someone_upside_down_from_a_turned_crop(tmp_path, capsys):
    """The shipped model on the basketball photo turned upside down: the person's upright
    crop shows a turned body, so predict poses them again turned (said on stderr, "turn"
    in the JSON) and the pose is far more confident than with --no-turned-crops."""
    image = tmp_path / "upside_down.png"
    cv2.imwrite(str(image), cv2.rotate(cv2.imread(str(ROOT / "tests" / "data" / "detection" /
                                                     "basketball1.png")), cv2.ROTATE_180))
    means = {}
    for flag in ("--turned-crops", "--no-turned-crops"):
        out = tmp_path / f"{flag}.json"
        assert main.main(["predict", str(image), flag, "--json", str(out)]) == 0
        [person] = json.loads(out.read_text())["people"]
        means[flag] = (person["turn"], float(np.mean([s for _, _, s in person["keypoints"]])))
    said = re.search(r"its crop turned by (\d+) degrees", capsys.readouterr().err)
    assert said and abs(int(said.group(1)) - 180) < 10
    (turn, mean), (plain_turn, plain_mean) = means["--turned-crops"], means["--no-turned-crops"]
    assert abs(turn - 180) < 10 and plain_turn == 0
    assert mean > 0.85 and plain_mean < 0.6, means


def test_predict_takes_every_model_spec(tmp_path, capsys):
    """--model is the same in every command: MediaPipe BlazePose works here too."""
    rc = main.main(["predict", str(ROOT / "tests" / "data" / "detection" / "basketball1.png"),
                    "--model", "mediapipe", "--json", str(tmp_path / "p.json")])
    assert rc == 0
    doc = json.loads((tmp_path / "p.json").read_text())
    assert len(doc["people"]) == 2 and "BlazePose" in capsys.readouterr().err
