"""Rebuild tests/data/train from ../shared/datasets/lspet (4 crops, trimmed JSON).

The crops are copied unchanged; the JSON keeps those 4 images and annotations and the
file's info, licenses and categories.
"""
import json
import shutil
import sys
from pathlib import Path

IMAGES = ("im02592.jpg", "im03876.jpg", "im06045.jpg", "im07920.jpg")


def main(lspet: str = str(Path(__file__).resolve().parents[3] / ".." / "shared" / "datasets"
                          / "lspet")) -> None:
    src = Path(lspet)
    here = Path(__file__).resolve().parent
    doc = json.loads((src / "person_keypoints_lspet.json").read_text())
    images = [im for im in doc["images"] if im["file_name"] in IMAGES]
    ids = {im["id"] for im in images}
    out = {"info": doc["info"], "licenses": doc["licenses"], "images": images,
           "annotations": [a for a in doc["annotations"] if a["image_id"] in ids],
           "categories": doc["categories"]}
    (here / "images").mkdir(exist_ok=True)
    for name in IMAGES:
        shutil.copyfile(src / "images" / name, here / "images" / name)
    (here / "person_keypoints_lspet.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
