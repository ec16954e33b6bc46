#!/usr/bin/env python3
"""Fetch the demo clip: Sports2D/Demo/demo.mp4 from the sports2d wheel on PyPI (BSD-3-Clause).

Usage: fetch_demo_video.py DEST.mp4
The wheel is downloaded without dependencies by pip (the package registry is the only
network the set-up uses), the one file is extracted and checked against its sha256, and
written atomically. Does nothing when DEST already holds the verified file.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "sports2d==0.8.34"
MEMBER = "Sports2D/Demo/demo.mp4"
SHA256 = "d9a66417185647b112304b57093f0c180f37a768e6a14daca75ca541f3b78039"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(dest: str) -> int:
    out = Path(dest)
    if out.exists() and sha256(out) == SHA256:
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"fetching the demo clip from the {PACKAGE} wheel on PyPI ...", file=sys.stderr)
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                            PACKAGE, "-d", tmp], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if r.returncode != 0 or not wheels:
            print(f"error: could not download {PACKAGE} from PyPI ({r.stderr.strip()[-200:]}); "
                  f"run 'make demo VIDEO=path/to/a/video.mp4' with a video of your own",
                  file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheels[0]) as z:
            data = z.read(MEMBER)
        if hashlib.sha256(data).hexdigest() != SHA256:
            print(f"error: {MEMBER} in {wheels[0].name} does not have the expected sha256",
                  file=sys.stderr)
            return 1
        part = out.with_name(out.name + ".part")
        part.write_bytes(data)
        os.replace(part, out)
    print(f"demo clip: {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
