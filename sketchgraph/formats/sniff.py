"""Which format a file is in: from its suffix, and from its first bytes when the suffix says nothing.
For ndjson the record style (simplified / raw / SPG) is sniffed from the first records."""

from __future__ import annotations

from pathlib import Path

from ..errors import FormatError
from .base import PathLike
from .ndjson import sniff_file_style
from .quickdraw_bin import looks_like_bin

__all__ = ["FORMATS", "NDJSON_SUFFIXES", "SUFFIXES", "detect_format", "sketch_files"]

FORMATS: tuple[str, ...] = ("simplified", "raw", "spg", "ndjson", "bin", "npz", "svg")
"""Values of ``format=``; ``"ndjson"`` means ndjson with the style sniffed from the records."""

NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".json")
SUFFIXES: dict[str, str] = {**{s: "ndjson" for s in NDJSON_SUFFIXES}, ".bin": "bin", ".npz": "npz", ".svg": "svg"}

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # an .npz is a zip archive (the second: an empty one), as np.load checks


def _from_content(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(ZIP_MAGIC):
        return "npz"
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if text.startswith(b"<") and b"<svg" in head:
        return "svg"
    if text[:1] in (b"{", b"["):
        return "ndjson"
    if looks_like_bin(head):
        return "bin"
    raise FormatError(f"cannot tell the format from the name or content; pass format= (--format) one of {FORMATS}",
                      source=str(path))


def detect_format(path: PathLike) -> str:
    """The concrete format of ``path``: ``"simplified"``, ``"raw"``, ``"spg"``, ``"bin"``, ``"npz"``
    or ``"svg"``. Raises ``FormatError`` when neither suffix nor content tells."""
    path = Path(path)
    kind = SUFFIXES.get(path.suffix.lower()) or _from_content(path)
    if kind == "ndjson":
        return sniff_file_style(path)
    return kind


def sketch_files(path: PathLike) -> list[Path]:
    """The files a folder walk reads: ``.ndjson/.jsonl/.json/.bin/.svg`` files under ``path``,
    recursively, in sorted order; hidden files and everything under hidden folders (``.git``,
    ``.ipynb_checkpoints``) are skipped. ``.npz`` files, which hold whole train/valid/test splits, are
    never picked up: they are read when named."""
    root = Path(path)
    return [p for p in sorted(root.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
            and SUFFIXES.get(p.suffix.lower(), "npz") != "npz"]
