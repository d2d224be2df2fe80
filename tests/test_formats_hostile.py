"""Hostile and odd input for the readers (files the tests write themselves): each is refused with a located
``FormatError`` through ``on_error``, or read right, and never aborts a folder walk or ``prepare``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from sketchgraph.errors import FormatError, SketchError
from sketchgraph.formats import read_sketches
from sketchgraph.sketch import Sketch

SVG_NS = 'xmlns="http://www.w3.org/2000/svg"'


def read_all(path, **kw) -> tuple[list[Sketch], list[FormatError]]:
    errors: list[FormatError] = []
    return list(read_sketches(path, on_error=errors.append, **kw)), errors


def svg(path: Path, body: str, *, head: str = "", root: str = "") -> Path:
    """An SVG file ``<svg ...>body</svg>`` (``head``: an XML declaration; ``root``: more root attributes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{head}<svg {SVG_NS}{root}>{body}</svg>')
    return path


# ------------------------------------------------------------------------------------------ H1: XML encodings
@pytest.mark.parametrize("encoding, message", [
    ("foo", "unknown encoding: foo"),
    ("shift_jis", "multi-byte encodings are not supported"),
])
def test_svg_with_an_unreadable_xml_encoding_is_a_located_format_error(tmp_path, encoding, message):
    good = svg(tmp_path / "cat" / "0.svg", '<path d="M0 0 L5 5"/>')
    bad = svg(tmp_path / "cat" / "1.svg", '<path d="M0 0 L5 5"/>', head=f'<?xml version="1.0" encoding="{encoding}"?>')
    got, errors = read_all(tmp_path)  # a folder walk: the bad file is reported, the good one read
    assert [s.key_id for s in got] == ["0"] and len(errors) == 1
    assert errors[0].source == str(bad) and message in str(errors[0]) and "UTF-8" in str(errors[0])
    with pytest.raises(FormatError, match=re.escape(str(bad))):
        list(read_sketches(bad))
    assert good.exists()


def test_prepare_goes_on_past_an_svg_with_an_unknown_encoding(tmp_path):
    from sketchgraph.data import prepare

    svg(tmp_path / "in" / "cat" / "0.svg", '<path d="M0 0 L50 50 L90 10"/>')
    bad = svg(tmp_path / "in" / "cat" / "1.svg", '<path d="M0 0 L5 5"/>', head='<?xml version="1.0" encoding="foo"?>')
    info = prepare([tmp_path / "in"], tmp_path / "out", workers=1, progress=False)
    assert info.splits == {"all": 1}
    (entry,) = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert entry["source"] == str(bad) and entry["kind"] == "malformed" and "unknown encoding" in entry["message"]


# ------------------------------------------------------------------------------------------ H4: a record's split
def test_a_records_split_field_does_not_override_its_files_split(tmp_path):
    from sketchgraph.data import prepare

    drawing = [[[0, 50, 100], [0, 50, 0]]]
    records = [{"word": "cat", "key_id": str(i), "drawing": drawing, **({"split": s} if s else {})}
               for i, s in enumerate(["test", "test", None, "validation", 7])]
    src = tmp_path / "in"
    src.mkdir()
    (src / "cat_train.ndjson").write_text("\n".join(map(json.dumps, records)) + "\n")
    (src / "cat_test.ndjson").write_text(json.dumps({"word": "cat", "key_id": "99", "drawing": drawing}) + "\n")
    info = prepare([src], tmp_path / "out", workers=1, progress=False)
    assert info.splits == {"train": 5, "test": 1}


def test_npz_sketches_written_to_ndjson_keep_the_split_of_the_file_name(tmp_path):
    """The round trip npz -> ndjson writes each sketch's ``split`` field; the file name still decides."""
    from sketchgraph.data import prepare
    from sketchgraph.formats import write_ndjson, write_stroke3_npz

    rows = np.array([[0, 0, 0], [40, 10, 0], [10, 40, 1]], dtype=np.int16)
    npz = write_stroke3_npz(tmp_path / "sheep.npz", train=[rows, rows], test=[rows])
    src = tmp_path / "in"
    src.mkdir()
    write_ndjson(read_sketches(npz, split="train"), src / "sheep_test.ndjson")
    write_ndjson(read_sketches(npz, split="test"), src / "sheep_train.ndjson")
    assert '"split":"train"' in (src / "sheep_test.ndjson").read_text()
    info = prepare([src], tmp_path / "out", workers=1, progress=False)
    assert info.splits == {"train": 1, "test": 2}
    info = prepare([npz], tmp_path / "out_npz", workers=1, progress=False)  # an .npz keeps its members' splits
    assert info.splits == {"train": 2, "test": 1}


# ------------------------------------------------------------------------------------------ H3, L3, L11: npz
def npy_member(path: Path, payload: bytes, shape: tuple[int, ...], descr: str = "|O", *, name: str = "train",
               compress: bool = True) -> Path:
    """An ``.npz`` whose one member ``name.npy`` has an ``.npy`` header (``descr``, ``shape``) then ``payload``."""
    import io
    import zipfile

    from numpy.lib import format as npy_format

    buf = io.BytesIO()
    npy_format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}.npy", buf.getvalue() + payload)
    return path


class _Reduce:
    """Pickles as ``fn(*args)`` then, when ``state`` is given, ``__setstate__(state)``."""

    def __init__(self, fn, args, state=None):
        self.fn, self.args, self.state = fn, args, state

    def __reduce__(self):
        return (self.fn, self.args) if self.state is None else (self.fn, self.args, self.state)


def _reconstruct_fn():
    from numpy._core.multiarray import _reconstruct

    return _reconstruct


def pickled(obj) -> bytes:
    import pickle

    return pickle.dumps(obj, protocol=3)


def object_array_of(*items) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr


ROWS = np.array([[0, 0, 0], [40, 10, 0], [10, 40, 1]], dtype=np.int16)


def test_npz_uninitialised_rows_are_refused(tmp_path):
    """``_reconstruct`` with a shape and no state would give an uninitialised array of any size (a memory bomb, or
    heap bytes read as coordinates) from a file of a few hundred bytes."""
    lazy = _Reduce(_reconstruct_fn(), (np.ndarray, (20_000_000, 3), np.dtype("i2")))
    path = npy_member(tmp_path / "bomb.npz", pickled(object_array_of(ROWS, lazy)), (2,))
    assert path.stat().st_size < 1000
    got, errors = read_all(path)
    assert got == [] and len(errors) == 1 and errors[0].whole_file
    assert "cannot unpickle safely" in str(errors[0]) and "refusing _reconstruct" in str(errors[0])


def test_npz_an_uninitialised_outer_array_is_refused(tmp_path):
    """An outer object array of 3e8 ``None`` (no state) was 3e8 errors from a file of 300 bytes."""
    top = _Reduce(_reconstruct_fn(), (np.ndarray, (300_000_000,), np.dtype("O")))
    got, errors = read_all(npy_member(tmp_path / "flood.npz", pickled(top), (300_000_000,)))
    assert got == [] and len(errors) == 1 and "refusing _reconstruct" in str(errors[0])


@pytest.mark.parametrize("make, message", [
    (lambda: _Reduce(np.ndarray, ((1000, 3), "i2")), "not callable"),  # ndarray called directly: uninitialised
    (lambda: _Reduce(_reconstruct_fn(), (np.ndarray, (0,), b"b"), (1, (5, 3), np.dtype("i2"), False, b"\0" * 6)),
     "does not match its shape"),
    (lambda: _Reduce(np.dtype, ("V8", False, True)), "refusing numpy.dtype"),
])
def test_npz_states_numpy_never_writes_are_refused(tmp_path, make, message):
    path = npy_member(tmp_path / "odd.npz", pickled(object_array_of(ROWS, make())), (2,))
    got, errors = read_all(path)
    assert got == [] and len(errors) == 1 and errors[0].source == str(path) and message in str(errors[0]), errors


@pytest.mark.parametrize("state, message", [
    ((1, (100_000,), np.dtype("O"), False, [ROWS]), "does not match its shape"),  # an object list too short
    ((1, (1,), np.dtype([("a", "O")]), False, []), "refusing numpy.dtype"),  # objects in a structured dtype
], ids=["short-object-list", "structured-object-dtype"])
def test_npz_states_that_crash_numpy_are_refused(tmp_path, state, message):
    """numpy's ``ndarray.__setstate__`` crashes the interpreter on these states; the reader checks every state
    first. Run in a child process, so a crash fails this test only."""
    import subprocess
    import sys

    top = _Reduce(_reconstruct_fn(), (np.ndarray, (0,), b"b"), state)
    path = npy_member(tmp_path / "crash.npz", pickled(top), state[1])
    code = ("import sys; from sketchgraph.formats import read_sketches; e = []; "
            "n = len(list(read_sketches(sys.argv[1], on_error=e.append))); print(n, e[0] if e else '')")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("0 ") and message in done.stdout, done.stdout


def test_npz_numpy_scalars_and_python2_pickles_still_load(tmp_path):
    """What numpy and sketch-rnn's Python 2 files write: arrays of arrays and scalars, big-endian rows."""
    rows = ROWS.astype(">i2")
    path = tmp_path / "ok.npz"
    np.savez(path, train=object_array_of(ROWS, rows), extra=object_array_of(np.float32(1.5), np.int64(7), ROWS))
    got, errors = read_all(path, split="train")
    assert not errors and [s.strokes[0].tolist() for s in got] == [[[0, 0], [40, 10], [50, 50]]] * 2
    from sketchgraph.formats.npz import load_object_array

    extra = load_object_array(path, "extra")
    assert extra[0] == np.float32(1.5) and extra[1] == 7 and type(extra[2]) is np.ndarray


def test_npz_truncated_numeric_member_is_diagnosed_as_truncated(tmp_path):
    path = npy_member(tmp_path / "short.npz", b"\0" * 10, (1000, 3), "<i2")
    for allow_pickle in (True, False):
        from sketchgraph.formats import read_stroke3_npz

        errors: list[FormatError] = []
        assert list(read_stroke3_npz(path, on_error=errors.append, allow_pickle=allow_pickle)) == []
        (error,) = errors
        assert "split 'train': corrupt or truncated array data" in str(error) and error.whole_file, error


def test_npz_a_zip_bomb_member_is_refused_before_it_is_read(tmp_path):
    zeros = np.zeros((700_000, 3), dtype=np.int16)  # 4.2 MB of zeros deflate to a few KB
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, train_data=zeros, train_offsets=np.array([0, len(zeros)]))
    got, errors = read_all(path)
    assert got == [] and len(errors) == 1 and "would inflate" in str(errors[0]) and errors[0].whole_file


def test_npz_a_member_larger_than_the_limit_is_refused(tmp_path, monkeypatch):
    from sketchgraph.formats import npz

    path = tmp_path / "big.npz"
    np.savez(path, train=object_array_of(ROWS, ROWS))  # stored, not compressed: only the absolute limit applies
    assert len(read_all(path)[0]) == 2
    monkeypatch.setattr(npz, "MAX_MEMBER_BYTES", 200)
    got, errors = read_all(path)
    assert got == [] and "would inflate" in str(errors[0]) and "200 bytes" in str(errors[0])


# ------------------------------------------------------------------------------------------ H2: SVG point budget
def test_svg_use_copies_of_long_curves_are_refused_before_sampling(tmp_path):
    """300 ``<use>`` copies of 100 huge curves (7 KB) would sample 3e8 points: refused at once."""
    import time

    d = "M0 0 " + " ".join("C 1e6 0 1e6 1e6 0 1e6" for _ in range(100))
    path = svg(tmp_path / "uses.svg", f'<defs><path id="p" d="{d}"/></defs>' + '<use href="#p"/>' * 300)
    start = time.perf_counter()
    got, errors = read_all(path)
    assert got == [] and len(errors) == 1 and errors[0].source == str(path)
    assert re.search(r"would sample at least [\d,]+ points.*\(limit 1,000,000\)", str(errors[0])), errors
    assert time.perf_counter() - start < 5


def test_svg_big_arcs_are_refused_and_sampled_fast(tmp_path):
    arcs = " ".join(f"A 1e6 1e6 0 0 1 {(i % 2 * 2 - 1) * 10**6} 0" for i in range(200))
    got, errors = read_all(svg(tmp_path / "arcs.svg", f'<path d="M0 0 {arcs}"/>'))
    assert got == [] and "limit 1,000,000" in str(errors[0])
    import time

    start = time.perf_counter()  # 50 arcs of 10,000 points each: within the limit, sampled at once
    (sketch,) = read_sketches(svg(tmp_path / "ok.svg", f'<path d="M0 0 {arcs[: len(arcs) // 4]}"/>'))
    assert sketch.num_points > 400_000 and time.perf_counter() - start < 5


def test_svg_point_limit_is_per_file_and_counts_every_copy(tmp_path, monkeypatch):
    from sketchgraph.formats import svg as svg_module

    path = svg(tmp_path / "three.svg", '<defs><path id="p" d="M0 0 L1 0 L2 0"/></defs>' + '<use href="#p"/>' * 3)
    monkeypatch.setattr(svg_module, "MAX_POINTS", 9)  # 3 copies x 3 points
    assert read_all(path)[0][0].num_points == 9
    monkeypatch.setattr(svg_module, "MAX_POINTS", 8)
    got, errors = read_all(path)
    assert got == [] and "would sample at least 9 points" in str(errors[0]) and "(limit 8)" in str(errors[0])
    empties = svg(tmp_path / "empty.svg", '<g id="g">' + '<path d=""/>' * 5 + '</g>' + '<use href="#g"/>' * 2)
    assert "limit 8" in str(read_all(empties, keep_empty=True)[1][0])  # 15 shapes drawing nothing count too


# ------------------------------------------------------------------------------------------ M1: arcs, transforms
@pytest.mark.parametrize("d", [
    "M 0 0 A 50 50 0 0 1 100 0", "M 0 0 A 50 20 30 0 1 100 0", "M 10 0 A 40 25 -60 1 0 90 30",
])
@pytest.mark.parametrize("transform", [
    "matrix(0 1 1 0 0 0)",  # a mirror: the sweep flips
    "rotate(90) scale(-1 1)",  # as Inkscape writes a flipped, rotated object
    "scale(2 1)",  # non-uniform: a rotated ellipse changes shape
    "skewX(30) translate(5 7)",
    "scale(1.6233) translate(0,-60)",
])
def test_svg_arcs_are_drawn_where_the_transform_puts_them(tmp_path, d, transform):
    from svgpathtools import parse_path
    from svgpathtools.parser import parse_transform

    (sketch,) = read_sketches(svg(tmp_path / "a.svg", f'<path transform="{transform}" d="{d}"/>'))
    got = sketch.strokes[0].astype(np.float64)  # (n, 2)
    arc = parse_path(d)[0]
    dense = np.array([arc.point(t) for t in np.linspace(0, 1, 4001)])  # (4001,) on the arc, its own coordinates
    m = parse_transform(transform)
    exact = np.column_stack([dense.real, dense.imag]) @ m[:2, :2].T + m[:2, 2]  # (4001, 2) where it is drawn
    gap = np.sqrt(((got[:, None] - exact[None]) ** 2).sum(-1))  # (n, 4001)
    assert gap.min(1).max() < 0.05  # every point read is on the transformed arc
    assert gap.min(0).max() <= 3.0 + 1e-3  # and covers all of it, at about the spacing (3)
    np.testing.assert_allclose(got[[0, -1]], exact[[0, -1]], atol=1e-3)


def test_svg_a_hidden_scale_0_group_draws_nothing_and_the_rest_is_read(tmp_path):
    hidden = '<g transform="scale(0)"><circle cx="5" cy="5" r="3"/><path d="M 1 1 C 2 2 3 3 4 1"/></g>'
    body = hidden + '<path d="M0 0 L9 9"/>'
    got, errors = read_all(svg(tmp_path / "s0.svg", body))
    assert not errors and [s.tolist() for s in got[0].strokes] == [[[0, 0], [9, 9]]]


# ------------------------------------------------------------------------------------------ M2: shape lengths
@pytest.mark.parametrize("body, want", [
    ('<line x1="1in" y1="0" x2="2in" y2="0.5pt"/>', [[[96, 0], [192, 2 / 3]]]),
    ('<line x1="1e1" y1=" 2 " x2="3px" y2="-4"/>', [[[10, 2], [3, -4]]]),
    ('<rect x="1mm" y="0" width="1cm" height="5px"/>',
     [[[96 / 25.4, 0], [96 / 25.4 + 96 / 2.54, 0], [96 / 25.4 + 96 / 2.54, 5], [96 / 25.4, 5], [96 / 25.4, 0]]]),
    ('<rect x="0" y="0" width="0" height="5"/><line x1="0" y1="0" x2="1" y2="1"/>', [[[0, 0], [1, 1]]]),
    ('<polyline points="0,0 10,0 10,10"/>', [[[0, 0], [10, 0], [10, 10]]]),
])
def test_svg_shape_lengths_take_their_units(tmp_path, body, want):
    (sketch,) = read_sketches(svg(tmp_path / "u.svg", body))
    assert len(sketch.strokes) == len(want)
    for got, expected in zip(sketch.strokes, want):
        np.testing.assert_allclose(got, np.array(expected, dtype=np.float32), rtol=1e-6)


@pytest.mark.parametrize("body, rx, ry", [
    ('<circle cx="10" cy="10" r="5px"/>', 5, 5),
    ('<circle cx="10" cy="10" r="0.5in"/>', 48, 48),
    ('<ellipse cx="10" cy="10" rx="auto" ry="4"/>', 4, 4),
    ('<ellipse cx="10" cy="10" rx="6"/>', 6, 6),
    ('<ellipse cx="10" cy="10" rx="1cm" ry="2"/>', 96 / 2.54, 2),
])
def test_svg_circles_and_ellipses_with_units(tmp_path, body, rx, ry):
    (sketch,) = read_sketches(svg(tmp_path / "c.svg", body))
    (stroke,) = sketch.strokes
    np.testing.assert_allclose(((stroke - 10) ** 2 / [rx**2, ry**2]).sum(1), 1, rtol=1e-4)  # on the ellipse
    np.testing.assert_allclose(stroke[0], stroke[-1], atol=1e-4)  # closed
    assert len(stroke) >= 2 * np.pi * max(rx, ry) / 3  # about the spacing (3) apart


def test_svg_a_rounded_rect_clamps_its_corner_radius(tmp_path):
    (sketch,) = read_sketches(svg(tmp_path / "r.svg", '<rect x="1" y="2" width="20" height="10" rx="30"/>'))
    (stroke,) = sketch.strokes  # rx clamped to 10 (half the width), ry = rx clamped to 5: an ellipse
    np.testing.assert_allclose([stroke.min(0), stroke.max(0)], [[1, 2], [21, 12]], atol=1e-5)
    np.testing.assert_allclose(((stroke - [11, 7]) ** 2 / [100, 25]).sum(1), 1, rtol=1e-4)


@pytest.mark.parametrize("body, message", [
    ('<line x1="10%" y1="0" x2="50%" y2="0"/>', "<line> x1='10%': percentages are not supported"),
    ('<line x1="0 0 L 50 50 L 0" y1="0" x2="10" y2="10"/>', "<line> x1='0 0 L 50 50 L 0': not a length"),
    ('<rect x="0" y="0" width="-3" height="5"/>', "<rect> width='-3': not a finite positive length"),
    ('<circle cx="10" cy="10"/>', "<circle> has no r"),
    ('<ellipse cx="10" cy="10"/>', "<ellipse> has neither rx nor ry"),
    ('<circle cx="1e999" cy="10" r="1"/>', "not a finite length"),
    ('<circle cx="10" cy="10" r="5furlongs"/>', "not a length"),
])
def test_svg_shape_attributes_that_are_not_lengths_are_refused_by_name(tmp_path, body, message):
    path = svg(tmp_path / "bad.svg", body)
    got, errors = read_all(path)
    assert got == [] and len(errors) == 1 and errors[0].source == str(path) and message in str(errors[0]), errors


# ------------------------------------------------------------------------------------------ M3: walks go on
@pytest.mark.parametrize("name, content", [
    ("b.svg", f'<svg {SVG_NS}><path d="M0 0 L9 9"/></svg>'.encode()),
    ("b.bin", b"\0" * 40),
])
def test_a_folder_walk_reports_a_gzipped_svg_or_bin_and_goes_on(tmp_path, name, content):
    import gzip

    (tmp_path / "a.ndjson").write_text('{"drawing": [[[1, 2], [3, 4]]]}\n')
    (tmp_path / name).write_bytes(gzip.compress(content))
    (tmp_path / "c.ndjson").write_text('{"drawing": [[[5, 6], [7, 8]]]}\n')
    got, errors = read_all(tmp_path)
    assert [s.strokes[0][0].tolist() for s in got] == [[1, 3], [5, 7]]
    assert len(errors) == 1 and errors[0].source == str(tmp_path / name) and "decompress it" in str(errors[0])
    with pytest.raises(FormatError, match="decompress it"):  # without on_error: raised, as every error
        list(read_sketches(tmp_path))


# ------------------------------------------------------------------------------------------ L1: .bin content
def test_a_bin_that_is_no_quickdraw_file_is_refused_once(tmp_path):
    text = tmp_path / "notes.bin"
    text.write_text('{"word": "cat", "drawing": [[[1, 2], [3, 4]]]}\n' * 20)
    got, errors = read_all(text)
    assert got == [] and len(errors) == 1 and errors[0].whole_file  # no record was read: a file that is unreadable
    assert f"{text}: record 1 (byte 0): not a Quick, Draw! .bin record (countrycode=" in str(errors[0])


@pytest.mark.parametrize("pil_format, kind", [("PNG", "a PNG image"), ("JPEG", "a JPEG image")])
def test_an_image_read_as_bin_is_refused_once_saying_what_it_is(tmp_path, pil_format, kind):
    """An image named ``.bin`` (or read with ``format="bin"``) is one error saying what it is, not garbage strokes
    or a "truncated record" (a PNG's first bytes pass the header check: country and recognized are zeros)."""
    from PIL import Image

    for path, options in ((tmp_path / "apple.bin", {}), (tmp_path / "apple.img", {"format": "bin"})):
        Image.new("RGB", (300, 200), "white").save(path, pil_format)
        got, errors = read_all(path, **options)
        assert got == [] and len(errors) == 1, errors
        assert str(errors[0]) == (f"{path}: record 1 (byte 0): not a Quick, Draw! .bin record (this is {kind}): not "
                                  "a .bin file. The rest of the file is not read")
        assert errors[0].whole_file  # a file that could not be read, not "1 sketch could not be classified"


def test_a_bin_of_zeros_stops_after_a_run_of_empty_records(tmp_path):
    from sketchgraph.formats import write_bin
    from sketchgraph.formats.quickdraw_bin import MAX_EMPTY_RUN

    weights = tmp_path / "pytorch_model.bin"
    weights.write_bytes(b"\0" * 17 * 10_000)  # 10,000 empty records' worth of zeros
    got, errors = read_all(weights)
    assert got == [] and len(errors) == MAX_EMPTY_RUN + 1 and "are all empty" in str(errors[-1])
    good = tmp_path / "cat.bin"
    write_bin([Sketch.from_strokes([[[0, 10], [0, 10]]], key_id="7")], good)
    good.write_bytes(good.read_bytes() + b"\0" * 17 * 3)  # a few empty records are reported one by one
    got, errors = read_all(good)
    assert len(got) == 1 and len(errors) == 3 and all("empty drawing" in str(e) for e in errors)


# ------------------------------------------------------------------------------------------ L2: UTF-16 text
@pytest.mark.parametrize("encoding, name", [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16"), ("utf-32", "UTF-32")])
@pytest.mark.parametrize("suffix", [".ndjson", ".json"])
def test_utf16_json_lines_are_refused_once_saying_to_convert(tmp_path, encoding, name, suffix):
    lines = "\n".join(json.dumps({"word": "cat", "drawing": [[[1, 2], [3, 4]]]}) for _ in range(3)) + "\n"
    path = tmp_path / f"u{suffix}"
    path.write_bytes(lines.encode(encoding))
    got, errors = read_all(path)
    assert got == [] and len(errors) == 1 and errors[0].whole_file
    assert f"{name} text" in str(errors[0]) and "iconv" in str(errors[0])


def test_prepare_reports_a_utf16_ndjson_once(tmp_path):
    from sketchgraph.data import prepare

    src = tmp_path / "in"
    src.mkdir()
    drawing = [[[0, 50, 100], [0, 50, 0]]]
    (src / "cat.ndjson").write_text(json.dumps({"word": "cat", "key_id": "1", "drawing": drawing}) + "\n")
    wide = src / "dog.ndjson"
    wide.write_bytes(("\n".join(json.dumps({"word": "dog", "drawing": drawing}) for _ in range(5)) + "\n")
                     .encode("utf-16"))
    info = prepare([src], tmp_path / "out", workers=1, progress=False)
    assert info.splits == {"all": 1}
    (entry,) = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert entry["source"] == str(wide) and entry["kind"] == "unreadable" and "UTF-16 text" in entry["message"]


# ------------------------------------------------------------------------------------------ L4: .json as .jsonl
def test_a_json_file_of_lines_reads_as_the_same_jsonl_file(tmp_path):
    body = "# c\n" * 8 + "\n".join(json.dumps({"drawing": [[[1, 2], [3, 4]]]}) for _ in range(3)) + "\n"
    results = {}
    for name in ("hdr.json", "hdr.jsonl"):
        (tmp_path / name).write_text(body)
        got, errors = read_all(tmp_path / name)
        results[name] = (len(got), [e.line for e in errors])
    assert results["hdr.json"] == results["hdr.jsonl"] == (3, list(range(1, 9)))


# ------------------------------------------------------------------------------------------ L5: key_id values
@pytest.mark.parametrize("key_id, want", [
    ("5629189624315904", "5629189624315904"), (5629189624315904, "5629189624315904"),
    (5629189624315904.0, "5629189624315904"), (7, "7"),
])
def test_a_key_id_reads_as_one_string_however_it_is_written(tmp_path, key_id, want):
    path = tmp_path / "k.ndjson"
    path.write_text(json.dumps({"key_id": key_id, "drawing": [[[1, 2], [3, 4]]]}) + "\n")
    assert [s.key_id for s in read_sketches(path)] == [want]


@pytest.mark.parametrize("key_id, found", [({"a": 1}, "dict"), ([1, 2], "list"), (True, "bool"), (1.5, "float")])
def test_a_key_id_that_is_no_string_or_integer_is_refused(tmp_path, key_id, found):
    path = tmp_path / "k.ndjson"
    path.write_text(json.dumps({"key_id": key_id, "drawing": [[[1, 2], [3, 4]]]}) + "\n")
    got, errors = read_all(path)
    assert got == [] and errors[0].line == 1 and f"'key_id' must be a string or an integer, found a {found}" in str(
        errors[0])


# ------------------------------------------------------------------------------------------ L6: write_svg
def test_write_svg_refuses_what_xml_cannot_hold_and_round_trips_the_rest(tmp_path):
    from sketchgraph.errors import SketchError
    from sketchgraph.formats import write_svg

    with pytest.raises(SketchError, match="data-label 'cat\\\\x01' holds '\\\\x01'"):
        write_svg(Sketch.from_strokes([[[0, 10], [0, 10]]], label="cat\x01"), tmp_path / "ctl.svg")
    assert not (tmp_path / "ctl.svg").exists()
    label = 'a "cat" <&>\tand\nmore \u00e9'
    write_svg(Sketch.from_strokes([[[0, 10], [0, 10]]], label=label, key_id="k\r1"), tmp_path / "ok.svg")
    (sketch,) = read_sketches(tmp_path / "ok.svg")
    assert (sketch.label, sketch.key_id) == (label, "k\r1")


# ------------------------------------------------------------------------------------------ L10: split files
def test_split_files_may_be_gzipped_and_keys_read_as_the_readers_read_them(tmp_path):
    import gzip

    from sketchgraph.data.splits import read_split_keys

    folder = tmp_path / "splits"
    folder.mkdir()
    (folder / "cat_train.ndjson.gz").write_bytes(gzip.compress(b'{"key_id": "1", "drawing": []}\n'))
    (folder / "cat_test.ndjson").write_text('{"key_id": 5629189624315904.0, "drawing": []}\n\n{"drawing": []}\n')
    (folder / "notes.txt").write_text("not a split file")
    assert read_split_keys(folder) == {"1": "train", "5629189624315904": "test"}
    assert read_split_keys([folder / "cat_train.ndjson.gz"]) == {"1": "train"}


@pytest.mark.parametrize("line, message", [
    (b"{bad", "cat_train.ndjson:2: not a JSON record with a key_id"),
    (b'{"key_id": [1, 2]}', "cat_train.ndjson:2: 'key_id' must be a string or an integer, found a list"),
])
def test_a_bad_split_file_line_is_named(tmp_path, line, message):
    from sketchgraph.data.splits import read_split_keys
    from sketchgraph.errors import SketchError

    path = tmp_path / "cat_train.ndjson"
    path.write_bytes(b'{"key_id": "1"}\n' + line + b"\n")
    with pytest.raises(SketchError, match=re.escape(message)):
        read_split_keys([path])


@pytest.mark.parametrize("body, strokes", [
    ('<path d="M0 0 L10 0"/>', 1),
    ('<path d="M0 0 L10 0" style="display: none !important"/>', 0),
    ('<path d="M0 0 L10 0" visibility="hidden"/>', 0),
    ('<g visibility="hidden"><path d="M0 0 L10 0"/><path d="M0 5 L10 5" visibility="visible"/></g>', 1),
    ('<g style="visibility:hidden"><g><path d="M0 0 L10 0"/></g></g>', 0),
    ('<g opacity="0"><path d="M0 0 L10 0" visibility="visible"/></g>', 0),
    ('<path d="M0 0 L10 0" style="opacity: 0%"/>', 0),
    ('<path d="M0 0 L10 0" opacity="0.5"/>', 1),
    ('<path d="M0 0 L10 0" opacity="bogus"/>', 1),  # an invalid value is ignored, as browsers do
    ('<defs><path id="p" d="M0 0 L10 0"/></defs><use href="#p" visibility="hidden"/><use href="#p"/>', 1),
])
def test_svg_elements_that_render_nothing_draw_no_strokes(tmp_path, body, strokes):
    (sketch,) = read_sketches(svg(tmp_path / "a.svg", body + '<path d="M0 20 L10 20"/>'))
    assert sketch.num_strokes == strokes + 1  # the last path is always visible


# ------------------------------------------------------------------------------ binary data under a text name
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4 + b"\n" * 200
SAFETENSORS_HEAD = ((0x1068).to_bytes(8, "little") + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
                    + b"\0" * 64)


@pytest.mark.parametrize("content, says", [
    (PNG_HEAD, "this is a PNG image, not a sketch file"),
    (b"PK\x03\x04" + b"\0\n" * 300, "a zip archive (an .npz? a model file?), not ndjson or JSON text"),
    (SAFETENSORS_HEAD, "binary data (a NUL byte at byte 2), not ndjson or JSON text"),
    ('{"drawing": []}\n'.encode("utf-16-le"), "UTF-16 text"),
])
@pytest.mark.parametrize("name", ["x.ndjson", "x.jsonl", "x.json", "x.ndjson.gz"])
def test_binary_content_under_a_text_name_is_one_error_about_the_file(tmp_path, content, says, name):
    """An image, a zip or other binary data named as ndjson/JSON is one error about the whole file, for the
    readers and for prepare: it used to be an error per chunk of bytes between newlines (202 for a small PNG), and
    a safetensors file was taken for UTF-16 text."""
    import gzip

    from sketchgraph.data import prepare

    path = tmp_path / "in" / name
    path.parent.mkdir()
    path.write_bytes(gzip.compress(content) if name.endswith(".gz") else content)
    errors: list = []
    assert list(read_sketches(path, on_error=errors.append)) == []
    assert len(errors) == 1 and says in str(errors[0]) and errors[0].whole_file, errors
    if not name.endswith(".gz"):  # prepare reads plain ndjson files by byte ranges
        with pytest.raises(SketchError):
            prepare(path.parent, tmp_path / "out", workers=1, progress=False)
        listed = [json.loads(line) for line in (tmp_path / "out.partial" / "errors.jsonl").read_text().splitlines()]
        assert len(listed) == 1 and says in listed[0]["message"], listed


def test_an_image_under_an_svg_name_says_what_it_is(tmp_path):
    path = tmp_path / "x.svg"
    path.write_bytes(PNG_HEAD)
    errors: list = []
    assert list(read_sketches(path, on_error=errors.append)) == []
    assert len(errors) == 1 and "this is a PNG image, not a sketch file" in str(errors[0])
