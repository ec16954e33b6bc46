"""Model zoo: names, cache location, and the resumable, checksummed download (local HTTP server only)."""
from __future__ import annotations

import hashlib
import http.server
import os
import re
import socket
import threading
import urllib.request
from pathlib import Path

import pytest

from core.errors import DownloadError, StudioError
from core.models import zoo
from core.models.zoo import ZOO, download, fetch_zoo_weights, get_entry, is_zoo_name

# ----------------------------------------------------------------------------- local server


class _State:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.cut_after: int | None = None  # one-shot: send only this many body bytes, then hang up
        self.ignore_range = False


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        st: _State = self.server.state  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        st.requests.append((self.path, rng))
        data = st.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        if rng and not st.ignore_range:
            m = re.fullmatch(r"bytes=(\d+)-", rng.strip())
            assert m, rng
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        cut, st.cut_after = st.cut_after, None
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True  # the server then closes the socket: a broken transfer
        else:
            self.wfile.write(body)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = _State()  # type: ignore[attr-defined]
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSPOSE_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TRANSPOSE_STUDIO_OFFLINE", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def payload() -> bytes:
    return os.urandom(300 * 1024 + 123)  # not a multiple of the chunk size


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


# ----------------------------------------------------------------------------- download


def test_full_download(server, payload, tmp_path, capsys):
    server.state.files["/w.pth"] = payload
    dest = tmp_path / "out" / "w.pth"
    got = download(server.base + "/w.pth", dest, chunk_size=64 * 1024)
    assert got == dest
    assert dest.read_bytes() == payload
    assert _sidecar(dest).read_text().split()[0] == _sha(payload)
    assert not _part(dest).exists()
    assert server.state.requests == [("/w.pth", None)]
    assert "w.pth" in capsys.readouterr().err  # the tqdm bar went to stderr


def test_resume_after_broken_transfer(server, payload, tmp_path):
    k = 100_000
    server.state.files["/w.pth"] = payload
    server.state.cut_after = k
    dest = tmp_path / "w.pth"
    url = server.base + "/w.pth"
    with pytest.raises(DownloadError) as ei:
        download(url, dest, progress=False, chunk_size=16 * 1024)
    msg = str(ei.value)
    assert f"download {url} and save it as {dest}" in msg
    assert not dest.exists()
    assert _part(dest).read_bytes() == payload[:k]

    download(url, dest, progress=False, chunk_size=16 * 1024)
    assert server.state.requests[-1] == ("/w.pth", f"bytes={k}-")
    assert dest.read_bytes() == payload
    assert _sidecar(dest).read_text().split()[0] == _sha(payload)
    assert not _part(dest).exists()


def test_server_ignoring_range_restarts_from_zero(server, payload, tmp_path):
    server.state.files["/w.pth"] = payload
    server.state.ignore_range = True
    dest = tmp_path / "w.pth"
    _part(dest).write_bytes(b"\xff" * 5000)  # stale bytes that must not be kept
    download(server.base + "/w.pth", dest, progress=False)
    assert server.state.requests == [("/w.pth", "bytes=5000-")]
    assert dest.read_bytes() == payload
    assert not _part(dest).exists()


def test_416_complete_part_is_finalized_and_oversized_part_restarts(server, payload, tmp_path):
    server.state.files["/w.pth"] = payload
    url = server.base + "/w.pth"

    done = tmp_path / "done.pth"
    _part(done).write_bytes(payload)  # already complete: the server answers 416
    download(url, done, progress=False)
    assert done.read_bytes() == payload
    assert server.state.requests == [("/w.pth", f"bytes={len(payload)}-")]

    bad = tmp_path / "bad.pth"
    _part(bad).write_bytes(payload + b"junk")  # longer than the file: invalid, start again
    download(url, bad, progress=False)
    assert bad.read_bytes() == payload
    assert server.state.requests[-2:] == [("/w.pth", f"bytes={len(payload) + 4}-"), ("/w.pth", None)]


def test_wrong_expected_sha256(server, payload, tmp_path):
    server.state.files["/w.pth"] = payload
    dest = tmp_path / "w.pth"
    with pytest.raises(DownloadError, match="sha256"):
        download(server.base + "/w.pth", dest, expected_sha256="0" * 64, progress=False)
    assert not dest.exists()
    assert not _part(dest).exists()
    # ...and the right one is accepted.
    download(server.base + "/w.pth", dest, expected_sha256=_sha(payload).upper(), progress=False)
    assert dest.read_bytes() == payload


def test_http_error_and_bad_scheme(server, tmp_path):
    dest = tmp_path / "w.pth"
    url = server.base + "/missing.pth"
    with pytest.raises(DownloadError, match="404") as ei:
        download(url, dest, progress=False)
    assert f"download {url} and save it as {dest}" in str(ei.value)
    with pytest.raises(DownloadError, match="only http, https and file"):
        download("ftp://example.invalid/w.pth", dest, progress=False)


def test_file_url(payload, tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(payload)
    dest = tmp_path / "dst.pth"
    download(src.as_uri(), dest, progress=False)
    assert dest.read_bytes() == payload


# ----------------------------------------------------------------------------- zoo


def test_fetch_zoo_weights_caches_and_verifies(server, payload, isolated_cache):
    entry = ZOO["tp-r-a3"]
    server.state.files["/hub/" + entry.filename] = payload
    path = fetch_zoo_weights("tp-r-a3", progress=False, base_url=server.base + "/hub/")
    assert path == isolated_cache / "models" / entry.filename
    assert path.read_bytes() == payload
    assert len(server.state.requests) == 1

    again = fetch_zoo_weights("TP_R_A3", progress=False, base_url=server.base + "/hub")
    assert again == path
    assert len(server.state.requests) == 1  # served from the cache

    raw = bytearray(payload)
    raw[1000] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DownloadError) as ei:
        fetch_zoo_weights("tp-r-a3", progress=False, base_url=server.base + "/hub")
    assert str(path) in str(ei.value)
    assert "delete" in str(ei.value)
    assert len(server.state.requests) == 1


def test_fetch_hand_placed_file_is_trusted_then_checked(isolated_cache):
    entry = ZOO["tp-h-s"]
    path = isolated_cache / "models" / entry.filename
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights placed by hand")
    assert fetch_zoo_weights("tp-h-s", progress=False) == path  # no sidecar yet: recorded now
    assert _sidecar(path).read_text().split()[0] == _sha(b"weights placed by hand")
    path.write_bytes(b"weights changed")
    with pytest.raises(DownloadError, match=re.escape(str(path))):
        fetch_zoo_weights("tp-h-s", progress=False)


def test_offline_never_touches_network(monkeypatch, isolated_cache):
    monkeypatch.setenv("TRANSPOSE_STUDIO_OFFLINE", "1")

    def no_network(*a, **k):
        raise AssertionError("urlopen called while offline")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    entry = ZOO["tp-r-a3"]
    with pytest.raises(DownloadError) as ei:
        fetch_zoo_weights("tp-r-a3", progress=False)
    msg = str(ei.value)
    dest = isolated_cache / "models" / entry.filename
    assert "https://github.com/yangsenius/TransPose/releases/download/Hub/" + entry.filename in msg
    assert f"download {entry.url} and save it as {dest}" in msg
    assert not dest.exists()


def test_connection_refused_gives_manual_instructions(isolated_cache):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    entry = ZOO["tp-h-a6"]
    base = f"http://127.0.0.1:{port}/hub"
    with pytest.raises(DownloadError) as ei:
        fetch_zoo_weights("tp-h-a6", progress=False, base_url=base)
    dest = isolated_cache / "models" / entry.filename
    assert f"download {base}/{entry.filename} and save it as {dest}" in str(ei.value)
    assert "failed" in str(ei.value)
    assert not dest.exists()


EXPECTED = {
    "tp-r-a3": "tp_r_256x192_enc3_d256_h1024_mh8.pth",
    "tp-r-a4": "tp_r_256x192_enc4_d256_h1024_mh8.pth",
    "tp-h-s": "tp_h_32_256x192_enc4_d64_h128_mh1.pth",
    "tp-h-a4": "tp_h_48_256x192_enc4_d96_h192_mh1.pth",
    "tp-h-a6": "tp_h_48_256x192_enc6_d96_h192_mh1.pth",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_names_in_both_spellings(name):
    for spelling in (name, name.upper(), name.replace("-", "_"), name.upper().replace("-", "_")):
        assert is_zoo_name(spelling)
        e = get_entry(spelling)
        assert e.name == e.variant == name
        assert e.filename == EXPECTED[name]
        assert e.url == "https://github.com/yangsenius/TransPose/releases/download/Hub/" + EXPECTED[name]
        assert e.sha256 is None


def test_unknown_name():
    assert set(ZOO) == set(EXPECTED)
    for bad in ("tp-r-a5", "", "weights/tp-r-a3.pth", "tp_r_256x192_enc3_d256_h1024_mh8.pth"):
        assert not is_zoo_name(bad)
    with pytest.raises(StudioError) as ei:
        get_entry("tp-x-a9")
    msg = str(ei.value)
    assert "tp-x-a9" in msg
    assert all(n in msg for n in EXPECTED)


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSPOSE_STUDIO_CACHE", str(tmp_path / "a"))
    assert zoo.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("TRANSPOSE_STUDIO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert zoo.cache_dir() == tmp_path / "xdg" / "transpose-studio"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert zoo.cache_dir() == tmp_path / "home" / ".cache" / "transpose-studio"
    assert not (tmp_path / "home").exists()  # only computes the path
