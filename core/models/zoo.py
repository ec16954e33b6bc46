"""The official TransPose model zoo: names, URLs, cache location and a resumable download.

The upstream release does not publish checksums, so integrity rests on two things:
the transfer must be complete (the size the server announced, with HTTP resume), and
the sha256 recorded on the first complete download (a `<file>.sha256` sidecar) must still
match on every later use. When an entry's official sha256 becomes known, set it in ZOO and it
is verified instead.

Nothing here touches the network or the file system at import time.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from core.errors import DownloadError, InputError

RELEASE_URL = "https://github.com/yangsenius/TransPose/releases/download/Hub/"

# Environment variables (documented for users in the CLI help / docs).
ENV_CACHE = "TRANSPOSE_STUDIO_CACHE"
ENV_OFFLINE = "TRANSPOSE_STUDIO_OFFLINE"

_USER_AGENT = "transpose-studio/0.1 (+urllib)"
_ALLOWED_SCHEMES = ("http", "https", "file")


@dataclass(frozen=True)
class ZooEntry:
    name: str  # 'tp-r-a3'
    variant: str  # same as name; the model-config name used by core.models
    filename: str
    url: str
    sha256: str | None = None  # official checksum, when known; verified instead of the sidecar


def _entry(name: str, filename: str, sha256: str | None = None) -> ZooEntry:
    return ZooEntry(name=name, variant=name, filename=filename, url=RELEASE_URL + filename, sha256=sha256)


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in (
        _entry("tp-r-a3", "tp_r_256x192_enc3_d256_h1024_mh8.pth"),
        _entry("tp-r-a4", "tp_r_256x192_enc4_d256_h1024_mh8.pth"),
        _entry("tp-h-s", "tp_h_32_256x192_enc4_d64_h128_mh1.pth"),
        _entry("tp-h-a4", "tp_h_48_256x192_enc4_d96_h192_mh1.pth"),
        _entry("tp-h-a6", "tp_h_48_256x192_enc6_d96_h192_mh1.pth"),
    )
}


def _normalize(s: str) -> str:
    # Users type 'TP-R-A3' or 'tp_r_a3' (the upstream file names use underscores).
    return s.strip().lower().replace("_", "-")


def is_zoo_name(s: str) -> bool:
    """True if `s` names a zoo model (case-insensitive, '-' or '_')."""
    return isinstance(s, str) and _normalize(s) in ZOO


def get_entry(name: str) -> ZooEntry:
    """The zoo entry for `name`; InputError listing the valid names otherwise."""
    key = _normalize(name) if isinstance(name, str) else name
    try:
        return ZOO[key]
    except (KeyError, TypeError):
        raise InputError(
            f"Unknown model name {name!r}: the TransPose zoo models are {', '.join(ZOO)}."
        ) from None


# Best first (COCO val AP in the paper: 75.8, 75.3, 74.2, 72.6, 71.7): what ``auto`` prefers
# among the official files a user has already downloaded.
PREFERENCE = ("tp-h-a6", "tp-h-a4", "tp-h-s", "tp-r-a4", "tp-r-a3")


def downloaded() -> list[str]:
    """Zoo names whose file is already complete in the cache (no network), best first.
    A file is taken only with its recorded sha256 beside it (a finished download)."""
    names = []
    for name in PREFERENCE:
        path = models_dir() / ZOO[name].filename
        if path.is_file() and read_sidecar(path) is not None:
            names.append(name)
    return names


def cache_dir() -> Path:
    """$TRANSPOSE_STUDIO_CACHE, else $XDG_CACHE_HOME/transpose-studio, else ~/.cache/transpose-studio.

    Only computes the path; creating it is left to whoever writes there.
    """
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "transpose-studio"
    return Path.home() / ".cache" / "transpose-studio"


def models_dir() -> Path:
    return cache_dir() / "models"


def is_offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() in ("1", "true", "yes", "on")


# --------------------------------------------------------------------------- checksums


def sidecar_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def read_sidecar(path: Path) -> str | None:
    """The sha256 recorded next to `path`, or None if there is none (or it is unreadable)."""
    side = sidecar_path(path)
    try:
        text = side.read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return None
    if text and re.fullmatch(r"[0-9a-fA-F]{64}", text[0]):
        return text[0].lower()
    return None


def write_sidecar(path: Path, digest: str) -> None:
    # `sha256sum -c` format; written via a temp file so a crash never leaves half a checksum.
    side = sidecar_path(path)
    tmp = side.with_name(side.name + ".tmp")
    tmp.write_text(f"{digest}  {Path(path).name}\n", encoding="ascii")
    os.replace(tmp, side)


def verify_cached(path: Path, expected_sha256: str | None = None) -> Path:
    """Check a cached file against `expected_sha256`, else against its sidecar.

    A file with neither (e.g. one the user downloaded by hand) is trusted once and its sha256
    recorded, so any later change is caught.
    """
    path = Path(path)
    digest = sha256_file(path)
    if expected_sha256:
        if digest != expected_sha256.lower():
            raise DownloadError(
                f"The cached model file {path} does not match the official sha256 "
                f"{expected_sha256.lower()} (got {digest}): it is corrupted or not the right file; "
                f"delete it and run again to download it anew."
            )
        return path
    recorded = read_sidecar(path)
    if recorded is None:
        write_sidecar(path, digest)
    elif digest != recorded:
        raise DownloadError(
            f"The cached model file {path} no longer matches the sha256 recorded when it was "
            f"downloaded ({sidecar_path(path)}): it has changed or is corrupted; delete it and run "
            f"again to download it anew."
        )
    return path


# --------------------------------------------------------------------------- download


def _manual_step(url: str, dest: Path) -> str:
    return f"download {url} and save it as {dest}"


def _network_error(url: str, dest: Path, part: Path, reason: str) -> DownloadError:
    kept = part.stat().st_size if part.exists() else 0
    resume = f" (or rerun to resume from the {kept} bytes kept in {part})" if kept else ""
    return DownloadError(
        f"The download of {url} failed ({reason}); {_manual_step(url, dest)}{resume}."
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"the server answered HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        r = exc.reason
        return str(r.strerror or r) if isinstance(r, OSError) else str(r)
    if isinstance(exc, TimeoutError):
        return "the connection timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _int_header(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)", re.IGNORECASE)


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """(start, total) from 'bytes 100-199/1000' or 'bytes */1000'; None where unknown."""
    m = _CONTENT_RANGE.fullmatch((value or "").strip())
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) is not None else None
    total = int(m.group(3)) if m.group(3) != "*" else None
    return start, total


def _finalize(url: str, dest: Path, part: Path, total: int | None, expected_sha256: str | None) -> Path:
    size = part.stat().st_size
    if total is not None and size != total:
        if size > total:
            # More bytes than the file has: the .part is garbage, resuming it cannot help.
            part.unlink(missing_ok=True)
        raise _network_error(url, dest, part, f"the transfer stopped at {size} of {total} bytes")
    digest = sha256_file(part)
    if expected_sha256 and digest != expected_sha256.lower():
        part.unlink(missing_ok=True)  # complete but wrong: resuming it would never fix it
        raise DownloadError(
            f"The file downloaded from {url} has sha256 {digest}, not the expected "
            f"{expected_sha256.lower()}; it was deleted, so retry later or {_manual_step(url, dest)} "
            f"from a trusted source."
        )
    os.replace(part, dest)  # atomic: dest is either absent or complete, never half-written
    write_sidecar(dest, digest)
    return dest


def download(
    url: str,
    dest: Path,
    *,
    expected_sha256: str | None = None,
    progress: bool = True,
    timeout: float = 30.0,
    chunk_size: int = 1 << 20,
) -> Path:
    """Download `url` to `dest`, resuming a previous `.part`, and record its sha256 next to it.

    Raises DownloadError (keeping the .part so a rerun resumes) on any network failure.
    """
    from tqdm import tqdm  # imported here so importing the zoo stays cheap

    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise DownloadError(f"Cannot download {url}: only http, https and file URLs are supported.")
    part = dest.with_suffix(dest.suffix + ".part")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(f"Cannot create the folder {dest.parent} for {dest.name}: {_reason(e)}.") from e

    # At most one restart from zero (a 416 on an invalid .part, or a 206 at the wrong offset).
    for _attempt in range(2):
        offset = part.stat().st_size if part.exists() else 0
        req = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
        if offset > 0:
            req.add_header("Range", f"bytes={offset}-")
        try:
            resp = urllib.request.urlopen(req, timeout=timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset > 0:
                # Nothing left to send from `offset`: either the .part is complete, or it is invalid.
                _, total = _parse_content_range(e.headers.get("Content-Range"))
                e.close()
                if total is not None and offset == total:
                    return _finalize(url, dest, part, total, expected_sha256)
                part.unlink(missing_ok=True)
                continue
            raise _network_error(url, dest, part, _reason(e)) from e
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
            raise _network_error(url, dest, part, _reason(e)) from e

        with resp:
            status = getattr(resp, "status", None)  # None for file: URLs, which ignore Range
            length = _int_header(resp.headers.get("Content-Length"))
            if offset > 0 and status == 206:
                start, total = _parse_content_range(resp.headers.get("Content-Range"))
                if start != offset:
                    # Not the range we asked for: appending it would corrupt the file.
                    part.unlink(missing_ok=True)
                    continue
                if total is None and length is not None:
                    total = offset + length
                mode = "ab"
            else:
                # A 200 (the server ignored Range, or there was nothing to resume): start from zero.
                offset, total, mode = 0, length, "wb"

            bar = tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                desc=dest.name, disable=not progress, file=sys.stderr, leave=False,
            )
            try:
                with open(part, mode) as f:
                    while True:
                        try:
                            chunk = resp.read(chunk_size)
                        except (OSError, http.client.HTTPException, ValueError) as e:
                            f.flush()
                            raise _network_error(url, dest, part, _reason(e)) from e
                        if not chunk:
                            break
                        f.write(chunk)
                        bar.update(len(chunk))
            except OSError as e:  # the network errors were converted above: this is the disk
                raise DownloadError(f"Cannot write the download to {part}: {_reason(e)}.") from e
            finally:
                bar.close()
        return _finalize(url, dest, part, total, expected_sha256)

    raise _network_error(url, dest, part, "the server kept sending an inconsistent byte range")


def fetch_zoo_weights(name: str, *, progress: bool = True, base_url: str | None = None) -> Path:
    """Path to the cached weights of zoo model `name`, downloading them on first use.

    `base_url` replaces the release prefix (tests, mirrors). With TRANSPOSE_STUDIO_OFFLINE=1 the
    network is never used: a missing file raises DownloadError with the manual instructions.
    """
    entry = get_entry(name)
    url = entry.url if base_url is None else base_url.rstrip("/") + "/" + entry.filename
    dest = models_dir() / entry.filename
    if dest.is_file():
        return verify_cached(dest, entry.sha256)
    if is_offline():
        raise DownloadError(
            f"The weights of {entry.name} are not in the cache and {ENV_OFFLINE} is set, so nothing "
            f"is downloaded; {_manual_step(url, dest)}."
        )
    return download(url, dest, expected_sha256=entry.sha256, progress=progress)
