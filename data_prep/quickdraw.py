"""Quick, Draw! (Google Creative Lab, CC BY 4.0): download the per-class files and prepare the
QuickDraw-414k protocol of the MGT paper (345 classes x 1000 / 100 / 100 drawings). The official runs use fixed
lists of drawings that are not reproduced here: this is a seeded re-sample of the same sizes, and keeping
``recognized`` drawings only is this project's choice.

Downloads are resumable (an interrupted file continues from its ``.part`` with an HTTP ``Range``
request, guarded by ``If-Range`` so a file changed on the server starts over), size-checked (the bytes
received must match ``Content-Length`` / ``Content-Range``; a short file is never renamed into place; a
server that states no size gets a warning), retried with back-off, and shown with a progress bar. Next to
each file a hidden ``.<name>.source`` (JSON: what it is, e.g. ``full/raw/cat.ndjson``, and the server's
validator) records where it came from, so a ``.part`` left by another kind (``raw`` and ``simplified`` files
share names) is never continued, and a finished file of another kind is refused instead of being taken as this
one; the same file from a mirror (``--base-url``) is the same file. One sidecar per file, so several downloads
can run into one folder at once::

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
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from http.client import HTTPException
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote
from urllib.request import Request, urlopen

from tqdm.auto import tqdm

from data_prep import RUN_FROM_ROOT, add_prepare_options, existing_folder, run_script, script_parser

__all__ = [
    "CATEGORIES", "BASE_URL", "KINDS", "url_for", "file_name", "download_file", "download", "DownloadError",
    "prepare_414k", "quickdraw_kind", "main",
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


class DownloadError(RuntimeError):
    """A file could not be downloaded completely (its ``.part``, if any, is kept for the next attempt)."""


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


def _write_source(dest: Path, entry: dict[str, str]) -> None:
    """Write ``dest``'s sidecar atomically (a temporary name of this process, then a rename)."""
    path = source_path(dest)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entry, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


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


def _expected_total(resp, offset: int) -> int | None:
    """Total size the finished file must have, from ``Content-Range`` (206) or ``Content-Length`` (200)."""
    if resp.status == 206:
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != offset:
            raise DownloadError(f"bad Content-Range {resp.headers.get('Content-Range')!r} for offset {offset}")
        return None if m.group(3) == "*" else int(m.group(3))
    length = resp.headers.get("Content-Length")
    return None if length is None else int(length)


def _attempt(url: str, part: Path, timeout: float, progress: bool, desc: str, block: int,
             validator: str | None, remember: Callable[[str | None], None]) -> None:
    """One request: continue ``part`` from its size (``Range``, with ``If-Range: validator`` when known) or start
    over when the server sends the whole file; raises on a short or failed transfer (``_LocalError`` when a
    local file operation fails). ``remember`` gets the validator of what is being written, before the first
    byte is."""
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
            _local(part.unlink, part)
            raise DownloadError(f"{url}: range not satisfiable at byte {offset}; restarting") from None
        raise
    with resp:
        if resp.status not in (200, 206):
            raise DownloadError(f"{url}: HTTP {resp.status}")
        if resp.status == 200:
            offset = 0  # the server ignored the range, or the file changed (If-Range): start over
        total = _expected_total(resp, offset)
        remember(_validator(resp.headers) or (validator if offset else None))
        f = _local(lambda: open(part, "ab" if offset else "wb"), part)
        with f, tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=desc, disable=not progress,
                     leave=False) as bar:
            while chunk := resp.read(block):  # network errors from here are retried
                _local(lambda: f.write(chunk), part)
                bar.update(len(chunk))
    size = _local(lambda: part.stat().st_size, part)
    if total is not None and size != total:
        raise DownloadError(f"{url}: got {size} of {total} bytes")
    if total is None:
        print(f"warning: {url}: the server stated no size, so the {size:,} bytes received could not be checked",
              file=sys.stderr)


def download_file(url: str, dest: str | Path, *, retries: int = 5, timeout: float = 60.0, backoff: float = 1.0,
                  progress: bool = True, block: int = 1 << 20, source: str | None = None) -> Path:
    """Download ``url`` to ``dest`` through ``dest + ".part"``, resuming and retrying.

    ``dest`` appears only when complete (size checked against the server's headers). A missing file
    (HTTP 404) fails at once, and so does a local error (a folder in the way, no permission, a full disk);
    network errors and short transfers are retried up to ``retries`` times with exponential back-off.
    ``source`` names what the file is (``download`` passes ``full/raw/cat.ndjson``; default: ``url``), recorded
    in ``.<name>.source``: an existing ``dest`` is kept as it is unless its record names another source (then
    ``DownloadError``), and a ``.part`` recorded for another source is discarded, not continued.
    """
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    dest = Path(dest)
    source = source or url
    entry = read_source(dest)
    if entry is not None and entry.get("source") != source and dest.exists():
        raise DownloadError(f"{dest} holds {entry.get('source')}, not {source}; download into another folder "
                            "(raw and simplified files have the same names)")
    if dest.exists():
        return dest
    part = dest.with_name(dest.name + ".part")
    known = {"source": source, "url": url,
             "validator": entry.get("validator") if entry and entry.get("source") == source else None}

    def remember(validator: str | None) -> None:
        known["validator"] = validator
        _local(lambda: _write_source(dest, {k: v for k, v in known.items() if v}), source_path(dest))

    last: Exception | None = None
    try:
        _local(lambda: dest.parent.mkdir(parents=True, exist_ok=True), dest.parent)
        if entry is not None and entry.get("source") != source:
            _local(lambda: part.unlink(missing_ok=True), part)  # another file's bytes: not to be continued
        remember(known["validator"])
        for attempt in range(retries + 1):
            try:
                _attempt(url, part, timeout, progress, dest.name, block, known["validator"], remember)
                _local(lambda: os.replace(part, dest), dest)
                return dest
            except HTTPError as exc:
                if exc.code in (400, 401, 403, 404, 410):
                    raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
                last = exc
            except (DownloadError, HTTPException, OSError) as exc:  # short transfers, resets, timeouts, TLS
                last = exc
            if attempt < retries:
                time.sleep(backoff * 2**attempt)
    except _LocalError as exc:
        raise DownloadError(str(exc)) from None
    kept = f"; the partial file {part} ({part.stat().st_size:,} bytes) is kept" if part.exists() else ""
    raise DownloadError(f"{url}: failed after {retries + 1} attempts ({last}){kept}")


def download(classes: Iterable[str] = CATEGORIES, out: str | Path = ".", *, kind: str = "simplified",
             base_url: str = BASE_URL, retries: int = 5, backoff: float = 1.0, progress: bool = True) -> list[Path]:
    """Download the ``kind`` file of every class into ``out``; returns the local paths."""
    out = Path(out)
    classes = list(classes)
    unknown = [c for c in classes if c not in CATEGORIES]
    if unknown:
        raise ValueError(f"not Quick, Draw! categories: {unknown[:5]}")
    paths = []
    for word in tqdm(classes, desc=f"download {kind}", unit="file", disable=not progress or len(classes) < 2):
        name = file_name(word, kind)
        paths.append(download_file(url_for(word, kind, base_url), out / name, retries=retries, backoff=backoff,
                                   progress=progress, source=f"{KINDS[kind][0]}/{name}"))
    return paths


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


def prepare_414k(folder: str | Path, out: str | Path, *, seed: int = 0, workers: int = 2, overwrite: bool = False,
                 progress: bool = True):
    """QuickDraw-414k from downloaded ``simplified`` (used as they are) or ``raw`` (simplified here)
    ndjson files in ``folder``: per class 1000 / 100 / 100 recognized drawings, seeded. Every file's kind is
    sniffed (``quickdraw_kind``): a folder mixing the two is refused before anything is read."""
    from sketchgraph.data import prepare
    from sketchgraph.preprocess import Preprocessing
    from sketchgraph.wording import counted

    files = sorted(existing_folder(folder, "the downloaded Quick, Draw! files").glob("*.ndjson"))
    if not files:
        raise FileNotFoundError(f"no .ndjson files in {folder}; run `python -m data_prep.quickdraw download` first")
    if len(files) != len(CATEGORIES):
        print(f"warning: {counted(len(files), 'class file')} in {folder}; QuickDraw-414k has {len(CATEGORIES)}",
              file=sys.stderr)
    simplify = quickdraw_kind(files) == "raw"
    return prepare(files, out, preprocessing=Preprocessing(simplify=simplify), protocol="quickdraw414k", seed=seed,
                   workers=workers, overwrite=overwrite, progress=progress)


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
    d.add_argument("--classes", help="comma-separated class names (default: all 345)")
    d.add_argument("--out", required=True, help="folder for the files")
    d.add_argument("--base-url", default=BASE_URL, help="bucket URL (default %(default)s)")
    d.add_argument("--retries", type=_non_negative, default=5, help="retries per file (default %(default)s)")
    what = "prepare QuickDraw-414k from downloaded ndjson files"
    q = sub.add_parser("prepare414k", help=what, description=what, epilog=RUN_FROM_ROOT)
    q.add_argument("folder", help="the folder of downloaded simplified or raw <class>.ndjson files")
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
            prepare_414k(args.folder, args.out, seed=args.seed, workers=args.workers, overwrite=args.overwrite)

    return run_script(p.prog, body, also=(DownloadError,))


if __name__ == "__main__":
    raise SystemExit(main())
