"""The Quick, Draw! downloader against a local HTTP server (127.0.0.1, no internet)."""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pytest

from data_prep import quickdraw
from data_prep.quickdraw import (
    DownloadError,
    LocalDownloadError,
    download,
    download_file,
    main,
    read_source,
    source_path,
    url_for,
)

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes
RAW_CAT = bytes(range(255, -1, -1)) * 300  # another kind's file of the same name


@dataclass
class Behaviour:
    """How the test server answers: ``ranges`` honours ``Range``; ``cut`` requests (counted from 1)
    announce the full length but send only half and drop the connection; every request is logged."""

    root: Path
    ranges: bool = True
    cut: set[int] = field(default_factory=set)
    log: list[tuple[str, str | None]] = field(default_factory=list)
    etag: str | None = None  # sent as ETag; an If-Range naming another one gets the whole file (200)
    length: bool = True  # False: no Content-Length, the body ends when the connection closes
    fail: int = 0  # answer this many requests with HTTP 500 first
    if_range: list[str | None] = field(default_factory=list)  # the If-Range header of each request
    broken: set[str] = field(default_factory=set)  # these paths always answer HTTP 500
    md5: str | None = None  # sent as x-goog-hash md5= (base64) on 200 responses
    content_length: str | None = None  # sent instead of the real Content-Length
    hold: threading.Event | None = None  # the body waits for it (after the headers)


def make_handler(b: Behaviour):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            b.log.append((self.path, self.headers.get("Range")))
            b.if_range.append(self.headers.get("If-Range"))
            if len(b.log) <= b.fail or unquote(self.path) in b.broken:
                self.send_error(500)
                return
            path = b.root / unquote(self.path.lstrip("/"))
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start, status = 0, 200
            rng = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if if_range is not None and (if_range != b.etag or if_range.startswith("W/")):
                rng = None  # another version, or a weak ETag (RFC 9110 13.1.5): send it all
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
            if b.etag:
                self.send_header("ETag", b.etag)
            if b.md5 and status == 200:
                self.send_header("x-goog-hash", "crc32c=n03x6A==")
                self.send_header("x-goog-hash", f"md5={b.md5}")
            if b.content_length is not None:
                self.send_header("Content-Length", b.content_length)
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True
                return
            if not b.length:
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if len(b.log) in b.cut else body)
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if b.hold is not None:
                b.hold.wait(10)
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
    (root / "full" / "raw").mkdir(parents=True)
    (root / "full" / "raw" / "cat.ndjson").write_bytes(RAW_CAT)
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


@pytest.mark.parametrize("given, got", [
    (["cat", "alarm_clock", "Alarm  Clock", "", " ", "the eiffel tower"], ["cat", "alarm clock", "The Eiffel Tower"]),
    (["cat", "cat"], ["cat"]),
])
def test_category_names_are_matched_as_the_rest_of_the_project_matches_them(given, got):
    """``alarm_clock`` (as SPG names its files) and a trailing comma (``--classes cat,``) were refused."""
    from data_prep.quickdraw import official_categories

    assert official_categories(given) == got


@pytest.mark.parametrize("given, message", [
    (["catt", "alarm_clok"], "not Quick, Draw! categories: 'catt' (did you mean cat?), 'alarm_clok' (did you mean "
                             "alarm clock?) (the 345 categories are data_prep.quickdraw.CATEGORIES)"),
    (["zzzz"], "not Quick, Draw! categories: 'zzzz' (the 345 categories are data_prep.quickdraw.CATEGORIES)"),
    (["", "  "], "no category named: give one or more, e.g. --classes 'cat,alarm clock'"),
])
def test_a_name_that_is_no_category_is_refused_with_the_nearest(given, message):
    from data_prep.quickdraw import official_categories

    with pytest.raises(ValueError) as refused:
        official_categories(given)
    assert str(refused.value) == message


def test_a_part_of_another_kind_is_not_continued(server, tmp_path):
    """raw and simplified files share names: a ``.part`` recorded for the simplified URL is discarded when the
    raw file is downloaded into the same folder, and the finished simplified file is not taken for the raw one."""
    base, b = server
    b.cut = {1}
    with pytest.raises(DownloadError, match=r"cat.ndjson.part \(51,\d+ bytes\) is kept"):
        download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", retries=0, progress=False)
    dest = download_file(url_for("cat", "raw", base), tmp_path / "cat.ndjson", backoff=0, progress=False)
    assert dest.read_bytes() == RAW_CAT and b.log[-1] == ("/full/raw/cat.ndjson", None)  # from byte 0
    with pytest.raises(DownloadError, match="holds .*/full/raw/cat.ndjson, not .*simplified"):
        download_file(url_for("cat", base_url=base), dest, progress=False)
    assert dest.read_bytes() == RAW_CAT
    assert main(["download", "--classes", "cat", "--out", str(tmp_path), "--base-url", base]) == 1


def test_a_file_no_download_recorded_is_kept_said_and_refused_when_of_the_other_kind(server, tmp_path, capsys):
    """A file copied into the folder has no ``.source`` record: it was taken as finished in silence, even a
    simplified file where raw ones were asked (they share names). Its drawings now tell its kind: the other kind
    stops the run; the right kind is kept, and the run says which files it could not check."""
    base, b = server
    simplified = '{"word": "cat", "key_id": "1", "drawing": [[[0, 10, 20], [0, 5, 0]]]}\n'
    raw = '{"word": "cat", "key_id": "2", "drawing": [[[0.5, 10.5, 20.5], [0, 5, 0], [0, 16, 33]]]}\n'
    (tmp_path / "cat.ndjson").write_text(simplified)
    assert main(["download", "--kind", "raw", "--classes", "cat", "--out", str(tmp_path), "--base-url", base]) == 1
    assert capsys.readouterr().err == (
        f"python -m data_prep.quickdraw: error: {tmp_path / 'cat.ndjson'} is already there, with simplified drawings "
        "where raw ones are wanted (raw and simplified files have the same names); move it away, or download into "
        "another folder\n")
    assert (tmp_path / "cat.ndjson").read_text() == simplified and b.log == []
    for kind, text in (("simplified", simplified), ("raw", raw)):
        (tmp_path / "cat.ndjson").write_text(text)
        assert main(["download", "--kind", kind, "--classes", "cat", "--out", str(tmp_path), "--base-url", base]) == 0
        captured = capsys.readouterr()
        assert captured.err == (f"note: kept 1 file already in {tmp_path} that no download recorded (cat.ndjson): "
                                "neither size nor checksum could be checked; delete one to download it again\n")
        assert captured.out == f"1 file in {tmp_path}\n" and b.log == []
    (tmp_path / "cat.ndjson").unlink()
    assert main(["download", "--kind", "raw", "--classes", "cat", "--out", str(tmp_path), "--base-url", base]) == 0
    assert (tmp_path / "cat.ndjson").read_bytes() == RAW_CAT and "note:" not in capsys.readouterr().err
    assert main(["download", "--kind", "raw", "--classes", "cat", "--out", str(tmp_path), "--base-url", base]) == 0
    assert "note:" not in capsys.readouterr().err  # its own download, recorded: nothing to say


@pytest.mark.parametrize("base_url", ["file:///tmp/mirror", "ftp://example.org/qd", "storage.googleapis.com/qd"])
def test_a_base_url_that_is_not_http_is_refused_at_once(tmp_path, capsys, base_url):
    """``file://`` was tried (and retried with back-off) per class, failing with "HTTP None"."""
    assert main(["download", "--classes", "cat", "--out", str(tmp_path / "qd"), "--base-url", base_url]) == 1
    assert capsys.readouterr().err == (
        f"python -m data_prep.quickdraw: error: base_url (--base-url) must be an http:// or https:// URL, got "
        f"{base_url!r}: files are fetched over HTTP (a local copy needs no download: prepare it where it lies)\n")
    assert not (tmp_path / "qd").exists()


def test_a_file_changed_on_the_server_starts_over(server, tmp_path):
    base, b = server
    b.cut, b.etag = {1}, '"v1"'
    with pytest.raises(DownloadError):
        download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", retries=0, progress=False)
    word = b.root / "full" / "simplified" / "cat.ndjson"
    word.write_bytes(b"new version " + PAYLOAD)
    b.etag = '"v2"'
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", backoff=0, progress=False)
    assert dest.read_bytes() == word.read_bytes()  # If-Range "v1" got the whole new file, not a splice


def test_a_size_the_server_does_not_state_is_warned_about(server, tmp_path, capsys):
    base, b = server
    b.length = False
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", progress=False)
    assert dest.read_bytes() == expected("cat")
    assert "stated no size" in capsys.readouterr().err


def test_errors_say_what_happened(server, tmp_path, capsys):
    base, b = server
    b.fail = 10
    with pytest.raises(DownloadError, match=r"failed after 2 attempts \(HTTP Error 500") as exc:
        download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", retries=1, backoff=0, progress=False)
    assert "partial file" not in str(exc.value)  # no byte arrived: there is no .part to keep
    b.fail, b.log[:] = 0, []
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "cat.ndjson.part").mkdir()  # a local problem: not retried
    with pytest.raises(DownloadError, match="Is a directory"):
        download_file(url_for("cat", base_url=base), tmp_path / "dog" / "cat.ndjson", backoff=0, progress=False)
    assert len(b.log) <= 1
    (tmp_path / "afile").write_text("x")
    assert main(["download", "--classes", "cat", "--out", str(tmp_path / "afile" / "sub"), "--base-url", base]) == 1
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["download", "--classes", "cat", "--out", str(tmp_path), "--retries", "-1"])
    assert "must be >= 0" in capsys.readouterr().err


def test_the_same_file_from_a_mirror_is_the_same_file(server, tmp_path):
    """``download`` records what a file is (``full/simplified/cat.ndjson``), not the host it came from."""
    base, b = server
    (path,) = download(["cat"], tmp_path, base_url=base, progress=False)
    assert read_source(path)["source"] == "full/simplified/cat.ndjson"
    mirror = base.replace("127.0.0.1", "localhost")
    assert download(["cat"], tmp_path, base_url=mirror, progress=False) == [path] and len(b.log) == 1
    with pytest.raises(DownloadError, match="holds full/simplified/cat.ndjson, not full/raw/cat.ndjson"):
        download(["cat"], tmp_path, kind="raw", base_url=mirror, progress=False)


def test_a_weak_etag_is_not_sent_in_if_range(server, tmp_path):
    base, b = server
    b.cut, b.etag = {1}, 'W/"v1"'
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", backoff=0, progress=False)
    assert dest.read_bytes() == expected("cat") and b.if_range == [None, None]  # resumed with a plain Range
    b.cut, b.etag, b.log[:], b.if_range[:] = {1}, '"v2"', [], []
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat2.ndjson", backoff=0, progress=False)
    assert dest.read_bytes() == expected("cat") and b.if_range == [None, '"v2"']  # a strong one is sent


def test_downloads_into_one_folder_at_once(server, tmp_path):
    """Each file keeps its own record: parallel downloads into one folder do not trip over each other."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    base, b = server
    words = [f"w{i}" for i in range(24)]
    for w in words:
        shutil.copy(b.root / "full" / "simplified" / "cat.ndjson", b.root / "full" / "simplified" / f"{w}.ndjson")
    with ThreadPoolExecutor(6) as pool:
        paths = list(pool.map(lambda w: download_file(url_for(w, base_url=base), tmp_path / f"{w}.ndjson",
                                                      retries=0, progress=False), words))
    assert all(p.read_bytes() == expected("cat") for p in paths)
    assert all(read_source(p)["url"].endswith(f"/{p.name}") for p in paths)
    assert not list(tmp_path.glob("*.tmp*")) and not list(tmp_path.glob(".*.tmp*"))


def test_a_tls_error_during_the_transfer_is_retried(server, tmp_path, monkeypatch):
    """``ssl.SSLError`` has errno 1 (EPERM): it is a network error, retried, not a local one."""
    import ssl

    import data_prep.quickdraw as qd

    base, _ = server
    real, calls = qd.urlopen, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(qd, "urlopen", flaky)
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", backoff=0, progress=False)
    assert dest.read_bytes() == expected("cat") and len(calls) == 2


# ---------------------------------------------------------------------------------------- several files, failures
def test_a_failing_file_does_not_stop_the_others(server, tmp_path, capsys):
    """Every class is tried; the failures are listed at the end, with exit status 1 from the script."""
    base, b = server
    b.broken = {"/full/simplified/cat.ndjson"}
    with pytest.raises(DownloadError) as failed:
        download(["cat", "The Eiffel Tower"], tmp_path, base_url=base, retries=1, backoff=0, progress=False)
    assert str(failed.value) == "1 of 2 files failed: cat (HTTP 500); rerun to resume"
    assert (tmp_path / "The Eiffel Tower.ndjson").read_bytes() == expected("The Eiffel Tower")
    tried = [path for path, _ in b.log]
    assert tried == ["/full/simplified/cat.ndjson"] * 2 + ["/full/simplified/The%20Eiffel%20Tower.ndjson"]
    capsys.readouterr()
    assert main(["download", "--classes", "cat,The Eiffel Tower", "--out", str(tmp_path), "--base-url", base,
                 "--retries", "0"]) == 1
    err = capsys.readouterr().err
    assert err.endswith("python -m data_prep.quickdraw: error: 1 of 2 files failed: cat (HTTP 500); rerun to resume\n")
    assert f"failed: {base}/full/simplified/cat.ndjson: failed after 1 attempt (HTTP Error 500" in err


def test_failures_in_a_row_stop_the_download(server, tmp_path):
    base, b = server
    b.broken = {"/full/simplified/cat.ndjson", "/full/simplified/The Eiffel Tower.ndjson"}
    with pytest.raises(DownloadError) as failed:
        download(["cat", "The Eiffel Tower", "dog"], tmp_path, base_url=base, retries=0, progress=False, stop_after=2)
    assert str(failed.value) == ("2 of 3 files failed: cat (HTTP 500), The Eiffel Tower (HTTP 500); stopped after 2 "
                                 "failed files in a row, 1 not tried (is the server or the network down?); rerun to "
                                 "resume")
    assert len(b.log) == 2  # dog was not asked for


def test_a_server_name_that_cannot_be_found_stops_the_download_at_once(tmp_path, monkeypatch):
    """Offline, every attempt failed at name resolution, and each file took its 5 retries and back-off (about 31 s
    a file, 2.5 minutes to the stop after five): a name that cannot be resolved is not retried, and the files after
    it are not tried (they are on the same server)."""
    import socket

    asked: list[str] = []

    def no_dns(host, *args, **kwargs):
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(DownloadError) as failed:
        download(["cat", "dog", "apple"], tmp_path, base_url="http://storage.example.org/qd/", progress=False)
    assert str(failed.value) == ("1 of 3 files failed: cat (server not found); stopped there, 2 not tried: the "
                                 "server's name cannot be found (no network?); rerun to resume")
    assert asked == ["storage.example.org"]  # once: no retry, no other file
    with pytest.raises(DownloadError, match=r"^http://storage\.example\.org/qd/full/simplified/cat\.ndjson: cannot "
                                            r"find the server storage\.example\.org \(Name or service not known\): "
                                            r"no network, or a wrong --base-url$"):
        download_file(url_for("cat", "simplified", "http://storage.example.org/qd/"), tmp_path / "cat.ndjson")

    def slow_dns(host, *args, **kwargs):  # a resolver that timed out: a passing failure, retried
        asked.append(host)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", slow_dns)
    asked.clear()
    with pytest.raises(DownloadError, match=r"failed after 3 attempts \(<urlopen error \[Errno -3\] Temporary"):
        download_file(url_for("cat", "simplified", "http://storage.example.org/qd/"), tmp_path / "cat.ndjson",
                      retries=2, backoff=0.01)
    assert len(asked) == 3


def test_a_local_error_stops_the_download_at_once(server, tmp_path):
    """A folder where a file should go (or a full disk) would fail every file: no further class is tried."""
    base, b = server
    (tmp_path / "cat.ndjson").mkdir()
    with pytest.raises(LocalDownloadError, match=r"cat.ndjson is in the way: it is not a file; move it away"):
        download(["cat", "The Eiffel Tower"], tmp_path, base_url=base, backoff=0, progress=False)
    assert b.log == [] and not (tmp_path / "The Eiffel Tower.ndjson").exists()


# ---------------------------------------------------------------------------------------- an existing file
def test_an_empty_file_is_downloaded_again(server, tmp_path, capsys):
    base, b = server
    (tmp_path / "cat.ndjson").write_bytes(b"")
    (path,) = download(["cat"], tmp_path, base_url=base, progress=False)
    assert path.read_bytes() == expected("cat") and len(b.log) == 1
    assert f"warning: {path} is empty; downloading it again" in capsys.readouterr().err


def test_a_file_not_of_the_recorded_size_is_downloaded_again(server, tmp_path, capsys):
    base, b = server
    (path,) = download(["cat"], tmp_path, base_url=base, progress=False)
    size = len(expected("cat"))
    assert read_source(path)["size"] == size  # recorded when finished
    path.write_bytes(expected("cat")[:1000])  # what a power loss may leave
    assert download(["cat"], tmp_path, base_url=base, progress=False) == [path]
    assert path.read_bytes() == expected("cat") and len(b.log) == 2 and b.log[1][1] is None  # from byte 0
    assert f"warning: {path} has 1,000 bytes, but {size:,} were downloaded; downloading it again" in \
        capsys.readouterr().err
    download(["cat"], tmp_path, base_url=base, progress=False)  # now it is whole: no request
    assert len(b.log) == 2


def test_the_file_is_flushed_to_disk_before_its_rename(server, tmp_path, sync_events):
    base, _ = server
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", progress=False)
    part = str(tmp_path / "cat.ndjson.part")
    flushed, renamed = ("fsync", part), ("replace", part, str(dest))
    assert flushed in sync_events and renamed in sync_events
    assert sync_events.index(flushed) < sync_events.index(renamed) < sync_events.index(("fsync", str(tmp_path)))
    sidecar = [e for e in sync_events if e[0] == "replace" and e[2] == str(source_path(dest))]
    assert sidecar and all(("fsync", e[1]) in sync_events[: sync_events.index(e)] for e in sidecar)


# ---------------------------------------------------------------------------------------- what the server states
def md5_b64(data: bytes) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.md5(data).digest()).decode()


def test_the_md5_the_server_states_is_checked(server, tmp_path):
    import hashlib

    base, b = server
    b.md5 = md5_b64(expected("cat"))
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", progress=False)
    assert dest.read_bytes() == expected("cat")
    assert read_source(dest)["md5"] == hashlib.md5(expected("cat")).hexdigest()
    b.md5 = md5_b64(b"another file")
    bad = tmp_path / "bad" / "cat.ndjson"
    with pytest.raises(DownloadError, match=r"failed after 2 attempts \(.*/cat.ndjson: MD5 [0-9a-f]{32} of the "
                                            r"cat.ndjson.part received is not the [0-9a-f]{32} the server stated"):
        download_file(url_for("cat", base_url=base), bad, retries=1, backoff=0, progress=False)
    assert not bad.exists() and not bad.with_name("cat.ndjson.part").exists()  # the wrong bytes are not kept


def test_a_resumed_file_is_checked_against_the_md5_of_its_first_response(server, tmp_path):
    """The server states the MD5 on the first (200) response only; the resumed (206) rest is checked against it."""
    base, b = server
    b.cut, b.md5 = {1}, md5_b64(b"another file")
    with pytest.raises(DownloadError, match="MD5 mismatch|is not the"):
        download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", retries=1, backoff=0, progress=False)
    assert b.log[1][1] is not None  # the second request resumed
    b.cut, b.md5, b.log[:] = {1}, md5_b64(expected("cat")), []
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", retries=1, backoff=0,
                         progress=False)
    assert dest.read_bytes() == expected("cat") and b.log[1][1] is not None


def test_a_malformed_content_length_names_the_url(server, tmp_path):
    base, b = server
    b.content_length = "abc"
    url = url_for("cat", base_url=base)
    with pytest.raises(DownloadError, match=f"{url}: failed after 2 attempts \\({url}: bad Content-Length 'abc'\\)"):
        download_file(url, tmp_path / "cat.ndjson", retries=1, backoff=0, progress=False)
    assert len(b.log) == 2  # retried, like any bad response


# ---------------------------------------------------------------------------------------- two downloads of one file
def test_a_file_another_download_is_writing_is_skipped(server, tmp_path):
    base, b = server
    b.hold = threading.Event()
    dest = tmp_path / "cat.ndjson"
    first = threading.Thread(target=download_file, args=(url_for("cat", base_url=base), dest),
                             kwargs={"progress": False})
    first.start()
    try:
        for _ in range(500):
            if b.log:
                break
            threading.Event().wait(0.01)
        with pytest.raises(DownloadError, match="^cat.ndjson is being downloaded by another process; skipped$"):
            download_file(url_for("cat", base_url=base), dest, progress=False)
        assert len(b.log) == 1  # the second made no request
    finally:
        b.hold.set()
        first.join(10)
    assert dest.read_bytes() == expected("cat") and not dest.with_name("cat.ndjson.part").exists()


# ------------------------------------------------------------------------------------ file systems without locks
def open_paths() -> set[str]:
    """The paths this process holds open (Linux: ``/proc/self/fd``)."""
    paths = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            paths.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return paths


@pytest.fixture
def renames(monkeypatch) -> list[tuple[str, set[str]]]:
    """Each ``os.replace`` the downloader makes, with the paths open at that moment (Windows refuses to rename an
    open file, so the ``.part`` must not be among them where it is not locked)."""
    calls: list[tuple[str, set[str]]] = []
    real = os.replace

    def replace(src, dst):
        calls.append((str(src), open_paths()))
        return real(src, dst)

    monkeypatch.setattr(quickdraw.os, "replace", replace)
    return calls


class FakeFcntl:
    """``fcntl`` whose ``flock`` fails with ``code``."""

    LOCK_EX, LOCK_NB = 2, 4

    def __init__(self, code: int) -> None:
        self.code, self.calls = code, 0

    def flock(self, fd: int, how: int) -> None:
        self.calls += 1
        raise OSError(self.code, os.strerror(self.code))


@pytest.mark.parametrize("code", ["ENOLCK", "EOPNOTSUPP", "ENOSYS", "EINVAL"])
def test_a_file_system_without_locks_downloads_unlocked_saying_so_once(server, tmp_path, monkeypatch, capsys,
                                                                       renames, code):
    """NFS without lockd answers ``flock`` with ENOLCK (others with EOPNOTSUPP, ENOSYS, EINVAL): the download goes
    on unlocked, as it did before files were locked, with one warning for the whole run, no descriptor left open,
    and no ``.part`` open at its rename."""
    base, b = server
    fake = FakeFcntl(getattr(errno, code))
    monkeypatch.setattr(quickdraw, "fcntl", fake)
    monkeypatch.setattr(quickdraw, "_said_unlocked", False, raising=False)
    before = open_paths()
    words = ["cat", "The Eiffel Tower"]
    assert download(words, tmp_path, base_url=base, retries=0, progress=False) == [tmp_path / f"{w}.ndjson"
                                                                                  for w in words]
    assert fake.calls == 2 and all((tmp_path / f"{w}.ndjson").read_bytes() == expected(w) for w in words)
    assert not list(tmp_path.glob("*.part"))
    err = capsys.readouterr().err
    assert err.count("cannot be locked") == 1
    assert f"warning: {tmp_path}: files cannot be locked there ({os.strerror(getattr(errno, code))}); downloading " \
           "without locks, so run one download into that folder at a time" in err
    parts = [str(tmp_path / f"{w}.ndjson.part") for w in words]
    assert [src for src, _ in renames if src.endswith(".part")] == parts
    assert all(src not in held for src, held in renames if src.endswith(".part"))  # sidecars: their writer's lock
    assert open_paths() <= before


def test_another_locking_error_is_a_local_error_that_leaks_no_descriptor(server, tmp_path, monkeypatch):
    """``flock`` failing otherwise (EIO) stops the download as a local error naming the file, its descriptor
    closed; nothing is requested."""
    base, b = server
    monkeypatch.setattr(quickdraw, "fcntl", FakeFcntl(errno.EIO))
    part = tmp_path / "cat.ndjson.part"
    with pytest.raises(LocalDownloadError, match=f"^{part}: cannot lock it: {os.strerror(errno.EIO)}$"):
        download(["cat", "The Eiffel Tower"], tmp_path, base_url=base, retries=0, progress=False)
    assert b.log == [] and str(part) not in open_paths()


def test_without_locking_the_part_is_closed_before_its_rename(server, tmp_path, monkeypatch, capsys, renames):
    """Where there is no ``fcntl`` (Windows) nothing is locked and no descriptor of the ``.part`` (or of a sidecar's
    temporary) is held: Windows refuses to rename an open file, which would fail every download. An empty ``.part``
    is not left behind."""
    import sketchgraph.temporaries as temporaries

    base, b = server
    monkeypatch.setattr(quickdraw, "fcntl", None)
    monkeypatch.setattr(temporaries, "fcntl", None)  # nor are the sidecars atomic_write writes
    dest = download_file(url_for("cat", base_url=base), tmp_path / "cat.ndjson", progress=False)
    assert dest.read_bytes() == expected("cat") and not list(tmp_path.glob("*.part"))
    assert [src for src, _ in renames if src.endswith(".part")] == [str(tmp_path / "cat.ndjson.part")]
    assert all(src not in held for src, held in renames)
    assert "cannot be locked" not in capsys.readouterr().err  # Windows: as documented, no warning
    b.broken = {"/full/simplified/The Eiffel Tower.ndjson"}
    with pytest.raises(DownloadError, match="HTTP Error 500"):
        download_file(url_for("The Eiffel Tower", base_url=base), tmp_path / "x.ndjson", retries=0, progress=False)
    assert not (tmp_path / "x.ndjson.part").exists()
