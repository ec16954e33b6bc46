"""The pandas examples of docs/formats.md run as written on a real analysis run's outputs."""
from __future__ import annotations

import re
import shutil

import pytest

import main

from conftest import DATA, ROOT

DOC = ROOT / "docs" / "formats.md"
RUN = ["--formats", "csv,json,wide-csv,trc,openpose", "--fill-gaps", "5", "--filter",
       "butterworth", "--cutoff", "6", "--person-height", "1.75"]


def test_formats_md_pandas_examples_run(tmp_path, monkeypatch):
    pytest.importorskip("pandas")          # the dev extra installs it (pip install -e .[dev])
    text = DOC.read_text()
    assert " ".join(RUN[2:]) in text.replace("\\\n    ", "")      # the documented command
    shutil.copy(DATA / "clip_person.mp4", tmp_path / "clip.mp4")
    monkeypatch.chdir(tmp_path)
    assert main.main(["annotate", "clip.mp4", "--out", "out", *RUN]) == 0
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    pandas_blocks = [b for b in blocks if "pandas" in b]
    assert len(pandas_blocks) >= 2
    for block in pandas_blocks:
        exec(compile(block, str(DOC), "exec"), {"__name__": "docs_example"})


def test_readme_per_frame_step_example_runs(monkeypatch):
    """The README's first Python example (the per-frame step) runs as written."""
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
                 if ".step(" in b)
    monkeypatch.chdir(ROOT)
    scope: dict = {"__name__": "readme_example"}
    exec(compile(block, "README.md", "exec"), scope)
    result = scope["result"]
    assert result.index == 29 and result.people                    # the clip's last frame
    assert all(0 <= p.row < len(result.attention.centers) for p in result.people)
