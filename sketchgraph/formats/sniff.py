"""Which format a file is in: from its suffix, and from its first bytes when the suffix says nothing.
For ndjson the record style (simplified / raw / SPG) is sniffed from the first records. ndjson and JSON files
may be gzip-compressed (``cat.ndjson.gz``): they are read as they are decompressed."""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from pathlib import Path

from ..errors import FormatError
from .base import GZIP_ERRORS, GZIP_MAGIC, PathLike
from .ndjson import sniff_file_style
from .quickdraw_bin import SNIFF_BYTES, looks_like_bin, records_follow

__all__ = ["FORMATS", "NDJSON_SUFFIXES", "GZIP_SUFFIXES", "SUFFIXES", "DOCUMENT_SUFFIXES", "detect_format",
           "kind_of_name", "sketch_files", "gzip_refusal", "document_kind", "not_a_sketch_file", "NPZ_NOT_WALKED"]

FORMATS: tuple[str, ...] = ("simplified", "raw", "spg", "ndjson", "bin", "npz", "svg")
"""Values of ``format=``; ``"ndjson"`` means ndjson with the style sniffed from the records."""

NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".json")
SUFFIXES: dict[str, str] = {**{s: "ndjson" for s in NDJSON_SUFFIXES}, ".bin": "bin", ".npz": "npz", ".svg": "svg"}
GZIP_SUFFIXES = tuple(f"{s}.gz" for s in NDJSON_SUFFIXES)
"""gzip-compressed ndjson / JSON, read as it is decompressed (Google's downloads are often kept so)."""

EVALUATE_REPORT = "the report.json of an evaluate run (beside its predictions.csv or confusions.csv), no sketches"


def is_evaluate_report(file: Path) -> bool:
    """Whether ``file`` is the ``report.json`` that ``sketchgraph evaluate --out`` writes (beside its CSVs): a walk
    leaves it out, so an evaluation written into a folder of sketches is not read as one of them."""
    return file.name == "report.json" and any((file.parent / name).is_file()
                                              for name in ("predictions.csv", "confusions.csv"))


NPZ_NOT_WALKED = ("an .npz is read only when named: name it to read it (a sketch-rnn .npz may copy drawings of the "
                  "folder's other files under no key_id, so a walk could not catch the repeats)")
"""Why a folder walk left an ``.npz`` file out (``sketch_files``'s ``left_out``)."""

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an .npz is a zip archive (the second: an empty one), as np.load checks

DOCUMENT_SUFFIXES: dict[str, str] = {
    ".png": "a PNG image", ".jpg": "a JPEG image", ".jpeg": "a JPEG image", ".gif": "a GIF image",
    ".webp": "a WebP image", ".bmp": "a BMP image", ".tif": "a TIFF image", ".tiff": "a TIFF image",
    ".pdf": "a PDF document",
}
"""Names of images and documents, which hold pixels or pages, not strokes: such a file is refused, saying so."""

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"), (b"%PDF-", "a PDF document"), (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)
_BMP_HEADER_SIZES = (12, 40, 52, 56, 64, 108, 124)  # BITMAPCOREHEADER .. BITMAPV5HEADER


def document_kind(head: bytes) -> str | None:
    """What image or document a file's first bytes start as (``"a PNG image"``, ``"a PDF document"``; PNG, JPEG,
    GIF, WebP, BMP, TIFF, PDF), or ``None``. A BMP's two-letter ``BM`` counts only with its reserved bytes zero and a
    known header size, so a ``.bin`` whose first key id happens to start with ``BM`` is not taken for one."""
    for magic, kind in _SIGNATURES:
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if (head[:2] == b"BM" and len(head) >= 18 and head[6:10] == b"\0\0\0\0"
            and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES):
        return "a BMP image"
    return None


def not_a_sketch_file(path: PathLike, kind: str) -> FormatError:
    """The error for an image or a document (``kind``: ``"a PNG image"``) given where a sketch file belongs."""
    readable = ", ".join(SUFFIXES)
    return FormatError(f"this is {kind}, not a sketch file; sketchgraph reads stroke data ({readable}; ndjson and "
                       f"JSON also gzip-compressed), not images or documents", source=str(path), whole_file=True)


def kind_of_name(path: PathLike) -> str | None:
    """The format a file's name implies (``"ndjson"``, ``"bin"``, ``"npz"``, ``"svg"``; ``cat.ndjson.gz`` is
    ``"ndjson"``), or ``None`` when the name does not tell (another suffix, or another file gzip-compressed)."""
    name = Path(path).name.lower()
    if name.endswith(".gz"):
        return "ndjson" if name.endswith(GZIP_SUFFIXES) else None
    return SUFFIXES.get(Path(name).suffix)


def gzip_refusal(path: PathLike) -> FormatError:
    """The error for a gzip-compressed file whose content is not ndjson or JSON, the only formats read compressed."""
    return FormatError(f"gzip-compressed, and only ndjson or JSON is read compressed ({', '.join(GZIP_SUFFIXES)}); "
                       f"decompress it first: gzip -dc '{Path(path).name}' > FILE", source=str(path), whole_file=True)


def _from_content(path: Path) -> str:
    """The format of a file whose name does not tell it, from its first bytes. An image or a document (by its
    signature, or by its name when the content is none of ours either) is refused with ``not_a_sketch_file``; a
    signature followed by whole ``.bin`` records (``records_follow``) in a file not named as an image is a ``.bin``
    whose first key id's bytes happen to start so (``ff d8 ff``, a JPEG's, is one key id in 2**24)."""
    with open(path, "rb") as f:
        start = f.read(SNIFF_BYTES)
        size = os.fstat(f.fileno()).st_size
    if not start and (size == 0 or not path.is_file()):  # an empty file, or a device or stream with nothing in it
        raise FormatError("the file is empty: no sketches", source=str(path), whole_file=True)
    head = start[:4096]
    kind = document_kind(head)
    if kind is not None:  # unless .bin records follow the signature (a first key id's bytes can start so)
        if path.suffix.lower() in DOCUMENT_SUFFIXES or not records_follow(start, size):
            raise not_a_sketch_file(path, kind)
        return "bin"
    if head.startswith(GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as f:
                inner = f.read(4096)
        except GZIP_ERRORS as exc:
            raise FormatError(f"gzip-compressed, and the compressed data is unreadable ({type(exc).__name__}: "
                              f"{exc})", source=str(path), whole_file=True) from None
        if inner.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] in (b"{", b"["):
            return "ndjson"
        raise gzip_refusal(path)
    if head.startswith(ZIP_MAGIC):
        return "npz"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<") and b"<svg" in head:
        return "svg"
    if text[:1] in (b"{", b"["):
        return "ndjson"
    named = DOCUMENT_SUFFIXES.get(path.suffix.lower())
    if named is not None:  # a damaged image, or one of a kind without a signature above
        raise not_a_sketch_file(path, f"a {path.suffix} file ({named}?)")
    if looks_like_bin(start, size=size):
        return "bin"
    raise FormatError(f"cannot tell the format from the name or content; name it with --format (format= in Python): "
                      f"one of {', '.join(FORMATS)}", source=str(path))


def detect_format(path: PathLike) -> str:
    """The concrete format of ``path``: ``"simplified"``, ``"raw"``, ``"spg"``, ``"bin"``, ``"npz"``
    or ``"svg"``. Raises ``FormatError`` when neither suffix nor content tells, when the file is
    gzip-compressed something other than ndjson or JSON, or when it is an image or a document (a PNG: see
    ``document_kind`` and ``DOCUMENT_SUFFIXES``), naming what it is."""
    path = Path(path)
    kind = kind_of_name(path) or _from_content(path)
    if kind == "ndjson":
        return sniff_file_style(path)
    return kind


def sketch_files(path: PathLike, *, gzipped: bool = False, prune: Callable[[Path], str | None] | None = None,
                 left_out: list[tuple[Path, str]] | None = None, broken_links: bool = False) -> list[Path]:
    """The files a folder walk reads: ``.ndjson/.jsonl/.json/.bin/.svg`` files under ``path``, and with
    ``gzipped`` also ``.ndjson.gz/.jsonl.gz/.json.gz`` ones, recursively, in sorted order; hidden files and
    everything under hidden folders (``.git``, ``.ipynb_checkpoints``) are skipped. ``.npz`` files are never picked
    up: they are read when named. An ``.npz`` holds a class's whole train/valid/test splits under made-up key ids,
    so a sketch-rnn copy of classes also present as ndjson (the Quick, Draw! downloader puts both in one folder)
    would be read twice with no repeat to catch, and any other numpy archive lying there would be taken for
    sketches. ``read_sketches``, ``sketchgraph predict`` and ``prepare`` walk with ``gzipped``.

    Args:
        path: the folder.
        gzipped: also walk gzip-compressed ndjson / JSON.
        prune: a folder (``path`` itself included) for which it returns a reason is not walked: nothing under
            it is read (``prepare`` leaves out prepared datasets and their ``.partial`` work folders so).
        left_out: receives ``(path, reason)`` for each folder ``prune`` named and each sketch file the walk left
            out (an ``.npz``; a compressed file without ``gzipped``; an evaluate run's ``report.json``,
            ``EVALUATE_REPORT``), in sorted order, so a caller can say what
            was skipped. Other files (``notes.txt``, hidden ones) are no sketch files and are not listed.
        broken_links: also list, in their place, the links that lead to no file (a missing target, a loop) but
            that the walk would read if they did, by the rules above (name, hidden, ``prune``, ``gzipped``), so
            the caller can report them (``sketchgraph predict`` does); without it they are left out unsaid.
    """
    root = Path(path)
    verdicts: dict[Path, str | None] = {}

    def pruned_at(relative: Path) -> Path | None:
        """The outermost folder above ``root / relative`` that ``prune`` names, or ``None``."""
        folder = root
        for part in (None, *relative.parts[:-1]):
            folder = folder if part is None else folder / part
            if folder not in verdicts:
                verdicts[folder] = prune(folder)
                if verdicts[folder] is not None and left_out is not None:
                    left_out.append((folder, verdicts[folder]))
            if verdicts[folder] is not None:
                return folder
        return None

    files = []
    for p in sorted(root.rglob("*")):
        relative = p.relative_to(root)
        broken = broken_links and p.is_symlink() and not p.exists()
        if not (p.is_file() or broken) or any(part.startswith(".") for part in relative.parts):
            continue
        kind = kind_of_name(p)
        if kind is None or (prune is not None and pruned_at(relative) is not None):
            continue
        reason = (NPZ_NOT_WALKED if kind == "npz"
                  else EVALUATE_REPORT if is_evaluate_report(p)
                  else None if gzipped or not p.name.lower().endswith(".gz") else "gzip-compressed: not walked here")
        if reason is None:
            files.append(p)
        elif left_out is not None:
            left_out.append((p, reason))
    return files
