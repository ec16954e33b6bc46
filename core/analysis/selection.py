"""Which tracked people the analysis keeps: all, the N largest, the N longest, given ids."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from ..errors import InputError
from .tracks import Track

SelectionMode = Literal["all", "largest", "longest", "ids"]


@dataclass(frozen=True)
class PersonSelection:
    mode: SelectionMode = "all"
    count: int = 1                      # for largest / longest
    ids: tuple[int, ...] = ()           # for ids

    def __post_init__(self) -> None:
        if self.mode not in ("all", "largest", "longest", "ids"):
            raise InputError(f"--people: unknown mode {self.mode!r}")
        if self.mode in ("largest", "longest") and self.count < 1:
            raise InputError(f"--people: keep at least one person, not {self.count}")
        if self.mode == "ids" and not self.ids:
            raise InputError("--people: give at least one track id")

    @classmethod
    def parse(cls, text: str) -> "PersonSelection":
        """'all', 'largest:N', 'longest:N' (N defaults to 1) or a comma list of track ids."""
        t = str(text).strip().lower()
        if t in ("", "all"):
            return cls()
        mode, _, n = t.partition(":")
        if mode in ("largest", "longest"):
            try:
                count = int(n) if n else 1
            except ValueError:
                raise InputError(f"--people: {text!r}: the count after ':' must be a whole "
                                 f"number") from None
            return cls(mode, count)     # type: ignore[arg-type]
        try:
            ids = tuple(int(v) for v in t.replace("ids:", "").split(",") if v.strip())
        except ValueError:
            raise InputError(f"--people: {text!r}: expected all, largest:N, longest:N or track "
                             f"ids such as 1,3") from None
        return cls("ids", ids=ids)

    def __str__(self) -> str:
        if self.mode in ("largest", "longest"):
            return f"{self.mode}:{self.count}"
        if self.mode == "ids":
            return ",".join(str(i) for i in self.ids)
        return "all"

    def apply(self, tracks: Sequence[Track]) -> list[Track]:
        """The kept tracks, in track-id order. Largest: median box area over the frames
        the person was tracked; longest: number of frames tracked (ties: lower id)."""
        if self.mode == "all":
            return list(tracks)
        if self.mode == "ids":
            keep = set(self.ids)
            return [t for t in tracks if t.track_id in keep]
        if self.mode == "largest":
            def key(t: Track) -> float:
                b = t.boxes[t.present]
                return float(np.median(b[:, 2] * b[:, 3])) if len(b) else 0.0
        else:
            def key(t: Track) -> float:
                return float(t.present.sum())
        ranked = sorted(tracks, key=lambda t: (-key(t), t.track_id))[:self.count]
        return sorted(ranked, key=lambda t: t.track_id)
