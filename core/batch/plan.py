"""Which inputs a batch run covers and where each one's outputs go.

Output names never collide: every input gets a *key*, the path of its outputs under
`--out` without the extensions. By default it is the input's stem (`clip.mp4` ->
`out/clip.*`); a video found in a folder argument keeps its place under that folder
(`annotate videos/ --recursive`: `videos/a/clip.mp4` -> `out/a/clip.*`); inputs whose keys
would still collide (`a/clip.mp4`, `b/clip.mp4`) mirror their folders from the deepest folder
they share (`out/a/clip.*`, `out/b/clip.*`), and two files that differ only in their
extension keep it (`clip.mp4.*`, `clip.avi.*`). Keys depend on the whole input list only,
so every shard of a job array names every input alike.
"""
from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import InputError
from ..video import folder_inputs, is_camera_spec


@dataclass(frozen=True)
class PlannedInput:
    path: str          # as given (or as found in a folder argument)
    key: str           # outputs: <out>/<key>.csv, ... ('/'-separated, no extension)


def expand_inputs(patterns: list[str], recursive: bool = False) -> list[PlannedInput]:
    """Globs expanded (sorted); a folder stands for its videos (or, holding only images,
    for itself: an image sequence); other entries kept as given, so missing ones get
    reported. Each input once (the same file given twice is annotated once)."""
    found: list[tuple[str, str | None]] = []       # (path, key from its folder argument)
    for p in patterns:
        names = sorted(glob.glob(p, recursive=recursive)) if glob.has_magic(p) else []
        for name in names or [p]:
            path = Path(name)
            if not is_camera_spec(name) and path.is_dir():
                try:
                    inside = folder_inputs(path, recursive)
                except InputError:
                    found.append((name, None))      # reported with the other inputs
                    continue
                for f in inside:
                    rel = f.relative_to(path)
                    key = (_without_suffix(rel) if f.is_file() else
                           PurePosixPath(*rel.parts).as_posix() if rel.parts else None)
                    found.append((str(f) if f != path else name, key or None))
            else:
                found.append((name, None))
    seen: dict[str, tuple[str, str | None]] = {}
    for name, key in found:
        ident = _identity(name)
        seen.setdefault(ident, (name, key))
    return assign_keys(list(seen.values()))


def _identity(name: str) -> str:
    try:
        return os.path.realpath(name)
    except (OSError, ValueError):
        return name


def _without_suffix(rel: Path) -> str:
    return PurePosixPath(*rel.parts[:-1], Path(rel.parts[-1]).stem).as_posix()


def default_key(name: str) -> str:
    """The stem of a file, the name of a folder (an image sequence)."""
    p = Path(name.rstrip("/") or name)
    return p.stem if not p.is_dir() else (p.name or "input")


def assign_keys(items: list[tuple[str, str | None]]) -> list[PlannedInput]:
    keys = [key or default_key(name) for name, key in items]
    for _ in range(3):
        groups: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            groups.setdefault(k.lower(), []).append(i)     # case-insensitive filesystems
        clashes = [g for g in groups.values() if len(g) > 1]
        if not clashes:
            break
        for g in clashes:
            _disambiguate(items, keys, g)
    else:
        dup = [k for k in keys if keys.count(k) > 1][:1]
        raise InputError(f"two inputs would write the same outputs ({dup[0]}.*) and cannot be "
                         f"told apart; rename one of them")
    return [PlannedInput(name, k) for (name, _), k in zip(items, keys)]


def _disambiguate(items, keys: list[str], group: list[int]) -> None:
    """Mirror the folders of the clashing inputs below the deepest folder they share;
    files in the same folder keep their extension."""
    paths = [Path(os.path.abspath(items[i][0].rstrip("/") or items[i][0])) for i in group]
    parents = [p.parent for p in paths]
    try:
        common = Path(os.path.commonpath([str(p) for p in parents]))
    except ValueError:                        # different drives
        common = None
    for i, p, parent in zip(group, paths, parents):
        stem = Path(keys[i]).name
        if common is not None and parent != common:
            rel = parent.relative_to(common)
            new = PurePosixPath(*rel.parts, stem).as_posix()
        else:
            new = keys[i]
        if new.lower() == keys[i].lower() or sum(1 for q in parents if q == parent) > 1:
            # same folder (or nothing to mirror): keep the extension to tell them apart
            suffix = p.suffix
            if suffix and not new.endswith(suffix):
                new = new + suffix
        keys[i] = new


def parse_shard(text: str) -> tuple[int, int]:
    """`i/N`, 0 <= i < N -> (i, N)."""
    try:
        i_text, n_text = text.split("/")
        i, n = int(i_text), int(n_text)
    except ValueError:
        raise InputError(f"--shard: expected i/N such as 0/4, not {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {text}: i must be 0 to N-1 (N = {n}); for a 1-based job "
                         f"array index, pass $((SLURM_ARRAY_TASK_ID - 1))/N")
    return i, n


def shard(items: list[PlannedInput], index: int, count: int) -> list[PlannedInput]:
    """A deterministic share: the inputs sorted by output key, every count-th from index.
    The N shards of one input list are disjoint and cover it exactly; the order the inputs
    were given in does not matter."""
    ordered = sorted(items, key=lambda it: (it.key, it.path))
    mine = {id(it) for it in ordered[index::count]}
    return [it for it in items if id(it) in mine]
