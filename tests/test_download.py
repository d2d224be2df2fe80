"""The Quick, Draw! downloader against a local HTTP server (127.0.0.1, no internet)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from data_prep.quickdraw import DownloadError, download_file, main, url_for

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


@dataclass
class Behaviour:
    """How the test server answers: ``ranges`` honours ``Range``; ``cut`` requests (counted from 1)
    announce the full length but send only half and drop the connection; every request is logged."""

    root: Path
    ranges: bool = True
    cut: set[int] = field(default_factory=set)
    log: list[tuple[str, str | None]] = field(default_factory=list)


def make_handler(b: Behaviour):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            b.log.append((self.path, self.headers.get("Range")))
            path = b.root / unquote(self.path.lstrip("/"))
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start, status = 0, 200
            rng = self.headers.get("Range")
            if rng and b.ranges:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            body = data[start:]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if len(b.log) in b.cut:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[str, Behaviour]]:
    root = tmp_path / "bucket"
    (root / "full" / "simplified").mkdir(parents=True)
    for word in ("cat", "The Eiffel Tower"):
        (root / "full" / "simplified" / f"{word}.ndjson").write_bytes(PAYLOAD + word.encode())
    behaviour = Behaviour(root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(behaviour))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", behaviour
    httpd.shutdown()
    httpd.server_close()


def expected(word: str) -> bytes:
    return PAYLOAD + word.encode()


@pytest.mark.parametrize("word,quoted", [("cat", "cat.ndjson"), ("The Eiffel Tower", "The%20Eiffel%20Tower.ndjson")])
def test_urls(word, quoted):
    assert url_for(word) == f"https://storage.googleapis.com/quickdraw_dataset/full/simplified/{quoted}"
    assert url_for(word, "binary").endswith("/full/binary/" + quoted.replace(".ndjson", ".bin"))
    assert url_for(word, "raw", "http://x/").startswith("http://x/full/raw/")
    assert url_for(word, "sketchrnn").endswith("/sketchrnn/" + quoted.replace(".ndjson", ".npz"))


def test_plain_download(server, tmp_path):
    base, b = server
    dest = download_file(url_for("cat", base_url=base), tmp_path / "out" / "cat.ndjson", progress=False)
    assert dest.read_bytes() == expected("cat") and not dest.with_name("cat.ndjson.part").exists()
    download_file(url_for("cat", base_url=base), dest, progress=False)  # already there: no request
    assert len(b.log) == 1


@pytest.mark.parametrize("ranges", [True, False])
def test_cut_connection_resumes(server, tmp_path, ranges):
    base, b = server
    b.ranges, b.cut = ranges, {1}
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", backoff=0, progress=False)
    assert dest.read_bytes() == expected("cat")
    assert len(b.log) == 2
    half = len(expected("cat")) // 2
    assert b.log[1][1] == f"bytes={half}-"  # the retry continued from the .part (ignored without ranges)


def test_truncated_download_is_not_renamed(server, tmp_path):
    base, b = server
    b.cut = {1, 2, 3}
    dest = tmp_path / "cat.ndjson"
    with pytest.raises(DownloadError, match="3 attempts"):
        download_file(url_for("cat", base_url=base), dest, retries=2, backoff=0, progress=False)
    assert not dest.exists()
    part = tmp_path / "cat.ndjson.part"
    assert 0 < part.stat().st_size < len(expected("cat"))
    b.cut = set()
    download_file(url_for("cat", base_url=base), dest, backoff=0, progress=False)  # a later run finishes it
    assert dest.read_bytes() == expected("cat") and not part.exists()
    assert b.log[-1][1] == f"bytes={part_size(b)}-"


def part_size(b: Behaviour) -> int:
    """What the three cut transfers left: half, then half of the rest, twice."""
    n, have = len(expected("cat")), 0
    for _ in range(3):
        have += (n - have) // 2
    return have


def test_complete_part_is_renamed(server, tmp_path):
    base, b = server
    (tmp_path / "cat.ndjson.part").write_bytes(expected("cat"))
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", backoff=0, progress=False)
    assert dest.read_bytes() == expected("cat") and b.log[0][1] == f"bytes={len(expected('cat'))}-"


def test_missing_file_fails_at_once(server, tmp_path):
    base, b = server
    with pytest.raises(DownloadError, match="404"):
        download_file(url_for("dog", base_url=base), tmp_path / "dog.ndjson", backoff=0, progress=False)
    assert len(b.log) == 1 and not (tmp_path / "dog.ndjson").exists()


def test_cli_download(server, tmp_path, capsys):
    base, _ = server
    out = tmp_path / "qd"
    assert main(["download", "--kind", "simplified", "--classes", "cat,The Eiffel Tower", "--out", str(out),
                 "--base-url", base]) == 0
    assert (out / "The Eiffel Tower.ndjson").read_bytes() == expected("The Eiffel Tower")
    assert (out / "cat.ndjson").read_bytes() == expected("cat")
    assert main(["download", "--classes", "not a class", "--out", str(out), "--base-url", base]) == 1
    assert "not Quick, Draw! categories" in capsys.readouterr().err
