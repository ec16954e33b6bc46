"""Writers for analysis results (formats in docs/formats.md): per-person wide CSV, TRC
(OpenSim), OpenPose per-frame JSON (Pose2Sim), and the post-processed JSON document.

Like the streaming sinks, every file is written under a temporary name and renamed when
complete (`_AtomicTextFile`); the OpenPose folder is filled as `<name>.part` and renamed.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Literal

import numpy as np

from ..analysis import AnalysisResult
from ..errors import InputError
from ..io_utils import part_path
from ..keypoints import COCO_KEYPOINT_NAMES
from .sinks import ExportMetadata, _AtomicTextFile, _csv_num, _num, json_head_fields

OpenPoseLayout = Literal["coco18", "body25"]

# OpenPose layouts as COCO keypoint names; "neck" is the shoulders' mid-point and
# "mid_hip" the hips' (score: the lower of the two); None: a point COCO does not have
# (the feet of BODY_25), written as 0, 0, 0 like OpenPose's undetected keypoints.
OPENPOSE_LAYOUTS: dict[str, tuple[str | None, ...]] = {
    "coco18": ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
               "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
               "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye",
               "right_ear", "left_ear"),
    "body25": ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
               "left_shoulder", "left_elbow", "left_wrist", "mid_hip", "right_hip",
               "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
               "right_eye", "left_eye", "right_ear", "left_ear",
               None, None, None, None, None, None),    # toes and heels
}
_MIDPOINTS = {"neck": ("left_shoulder", "right_shoulder"), "mid_hip": ("left_hip", "right_hip")}
_K = {n: i for i, n in enumerate(COCO_KEYPOINT_NAMES)}


def wide_csv_header(angle_names: list[str] | tuple[str, ...]) -> list[str]:
    cols = ["frame", "time_s"]
    for name in COCO_KEYPOINT_NAMES:
        cols += [f"{name}_x", f"{name}_y", f"{name}_score"]
    return cols + [f"angle_{a}" for a in angle_names]


def _rows_of(result: AnalysisResult, track_id: int) -> list[int]:
    """Rows of a track that appear in the long CSV: tracked, or given keypoints by gap
    filling (so the wide and long files hold the same samples)."""
    t = result.track(track_id)
    return [i for i in range(len(t))
            if t.present[i] or np.isfinite(t.keypoints[i]).all(axis=1).any()]


def write_wide_csv(path: str | os.PathLike, result: AnalysisResult, track_id: int,
                   digits: int = 2) -> Path:
    """One row per frame the person appears in: frame, time_s, x/y/score of each
    keypoint (empty when missing), then `angle_<name>` in degrees."""
    t = result.track(track_id)
    names = result.config.angles
    angles = result.angles[track_id]
    out = _AtomicTextFile(path, newline="")
    try:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(wide_csv_header(names))
        for i in _rows_of(result, track_id):
            pos = t.start + i
            row = [int(result.timeline.frame_indices[pos]),
                   f"{result.timeline.times_s[pos]:.6f}"]
            for (x, y), s in zip(t.keypoints[i], t.scores[i]):
                row += [_csv_num(x, digits), _csv_num(y, digits), _csv_num(s, 4)]
            row += [_csv_num(angles[a][i], 2) for a in names]
            w.writerow(row)
        out.write(buf.getvalue())
        return out.commit()
    except BaseException:
        out.abort()
        raise


def write_trc(path: str | os.PathLike, result: AnalysisResult, track_id: int) -> Path:
    """OpenSim marker file of one person: the 17 keypoints as markers, every frame from the
    person's first to last appearance, y up, Z = 0 (a 2D video). Metres when the result has
    a scale (origin bottom-left, floor level), else pixels (units "px"; y = height - y).
    Missing markers are empty fields. DataRate is 1 / the median frame interval; Time is
    each frame's real timestamp."""
    from ..analysis.filtering import sampling_rate

    t = result.track(track_id)
    path = Path(path)
    height = result.timeline.size_hw[0]
    times = t.times(result.timeline)
    rate = sampling_rate(result.timeline.times_s)[0]
    if result.scale is not None:
        xy = result.scale.to_metres(t.keypoints, height)
        units, digits = "m", 5
    else:
        xy = np.stack([t.keypoints[..., 0], height - t.keypoints[..., 1]], axis=-1)
        units, digits = "px", 2
    n_frames, n_markers = len(t), len(COCO_KEYPOINT_NAMES)
    first = int(result.timeline.frame_indices[t.start]) + 1
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{path.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\t"
        "OrigDataStartFrame\tOrigNumFrames",
        f"{rate:.6g}\t{rate:.6g}\t{n_frames}\t{n_markers}\t{units}\t{rate:.6g}\t{first}\t{n_frames}",
        "Frame#\tTime\t" + "\t\t\t".join(COCO_KEYPOINT_NAMES) + "\t\t",
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, n_markers + 1)),
        "",
    ]
    for i in range(n_frames):
        cells = [str(i + 1), f"{times[i]:.6f}"]
        for (x, y) in xy[i]:
            if math.isfinite(x) and math.isfinite(y):
                cells += [f"{x:.{digits}f}", f"{y:.{digits}f}", f"{0:.{digits}f}"]
            else:
                cells += ["", "", ""]
        lines.append("\t".join(cells))
    out = _AtomicTextFile(path, newline="")
    try:
        out.write("\n".join(lines) + "\n")
        return out.commit()
    except BaseException:
        out.abort()
        raise


def openpose_keypoints(keypoints: np.ndarray, scores: np.ndarray,
                       layout: OpenPoseLayout = "coco18") -> list[float]:
    """Flat [x, y, c, ...] of one person in an OpenPose layout (missing: 0, 0, 0)."""
    flat: list[float] = []
    for name in OPENPOSE_LAYOUTS[layout]:
        if name is None:
            flat += [0.0, 0.0, 0.0]
            continue
        parts = _MIDPOINTS.get(name, (name,))
        p = np.mean([keypoints[_K[n]] for n in parts], axis=0)
        s = min(float(scores[_K[n]]) for n in parts)
        if np.isfinite(p).all() and math.isfinite(s):
            flat += [round(float(p[0]), 2), round(float(p[1]), 2), round(s, 4)]
        else:
            flat += [0.0, 0.0, 0.0]
    return flat


def openpose_folder(out_dir: Path, stem: str) -> Path:
    return out_dir / f"{stem}.openpose"


def write_openpose(folder: str | os.PathLike, result: AnalysisResult, stem: str,
                   layout: OpenPoseLayout = "coco18") -> Path:
    """One `<stem>_<frame:012d>_keypoints.json` per frame (OpenPose's --write_json names),
    every frame, people with their track id as `person_id`."""
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise InputError(f"{folder}: the output folder {folder.parent} does not exist")
    part = part_path(folder)            # a name no other run picks
    try:
        part.mkdir()
        for frame in result.frames():
            people = [{
                "person_id": [int(p.track_id)],
                "pose_keypoints_2d": openpose_keypoints(p.keypoints, p.keypoint_scores, layout),
                "face_keypoints_2d": [], "hand_left_keypoints_2d": [],
                "hand_right_keypoints_2d": [], "pose_keypoints_3d": [],
                "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
                "hand_right_keypoints_3d": []} for p in frame.people]
            name = f"{stem}_{frame.index:012d}_keypoints.json"
            (part / name).write_text(json.dumps({"version": 1.3, "people": people},
                                                separators=(",", ":")), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(part, folder)
    except OSError as e:
        shutil.rmtree(part, ignore_errors=True)
        raise InputError(f"{folder}: writing the OpenPose files failed ({e.strerror or e}); "
                         f"the partial folder was removed") from None
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return folder


def write_analysis_json(path: str | os.PathLike, meta: ExportMetadata, result: AnalysisResult,
                        config: dict | None = None, digits: int = 2) -> Path:
    """The JSON of docs/formats.md with the post-processed keypoints, plus an `analysis`
    object (post-processing, selection, scale, angle convention, the resolved run
    configuration) and, per person, `angles`, `facing` and - when post-processing changed
    values - `raw_keypoints` (the tracker's, null in frames only gap filling added)."""
    d = digits
    head = {**json_head_fields(meta), "analysis": {**result.metadata(), "config": config}}
    with_raw = result.config.postprocess.changes_values
    by_id = {t.track_id: t for t in result.tracks}
    raw_by_id = {t.track_id: t for t in result.raw_tracks}

    def points(kp, sc):
        return [[_num(x, d) if math.isfinite(s) else None,
                 _num(y, d) if math.isfinite(s) else None, _num(s, 4)]
                for (x, y), s in zip(kp, sc)]

    out = _AtomicTextFile(path)
    try:
        text = json.dumps(head, indent=1)
        out.write(text[:-2] + ',\n "frames": [')
        for pos, frame in enumerate(result.frames()):
            people = []
            for p in frame.people:
                t = by_id[p.track_id]
                i = pos - t.start
                item = {"track_id": int(p.track_id), "box": [_num(v, d) for v in p.box],
                        "score": _num(p.score, 4), "keypoints": points(p.keypoints, p.keypoint_scores)}
                if with_raw:
                    raw = raw_by_id[p.track_id]
                    item["raw_keypoints"] = (points(raw.keypoints[i], raw.scores[i])
                                             if raw.present[i] else None)
                item["facing"] = int(result.facing[p.track_id][i])
                item["angles"] = {a: _num(v[i], 2) for a, v in result.angles[p.track_id].items()}
                people.append(item)
            entry = {"frame": int(frame.index), "time_s": round(float(frame.time_s), 6),
                     "people": people}
            out.write(("\n  " if pos == 0 else ",\n  ") + json.dumps(entry, separators=(",", ":")))
        out.write("\n ]\n}\n")
        return out.commit()
    except BaseException:
        out.abort()
        raise
