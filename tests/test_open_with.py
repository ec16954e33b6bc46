"""`main.py FILE` and `main.py gui FILE` open FILE in the GUI: what a desktop's "Open with"
runs (packaging/transpose-studio.desktop passes %f)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

import main

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "clip_person.mp4"


def _gui(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("prefix", [[], ["gui"]], ids=["no-command", "gui"])
def test_a_path_alone_opens_it_in_the_gui(prefix, tmp_path):
    png = tmp_path / "window.png"
    proc = _gui([*prefix, str(CLIP), "--screenshot", str(png), "--exit-after", "2",
                 "--model", "mediapipe"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "screenshot of frame" in proc.stdout + proc.stderr
    image = cv2.imread(str(png))
    assert image is not None and image.std() > 20      # the window with the clip's frame


def test_two_different_sources_are_one_clear_error(tmp_path):
    proc = _gui(["gui", str(CLIP), "--source", "other.mp4", "--exit-after", "1"], tmp_path)
    assert proc.returncode == 2
    assert "two sources given" in proc.stderr and "Traceback" not in proc.stderr


def test_a_mistyped_command_is_still_argparses_error(tmp_path):
    """Only an existing path (or camera:N) opens the GUI: `anotate` is not taken for a file."""
    proc = _gui(["anotate", "clip.mp4"], tmp_path)
    assert proc.returncode == 2
    assert "invalid choice: 'anotate'" in proc.stderr


def test_a_missing_file_is_named(tmp_path):
    proc = _gui(["holiday.mp4"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: holiday.mp4: no such file or folder"


def test_the_command_list_matches_the_parser(tmp_path, monkeypatch):
    """A file named like a command (here `models`) is the command; the list is the parser's."""
    sub = next(a for a in main.build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(main.COMMANDS)
    monkeypatch.chdir(tmp_path)                          # where the file `models` is
    (tmp_path / "models").write_text("")
    assert not main._opens_in_gui("models")
    assert main._opens_in_gui(str(CLIP)) and main._opens_in_gui("camera:0")
    assert not main._opens_in_gui(str(tmp_path / "missing.mp4"))


def test_the_desktop_entry_passes_the_file():
    entry = (ROOT / "packaging" / "transpose-studio.desktop").read_text()
    exec_line = next(line for line in entry.splitlines() if line.startswith("Exec="))
    assert exec_line.endswith(" %f")
    assert any(line.startswith("MimeType=") and "video/mp4" in line
               for line in entry.splitlines())
