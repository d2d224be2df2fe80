"""Readers and writers for sketch files, all behind ``read_sketches`` (API).

=============  =====================================  ===================================
format         file                                   reader / writer
=============  =====================================  ===================================
simplified     Quick, Draw! ndjson ``[[xs, ys], ..]``   ``read_ndjson`` / ``write_ndjson``
raw            Quick, Draw! ndjson ``[[xs, ys, ts]]``   ``read_ndjson`` / ``write_ndjson``
spg            SPG ndjson ``[[xs, ys, part_ids]]``      ``read_ndjson`` / ``write_ndjson``
bin            Quick, Draw! binary ``.bin``            ``read_bin`` / ``write_bin``
npz            sketch-rnn stroke-3 ``.npz``            ``read_stroke3_npz`` / ``write_stroke3_npz``
svg            SVG (one sketch per file)              ``read_svg`` / ``write_svg``
=============  =====================================  ===================================

Plus ``render_png`` / ``rasterize`` (pillow) and ``sketch_from_obj`` for in-memory objects. ndjson and JSON may
be gzip-compressed (``cat.ndjson.gz``). ``read_located`` also gives each sketch's ``Place`` (file and line).

Errors: every reader takes ``on_error``. ``None`` raises the first ``FormatError`` (it names the
file and, for text formats, the 1-based line); a callable receives each ``FormatError`` and the
record is skipped. Drawings without points are ``EmptySketchError`` (a ``FormatError``) unless
``keep_empty=True``, so ``on_error=errors.append`` lets a caller count them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import FormatError
from ..sketch import Sketch
from .base import (
    EmptySketchError,
    OnError,
    PathLike,
    Place,
    atomic_write,
    broken_link,
    canonical_label,
    is_gzip,
    label_from_path,
    locate,
    report,
)
from .ndjson import STYLES, iter_ndjson, looks_like_spg, parse_record, read_ndjson, record_from_sketch, write_ndjson
from .npz import check_split, iter_npz, read_stroke3_npz, write_stroke3_npz
from .objects import sketch_from_obj
from .quickdraw_bin import iter_bin, read_bin, write_bin
from .raster import rasterize, render_png
from .sniff import FORMATS, detect_format, gzip_refusal, sketch_files
from .svg import iter_svg, read_svg, svg_to_sketch, write_svg

__all__ = [
    "read_sketches", "read_located", "Place", "sketch_files", "sketch_from_obj", "detect_format", "FORMATS",
    "EmptySketchError", "label_from_path", "canonical_label",
    "read_ndjson", "write_ndjson", "parse_record", "record_from_sketch", "looks_like_spg",
    "read_bin", "write_bin", "read_stroke3_npz", "write_stroke3_npz",
    "read_svg", "svg_to_sketch", "write_svg", "render_png", "rasterize", "atomic_write",
]


def read_sketches(
    path: PathLike,
    format: str | None = None,
    *,
    label: str | None = None,
    on_error: OnError = None,
    split: str | None = None,
    keep_empty: bool = False,
    from_name: bool = True,
) -> Iterator[Sketch]:
    """Sketches from a file, lazily, in file order.

    Args:
        path: a file; or a directory, whose ``.ndjson/.jsonl/.json/.bin/.svg`` files (and gzip-compressed
            ``.ndjson.gz/.jsonl.gz/.json.gz`` ones) are read recursively in sorted order (``sketch_files``: hidden
            files and folders skipped; ``.npz`` files, which hold whole train/valid/test splits, are read only
            when named). ndjson and JSON content may be gzip-compressed, named as ndjson or JSON (with or without
            ``.gz``) or by no known suffix: it is read as it is decompressed. Other gzip-compressed content (or
            gzip under an ``.svg``, ``.bin`` or ``.npz`` name) is refused, saying to decompress it.
        format: one of ``FORMATS``; ``None`` sniffs it (``detect_format``). ``"spg"`` forces the
            third list of each stroke to be read as part ids, ``"simplified"``/``"raw"`` as time.
        label: label for records without a ``"word"`` field; default from the file name
            (``airplane_train.ndjson`` -> ``"airplane"``, ``alarm clock/81.svg`` -> ``"alarm clock"``).
        on_error: ``None`` raises the first ``FormatError``; a callable gets each and reading goes on.
        split: for ``.npz`` only: ``"train"``, ``"valid"`` or ``"test"``; ``None`` reads all.
        keep_empty: yield drawings without points instead of reporting ``EmptySketchError``.
        from_name: ``False`` takes nothing from the file's name: a record without a class of its own (``"word"``,
            ``data-label``) and without ``label`` has none, and an SVG without ``data-key-id`` has no key id
            (for a file saved under a made-up name, such as ``sketchgraph predict -``'s copy of standard input).

    The format, the split (an ``.npz`` without it: ``FormatError``) and the file's existence are checked at the
    call, before iteration. In a folder walk with ``on_error``, a file refused outright (gzip under an ``.svg``
    name) is reported like any unreadable file and the walk goes on.
    """
    located = read_located(path, format, label=label, on_error=on_error, split=split, keep_empty=keep_empty,
                           from_name=from_name)
    return (sketch for _, sketch in located)


def read_located(
    path: PathLike,
    format: str | None = None,
    *,
    label: str | None = None,
    on_error: OnError = None,
    split: str | None = None,
    keep_empty: bool = False,
    from_name: bool = True,
) -> Iterator[tuple[Place, Sketch]]:
    """``read_sketches`` with each sketch's ``Place``, so an error found later (a drawing preprocessing refuses)
    names the record as the reader names a malformed one: ``face.ndjson:17: ...``, ``doc.json: record 3: ...``,
    ``cat.bin: record 3 (byte 120): ...``, ``cat.npz: test[4]: ...``, ``a.svg: ...``."""
    path = Path(path)
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    options = dict(label=label, on_error=on_error, keep_empty=keep_empty, from_name=from_name)
    if path.is_dir():
        if split is not None:
            raise ValueError("split= applies to .npz files only, and directory walks skip .npz files")
        return _walk(sketch_files(path, gzipped=True, broken_links=True), format, options)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    kind = format or detect_format(path)
    if split is not None and kind != "npz":
        raise ValueError(f"split= applies to .npz files only; {path} is {kind!r}")
    if kind in STYLES or kind == "ndjson":
        return iter_ndjson(path, None if kind == "ndjson" else kind, **options)
    if path.is_file() and is_gzip(path):  # only ndjson and JSON are read compressed (a stream is left unread)
        raise gzip_refusal(path)
    if kind == "bin":
        return iter_bin(path, **options)
    if kind == "npz":
        if split is not None:
            check_split(path, split)
        return iter_npz(path, split=split, **options)
    return iter_svg(path, **options)


def _walk(files: list[Path], format: str | None, options: dict) -> Iterator[tuple[Place, Sketch]]:
    """``read_located`` of each file in turn. A file refused at the call (gzip-compressed content under an
    ``.svg`` or ``.bin`` name, a format that cannot be told), or a link with a sketch file's name that leads to no
    file, goes to ``options["on_error"]`` like any other unreadable file, and the walk goes on."""
    for file in files:
        if (why := broken_link(file)) is not None:
            report(FormatError(why, source=str(file), whole_file=True), options["on_error"])
            continue
        try:
            located = read_located(file, format, **options)
        except FormatError as exc:
            report(locate(exc, str(file)), options["on_error"])
            continue
        yield from located
