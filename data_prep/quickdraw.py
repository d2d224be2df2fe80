"""Quick, Draw! (Google Creative Lab, CC BY 4.0): download the per-class files and prepare the
QuickDraw-414k protocol of the MGT paper (345 classes x 1000 / 100 / 100 drawings). The official runs use fixed
lists of drawings that are not reproduced here: this is a seeded re-sample of the same sizes, and keeping
``recognized`` drawings only is this project's choice.

Downloads are resumable (an interrupted file continues from its ``.part`` with an HTTP ``Range``
request, guarded by ``If-Range`` so a file changed on the server starts over), size-checked (the bytes
received must match ``Content-Length`` / ``Content-Range``; a short file is never renamed into place; a
server that states no size gets a warning), checked against the MD5 the bucket states (``x-goog-hash``) when it
states one, flushed to disk (fsync) before the rename, retried with back-off, and shown with a progress bar. Next
to each file a hidden ``.<name>.source`` (JSON: what it is, e.g. ``full/raw/cat.ndjson``, the server's validator and
MD5, and the finished size) records where it came from, so a ``.part`` left by another kind (``raw`` and
``simplified`` files share names) is never continued, a finished file of another kind is refused instead of being
taken as this one (a file found without a record, copied there, is kept unless its drawings are of the other kind,
and named at the end: nothing else of it can be checked), and a finished file whose size no longer matches its
record (or an empty one) is downloaded again; the same file from a mirror (``--base-url``) is the same file. One
sidecar per file, and each ``.part`` is locked (``flock``) while it is written, so several downloads can run into
one folder at once: a file another process is downloading is skipped (where files cannot be locked, on Windows or a
file system without locks, the download goes on unlocked, saying so once). A file that fails (after its retries)
does not stop the others: every class is tried, and the failures are listed at the end (exit status 1; rerunning
resumes)::

    python -m data_prep.quickdraw download --kind simplified --classes cat,dog --out data/quickdraw
    python -m data_prep.quickdraw download --kind simplified --out data/quickdraw        # all 345
    python -m data_prep.quickdraw prepare414k data/quickdraw prepared/quickdraw414k

``prepare414k`` samples, per class, 1,200 of the drawings marked ``recognized`` with a seeded hash
(see ``sketchgraph.data.splits``) and splits them 1000 / 100 / 100. Simplified files are used as they
are (only normalised to 0..255 and capped at 100 points, as the paper); raw files are simplified first. Every
file's kind is sniffed, and a folder mixing the two kinds is refused, naming a file of each.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import errno
import hashlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterable
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlsplit
from urllib.request import Request, urlopen

from tqdm.auto import tqdm

try:  # POSIX: a .part being written is locked, so two downloads of one file into one folder do not interleave
    import fcntl
except ImportError:  # Windows: no locking
    fcntl = None  # type: ignore[assignment]

from data_prep import RUN_FROM_ROOT, add_prepare_options, existing_folder, resume_note, run_script, script_parser
from sketchgraph.formats.base import atomic_write, canonical_label, fsync_dir, fsync_path, sync_file

__all__ = [
    "CATEGORIES", "BASE_URL", "KINDS", "url_for", "file_name", "download_file", "download", "DownloadError",
    "LocalDownloadError", "ndjson_files", "prepare_414k", "quickdraw_kind", "main",
]

BASE_URL = "https://storage.googleapis.com/quickdraw_dataset"

KINDS: dict[str, tuple[str, str]] = {
    "simplified": ("full/simplified", ".ndjson"),
    "raw": ("full/raw", ".ndjson"),
    "binary": ("full/binary", ".bin"),
    "sketchrnn": ("sketchrnn", ".npz"),
}
"""Download kind -> (folder in the bucket, file suffix)."""

# The 345 categories of Google's categories.txt.
CATEGORIES: tuple[str, ...] = (
    "aircraft carrier", "airplane", "alarm clock", "ambulance", "angel", "animal migration", "ant", "anvil", "apple",
    "arm", "asparagus", "axe", "backpack", "banana", "bandage", "barn", "baseball", "baseball bat", "basket",
    "basketball", "bat", "bathtub", "beach", "bear", "beard", "bed", "bee", "belt", "bench", "bicycle", "binoculars",
    "bird", "birthday cake", "blackberry", "blueberry", "book", "boomerang", "bottlecap", "bowtie", "bracelet",
    "brain", "bread", "bridge", "broccoli", "broom", "bucket", "bulldozer", "bus", "bush", "butterfly", "cactus",
    "cake", "calculator", "calendar", "camel", "camera", "camouflage", "campfire", "candle", "cannon", "canoe",
    "car", "carrot", "castle", "cat", "ceiling fan", "cell phone", "cello", "chair", "chandelier", "church",
    "circle", "clarinet", "clock", "cloud", "coffee cup", "compass", "computer", "cookie", "cooler", "couch", "cow",
    "crab", "crayon", "crocodile", "crown", "cruise ship", "cup", "diamond", "dishwasher", "diving board", "dog",
    "dolphin", "donut", "door", "dragon", "dresser", "drill", "drums", "duck", "dumbbell", "ear", "elbow",
    "elephant", "envelope", "eraser", "eye", "eyeglasses", "face", "fan", "feather", "fence", "finger",
    "fire hydrant", "fireplace", "firetruck", "fish", "flamingo", "flashlight", "flip flops", "floor lamp", "flower",
    "flying saucer", "foot", "fork", "frog", "frying pan", "garden", "garden hose", "giraffe", "goatee", "golf club",
    "grapes", "grass", "guitar", "hamburger", "hammer", "hand", "harp", "hat", "headphones", "hedgehog",
    "helicopter", "helmet", "hexagon", "hockey puck", "hockey stick", "horse", "hospital", "hot air balloon",
    "hot dog", "hot tub", "hourglass", "house", "house plant", "hurricane", "ice cream", "jacket", "jail",
    "kangaroo", "key", "keyboard", "knee", "knife", "ladder", "lantern", "laptop", "leaf", "leg", "light bulb",
    "lighter", "lighthouse", "lightning", "line", "lion", "lipstick", "lobster", "lollipop", "mailbox", "map",
    "marker", "matches", "megaphone", "mermaid", "microphone", "microwave", "monkey", "moon", "mosquito",
    "motorbike", "mountain", "mouse", "moustache", "mouth", "mug", "mushroom", "nail", "necklace", "nose", "ocean",
    "octagon", "octopus", "onion", "oven", "owl", "paint can", "paintbrush", "palm tree", "panda", "pants",
    "paper clip", "parachute", "parrot", "passport", "peanut", "pear", "peas", "pencil", "penguin", "piano",
    "pickup truck", "picture frame", "pig", "pillow", "pineapple", "pizza", "pliers", "police car", "pond", "pool",
    "popsicle", "postcard", "potato", "power outlet", "purse", "rabbit", "raccoon", "radio", "rain", "rainbow",
    "rake", "remote control", "rhinoceros", "rifle", "river", "roller coaster", "rollerskates", "sailboat",
    "sandwich", "saw", "saxophone", "school bus", "scissors", "scorpion", "screwdriver", "sea turtle", "see saw",
    "shark", "sheep", "shoe", "shorts", "shovel", "sink", "skateboard", "skull", "skyscraper", "sleeping bag",
    "smiley face", "snail", "snake", "snorkel", "snowflake", "snowman", "soccer ball", "sock", "speedboat", "spider",
    "spoon", "spreadsheet", "square", "squiggle", "squirrel", "stairs", "star", "steak", "stereo", "stethoscope",
    "stitches", "stop sign", "stove", "strawberry", "streetlight", "string bean", "submarine", "suitcase", "sun",
    "swan", "sweater", "swing set", "sword", "syringe", "t-shirt", "table", "teapot", "teddy-bear", "telephone",
    "television", "tennis racquet", "tent", "The Eiffel Tower", "The Great Wall of China", "The Mona Lisa", "tiger",
    "toaster", "toe", "toilet", "tooth", "toothbrush", "toothpaste", "tornado", "tractor", "traffic light", "train",
    "tree", "triangle", "trombone", "truck", "trumpet", "umbrella", "underwear", "van", "vase", "violin",
    "washing machine", "watermelon", "waterslide", "whale", "wheel", "windmill", "wine bottle", "wine glass",
    "wristwatch", "yoga", "zebra", "zigzag",
)


_NO_NAME = {code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if code}
HOST_NOT_FOUND = "server not found"
"""``DownloadError.reason`` of a file whose server's name could not be resolved: ``download`` stops at it."""


class DownloadError(RuntimeError):
    """A file could not be downloaded completely (its ``.part``, if any, is kept for the next attempt). ``reason``
    is the short cause a summary of several files lists (``HTTP 500``); the message is the whole story."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class LocalDownloadError(DownloadError):
    """A local file operation failed (a folder in the way, no permission, a full disk): it would fail for every
    other file too, so ``download`` stops at once instead of going on to the next class."""


class _LocalError(Exception):
    """An ``OSError`` of a local file operation (a folder in the way, no permission, a full disk): retrying cannot
    help, unlike a network error."""


def _local(action: Callable[[], Any], path: Path) -> Any:
    """``action()``, its ``OSError`` raised as ``_LocalError`` naming ``path``."""
    try:
        return action()
    except OSError as exc:
        raise _LocalError(f"{path}: {exc.strerror or exc}") from None


def source_path(dest: Path) -> Path:
    """The sidecar recording where ``dest`` (or its ``.part``) came from: ``.<name>.source`` beside it."""
    return dest.with_name(f".{dest.name}.source")


def read_source(dest: Path) -> dict[str, str] | None:
    """``{"source": what the file is, "url": ..., "validator": ETag or Last-Modified}`` of ``dest``; ``None``
    when there is no readable record (a file from elsewhere, or downloaded before records were kept)."""
    try:
        data = json.loads(source_path(dest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_source(dest: Path, entry: dict[str, Any]) -> None:
    """Write ``dest``'s sidecar atomically and durably (``atomic_write`` with an fsync before its rename; the
    folder is synced by the caller once the file itself is in place)."""
    with atomic_write(source_path(dest), "w", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")
        sync_file(f)


def _stated_md5(headers: Any) -> str | None:
    """The MD5 (hex) a Google Cloud Storage response states for the whole object: ``x-goog-hash: crc32c=...,
    md5=<base64>`` (one header or several); ``None`` when there is none (a composite object has only a CRC32C)."""
    for header in headers.get_all("x-goog-hash") or []:
        for item in header.split(","):
            name, _, value = item.strip().partition("=")
            if name.lower() == "md5" and value:
                try:
                    return base64.b64decode(value, validate=True).hex()
                except (binascii.Error, ValueError):
                    return None
    return None


def _md5_of(path: Path, block: int = 1 << 20) -> str:
    """The MD5 (hex) of the file ``path``."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def _validator(headers: Any) -> str | None:
    """What ``If-Range`` may name: a strong ETag, else Last-Modified (a weak ``W/`` ETag is not allowed there,
    and a server following RFC 9110 would then ignore the range)."""
    etag = headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return headers.get("Last-Modified")


def file_name(word: str, kind: str) -> str:
    """The local file name of a class: ``"ice cream", "simplified"`` -> ``"ice cream.ndjson"``."""
    return word + KINDS[kind][1]


def url_for(word: str, kind: str = "simplified", base_url: str = BASE_URL) -> str:
    """The bucket URL of a class file (spaces and other unsafe characters quoted)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    folder, suffix = KINDS[kind]
    return f"{base_url.rstrip('/')}/{folder}/{quote(word + suffix)}"


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIABLE = re.compile(r"bytes\s+\*/(\d+)")


def _expected_total(resp, offset: int, url: str) -> int | None:
    """Total size the finished file must have, from ``Content-Range`` (206) or ``Content-Length`` (200); a header
    that is not a size is a ``DownloadError`` naming ``url`` (retried, like any bad response)."""
    if resp.status == 206:
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != offset:
            raise DownloadError(f"{url}: bad Content-Range {resp.headers.get('Content-Range')!r} for offset {offset}",
                                "bad Content-Range")
        return None if m.group(3) == "*" else int(m.group(3))
    length = resp.headers.get("Content-Length")
    if length is None:
        return None
    if not length.strip().isdigit():
        raise DownloadError(f"{url}: bad Content-Length {length!r}", "bad Content-Length")
    return int(length)


def _bar_disabled(progress: bool) -> bool | None:
    """tqdm's ``disable``: off when not wanted, else automatic (``None``: no bar when stderr is not a terminal, so
    logs do not fill with the cursor moves of nested bars)."""
    return True if not progress else None


def _attempt(url: str, part: Path, timeout: float, progress: bool, desc: str, block: int,
             validator: str | None, remember: Callable[[str | None, str | None, bool], None]) -> None:
    """One request: continue ``part`` from its size (``Range``, with ``If-Range: validator`` when known) or start
    over when the server sends the whole file; raises on a short or failed transfer (``_LocalError`` when a
    local file operation fails). ``remember(validator, md5, restart)`` gets the validator and stated MD5 of what is
    being written (``restart``: from byte 0), before the first byte is. A ``.part`` that is not continued is
    emptied, not removed: the caller holds a lock on it."""
    offset = _local(lambda: part.stat().st_size if part.exists() else 0, part)
    headers = {"User-Agent": "sketchgraph-data-prep", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator
    try:
        resp = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the .part may already be whole
            m = _UNSATISFIABLE.match(exc.headers.get("Content-Range", ""))
            exc.close()
            if m and int(m.group(1)) == offset:
                return
            _local(lambda: os.truncate(part, 0), part)
            raise DownloadError(f"{url}: range not satisfiable at byte {offset}; restarting",
                                "range not satisfiable") from None
        raise
    with resp:
        if resp.status not in (200, 206):
            raise DownloadError(f"{url}: HTTP {resp.status}", f"HTTP {resp.status}")
        if resp.status == 200:
            offset = 0  # the server ignored the range, or the file changed (If-Range): start over
        total = _expected_total(resp, offset, url)
        remember(_validator(resp.headers) or (validator if offset else None), _stated_md5(resp.headers), not offset)
        f = _local(lambda: open(part, "ab" if offset else "wb"), part)
        with f, tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=desc,
                     disable=_bar_disabled(progress), leave=False) as bar:
            while chunk := resp.read(block):  # network errors from here are retried
                _local(lambda: f.write(chunk), part)
                bar.update(len(chunk))
    size = _local(lambda: part.stat().st_size, part)
    if total is not None and size != total:
        raise DownloadError(f"{url}: got {size} of {total} bytes", f"got {size:,} of {total:,} bytes")
    if total is None:
        print(f"warning: {url}: the server stated no size, so the {size:,} bytes received could not be checked",
              file=sys.stderr)


def _check_md5(url: str, part: Path, md5: str | None) -> None:
    """Compare the finished ``part`` with the MD5 the server stated (nothing to do without one); on a mismatch the
    ``.part`` is emptied (its bytes are wrong: a resume would keep them) and ``DownloadError`` raised (retried)."""
    if md5 is None:
        return
    got = _local(lambda: _md5_of(part), part)
    if got != md5:
        _local(lambda: os.truncate(part, 0), part)
        raise DownloadError(f"{url}: MD5 {got} of the {part.name} received is not the {md5} the server stated; the "
                            "partial file is discarded", "MD5 mismatch")


def _is_finished(dest: Path, entry: dict[str, Any] | None, *, warn: bool) -> bool:
    """Whether ``dest`` is a finished download to keep: a file, not empty, and of the size its record (``entry``)
    gives, when the record has one (a file from elsewhere, or from before sizes were recorded, is trusted). Anything
    else in the way (a folder) is a ``_LocalError``. ``warn``: say why a file is downloaded again."""
    if not (dest.exists() or dest.is_symlink()):
        return False
    if not dest.is_file():
        raise _LocalError(f"{dest} is in the way: it is not a file; move it away and rerun")
    size = _local(lambda: dest.stat().st_size, dest)
    recorded = entry.get("size") if entry else None
    if size == 0 and recorded != 0:
        why = "is empty"
    elif isinstance(recorded, int) and size != recorded:
        why = f"has {size:,} bytes, but {recorded:,} were downloaded"
    else:
        return True
    if warn:
        print(f"warning: {dest} {why}; downloading it again", file=sys.stderr)
    return False


_UNLOCKED = -1
"""``_lock``'s answer where files cannot be locked (Windows; a file system without locks, such as NFS without
lockd): the download goes on unlocked, holding no descriptor of the ``.part`` (Windows refuses to rename an open
file into place)."""

_NO_LOCKS = frozenset(getattr(errno, name) for name in ("ENOLCK", "EOPNOTSUPP", "ENOTSUP", "ENOSYS", "EINVAL")
                      if hasattr(errno, name))
"""``flock``'s errors saying the file system cannot lock (not that the lock is held, nor a failing disk)."""

_said_unlocked = False


def _lock(part: Path) -> int | None:
    """A descriptor of ``part`` (created empty when missing) holding an exclusive ``flock`` on it; ``None`` when
    another process (or thread) holds it; ``_UNLOCKED`` where files cannot be locked (said once per process: two
    downloads into one folder at once are then not kept apart). A ``.part`` renamed or removed by its holder between
    our open and our lock is not taken: the file now at ``part`` is tried instead. Another error of ``flock`` is a
    ``_LocalError`` (the descriptor closed)."""
    global _said_unlocked
    while True:
        fd = _local(lambda: os.open(part, os.O_RDWR | os.O_CREAT, 0o666), part)
        if fcntl is None:  # Windows: no locking
            os.close(fd)
            return _UNLOCKED
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except OSError as exc:
            os.close(fd)
            if exc.errno not in _NO_LOCKS:
                raise _LocalError(f"{part}: cannot lock it: {exc.strerror or exc}") from None
            if not _said_unlocked:
                _said_unlocked = True
                print(f"warning: {part.parent}: files cannot be locked there ({exc.strerror or exc}); downloading "
                      f"without locks, so run one download into that folder at a time", file=sys.stderr)
            return _UNLOCKED
        try:
            if os.stat(part).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _unlock(fd: int, part: Path) -> None:
    """Release ``_lock``'s ``fd``; the ``.part`` is removed when it is still ours and empty (nothing to resume).
    ``_UNLOCKED``: an empty ``.part`` is removed."""
    if fd == _UNLOCKED:
        try:
            if part.stat().st_size == 0:
                part.unlink()
        except OSError:
            pass
        return
    try:
        if os.fstat(fd).st_size == 0 and os.stat(part).st_ino == os.fstat(fd).st_ino:
            part.unlink()
    except OSError:
        pass
    finally:
        os.close(fd)


def _reason(exc: BaseException | None) -> str:
    """The short cause of a failed file, for the summary of ``download``."""
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, DownloadError):
        return exc.reason
    if isinstance(exc, URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _own_record(dest: Path, source: str) -> dict[str, Any] | None:
    """``dest``'s record (``read_source``); ``LocalDownloadError`` when ``dest`` exists and its record names another
    source (a raw file where a simplified one is wanted: the same name)."""
    entry = read_source(dest)
    if entry is not None and entry.get("source") != source and dest.exists():
        raise LocalDownloadError(f"{dest} holds {entry.get('source')}, not {source}; download into another "
                                 "folder (raw and simplified files have the same names)")
    return entry


def download_file(url: str, dest: str | Path, *, retries: int = 5, timeout: float = 60.0, backoff: float = 1.0,
                  progress: bool = True, block: int = 1 << 20, source: str | None = None) -> Path:
    """Download ``url`` to ``dest`` through ``dest + ".part"``, resuming and retrying.

    ``dest`` appears only when complete (size checked against the server's headers, and the MD5 when the server
    states one in ``x-goog-hash``), flushed to disk before the rename. A missing file (HTTP 404) fails at once;
    a local error (a folder in the way, no permission, a full disk) is a ``LocalDownloadError``, not retried;
    network errors, short transfers and MD5 mismatches are retried up to ``retries`` times with exponential
    back-off. ``source`` names what the file is (``download`` passes ``full/raw/cat.ndjson``; default: ``url``),
    recorded with the validator, the stated MD5 and the finished size in ``.<name>.source``: an existing ``dest``
    is kept as it is unless its record names another source (then ``LocalDownloadError``), or it is empty or not the
    size recorded (then it is downloaded again); a ``.part`` recorded for another source is discarded, not
    continued. The ``.part`` is locked while it is written: when another process holds it, ``DownloadError``
    ("being downloaded by another process"); where files cannot be locked (Windows, NFS without lockd), it is
    written unlocked, with a warning once.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    dest = Path(dest)
    source = source or url
    entry = _own_record(dest, source)
    part = dest.with_name(dest.name + ".part")
    try:
        if _is_finished(dest, entry, warn=False):
            return dest
        _local(lambda: dest.parent.mkdir(parents=True, exist_ok=True), dest.parent)
        fd = _lock(part)
        if fd is None:
            raise DownloadError(f"{dest.name} is being downloaded by another process; skipped",
                                "being downloaded by another process")
        try:
            entry = _own_record(dest, source)  # as it is now that no one else is writing this file
            if _is_finished(dest, entry, warn=True):
                return dest
            _local(lambda: dest.unlink(missing_ok=True), dest)  # empty, or not what was recorded
            return _download_locked(url, dest, part, entry, source, retries=retries, timeout=timeout,
                                    backoff=backoff, progress=progress, block=block)
        finally:
            _unlock(fd, part)
    except _LocalError as exc:
        raise LocalDownloadError(str(exc)) from None


def _download_locked(url: str, dest: Path, part: Path, entry: dict[str, Any] | None, source: str, *, retries: int,
                     timeout: float, backoff: float, progress: bool, block: int) -> Path:
    """``download_file``'s attempts, once it holds the lock on ``part``."""
    ours = entry is not None and entry.get("source") == source
    known: dict[str, Any] = {"source": source, "url": url, "validator": entry.get("validator") if ours else None,
                             "md5": entry.get("md5") if ours else None}

    def remember(validator: str | None, md5: str | None, restart: bool) -> None:
        known["validator"] = validator
        if restart or md5:  # a resumed transfer keeps the MD5 stated for the whole file by its first response
            known["md5"] = md5
        _local(lambda: _write_source(dest, {k: v for k, v in known.items() if v}), source_path(dest))

    last: Exception | None = None
    if entry is not None and not ours:
        _local(lambda: os.truncate(part, 0), part)  # another file's bytes: not to be continued
    remember(known["validator"], known["md5"], False)
    for attempt in range(retries + 1):
        try:
            _attempt(url, part, timeout, progress, dest.name, block, known["validator"], remember)
            _check_md5(url, part, known["md5"])
            return _publish(part, dest, {k: v for k, v in known.items() if v})
        except HTTPError as exc:
            if exc.code in (400, 401, 403, 404, 410):
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}", f"HTTP {exc.code}") from None
            last = exc
        except (DownloadError, HTTPException, OSError) as exc:  # short transfers, resets, timeouts, TLS
            if isinstance(exc, URLError) and isinstance(exc.reason, socket.gaierror) and exc.reason.errno in _NO_NAME:
                # the server's name does not exist: no network (or no DNS), or a wrong --base-url; a retry a few
                # seconds later finds the same (and every other file the same: download stops at it). A resolver
                # that timed out (EAI_AGAIN, "temporary failure") is retried as any network error is
                host = urlsplit(url).hostname
                raise DownloadError(f"{url}: cannot find the server {host} ({exc.reason.strerror or exc.reason}): "
                                    "no network, or a wrong --base-url", HOST_NOT_FOUND) from None
            last = exc
        if attempt < retries:
            time.sleep(backoff * 2**attempt)
    size = part.stat().st_size if part.exists() else 0
    kept = f"; the partial file {part} ({size:,} bytes) is kept" if size else ""
    attempts = "1 attempt" if retries == 0 else f"{retries + 1} attempts"
    raise DownloadError(f"{url}: failed after {attempts} ({last}){kept}", _reason(last))


def _publish(part: Path, dest: Path, record: dict[str, Any]) -> Path:
    """Put the finished ``part`` in place as ``dest``: its bytes flushed to disk, its record (``record`` with the
    size) written, the rename, and the folder flushed, so a power loss cannot leave ``dest`` empty or unrecorded."""
    _local(lambda: fsync_path(part), part)
    record = {**record, "size": _local(lambda: part.stat().st_size, part)}
    _local(lambda: _write_source(dest, record), source_path(dest))
    _local(lambda: os.replace(part, dest), dest)
    _local(lambda: fsync_dir(dest.parent), dest.parent)
    return dest


def _summary(failed: list[tuple[str, str]], total: int, untried: int = 0, in_a_row: int = 0, shown: int = 10) -> str:
    """``"2 of 3 files failed: cat (HTTP 500), dog (timed out); rerun to resume"``, naming the first ``shown``;
    ``untried`` classes left after ``in_a_row`` failures in a row are said so."""
    listed = ", ".join(f"{word} ({reason})" for word, reason in failed[:shown])
    more = f" and {len(failed) - shown} more" if len(failed) > shown else ""
    if untried and failed[-1][1] == HOST_NOT_FOUND:
        stopped = f"; stopped there, {untried} not tried: the server's name cannot be found (no network?)"
    elif untried:
        stopped = (f"; stopped after {in_a_row} failed file{'' if in_a_row == 1 else 's'} in a row, {untried} not "
                   "tried (is the server or the network down?)")
    else:
        stopped = ""
    return f"{len(failed)} of {total} files failed: {listed}{more}{stopped}; rerun to resume"


def official_categories(classes: Iterable[str]) -> list[str]:
    """The Quick, Draw! categories named by ``classes``, spelled as Google names its files: a name is matched as the
    rest of the project matches class names (``canonical_label``: ``alarm_clock``, ``Alarm Clock`` ->
    ``alarm clock``), empty names (``--classes cat,``) are dropped, and a repeat is downloaded once. ``ValueError``
    lists the names that are no category, each with the nearest ones."""
    import difflib

    official = {canonical_label(c): c for c in CATEGORIES}
    found: list[str] = []
    unknown: list[str] = []
    for name in classes:
        if not name.strip():
            continue
        category = official.get(canonical_label(name))
        if category is None:
            near = difflib.get_close_matches(canonical_label(name), list(official), n=3, cutoff=0.75)
            unknown.append(repr(name) + (f" (did you mean {' or '.join(official[n] for n in near)}?)" if near else ""))
        elif category not in found:
            found.append(category)
    if unknown:
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise ValueError(f"not Quick, Draw! categories: {', '.join(unknown[:5])}{more} (the {len(CATEGORIES)} "
                         "categories are data_prep.quickdraw.CATEGORIES)")
    if not found:
        raise ValueError("no category named: give one or more, e.g. --classes 'cat,alarm clock'")
    return found


def download(classes: Iterable[str] = CATEGORIES, out: str | Path = ".", *, kind: str = "simplified",
             base_url: str = BASE_URL, retries: int = 5, backoff: float = 1.0, progress: bool = True,
             stop_after: int = 5) -> list[Path]:
    """Download the ``kind`` file of every class into ``out``; returns the local paths.

    A file that fails (after its retries) is reported and the next class is tried; at the end one
    ``DownloadError`` lists the failed files ("2 of 345 files failed: cat (HTTP 500), ...; rerun to resume"). A
    local error (``LocalDownloadError``: a full disk, a folder in the way, a folder holding the other kind's files)
    stops at once, and so do ``stop_after``
    failures in a row (the server or the network is down: the other classes would only repeat the back-off). A
    file another process is downloading into ``out`` is skipped, listed as failed, but does not count as a
    failure in a row."""
    scheme = urlsplit(base_url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"base_url (--base-url) must be an http:// or https:// URL, got {base_url!r}: files are "
                         "fetched over HTTP (a local copy needs no download: prepare it where it lies)")
    out = Path(out)
    classes = official_categories(classes)
    paths: list[Path] = []
    unrecorded: list[str] = []  # files found in out that no download recorded: kept as they are, said at the end
    failed: list[tuple[str, str]] = []
    in_a_row = untried = 0
    bar = tqdm(classes, desc=f"download {kind}", unit="file",
               disable=True if len(classes) < 2 else _bar_disabled(progress))
    for i, word in enumerate(bar):
        name = file_name(word, kind)
        try:
            if _unrecorded_file(out / name, kind):
                unrecorded.append(name)
            paths.append(download_file(url_for(word, kind, base_url), out / name, retries=retries, backoff=backoff,
                                       progress=progress, source=f"{KINDS[kind][0]}/{name}"))
            in_a_row = 0
        except LocalDownloadError:
            raise
        except DownloadError as exc:
            if len(classes) == 1:
                raise
            failed.append((word, exc.reason))
            tqdm.write(f"failed: {exc}", file=sys.stderr)
            in_a_row += exc.reason != "being downloaded by another process"
            if exc.reason == HOST_NOT_FOUND:  # every other file is on the same server
                in_a_row = max(in_a_row, stop_after)
            if in_a_row >= stop_after and i + 1 < len(classes):
                untried = len(classes) - i - 1
                break
    bar.close()
    if unrecorded:
        shown = ", ".join(unrecorded[:3]) + (", ..." if len(unrecorded) > 3 else "")
        print(f"note: kept {len(unrecorded)} file{'' if len(unrecorded) == 1 else 's'} already in {out} that no "
              f"download recorded ({shown}): neither size nor checksum could be checked; delete one to download "
              "it again", file=sys.stderr)
    if failed:
        raise DownloadError(_summary(failed, len(classes), untried, in_a_row), f"{len(failed)} files failed")
    return paths


def _unrecorded_file(dest: Path, kind: str) -> bool:
    """Whether ``dest`` is a file that no download recorded (no ``.source``: copied there, or downloaded before
    records were kept), which ``download_file`` keeps as it is. ``LocalDownloadError`` when its drawings are of
    another kind than ``kind`` (raw and simplified files share names), told from its first records."""
    if not dest.is_file() or read_source(dest) is not None:
        return False
    if kind in ("raw", "simplified"):
        from sketchgraph.formats.ndjson import sniff_file_style

        style = sniff_file_style(dest, default=None)
        if style is not None and style != kind:
            raise LocalDownloadError(f"{dest} is already there, with {style} drawings where {kind} ones are wanted "
                                     "(raw and simplified files have the same names); move it away, or download "
                                     "into another folder")
    return True


def quickdraw_kind(files: Iterable[Path]) -> str:
    """``"raw"`` or ``"simplified"``: the kind of every one of the downloaded Quick, Draw! ``files``, each sniffed
    from its first records (a file none of whose first records can be read tells nothing). ``ValueError`` for a
    folder mixing the kinds, naming a file of each (a raw drawing capped at 100 points without being simplified
    first is cut to its first strokes), or for a file of another kind."""
    from sketchgraph.formats.ndjson import sniff_file_style

    first: dict[str, Path] = {}
    for path in files:
        style = sniff_file_style(path, default=None)
        if style is not None:
            first.setdefault(style, path)
    other = sorted(set(first) - {"raw", "simplified"})
    if other:
        raise ValueError(f"{first[other[0]]} looks like {other[0]} ndjson, not a Quick, Draw! simplified or raw "
                         "file; move it out of the folder")
    if len(first) > 1:
        raise ValueError(f"the folder mixes raw and simplified Quick, Draw! files (e.g. {first['raw']} is raw, "
                         f"{first['simplified']} is simplified): raw drawings must be simplified, simplified ones must "
                         "not be simplified again, so keep each kind in its own folder (download --kind raw and "
                         "--kind simplified into different --out folders)")
    return next(iter(first), "simplified")


def ndjson_files(folder: Path) -> list[Path]:
    """The Quick, Draw! ndjson files in ``folder``: ``*.ndjson`` and ``*.ndjson.gz`` (a ``cat.ndjson.gz`` beside
    ``cat.ndjson`` is left out: the same drawings). ``FileNotFoundError`` when there is none, saying what to do,
    also when the folder holds the ``.bin`` / ``.npz`` files of another ``--kind``."""
    plain = sorted(folder.glob("*.ndjson"))
    gzipped = [p for p in sorted(folder.glob("*.ndjson.gz")) if p.with_suffix("") not in plain]
    files = sorted(plain + gzipped)
    if files:
        return files
    for kind in ("binary", "sketchrnn"):
        suffix = KINDS[kind][1]
        others = list(folder.glob(f"*{suffix}"))
        if others:
            raise FileNotFoundError(f"prepare414k reads simplified or raw .ndjson files; found {len(others)} "
                                    f"{suffix} file{'' if len(others) == 1 else 's'} in {folder} (download --kind "
                                    "simplified or --kind raw)")
    raise FileNotFoundError(f"no .ndjson files in {folder}; run `python -m data_prep.quickdraw download` first")


def prepare_414k(folder: str | Path, out: str | Path, *, seed: int = 0, workers: int = 2, overwrite: bool = False,
                 progress: bool = True, resume: bool = True):
    """QuickDraw-414k from downloaded ``simplified`` (used as they are) or ``raw`` (simplified here)
    ndjson files in ``folder`` (``cat.ndjson``, or gzip-compressed ``cat.ndjson.gz``): per class 1000 / 100 / 100
    recognized drawings, seeded. Every file's kind is sniffed (``quickdraw_kind``): a folder mixing the two is
    refused before anything is read."""
    from sketchgraph.data import prepare
    from sketchgraph.formats import label_from_path
    from sketchgraph.preprocess import Preprocessing
    from sketchgraph.wording import counted

    files = ndjson_files(existing_folder(folder, "the downloaded Quick, Draw! files"))
    others = sorted(p.name for kind in ("binary", "sketchrnn") for p in Path(folder).glob(f"*{KINDS[kind][1]}"))
    if others:  # the files of another --kind beside the ndjson ones: not read, and said so
        print(f"note: {counted(len(others), 'file')} of another kind left out ({', '.join(others[:3])}"
              f"{', ...' if len(others) > 3 else ''}): prepare414k reads the .ndjson files", file=sys.stderr)
    classes = {label_from_path(f) for f in files}
    if len(classes) != len(CATEGORIES):
        print(f"warning: {counted(len(classes), 'class')} ({counted(len(files), 'file')}) in {folder}; "
              f"QuickDraw-414k has {len(CATEGORIES)}", file=sys.stderr)
    simplify = quickdraw_kind(files) == "raw"
    return prepare(files, out, preprocessing=Preprocessing(simplify=simplify), protocol="quickdraw414k", seed=seed,
                   workers=workers, overwrite=overwrite, progress=progress, resume=resume)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    p = script_parser("python -m data_prep.quickdraw",
                      "Quick, Draw!: download the per-class files (resumable, size-checked) and prepare the "
                      "QuickDraw-414k protocol of the MGT paper.")
    sub = p.add_subparsers(dest="command", required=True)
    what = "download per-class files from the public bucket"
    d = sub.add_parser("download", help=what, description=what, epilog=RUN_FROM_ROOT)
    d.add_argument("--kind", choices=sorted(KINDS), default="simplified",
                   help="which files: simplified, raw, binary or sketchrnn (.npz) (default %(default)s)")
    d.add_argument("--classes", help="comma-separated class names, matched regardless of case and of _ for a space "
                                     "(alarm_clock: alarm clock) (default: all 345)")
    d.add_argument("--out", required=True, help="folder for the files")
    d.add_argument("--base-url", default=BASE_URL, help="bucket URL (default %(default)s)")
    d.add_argument("--retries", type=_non_negative, default=5, help="retries per file (default %(default)s)")
    what = "prepare QuickDraw-414k from downloaded ndjson files"
    q = sub.add_parser("prepare414k", help=what, description=what, epilog=RUN_FROM_ROOT)
    q.add_argument("folder", help="the folder of downloaded simplified or raw <class>.ndjson (or .ndjson.gz) files")
    q.add_argument("out", help="the prepared dataset directory to create")
    q.add_argument("--seed", type=int, default=0, help="seed of the per-class sample (default %(default)s)")
    add_prepare_options(q)
    args = p.parse_args(argv)

    def body() -> None:
        if args.command == "download":
            classes = [c.strip() for c in args.classes.split(",")] if args.classes else list(CATEGORIES)
            paths = download(classes, args.out, kind=args.kind, base_url=args.base_url, retries=args.retries)
            # the plural by hand: sketchgraph's counted would load torch, which downloading does not need
            print(f"{len(paths)} file{'' if len(paths) == 1 else 's'} in {args.out}")
        else:
            prepare_414k(args.folder, args.out, seed=args.seed, workers=args.workers, overwrite=args.overwrite,
                         resume=args.resume)

    kept = ("partial downloads are kept; rerun to resume" if args.command == "download"
            else resume_note(args.out, resume=args.resume))
    return run_script(p.prog, body, also=(DownloadError,), interrupted=kept)


if __name__ == "__main__":
    raise SystemExit(main())
