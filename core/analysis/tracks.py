"""Per-person time series built from the tracker's PoseFrames, and back.

The tracker emits one PoseFrame per video frame; analysis (gap filling, filtering, angles,
per-person exports) needs the opposite view: one array per person over time. A `Track`
covers every frame from the person's first to last appearance, so frames in which the
tracker lost the person are rows of NaN inside the track (a "track break"), which is what
gap filling works on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..keypoints import NUM_KEYPOINTS
from ..types import PersonPose, PoseFrame


@dataclass(frozen=True)
class Timeline:
    """Every frame of one input: its index in the source and its time in seconds."""

    frame_indices: np.ndarray      # (F,) int
    times_s: np.ndarray            # (F,) float, strictly increasing
    size_hw: tuple[int, int]

    def __len__(self) -> int:
        return len(self.frame_indices)


@dataclass(frozen=True)
class Track:
    """One person from the first to the last frame the tracker reported them.

    Row i is timeline position `start + i`. Missing values are NaN (never guessed here).
    """

    track_id: int
    start: int                     # timeline position of the first row
    present: np.ndarray            # (T,) bool: the tracker reported the person in that frame
    keypoints: np.ndarray          # (T, K, 2) image pixels
    scores: np.ndarray             # (T, K)
    boxes: np.ndarray              # (T, 4) x, y, w, h; NaN where the person was absent
    person_scores: np.ndarray      # (T,) the tracker's person confidence; NaN where absent

    def __len__(self) -> int:
        return len(self.present)

    @property
    def stop(self) -> int:
        """One past the timeline position of the last row."""
        return self.start + len(self)

    def times(self, timeline: Timeline) -> np.ndarray:
        return timeline.times_s[self.start:self.stop]


def tracks_from_frames(frames: Sequence[PoseFrame]) -> tuple[Timeline, list[Track]]:
    """Split the pipeline's frames into a timeline and one Track per track id (sorted)."""
    if not frames:
        return Timeline(np.zeros(0, int), np.zeros(0), (0, 0)), []
    timeline = Timeline(np.array([f.index for f in frames], int),
                        np.array([f.time_s for f in frames], float), tuple(frames[0].size_hw))
    seen: dict[int, list[tuple[int, PersonPose]]] = {}
    for pos, frame in enumerate(frames):
        for person in frame.people:
            seen.setdefault(int(person.track_id), []).append((pos, person))
    tracks = []
    for tid in sorted(seen):
        rows = seen[tid]
        start, stop = rows[0][0], rows[-1][0] + 1
        n = stop - start
        kp = np.full((n, NUM_KEYPOINTS, 2), np.nan)
        sc = np.full((n, NUM_KEYPOINTS), np.nan)
        boxes = np.full((n, 4), np.nan)
        present = np.zeros(n, bool)
        person_scores = np.full(n, np.nan)
        for pos, p in rows:
            i = pos - start
            present[i] = True
            kp[i] = p.keypoints
            sc[i] = p.keypoint_scores
            boxes[i] = p.box
            person_scores[i] = p.score
        tracks.append(Track(tid, start, present, kp, sc, boxes, person_scores))
    return timeline, tracks


def _box_of(keypoints: np.ndarray) -> np.ndarray:
    ok = np.isfinite(keypoints).all(axis=1)
    if not ok.any():
        return np.full(4, np.nan)
    lo, hi = keypoints[ok].min(axis=0), keypoints[ok].max(axis=0)
    return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]])


def frames_from_tracks(timeline: Timeline, tracks: Sequence[Track]) -> list[PoseFrame]:
    """PoseFrames again (no images): a person appears in a frame when the tracker reported
    them there or when gap filling gave them keypoints; a filled frame's box is the
    keypoints' bounding box and its score the mean of the (interpolated) keypoint scores."""
    people: list[list[PersonPose]] = [[] for _ in range(len(timeline))]
    for t in tracks:
        for i in range(len(t)):
            has_points = bool(np.isfinite(t.keypoints[i]).all(axis=1).any())
            if not (t.present[i] or has_points):
                continue
            box = t.boxes[i] if t.present[i] else _box_of(t.keypoints[i])
            finite = t.scores[i][np.isfinite(t.scores[i])]
            score = (float(t.person_scores[i]) if t.present[i] else
                     float(finite.mean()) if len(finite) else float("nan"))
            people[t.start + i].append(PersonPose(
                t.track_id, np.asarray(box, np.float32), score,
                t.keypoints[i].copy(), t.scores[i].copy()))
    return [PoseFrame(int(idx), float(ts), timeline.size_hw, tuple(sorted(p, key=lambda q: q.track_id)))
            for idx, ts, p in zip(timeline.frame_indices, timeline.times_s, people)]
