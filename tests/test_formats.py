"""The format layer on small sketches the tests make themselves (no real data needed)."""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchgraph.errors import FormatError, SketchError
from sketchgraph.formats import (
    EmptySketchError,
    canonical_label,
    detect_format,
    label_from_path,
    rasterize,
    read_bin,
    read_located,
    read_sketches,
    read_stroke3_npz,
    render_png,
    sketch_files,
    sketch_from_obj,
    write_bin,
    write_ndjson,
    write_stroke3_npz,
    write_svg,
)
from sketchgraph.formats.ndjson import TIME_ORIGIN, looks_like_spg, parse_drawing
from sketchgraph.formats.sniff import NPZ_NOT_WALKED
from sketchgraph.preprocess import normalize
from sketchgraph.sketch import COORD_ORIGIN, Sketch


# ------------------------------------------------------------------------------------------ helpers
def make_sketch(seed: int, *, time: bool = False, parts: bool = False, floats: bool = False) -> Sketch:
    """A random sketch with 1-4 strokes of 1-12 points in 0..255 (integers unless ``floats``)."""
    rng = np.random.default_rng(seed)
    strokes, part_ids = [], []
    for _ in range(rng.integers(1, 5)):
        n = int(rng.integers(1, 13))
        xy = rng.integers(0, 256, size=(n, 2)).astype(np.float64)
        if floats:
            xy += rng.random((n, 2)).round(3)
        cols = [xy]
        if time:
            cols.append(np.cumsum(rng.integers(5, 40, size=(n, 1)), axis=0).astype(np.float64))
        strokes.append(np.hstack(cols).astype(np.float32))
        part_ids.append(rng.integers(0, 6, size=n).astype(np.int32))
    return Sketch(
        strokes,
        label=f"thing {seed % 3}",
        key_id=str(5_000_000_000_000_000 + seed),
        parts=part_ids if parts else None,
        recognized=bool(seed % 2),
        meta={"countrycode": "DE", "timestamp": 1_489_243_664},
    )


def dedup(stroke: np.ndarray) -> np.ndarray:
    """Drop repeated consecutive points (an SVG polyline cannot show them)."""
    keep = np.concatenate([[True], (np.diff(stroke[:, :2], axis=0) != 0).any(axis=1)])
    return stroke[keep, :2]


def assert_same_strokes(got: Sketch, want: Sketch, atol: float = 0.0) -> None:
    assert got.num_strokes == want.num_strokes
    for g, w in zip(got.strokes, want.strokes):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, atol=atol)


def write_lines(path: Path, lines: list[str], *, newline: str = "\n", bom: bool = False, final: bool = True) -> Path:
    text = newline.join(lines) + (newline if final else "")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


GOOD = [{"key_id": str(i), "word": "cat", "drawing": [[[i, i + 1, i + 2], [0, 5, 9]]]} for i in range(7)]


# ------------------------------------------------------------------------------------------ round trips
@pytest.mark.parametrize(
    ("style", "kwargs", "atol"),
    [
        ("simplified", {}, 0.0),
        ("raw", {"time": True, "floats": True}, 1e-3),
        ("spg", {"parts": True}, 0.0),
    ],
)
def test_ndjson_round_trip(tmp_path, style, kwargs, atol):
    sketches = [make_sketch(i, **kwargs) for i in range(6)]
    path = tmp_path / "thing_train.ndjson"
    assert write_ndjson(sketches, path, style=style) == 6
    assert detect_format(path) == style
    back = list(read_sketches(path))
    assert len(back) == 6
    for got, want in zip(back, sketches):
        assert_same_strokes(got, want, atol)
        assert got.key_id == want.key_id
        if style == "spg":  # SPG has no "word": the class is the file name
            assert got.label == "thing"
            assert all((g == w).all() for g, w in zip(got.parts, want.parts))
        else:
            assert got.label == want.label
            assert got.recognized == want.recognized
            assert got.meta == want.meta
            assert got.parts is None


def test_bin_round_trip(tmp_path):
    sketches = [make_sketch(i) for i in range(8)]
    path = tmp_path / "thing.bin"
    assert write_bin(sketches, path) == 8
    assert detect_format(path) == "bin"
    back = list(read_sketches(path))
    assert len(back) == 8
    for got, want in zip(back, sketches):
        assert_same_strokes(got, want)
        assert (got.key_id, got.recognized, got.label) == (want.key_id, want.recognized, "thing")
        assert got.meta == {"countrycode": "DE", "timestamp": 1_489_243_664}


def test_bin_writer_converts_quickdraw_timestamps_and_rejects_unrepresentable(tmp_path):
    sketch = make_sketch(1).replace(meta={"countrycode": "US", "timestamp": "2017-03-11 14:47:44.05242 UTC"})
    write_bin([sketch], tmp_path / "a.bin")
    (got,) = read_bin(tmp_path / "a.bin")
    assert got.meta == {"countrycode": "US", "timestamp": 1_489_243_664}
    with pytest.raises(SketchError, match="0..255"):
        write_bin([sketch.replace(strokes=[np.array([[0, 0], [300, 1]], np.float32)])], tmp_path / "b.bin")
    with pytest.raises(SketchError, match="uint64|unsigned"):
        write_bin([sketch.replace(key_id="abc")], tmp_path / "c.bin")


@pytest.mark.parametrize("pickle_free", [False, True], ids=["object-arrays", "pickle-free"])
def test_npz_round_trip(tmp_path, pickle_free):
    names = ["train", "valid", "test"]
    splits = {name: [make_sketch(10 * k + i) for i in range(k + 2)] for k, name in enumerate(names)}
    path = tmp_path / "thing.npz"
    write_stroke3_npz(path, pickle_free=pickle_free, **splits)
    assert detect_format(path) == "npz"
    with np.load(path, allow_pickle=False) as z:
        keys = set(z.files)
    assert keys == ({"train_data", "train_offsets", "valid_data", "valid_offsets", "test_data", "test_offsets"}
                    if pickle_free else {"train", "valid", "test"})
    back = list(read_sketches(path))
    want = [s for name in ("train", "valid", "test") for s in splits[name]]
    assert len(back) == len(want) == 9
    for got, w in zip(back, want):
        assert_same_strokes(got, w)
    assert [s.meta["split"] for s in back] == ["train"] * 2 + ["valid"] * 3 + ["test"] * 4
    valid = list(read_sketches(path, split="valid"))
    assert [s.key_id for s in valid] == ["valid/0", "valid/1", "valid/2"]
    assert_same_strokes(valid[1], splits["valid"][1])


def test_npz_dtype_and_pickle_policy(tmp_path):
    obj, flat = tmp_path / "obj.npz", tmp_path / "flat.npz"
    write_stroke3_npz(obj, train=[make_sketch(1)])
    write_stroke3_npz(flat, train=[make_sketch(2, floats=True)], pickle_free=True)
    with np.load(obj, allow_pickle=True) as z:
        assert z["train"].dtype == object and z["train"][0].dtype == np.int16
    with np.load(flat) as z:  # loads without pickle
        assert z["train_data"].dtype == np.float32
    with pytest.raises(FormatError, match="pickle"):
        list(read_stroke3_npz(obj, allow_pickle=False))
    assert len(list(read_stroke3_npz(flat, allow_pickle=False))) == 1
    with pytest.raises(FormatError, match="no split 'dev'"):
        read_sketches(obj, split="dev")  # at the call, before iteration


def test_svg_round_trip(tmp_path):
    sketch = make_sketch(3, floats=True)
    path = tmp_path / "thing" / "7.svg"
    path.parent.mkdir()
    write_svg(sketch, path)
    assert detect_format(path) == "svg"
    (got,) = read_sketches(path)
    assert (got.label, got.key_id) == (sketch.label, sketch.key_id)  # kept as data-* attributes
    assert got.num_strokes == sketch.num_strokes
    for g, w in zip(got.strokes, sketch.strokes):
        np.testing.assert_allclose(g, dedup(w), atol=1e-3)  # polylines keep their vertices


@pytest.mark.parametrize("path_name", [None, "out.png"])
def test_render_png_draws_where_the_strokes_are(tmp_path, path_name):
    sketch = Sketch.from_strokes([[[0, 0, 100], [0, 100, 100]]])  # an "L": down the left, along the bottom
    path = tmp_path / path_name if path_name else None
    img = render_png(sketch, path, size=100, line_width=2)
    if path is not None:
        assert path.exists() and np.array_equal(np.asarray(Image.open(path)), np.asarray(img))
    a = np.asarray(img)
    assert a.shape == (100, 100) and img.mode == "L"
    assert a[50, 2:8].min() < 100  # left edge inked (4% padding)
    assert a[94:99, 50].min() < 100  # bottom edge inked
    assert a[20:60, 30:90].min() == 255  # the inside of the L is blank (no flip, no offset)


# ------------------------------------------------------------------------------------------ raster
def test_rasterize_fits_keeps_aspect_and_does_not_flip():
    l_shape = Sketch.from_strokes([[[0, 0, 10], [0, 10, 10]]])
    a = rasterize(l_shape, size=32)
    assert a.shape == (32, 32) and a.dtype == np.uint8
    ys, xs = np.nonzero(a)
    assert a[ys, xs].min() == 255
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (1, 1, 30, 30)  # padding line_width // 2 + 1
    assert a[16, 1] == 255 and a[30, 16] == 255 and a[5, 25] == 0  # left and bottom inked, top right not
    wide = rasterize(Sketch.from_strokes([[[0, 100], [50, 50]]]), size=32)
    rows = np.unique(np.nonzero(wide)[0])
    assert set(rows) <= {15, 16}  # a horizontal segment stays in the vertical middle


@pytest.mark.parametrize(
    ("sketch", "ink"),
    [
        (Sketch([]), 0),
        (Sketch.from_strokes([[[5], [5]]]), 1),  # a single point: one dot in the middle
        (Sketch.from_strokes([[[3, 3], [4, 4]]]), 1),  # a zero-length stroke: a dot too
    ],
)
def test_rasterize_degenerate_sketches(sketch, ink):
    a = rasterize(sketch, size=16)
    assert (a > 0).sum() == ink


# ------------------------------------------------------------------------------------------ sniffing, labels
@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("airplane_train.ndjson", "airplane"),
        ("alarm_clock_valid.ndjson", "alarm_clock"),
        ("face_raw.ndjson", "face"),
        ("The Eiffel Tower.ndjson", "The Eiffel Tower"),
        ("full_simplified_cat.ndjson", "cat"),
        ("aaron_sheep.npz", "aaron_sheep"),
        ("training_wheels.bin", "training_wheels"),
    ],
)
def test_label_from_file_name(name, label):
    assert label_from_path(Path("some/dir") / name) == label


def test_label_from_svg_folder():
    assert label_from_path(Path("tuberlin/alarm clock/81.svg"), folder=True) == "alarm clock"


@pytest.mark.parametrize("kind", ["ndjson", "ndjson.gz", "json", "bin", "npz", "svg"])
def test_from_name_false_takes_no_class_or_key_id_from_the_path(tmp_path, kind):
    """``from_name=False`` (a copy of standard input under a made-up name): a record without a class of its own
    has none, an SVG without ``data-key-id`` has no key id; what the data holds, and ``label=``, are kept."""
    own, bare = make_sketch(1), make_sketch(2).replace(label=None)
    folder = tmp_path / "cactus"
    folder.mkdir()
    path = folder / f"crab.{kind}"
    sketches = [own, bare]
    if kind == "svg":
        sketches = [bare.replace(key_id=None)]
        write_svg(sketches[0], path)
    elif kind == "npz":
        write_stroke3_npz(path, train=sketches)  # stroke-3 holds no class: both take the name's
    elif kind == "bin":
        write_bin(sketches, path)  # .bin holds no class either
    elif kind == "json":
        path.write_text(json.dumps([{"word": s.label, "drawing": s.to_lists()} if s.label else
                                    {"drawing": s.to_lists()} for s in sketches]))
    else:
        write_ndjson(sketches, path)
    named = "cactus" if kind == "svg" else "crab"
    own_label = own.label if kind in ("ndjson", "ndjson.gz", "json") else None
    labels = [own_label if s is own else None for s in sketches]
    assert [s.label for s in read_sketches(path)] == [x or named for x in labels]
    assert [s.label for s in read_sketches(path, from_name=False)] == labels
    assert [s.label for s in read_sketches(path, label="duck", from_name=False)] == [x or "duck" for x in labels]
    if kind != "npz":  # a folder walk reads no .npz
        assert [s.label for s in read_sketches(folder, from_name=False)] == labels  # the walk passes it on
    if kind == "svg":
        assert [s.key_id for s in read_sketches(path)] == ["crab"]
        assert [s.key_id for s in read_sketches(path, from_name=False)] == [None]


def test_spg_file_names_give_quickdraw_words(tmp_path):
    assert label_from_path(Path("alarm_clock_test.ndjson"), spg=True) == "alarm clock"
    record = {"key_id": "1", "drawing": [[[1, 2], [3, 4], [0, 0]]]}
    path = write_lines(tmp_path / "ice_cream_test.ndjson", [json.dumps(record)])
    assert [s.label for s in read_sketches(path, "spg")] == ["ice cream"]
    assert [s.label for s in read_sketches(path, "simplified")] == ["ice_cream"]  # other files keep their name


@pytest.mark.parametrize(("a", "b"), [("alarm_clock", "alarm clock"), ("Alarm  Clock", "alarm clock"),
                                      ("The Eiffel Tower", "the eiffel tower"), (" cat ", "cat"),
                                      ("Cafe\u0301", "caf\u00e9")])  # decomposed, as macOS writes file names
def test_canonical_label(a, b):
    assert canonical_label(a) == canonical_label(b) == b
    assert canonical_label("t-shirt") != canonical_label("t shirt")


def test_label_precedence(tmp_path):
    path = write_lines(tmp_path / "dog_test.ndjson", [
        json.dumps({"word": "cat", "drawing": [[[1, 2], [3, 4]]]}),
        json.dumps({"drawing": [[[1, 2], [3, 4]]]}),
    ])
    assert [s.label for s in read_sketches(path)] == ["cat", "dog"]  # "word" wins, then the file name
    assert [s.label for s in read_sketches(path, label="cow")] == ["cat", "cow"]


@pytest.mark.parametrize(
    ("third", "word", "expected"),
    [
        ([0, 0, 1], False, "spg"),  # small integer ids, no word: part labels
        ([0, 48, 133], False, "raw"),  # growing milliseconds
        ([0, 0, 1], True, "raw"),  # a "word" field means Quick, Draw!, so time
        ([0.0, 0.5, 1.0], False, "raw"),  # floats are never part ids
        (None, True, "simplified"),
    ],
)
def test_sniff_spg_versus_raw(tmp_path, third, word, expected):
    stroke = [[1, 2, 3], [4, 5, 6]] + ([third] if third is not None else [])
    record = {"key_id": "1", "drawing": [stroke]} | ({"word": "cat"} if word else {})
    path = write_lines(tmp_path / "x.ndjson", [json.dumps(record)] * 3)
    assert detect_format(path) == expected
    (sketch, *_) = read_sketches(path)
    if expected == "spg":
        assert sketch.parts[0].tolist() == third and sketch.strokes[0].shape == (3, 2)
    else:
        assert sketch.parts is None and sketch.strokes[0].shape == (3, 3 if third is not None else 2)


def test_explicit_format_overrides_sniffing(tmp_path):
    record = {"key_id": "1", "drawing": [[[1, 2, 3], [4, 5, 6], [0, 0, 5]]]}
    path = write_lines(tmp_path / "x.ndjson", [json.dumps(record)])
    assert detect_format(path) == "spg"
    (raw,) = read_sketches(path, format="raw")
    assert raw.has_time and raw.parts is None
    (spg,) = read_sketches(path, format="spg")
    assert not spg.has_time and spg.parts[0].tolist() == [0, 0, 5]
    with pytest.raises(FormatError, match=r"y\.ndjson:1: stroke 0: .*part_ids"):
        list(read_sketches(write_lines(tmp_path / "y.ndjson", [json.dumps(GOOD[0])]), format="spg"))


@pytest.mark.parametrize("kind", ["ndjson", "bin", "npz", "svg"])
def test_sniff_from_content_without_a_telling_suffix(tmp_path, kind):
    sketch = make_sketch(4)
    tmp = tmp_path / {"ndjson": "a.ndjson", "bin": "a.bin", "npz": "a.npz", "svg": "a.svg"}[kind]
    if kind == "ndjson":
        write_ndjson([sketch], tmp)
    elif kind == "bin":
        write_bin([sketch], tmp)
    elif kind == "npz":
        write_stroke3_npz(tmp, train=[sketch])
    else:
        write_svg(sketch, tmp)
    renamed = tmp.rename(tmp_path / "download.dat")
    assert detect_format(renamed) == ("simplified" if kind == "ndjson" else kind)
    (got,) = read_sketches(renamed)
    assert_same_strokes(got, sketch.replace(strokes=[dedup(s) for s in sketch.strokes]) if kind == "svg" else sketch)


def test_unknown_content_and_bad_arguments(tmp_path):
    junk = tmp_path / "junk.dat"
    junk.write_bytes(b"hello world, not a sketch")
    with pytest.raises(FormatError, match="junk.dat.*cannot tell the format"):
        read_sketches(junk)
    ndjson = write_lines(tmp_path / "a.ndjson", [json.dumps(GOOD[0])])
    with pytest.raises(ValueError, match="format must be one of"):
        read_sketches(ndjson, format="csv")  # checked at the call, not at the first next()
    with pytest.raises(ValueError, match="split= applies to .npz"):
        read_sketches(ndjson, split="train")
    with pytest.raises(FileNotFoundError):
        read_sketches(tmp_path / "missing.ndjson")


IMAGE_FORMATS = {"png": ("PNG", "a PNG image"), "jpg": ("JPEG", "a JPEG image"), "gif": ("GIF", "a GIF image"),
                 "pdf": ("PDF", "a PDF document"), "webp": ("WEBP", "a WebP image"), "bmp": ("BMP", "a BMP image"),
                 "tif": ("TIFF", "a TIFF image")}


def write_image(path: Path, pil_format: str, size: tuple[int, int] = (300, 200)) -> Path:
    """A small white image (or one-page PDF) saved by pillow in ``pil_format``."""
    Image.new("RGB", size, "white").save(path, pil_format)
    return path


@pytest.mark.parametrize("suffix", list(IMAGE_FORMATS))
@pytest.mark.parametrize("named", [True, False])
def test_images_and_documents_are_refused_naming_what_they_are(tmp_path, suffix, named):
    """A PNG (every PNG used to pass .bin's header check: bytes 8-10 are zeros) or a JPEG, GIF, PDF, ... is no
    sketch file: refused at the call, as a whole file, saying what it is, whether or not its name tells."""
    pil_format, kind = IMAGE_FORMATS[suffix]
    path = write_image(tmp_path / (f"apple.{suffix}" if named else "apple"), pil_format)
    with pytest.raises(FormatError) as caught:
        read_sketches(path)
    assert str(caught.value).startswith(f"{path}: this is {kind}, not a sketch file; sketchgraph reads stroke data "
                                        "(.ndjson, .jsonl, .json, .bin, .npz, .svg")
    assert caught.value.whole_file and caught.value.source == str(path)


def test_a_damaged_image_is_refused_by_its_name_and_a_bin_starting_like_a_bmp_is_read(tmp_path):
    """An image name on content that is no image nor sketch says so; a ``.bin`` whose first key id starts with
    ``BM`` (a BMP's two-letter signature) is still sniffed as ``.bin``, while a real BMP is refused."""
    damaged = tmp_path / "apple.png"
    damaged.write_bytes(b"\x89PN" + bytes(200))
    with pytest.raises(FormatError, match=r"apple\.png: this is a \.png file \(a PNG image\?\), not a sketch file"):
        read_sketches(damaged)
    sketch = make_sketch(3).replace(key_id=str(int.from_bytes(b"BM" + bytes(6), "little")))
    write_bin([sketch], tmp_path / "a.bin")
    renamed = (tmp_path / "a.bin").rename(tmp_path / "download")
    assert renamed.read_bytes()[:2] == b"BM" and detect_format(renamed) == "bin"
    with pytest.raises(FormatError, match="this is a BMP image"):
        detect_format(write_image(tmp_path / "picture", "BMP"))


def test_looks_like_bin_wants_one_whole_plausible_record(tmp_path):
    """Sniffing takes a file for ``.bin`` only when its first record is whole and plausible: at least one stroke,
    each of at least one point, all within the bytes given. A header alone (a PNG's bytes 8-18 make one) is not
    enough."""
    from sketchgraph.formats.quickdraw_bin import looks_like_bin

    write_bin([make_sketch(1)], tmp_path / "one.bin")
    record = (tmp_path / "one.bin").read_bytes()
    assert looks_like_bin(record) and looks_like_bin(record + record[:5])
    assert not looks_like_bin(record[:-1])  # truncated: its last stroke does not fit
    assert not looks_like_bin(record[:15] + b"\0\0" + record[17:])  # no strokes
    assert not looks_like_bin(record[:17] + b"\0\0" + record[19:])  # its first stroke has no points
    png = write_image(tmp_path / "a.png", "PNG", (20, 20)).read_bytes()
    assert not looks_like_bin(png)
    renamed = write_image(tmp_path / "b.png", "PNG", (20, 20)).rename(tmp_path / "download")
    with pytest.raises(FormatError, match="this is a PNG image"):
        detect_format(renamed)


@pytest.mark.parametrize("signature, kind", [(b"\xff\xd8\xff", "a JPEG image"), (b"II*\x00", "a TIFF image")])
def test_a_bin_whose_first_key_id_starts_like_an_image_is_read(tmp_path, signature, kind):
    """A real ``.bin`` whose first key id's little-endian bytes start as a JPEG's or TIFF's signature (a JPEG's
    ``ff d8 ff``: one key id in 2**24) is read, named ``.bin`` or not, as its first record is whole and plausible;
    the same bytes under an image's name, or with no whole record after them, are still refused naming the image."""
    key_id = int.from_bytes(signature + b"\x44\x33\x22\x11\x00"[len(signature) - 8 :], "little")
    assert len(str(key_id)) == 16  # a key id like Quick, Draw!'s own
    sketches = [make_sketch(1).replace(key_id=str(key_id)), make_sketch(2).replace(key_id="5")]
    write_bin(sketches, tmp_path / "cat.bin")
    data = (tmp_path / "cat.bin").read_bytes()
    assert data.startswith(signature)
    for name in ("cat.bin", "cat", "cat.dat"):
        path = tmp_path / name
        path.write_bytes(data)
        assert detect_format(path) == "bin"
        got = list(read_sketches(path, on_error="raise"))
        assert [s.key_id for s in got] == [str(key_id), "5"]
        assert all(np.array_equal(a, b) for a, b in zip(got[0].strokes, sketches[0].strokes, strict=True))
    named = tmp_path / "cat.jpg"
    named.write_bytes(data)
    with pytest.raises(FormatError, match=f"this is {kind}, not a sketch file"):
        detect_format(named)
    # the signature and a plausible header, but no whole record (cut), or no record after the first (bytes that
    # are no record's header): refused naming what the signature says, as a real image is
    for tail, what in ((data[:20], "cut"), (data[:len(data) // 2], "cut"), (data + b"\xff\xdb" * 20, "garbage")):
        errors: list[FormatError] = []
        (tmp_path / "odd.bin").write_bytes(tail)
        assert list(read_sketches(tmp_path / "odd.bin", on_error=errors.append)) == [], what
        assert len(errors) == 1 and f"(this is {kind}): not a .bin file" in str(errors[0]), what
        (tmp_path / "odd").write_bytes(tail)
        with pytest.raises(FormatError, match=f"this is {kind}, not a sketch file"):
            detect_format(tmp_path / "odd")


def test_an_unnamed_bin_whose_first_record_is_over_the_sniff_window_is_sniffed(tmp_path):
    """A first record longer than the ``SNIFF_BYTES`` sniffed (one unsimplified stroke of 40,000 points: 80,000
    bytes), valid as far as sniffed and within the file, is taken for ``.bin``; the same head on a file too short
    to hold it is not."""
    from sketchgraph.formats.quickdraw_bin import SNIFF_BYTES

    xy = np.stack([np.arange(40_000) % 256, (np.arange(40_000) * 3) % 256], axis=1).astype(np.float32)
    big = Sketch([xy], key_id="5000000000000000", recognized=True, meta={"countrycode": "US"})
    write_bin([big, make_sketch(2).replace(key_id="6")], tmp_path / "big.bin")
    data = (tmp_path / "big.bin").read_bytes()
    assert len(data) > SNIFF_BYTES + 10_000
    for name in ("big", "big.dat"):
        path = tmp_path / name
        path.write_bytes(data)
        assert detect_format(path) == "bin"
        got = list(read_sketches(path, on_error="raise"))
        assert [s.key_id for s in got] == ["5000000000000000", "6"] and got[0].num_points == 40_000
    short = tmp_path / "short"
    short.write_bytes(data[: SNIFF_BYTES + 100])  # the record's first stroke runs past the file's end
    with pytest.raises(FormatError, match=r"cannot tell the format from the name or content; name it with "
                                          r"--format \(format= in Python\): one of simplified, raw, spg, ndjson, "
                                          r"bin, npz, svg$"):
        detect_format(short)


def test_an_empty_device_is_an_empty_file():
    """``/dev/null`` (a device: its size says nothing) got "cannot tell the format"; it holds no sketches."""
    with pytest.raises(FormatError, match=r"^/dev/null: the file is empty: no sketches$"):
        detect_format("/dev/null")


# ------------------------------------------------------------------------------------------ errors
BAD_LINES = {
    "invalid-json": '{"drawing": [[[1, 2], [3, 4]]',
    "no-drawing": '{"key_id": "1", "word": "cat"}',
    "not-an-object": "42",
    "ragged": '{"drawing": [[[1, 2, 3], [3, 4]]]}',
    "four-lists": '{"drawing": [[[1], [2], [3], [4]]]}',
    "non-numeric": '{"drawing": [[[1, "a"], [3, 4]]]}',
    "nested": '{"drawing": [[[1, [2]], [3, 4]]]}',
    "nan": '{"drawing": [[[1, NaN], [3, 4]]]}',
    "huge": '{"drawing": [[[1, 1e300], [3, 4]]]}',
    "mixed-columns": '{"drawing": [[[1], [2]], [[1], [2], [3]]]}',
}


@pytest.mark.parametrize("bad", list(BAD_LINES), ids=list(BAD_LINES))
def test_malformed_lines_are_reported_with_file_and_line(tmp_path, bad):
    lines = [json.dumps(r) for r in GOOD[:5]]
    lines.insert(2, BAD_LINES[bad])
    lines.insert(5, BAD_LINES[bad])  # lines 3 and 6 are bad
    path = write_lines(tmp_path / "cat.ndjson", lines)
    errors: list[FormatError] = []
    got = list(read_sketches(path, on_error=errors.append))
    assert [s.key_id for s in got] == ["0", "1", "2", "3", "4"]
    assert [(e.source, e.line) for e in errors] == [(str(path), 3), (str(path), 6)]
    assert str(errors[0]).startswith(f"{path}:3: ")
    reader = read_sketches(path)
    assert [next(reader).key_id for _ in range(2)] == ["0", "1"]
    with pytest.raises(FormatError, match=r"cat\.ndjson:3: "):
        next(reader)


@pytest.mark.parametrize("bom", [False, True], ids=["", "bom"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("final", [True, False], ids=["final-newline", "no-final-newline"])
def test_text_robustness(tmp_path, bom, newline, final):
    lines = [json.dumps(GOOD[0]), "", "   ", json.dumps(GOOD[1]), json.dumps(GOOD[2])]
    path = write_lines(tmp_path / "cat.ndjson", lines, newline=newline, bom=bom, final=final)
    assert detect_format(path) == "simplified"
    got = list(read_sketches(path))
    assert [s.key_id for s in got] == ["0", "1", "2"]
    assert got[2].strokes[0].tolist() == [[2, 0], [3, 5], [4, 9]]


def _write_with_empty(tmp_path: Path, kind: str) -> Path:
    full, empty = make_sketch(5), Sketch([], key_id="9")
    if kind == "ndjson":
        return write_lines(tmp_path / "e.ndjson", [
            json.dumps({"key_id": "0", "drawing": full.to_lists()}),
            json.dumps({"key_id": "1", "drawing": []}),
            json.dumps({"key_id": "2", "drawing": [[[], []], [[], []]]}),
        ])
    if kind == "bin":
        write_bin([full, empty, empty], tmp_path / "e.bin")
        return tmp_path / "e.bin"
    write_stroke3_npz(tmp_path / "e.npz", train=[full, np.zeros((0, 3)), np.zeros((0, 3))])
    return tmp_path / "e.npz"


@pytest.mark.parametrize("kind", ["ndjson", "bin", "npz"])
def test_empty_drawings_are_reported_or_kept(tmp_path, kind):
    path = _write_with_empty(tmp_path, kind)
    errors: list[FormatError] = []
    assert len(list(read_sketches(path, on_error=errors.append))) == 1
    assert len(errors) == 2 and all(isinstance(e, EmptySketchError) for e in errors)
    kept = list(read_sketches(path, keep_empty=True))
    assert [s.num_points for s in kept][1:] == [0, 0]
    with pytest.raises(EmptySketchError):
        list(read_sketches(path))


def test_truncated_bin_is_reported_and_ends_the_file(tmp_path):
    path = tmp_path / "t.bin"
    write_bin([make_sketch(1), make_sketch(2)], path)
    path.write_bytes(path.read_bytes()[:-3])
    errors: list[FormatError] = []
    assert len(list(read_sketches(path, on_error=errors.append))) == 1
    assert len(errors) == 1 and "record 2" in str(errors[0]) and "truncated" in str(errors[0])


def test_writers_are_atomic(tmp_path):
    path = tmp_path / "keep.bin"
    write_bin([make_sketch(1)], path)
    before = path.read_bytes()
    bad = make_sketch(2).replace(strokes=[np.array([[0, 0], [999, 0]], np.float32)])
    with pytest.raises(SketchError):
        write_bin([make_sketch(3), bad], path)
    assert path.read_bytes() == before  # the old file is untouched
    with pytest.raises(SketchError, match="no times"):
        write_ndjson([make_sketch(1)], tmp_path / "new.ndjson", style="raw")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.bin"]  # no partial file, no temp file


# ------------------------------------------------------------------------------------------ json documents, dirs
@pytest.mark.parametrize(
    ("doc", "count"),
    [
        ([GOOD[0], GOOD[1]], 2),  # a list of records
        (GOOD[0], 1),  # one record
        (GOOD[0]["drawing"], 1),  # one bare drawing
    ],
    ids=["records", "record", "drawing"],
)
def test_json_documents(tmp_path, doc, count):
    path = tmp_path / "cat.json"
    path.write_text(json.dumps(doc, indent=2))
    got = list(read_sketches(path))
    assert len(got) == count and got[0].strokes[0].tolist() == [[0, 0], [1, 5], [2, 9]]


@pytest.mark.parametrize("name", ["cat.ndjson", "cat", "stdin-0123abcd"])
@pytest.mark.parametrize("indent", [None, 2], ids=["one-line", "pretty"])
def test_json_documents_are_told_by_their_content_whatever_the_name(tmp_path, name, indent):
    """A JSON list of records (one line or pretty-printed) or one pretty-printed record, in a file not named .json
    (standard input's copy has no suffix): it was read line by line, the list as one drawing ("stroke 0: ... got
    dict") and the pretty lines as one invalid-JSON error each."""
    path = tmp_path / name
    path.write_text(json.dumps([GOOD[0], GOOD[1]], indent=indent))
    assert [s.strokes[0].tolist() for s in read_sketches(path)][:1] == [[[0, 0], [1, 5], [2, 9]]]
    assert len(list(read_sketches(path))) == 2
    if indent:
        path.write_text(json.dumps(GOOD[0], indent=indent))
        assert len(list(read_sketches(path))) == 1


def test_a_line_cut_short_names_its_drawing_and_class(tmp_path):
    """A line a killed writer cut short keeps the key id and the word it plainly shows (Google's lines start with
    their word); without one its label is None (the file's name gives it when the file's other records take it:
    ``evaluate`` decides)."""
    path = tmp_path / "apple.ndjson"
    lines = [json.dumps({"word": "pear", "key_id": "5", "drawing": [[[0, 1], [0, 1]]]})[:40],
             json.dumps({"key_id": "6", "drawing": [[[0, 1], [0, 1]]]})[:30], "not json"]
    path.write_text("\n".join(lines) + "\n")
    got, errors = read_all(path)
    assert got == [] and [(e.line, e.key_id, e.label) for e in errors] == [
        (1, "5", "pear"), (2, "6", None), (3, None, None)]


def test_ndjson_that_only_looks_like_a_document_still_reads_line_by_line(tmp_path):
    """What is not read as a document: a first line longer than the 64 KiB looked at (a RAW drawing of many points,
    then more lines), bare drawings one per line, and a pretty-printed document that does not parse (its lines are
    read line by line when any of its lines is JSON on its own: a good line is never lost to a guess; else one
    error, as for a .json file)."""
    long_xs = list(range(12000))
    first = {"key_id": "long", "drawing": [[long_xs, long_xs]]}
    path = tmp_path / "long.ndjson"
    path.write_text("\n".join([json.dumps(first), json.dumps(GOOD[0]), json.dumps(GOOD[1])]) + "\n")
    assert len(json.dumps(first)) > 1 << 16 and [s.key_id for s in read_sketches(path)] == ["long", *(
        r.get("key_id") for r in GOOD[:2])]
    bare = tmp_path / "bare.ndjson"
    bare.write_text("\n".join(json.dumps(r["drawing"]) for r in GOOD[:2]) + "\n")
    assert len(list(read_sketches(bare))) == 2
    broken = tmp_path / "broken"
    text = json.dumps([GOOD[0], GOOD[1]], indent=2)[:-3]
    broken.write_text(text)
    got, errors = read_all(broken)
    assert got == [] and len(errors) == 1 and "not a valid JSON document" in str(errors[0])
    broken.write_text(text + "\n" + "\n" * (1 << 16) + json.dumps(GOOD[2]) + "\n")  # a good line, far down
    got, errors = read_all(broken)
    assert [s.key_id for s in got] == ["2"] and len(errors) > 3


def test_a_broken_link_in_a_walked_folder_is_reported(tmp_path):
    """A link with a sketch file's name that leads to no file was passed over in silence by ``read_sketches`` (and
    so by ``predict_batch(folder)``), though ``sketchgraph predict`` reports it: it is an error about that file."""
    write_ndjson([make_sketch(1)], tmp_path / "a.ndjson")
    (tmp_path / "b.ndjson").symlink_to(tmp_path / "gone" / "b.ndjson")
    got, errors = read_all(tmp_path)
    assert len(got) == 1 and [str(e) for e in errors] == [
        f"{tmp_path / 'b.ndjson'}: a broken link to {tmp_path / 'gone' / 'b.ndjson'}: No such file or directory"]
    assert errors[0].whole_file
    with pytest.raises(FormatError, match="a broken link to"):
        list(read_sketches(tmp_path))


def test_directory_walk_skips_npz(tmp_path):
    (tmp_path / "cat").mkdir()
    write_svg(make_sketch(1).replace(label=None), tmp_path / "cat" / "1.svg")
    write_ndjson([make_sketch(2)], tmp_path / "b.ndjson")
    write_stroke3_npz(tmp_path / "c.npz", train=[make_sketch(3)])
    got = list(read_sketches(tmp_path))
    assert [s.label for s in got] == ["thing 2", "cat"]


# ------------------------------------------------------------------------------------------ SVG transforms
NESTED_SVG = """<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100">
 <g fill="none" stroke="black">
  <g transform="translate(10,20)">
   <g transform="scale(2) translate(0,-5)">
    <path d="M 0 5 L 5 5 L 5 10"/>
    <path d="M 1 6 L 2 6 M 3 8 l 1 0"/>
   </g>
   <path d="M 0 0 C 0 10 10 10 10 0"/>
  </g>
 </g>
</svg>
"""


def test_svg_group_transforms_subpaths_and_curves(tmp_path):
    path = tmp_path / "alarm clock" / "81.svg"
    path.parent.mkdir()
    path.write_text(NESTED_SVG)
    (sketch,) = read_sketches(path)
    assert (sketch.label, sketch.key_id) == ("alarm clock", "81")
    # (x, y) -> (10 + 2x, 20 + 2(y - 5)) inside the inner group
    assert sketch.strokes[0].tolist() == [[10, 20], [20, 20], [20, 30]]
    assert sketch.strokes[1].tolist() == [[12, 22], [14, 22]]  # a move starts a new stroke
    assert sketch.strokes[2].tolist() == [[16, 26], [18, 26]]
    curve = sketch.strokes[3]  # translated only; a cubic from (10, 20) to (20, 20) bulging to y = 27.5
    assert curve[0].tolist() == [10, 20] and curve[-1].tolist() == [20, 20]
    assert len(curve) > 5 and np.hypot(*np.diff(curve, axis=0).T).max() <= 3.0
    assert curve[:, 1].max() == pytest.approx(27.5)


def test_svg_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.svg"
    path.write_text("<svg xmlns='http://www.w3.org/2000/svg'><path d='M 0 0 L 1 1'></svg>")
    errors: list[FormatError] = []
    assert list(read_sketches(path, on_error=errors.append)) == []
    assert errors[0].source == str(path) and errors[0].line == 1
    empty = tmp_path / "empty.svg"
    empty.write_text("<svg xmlns='http://www.w3.org/2000/svg'></svg>")
    with pytest.raises(EmptySketchError, match="empty.svg"):
        list(read_sketches(empty))


# ------------------------------------------------------------------------------------------ sketch_from_obj
STROKES = [[[0, 10, 20], [0, 5, 0]], [[5, 5], [10, 20]]]
FORMS = {
    "sketch": lambda: Sketch.from_strokes(STROKES),
    "lists": lambda: STROKES,
    "tuple": lambda: tuple(STROKES),
    "arrays": lambda: [np.array(s, np.float32).T for s in STROKES],
    "dict": lambda: {"word": "cat", "key_id": "7", "drawing": STROKES},
    "json": lambda: json.dumps({"drawing": STROKES}),
    "json-bom-bytes": lambda: ("\ufeff" + json.dumps({"drawing": STROKES})).encode(),
    "bare-json": lambda: json.dumps(STROKES),
    "stroke3": lambda: Sketch.from_strokes(STROKES).to_stroke3().astype(np.int16),
    "stroke5": lambda: Sketch.from_strokes(STROKES).to_stroke5(max_len=10),
}


@pytest.mark.parametrize("form", list(FORMS), ids=list(FORMS))
def test_sketch_from_obj_forms(form):
    sketch = sketch_from_obj(FORMS[form](), label="fallback")
    assert_same_strokes(sketch, Sketch.from_strokes(STROKES))
    assert sketch.label == ("cat" if form == "dict" else "fallback")


def test_sketch_from_obj_times_and_parts():
    timed = sketch_from_obj([[[0, 1], [0, 1], [0, 150]]])
    assert timed.has_time and timed.times().tolist() == [0, 150]
    spg = sketch_from_obj({"drawing": [[[0, 1], [0, 1], [2, 2]]]})
    assert spg.parts[0].tolist() == [2, 2] and not spg.has_time


@pytest.mark.parametrize(
    ("obj", "error", "match"),
    [
        (42, FormatError, "cannot make a Sketch from int"),
        ("not json", FormatError, "not a JSON sketch"),
        ('"a string"', FormatError, "object or a list"),
        (np.zeros((4, 4)), FormatError, r"stroke-3 \(n, 3\)"),
        ({"word": "cat"}, FormatError, "no 'drawing'"),
        ([], EmptySketchError, "empty"),
        ({"drawing": [[[], []]]}, EmptySketchError, "empty"),
        (np.zeros((0, 3)), EmptySketchError, "empty"),
    ],
)
def test_sketch_from_obj_errors(obj, error, match):
    with pytest.raises(error, match=match):
        sketch_from_obj(obj)


def test_sketch_from_obj_keep_empty():
    assert sketch_from_obj([], keep_empty=True).num_points == 0


# ------------------------------------------------------------------------------------------ hostile input
def read_all(path, **kw) -> tuple[list[Sketch], list[FormatError]]:
    errors: list[FormatError] = []
    return list(read_sketches(path, on_error=errors.append, **kw)), errors


@pytest.mark.parametrize("bad_line, message", [
    ('{"word":"c","drawing":[[[%s,1],[0,1]]]}' % ("9" * 400), "magnitude <= 1e\\+09"),
    ('{"word":"c","drawing":[[[%s,1],[0,1]]]}' % ("9" * 5000),
     r"unreadable JSON \(a number of 5,000 digits, which no coordinate or id has\)$"),
    ('{"word":5,"drawing":[[[1,2],[0,1]]]}', r"must be a string, found an int: 5"),
    ('{"word":"c","drawing":[[["1","2"],[0,1]]]}', "found a str"),
    ('{"word":"c","drawing":[[[true,false],[true,true]]]}', "found a bool"),
    ('{"word":"c","drawing":[[[null,1],[0,1]]]}', "found a NoneType"),
    ('{"word":"c","drawing":[[[-9223372036854775808,10],[0,10]]]}', "magnitude <= 1e\\+09"),  # int64 min
    ('{"word":"c","drawing":[[[2e9,10],[0,10],[0,16]]]}', "magnitude <= 1e\\+09"),  # raw, times small
    ('[' * 100_000, "unreadable JSON|invalid JSON"),
])
def test_a_hostile_line_is_reported_and_the_rest_is_read(tmp_path, bad_line, message):
    path = write_lines(tmp_path / "x.ndjson", [json.dumps(GOOD[0]), bad_line, json.dumps(GOOD[1])])
    got, errors = read_all(path)
    assert [s.key_id for s in got] == ["0", "1"]
    assert len(errors) == 1 and errors[0].line == 2 and errors[0].source == str(path)
    assert re.search(message, str(errors[0]))


@pytest.mark.parametrize("ending", [b"\n", b"\r\n", b""])
def test_a_record_cut_short_says_so_whatever_ends_its_line(tmp_path, ending):
    """A line cut short (``{"broken``) is an unterminated string, at the column it starts, read from a file or
    parsed alone; the line's end is not taken for "an invalid control character" (and no "starting at, column")."""
    from sketchgraph.formats.ndjson import parse_line

    path = tmp_path / "x.ndjson"
    path.write_bytes(json.dumps(GOOD[0]).encode() + b"\n" + b'{"broken' + ending)
    got, errors = read_all(path)
    assert [s.key_id for s in got] == ["0"]
    assert [str(e) for e in errors] == [f"{path}:2: invalid JSON (Unterminated string starting at column 2)"]
    with pytest.raises(FormatError, match=r"^invalid JSON \(Expecting ',' delimiter, column 9\)$"):
        parse_line('{"a": 1 "b": 2}')


def test_a_line_that_is_not_utf8_is_reported_and_the_rest_is_read(tmp_path):
    path = tmp_path / "x.ndjson"
    bad = '{"word":"caf\u00e9","drawing":[[[1,2],[0,1]]]}'.encode("latin-1")
    path.write_bytes(b"\n".join([json.dumps(GOOD[0]).encode(), bad, json.dumps(GOOD[1]).encode()]) + b"\n")
    got, errors = read_all(path)
    assert [s.key_id for s in got] == ["0", "1"] and errors[0].line == 2 and "not UTF-8" in str(errors[0])


@pytest.mark.parametrize("line, reason", [
    (b'\xff\xfe{"word": "cat"}', "invalid start byte at byte 0"),  # json.loads took FF FE for UTF-16
    (b'\xfe\xff{"word": "cat"}', "invalid start byte at byte 0"),
    (b'{"word": "caf\xc3\x28"}', "invalid continuation byte at byte 13"),
])
def test_a_line_that_is_not_utf8_says_where_its_first_bad_byte_is(line, reason):
    """A line is decoded as UTF-8 (the file's encoding is checked once, as a whole): one starting with the bytes
    of a UTF-16 byte order mark said "truncated data at byte 16", the end of a UTF-16 decoding."""
    from sketchgraph.formats.ndjson import load_json

    with pytest.raises(FormatError, match=rf"^not UTF-8 \({reason}\)$"):
        load_json(line)
    assert load_json(codecs.BOM_UTF8 + b'{"word": "cat"}') == {"word": "cat"}


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                                      "utf-32-le"])
def test_a_whole_json_text_given_as_bytes_may_be_utf16_or_utf32(encoding):
    """A JSON text given as bytes (``predict(b"...")``, as the HTTP service takes a body) is decoded as its first
    bytes tell, as the JSON standard says; the UTF-8 rule for a file's lines had made UTF-16 bytes 'not UTF-8'."""
    from sketchgraph.formats.ndjson import load_json

    record = {"word": "caf\u00e9", "drawing": [[[1, 2, 3], [4, 5, 6]]]}
    data = json.dumps(record, ensure_ascii=False).encode(encoding)
    assert load_json(data, encoding=None) == record
    sketch = sketch_from_obj(data)
    assert sketch.label == "caf\u00e9" and sketch.num_points == 3
    if encoding.startswith(("utf-16", "utf-32")):
        with pytest.raises(FormatError, match=r"^not UTF-8 "):
            load_json(data)  # a line of a file stays UTF-8
    with pytest.raises(FormatError, match=r"^not a JSON sketch: not UTF-16-LE \(truncated data at byte 4\)$"):
        sketch_from_obj(b'{\x00"\x00\x00')


def test_concatenated_files_with_a_second_byte_order_mark(tmp_path):
    path = tmp_path / "x.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD[0]).encode() + b"\n\xef\xbb\xbf" + json.dumps(GOOD[1]).encode())
    got, errors = read_all(path)
    assert [s.key_id for s in got] == ["0", "1"] and not errors


@pytest.mark.parametrize("value, want", [(True, True), (False, False), ("false", False), ("True", True), (1, True),
                                         ("yes", True), (None, None), ("maybe", None), ([1], None)])
def test_recognized_flag_spellings(value, want):
    """Spellings of the flag are understood; anything else is unknown, and the drawing is still read."""
    assert sketch_from_obj({"drawing": [[[1, 2], [3, 4]]], "recognized": value}).recognized is want


def test_absolute_clock_times_are_kept_to_the_millisecond(tmp_path):
    """Times such as Date.now() (1.7e12 ms) do not fit float32 exactly: they are read relative to the first
    point, the origin goes to meta, and the raw writer restores them."""
    t0 = 1_733_059_200_123
    record = {"word": "cat", "drawing": [[[0, 10, 20], [0, 5, 9], [t0, t0 + 17, t0 + 33]], [[5, 6], [5, 6],
                                                                                              [t0 + 500, t0 + 516]]]}
    sketch = sketch_from_obj(record)
    assert sketch.times().tolist() == [0, 17, 33, 500, 516] and sketch.meta[TIME_ORIGIN] == t0
    path = tmp_path / "t.ndjson"
    write_ndjson([sketch], path, style="raw")
    assert json.loads(path.read_text())["drawing"] == record["drawing"]
    assert TIME_ORIGIN not in json.loads(path.read_text())
    with pytest.raises(FormatError, match="times must be finite milliseconds"):
        sketch_from_obj({"drawing": [[[0, 1], [0, 1], [0, 1e16]]]})


@pytest.mark.parametrize("style", ["simplified", "raw"])
def test_huge_coordinates_are_kept_to_the_pixel(tmp_path, style):
    """Coordinates beyond 2**24 do not fit float32 exactly: they are read relative to the drawing's smallest x
    and y (in float64), the origin goes to meta, and the writer restores them; small drawings get no origin."""
    x0, y0 = 500_000_123, -300_000_077
    strokes = [[[x0, x0 + 1, x0 + 250], [y0 + 3, y0, y0 + 7]], [[x0 + 5, x0 + 6], [y0 + 5, y0 + 6]]]
    if style == "raw":
        strokes = [[*s, [10 * i for i in range(len(s[0]))]] for s in strokes]
    sketch = sketch_from_obj({"word": "cat", "drawing": strokes})
    assert sketch.meta[COORD_ORIGIN] == [x0, y0]
    assert sketch.points().tolist() == [[0, 3], [1, 0], [250, 7], [5, 5], [6, 6]]
    path = tmp_path / "c.ndjson"
    write_ndjson([sketch], path, style=style)
    assert json.loads(path.read_text())["drawing"] == strokes and "origin" not in path.read_text()
    assert COORD_ORIGIN not in sketch_from_obj({"drawing": [[[0, 2**20], [0, 1]]]}).meta
    # new coordinates are no longer relative to it: a transformed sketch is written as it is
    moved = normalize(sketch)
    assert COORD_ORIGIN not in moved.meta
    write_ndjson([moved], path)
    assert json.loads(path.read_text())["drawing"] == [[np.round(s[:, c].astype(float), 3).tolist() for c in (0, 1)]
                                                       for s in moved.strokes]


@pytest.mark.parametrize("dtype", [np.float64, np.int64])
def test_wide_arrays_are_rebased_like_json(dtype):
    """In-memory (n, 2|3) stroke arrays wider than float32 get the JSON reader's exact rebasing: coordinates beyond
    2**24 and Date.now() times (before, float32 rounded the times to 2**17 ms steps and the offset coordinates to
    64 px); float32 arrays and small values are taken as they are."""
    x0, y0, t0 = 900_000_000, 5, 1_733_059_200_123
    strokes = [np.array([[x0, y0, t0], [x0 + 1, y0 + 2, t0 + 16], [x0 + 250, y0 + 4, t0 + 40]], dtype=dtype),
               np.array([[x0 + 7, y0, t0 + 500], [x0 + 9, y0 + 1, t0 + 517]], dtype=dtype)]
    sketch = sketch_from_obj(strokes)
    assert sketch.points().tolist() == [[0, 0], [1, 2], [250, 4], [7, 0], [9, 1]]
    assert sketch.times().tolist() == [0, 16, 40, 500, 517]
    assert sketch.meta == {COORD_ORIGIN: [x0, y0], TIME_ORIGIN: t0}
    assert sketch_from_obj([s.T.tolist() for s in strokes]).meta == sketch.meta  # the same as JSON lists
    times_only = sketch_from_obj([np.column_stack([s[:, :2] - [x0, 0], s[:, 2]]) for s in strokes])
    assert times_only.meta == {TIME_ORIGIN: t0} and times_only.points()[2].tolist() == [250, 9]
    assert sketch_from_obj([s[:, :2] - [x0, 0] for s in strokes]).meta == {}
    # an array's third column is time, never SPG part ids, whatever its values (equal times, one-point strokes)
    same_ms = sketch_from_obj([np.array([[x0, 0, 0], [x0 + 5, 5, 0], [x0 + 9, 2, 5]], dtype=dtype),
                               np.array([[x0 + 1, 1, 7]], dtype=dtype)])
    assert same_ms.parts is None and same_ms.times().tolist() == [0, 0, 5, 7]
    with pytest.raises(FormatError, match="magnitude <= 1e"):
        sketch_from_obj([np.array([[0, 2e9], [1, 1]], dtype=dtype)])


def test_a_records_own_origin_fields_are_just_fields(tmp_path):
    """The reader's origin keys are namespaced: a record's own "coord_origin" is a plain field that moves nothing;
    a record claiming the reader's key itself is not trusted (dropped, never applied)."""
    record = {"coord_origin": [100, 50], "drawing": [[[0, 10], [0, 10]]]}
    path = tmp_path / "o.ndjson"
    sketch = sketch_from_obj(record)
    assert sketch.meta == {"coord_origin": [100, 50]}
    write_ndjson([sketch], path)
    assert json.loads(path.read_text())["drawing"] == record["drawing"]
    forged = {COORD_ORIGIN: [100, 50], TIME_ORIGIN: 7, "drawing": [[[0, 10], [0, 10], [0, 120]]]}
    sketch = sketch_from_obj(forged)
    assert COORD_ORIGIN not in sketch.meta and TIME_ORIGIN not in sketch.meta
    write_ndjson([sketch], path, style="raw")
    assert json.loads(path.read_text()) == {"drawing": forged["drawing"]}
    with pytest.raises(FormatError, match="magnitude <= 1e"):
        sketch_from_obj({"drawing": [[[0, 2e9], [0, 1]]]})


def test_spg_sniffing_survives_odd_records_and_is_not_fooled_by_times(tmp_path):
    spg = [{"key_id": str(i), "drawing": [[[1, 2, 3], [4, 5, 6], [i % 3] * 3]]} for i in range(4)]
    four_lists = {"key_id": "x", "drawing": [[[1, 2], [4, 5], [0, 0], [9, 9]]]}  # 264 SPG strokes carry a 4th list
    lines = [json.dumps(four_lists), json.dumps({"key_id": "e", "drawing": []})] + [json.dumps(r) for r in spg]
    path = write_lines(tmp_path / "alarm_clock_test.ndjson", lines)
    assert detect_format(path) == "spg"
    got, errors = read_all(path)
    assert got[0].parts is not None and got[0].label == "alarm clock" and not got[0].has_time
    assert [e.line for e in errors] == [2]  # the empty drawing
    timed = write_lines(tmp_path / "t.ndjson", [json.dumps({"drawing": [[[1, 2, 3], [4, 5, 6], [0, 16, 33]]]})])
    assert detect_format(timed) == "raw"
    # alone (predict of one line or dict) the four-list record reads as it does in its file, not refused
    alone = sketch_from_obj(json.dumps(four_lists))
    assert looks_like_spg(four_lists) and alone.parts is not None and not alone.has_time
    assert [s.tolist() for s in alone.strokes] == [s.tolist() for s in got[0].strokes] == [[[1, 4], [2, 5]]]
    with pytest.raises(FormatError, match="got a list of 4"):  # third lists that are times: no SPG, refused
        sketch_from_obj({"key_id": "t", "drawing": [[[1, 2, 3], [4, 5, 6], [0, 16, 33], [0, 0, 0]]]})
    with pytest.raises(FormatError, match="got a list of 4"):  # a bare drawing of four lists is no sign of SPG
        sketch_from_obj(four_lists["drawing"])


def test_corrupt_npz_files_are_reported(tmp_path):
    empty, garbage = tmp_path / "empty.npz", tmp_path / "garbage.npz"
    empty.write_bytes(b"")
    garbage.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    good = write_stroke3_npz(tmp_path / "good.npz", train=[make_sketch(1)])
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:-40])
    for path in (empty, garbage, truncated):
        got, errors = read_all(path)
        assert got == [] and len(errors) == 1 and errors[0].source == str(path), path
        with pytest.raises(FormatError):
            list(read_sketches(path))


def test_a_file_that_is_not_a_zip_is_not_an_npz(tmp_path):
    """Text, an empty file or an .npy array saved as .npz says so, without numpy's advice to pass allow_pickle (the
    file holds no pickle, and the reader's caller has no such option); a broken zip keeps its own message."""
    text, empty, npy = tmp_path / "text.npz", tmp_path / "empty.npz", tmp_path / "array.npz"
    text.write_bytes(b"garbage")
    empty.write_bytes(b"")
    with open(npy, "wb") as f:
        np.save(f, np.zeros((4, 3)))
    for path, message in ((text, "not an .npz (zip) file"), (empty, "not an .npz (zip) file: it is empty"),
                          (npy, "not an .npz (zip) file")):
        got, errors = read_all(path)
        assert got == [] and [(str(e), e.whole_file) for e in errors] == [(f"{path}: {message}", True)], path
    with pytest.raises(FormatError, match=r"text\.npz: not an \.npz \(zip\) file$"):
        list(read_sketches(text))
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    assert "not a readable .npz file (BadZipFile" in str(read_all(broken)[1][0])


def test_whole_file_errors_are_marked_and_record_errors_are_not(tmp_path):
    """``FormatError.whole_file`` tells an error about a file (or an .npz split) from one record's: consumers
    number records by it. A record's error raised through a raising ``on_error`` keeps its own kind and is
    reported once."""
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    broken_json = tmp_path / "broken.json"
    broken_json.write_text('{"drawing": [[[0, 1], [0, 1]]], ')
    for path in (garbage, broken_json):
        got, errors = read_all(path)
        assert got == [] and [e.whole_file for e in errors] == [True], path
    empty = _write_with_empty(tmp_path, "npz")  # train[1] and train[2] are empty drawings
    _, errors = read_all(empty)
    assert [e.whole_file for e in errors] == [False, False]
    seen = []

    def strict(exc):
        seen.append(exc)
        raise exc

    with pytest.raises(EmptySketchError) as caught:
        list(read_sketches(empty, on_error=strict))
    assert not caught.value.whole_file and len(seen) == 1
    with pytest.raises(EmptySketchError) as caught:
        list(read_sketches(empty))
    assert not caught.value.whole_file


@pytest.mark.parametrize("dtype", [None, object])
def test_an_npz_split_of_sketches_all_of_one_length_is_read(tmp_path, dtype):
    """``np.array([s3, s3])`` of sketches of one length stacks them into one ``(n, L, 3)`` array (numbers, or
    objects with ``dtype=object``): it was refused as "not a list of sketches"; it is those n sketches."""
    rows = [make_sketch(i).to_stroke3()[:12] for i in range(3)]  # all 12 rows long
    ragged = np.empty(3, dtype=object)
    ragged[:] = rows
    stacked = np.array(rows, dtype=dtype)
    assert stacked.shape == (3, 12, 3)
    np.savez(tmp_path / "ragged.npz", train=ragged)
    np.savez(tmp_path / "stacked.npz", train=stacked)
    want = list(read_sketches(tmp_path / "ragged.npz", split="train"))
    got = list(read_sketches(tmp_path / "stacked.npz", split="train"))
    assert len(got) == len(want) == 3
    for a, b in zip(got, want):
        assert a.key_id == b.key_id and len(a.strokes) == len(b.strokes)
        assert all(np.array_equal(x, y) for x, y in zip(a.strokes, b.strokes))
    words = np.array([[["a", "b", "c"]] * 2], dtype=object)  # (1, 2, 3) of strings
    np.savez(tmp_path / "words.npz", train=words)
    got, errors = read_all(tmp_path / "words.npz")
    assert not got and "an object array [1, 2, 3] of values that are not numbers" in str(errors[0])


def test_npz_layout_problems_are_reported(tmp_path):
    rows = make_sketch(1).to_stroke3()
    extra = tmp_path / "extra.npz"
    np.savez(extra, train_data=rows, train_offsets=np.array([0, len(rows)]), hps=np.array(3))
    got, errors = read_all(extra)
    assert len(got) == 1 and "entry 'hps' is not a list of sketches" in str(errors[0])
    no_offsets = tmp_path / "no_offsets.npz"
    np.savez(no_offsets, train_data=rows)
    assert "has no train_offsets" in str(read_all(no_offsets)[1][0])
    past_end = tmp_path / "past_end.npz"
    np.savez(past_end, train_data=rows, train_offsets=np.array([0, 3, len(rows) + 5]))
    assert "are not row offsets" in str(read_all(past_end)[1][0])
    strings = tmp_path / "strings.npz"
    obj = np.empty(2, dtype=object)
    obj[0], obj[1] = rows, np.array([["a", "b", "c"]])
    np.savez(strings, train=obj)
    got, errors = read_all(strings)
    assert len(got) == 1 and "train[1]" in str(errors[0]) and "numeric stroke-3" in str(errors[0])


class _Marker:
    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_npz_object_arrays_never_run_code(tmp_path):
    """A crafted pickle in an .npz is refused by name and runs nothing; published-style files still load."""
    marker = tmp_path / "ran"
    obj = np.empty(1, dtype=object)
    obj[0] = _Marker(marker)
    np.savez(tmp_path / "evil.npz", train=obj)
    with pytest.raises(FormatError, match="refusing pathlib"):
        list(read_sketches(tmp_path / "evil.npz"))
    assert not marker.exists()
    published = write_stroke3_npz(tmp_path / "ok.npz", train=[make_sketch(1), make_sketch(2)])
    assert [s.num_points for s in read_sketches(published)] == [make_sketch(1).num_points, make_sketch(2).num_points]


def test_npz_object_arrays_of_numpy_scalars_still_load(tmp_path):
    rows = np.empty(1, dtype=object)
    rows[0] = make_sketch(1).to_stroke3().astype(np.int16)
    np.savez(tmp_path / "mixed.npz", train=rows, extra=np.array([np.float32(1.5), rows[0]], dtype=object))
    got, errors = read_all(tmp_path / "mixed.npz", split="train")
    assert len(got) == 1 and not errors
    from sketchgraph.formats.npz import load_object_array

    assert load_object_array(tmp_path / "mixed.npz", "extra")[0] == np.float32(1.5)


def test_directory_walk_skips_hidden_folders(tmp_path):
    write_ndjson([make_sketch(2)], tmp_path / "b.ndjson")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    write_ndjson([make_sketch(3)], tmp_path / ".ipynb_checkpoints" / "b-checkpoint.ndjson")
    assert [s.key_id for s in read_sketches(tmp_path)] == [make_sketch(2).key_id]


def test_bin_writer_timestamps(tmp_path):
    sketch = make_sketch(1)
    write_bin([sketch.replace(meta={"timestamp": 1489243664.9})], tmp_path / "a.bin")
    assert next(read_bin(tmp_path / "a.bin")).meta["timestamp"] == 1489243664
    with pytest.raises(SketchError, match="does not fit"):
        write_bin([sketch.replace(meta={"timestamp": 2**33})], tmp_path / "b.bin")


def test_rasterize_skips_an_empty_stroke():
    sketch = Sketch([np.array([[0, 0], [10, 10]], np.float32), np.zeros((0, 2), np.float32)])
    assert (rasterize(sketch, 16) == rasterize(sketch.replace(strokes=sketch.strokes[:1]), 16)).all()


# ------------------------------------------------------------------------------------------ SVG structure
def svg_file(tmp_path, body: str, *, xmlns: bool = True) -> Path:
    ns = ' xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"' if xmlns else ""
    path = tmp_path / "doodle" / "1.svg"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f'<svg{ns} viewBox="0 0 100 100">{body}</svg>')
    return path


@pytest.mark.parametrize("xmlns", [True, False], ids=["namespaced", "no-namespace"])
def test_svg_strokes_outside_groups_links_uses_and_nested_svgs(tmp_path, xmlns):
    body = """
      <defs><path id="tick" d="M 0 0 L 1 1"/></defs>
      <path d="M 1 1 L 2 2"/>
      <a href="#x"><path d="M 3 3 L 4 4"/></a>
      <g transform="translate(10,0)"><use href="#tick" x="5" y="5"/></g>
      <use {href}="#tick" transform="scale(2)"/>
      <svg x="50" y="50" width="20" height="20" viewBox="0 0 10 10"><line x1="0" y1="0" x2="10" y2="5"/></svg>
      <path d="M 7 7 L 8 8" display="none"/>
      <text x="1" y="1">no strokes</text>
    """
    body = body.replace("{href}", "xlink:href" if xmlns else "href")  # xlink: needs its namespace declared
    (sketch,) = read_sketches(svg_file(tmp_path, body, xmlns=xmlns))
    assert [s.tolist() for s in sketch.strokes] == [
        [[1, 1], [2, 2]], [[3, 3], [4, 4]], [[15, 5], [16, 6]], [[0, 0], [2, 2]], [[50, 50], [70, 60]]]


@pytest.mark.parametrize("ratio, want", [
    (None, [[10, 0], [30, 20]]),  # the default, xMidYMid meet: uniform scale 2, centred
    ("xMinYMin meet", [[0, 0], [20, 20]]),
    ("xMaxYMax", [[20, 0], [40, 20]]),
    ("none", [[0, 0], [40, 20]]),  # stretched: x scaled 4, y scaled 2
    ("xMidYMid slice", [[0, -10], [40, 30]]),  # uniform scale 4, centred, overflowing in y
    ("defer xMinYMax slice", [[0, -20], [40, 20]]),
    ("XMidYMid meat", [[10, 0], [30, 20]]),  # invalid: ignored, as browsers do
    ("  xMaxYMin\tmeet ", [[20, 0], [40, 20]]),
])
def test_svg_nested_viewport_preserve_aspect_ratio(tmp_path, ratio, want):
    attr = f' preserveAspectRatio="{ratio}"' if ratio else ""
    body = f'<svg width="40" height="20" viewBox="0 0 10 10"{attr}><line x1="0" y1="0" x2="10" y2="10"/></svg>'
    (sketch,) = read_sketches(svg_file(tmp_path, body))
    assert sketch.strokes[0].tolist() == want


@pytest.mark.parametrize("body, message", [
    ('<circle cx="1" cy="1"/>', "<circle> has no r"),
    ('<path d="M 0 0 L 1e400 0"/>', "magnitude <= 1e\\+09|beyond"),
    ('<path d="M 0 0 C 1e400 0 0 0 1 1"/>', "magnitude <= 1e\\+09|beyond"),
    ('<g transform="translate(a,b)"><path d="M 0 0 L 1 1"/></g>', "invalid transform"),
    ('<path id="p" d="M 0 0 L 1 1"/><g id="loop"><use href="#loop"/></g>', "nests more than"),
])
def test_svg_bad_content_is_a_format_error(tmp_path, body, message):
    path = svg_file(tmp_path, body)
    got, errors = read_all(path)
    assert got == [] and errors[0].source == str(path) and re.search(message, str(errors[0])), errors


def test_svg_huge_curve_is_capped_not_a_memory_bomb(tmp_path):
    from sketchgraph.formats.svg import MAX_SEGMENT_SAMPLES

    (sketch,) = read_sketches(svg_file(tmp_path, '<path d="M 0 0 C 1e9 0 0 0 1 1"/>'))
    assert sketch.num_points == MAX_SEGMENT_SAMPLES + 1


def test_a_broken_json_document_is_one_error_not_a_line_per_line(tmp_path):
    records = [{"word": "cat", "key_id": str(i), "drawing": [[[i, i + 1], [0, 5]]]} for i in range(5)]
    text = json.dumps(records, indent=2)
    broken = tmp_path / "cats.json"
    broken.write_text(text.replace('"key_id": "3"', '"key_id": 3x', 1))
    got, errors = read_all(broken)
    assert got == [] and len(errors) == 1 and "not a valid JSON document" in str(errors[0])
    assert errors[0].line == text[: text.index('"key_id": "3"')].count("\n") + 1
    lines = tmp_path / "lines.json"  # ndjson content in a .json file: still line by line
    lines.write_text("\n".join([json.dumps(records[0]), "{bad", json.dumps(records[1])]) + "\n")
    got, errors = read_all(lines)
    assert [s.key_id for s in got] == ["0", "1"] and [e.line for e in errors] == [2]


def test_cr_only_line_ends_are_named_in_the_error(tmp_path):
    """A file with old-Mac line ends (bare CR) is one line to every reader here: its error says why and how to
    convert it, instead of a bare "Extra data"."""
    records = [{"word": "cat", "key_id": str(i), "drawing": [[[i, i + 1], [0, 5]]]} for i in range(3)]
    path = tmp_path / "cat.ndjson"
    path.write_bytes(b"\r".join(json.dumps(r).encode() for r in records) + b"\r")
    got, errors = read_all(path)
    assert got == [] and len(errors) == 1
    assert "CR only" in str(errors[0]) and f"{path}:1" in str(errors[0])
    from sketchgraph.formats.ndjson import load_json

    for text, hint in (('{"a": "é"}\r{"b": 2}'.encode(), True), ('{"a":1}\r\n{"b":2}', False)):
        with pytest.raises(FormatError, match="Extra data") as exc:
            load_json(text)
        assert ("CR only" in str(exc.value)) is hint
    crlf = tmp_path / "dog.ndjson"
    crlf.write_bytes(b"\r\n".join(json.dumps(r).encode() for r in records) + b"\r\n")
    assert len(read_all(crlf)[0]) == 3  # CRLF is fine


@pytest.mark.parametrize("drawing", [
    [[[], []], [[0, 5, 9], [1, 2, 3], [0, 10, 20]]],  # an empty [xs, ys] before timed strokes
    [[[], [], []], [[0, 5, 9], [1, 2, 3]]],  # an empty [xs, ys, ts] before untimed ones
    [[[0, 5, 9], [1, 2, 3], [0, 10, 20]], [[], []]],  # after them
])
def test_an_empty_stroke_does_not_decide_the_layout(drawing):
    """Empty strokes are dropped whatever their width: only strokes with points must agree on [xs, ys(, ts)]."""
    sketch = sketch_from_obj(drawing)
    real = next(s for s in drawing if s[0])
    assert len(sketch.strokes) == 1 and sketch.strokes[0].shape == (3, len(real))
    assert np.array_equal(sketch.strokes[0], np.array(real, dtype=np.float32).T)


# ------------------------------------------------------------------------------------------ messages name the stroke
@pytest.mark.parametrize("drawing, message", [
    ([[[0, 1], [0, 1]], [[1, float("nan")], [3, 4]]], r"^stroke 1: coordinates contain NaN or infinity$"),
    ([[[], []], [[1, 2], [float("-inf"), 4]]], r"^stroke 1: coordinates contain NaN or infinity$"),  # empty: stroke 0
    ([[[0, 1], [0, 1], [0, 5]], [[1, 2], [3, 4], [9, float("nan")]]], r"^stroke 1: times contain NaN or infinity$"),
    ([[[0, 1], [0, 1]], [[1, 2e9], [3, 4]]], r"^stroke 1: coordinates must be of magnitude <= 1e\+09, found 2e\+09$"),
    ([[[0, 1], [0, 1]], [[1, -1000000001], [3, 4]]],  # shown with every digit, never as the limit itself
     r"^stroke 1: coordinates must be of magnitude <= 1e\+09, found -1000000001$"),
    ([[[0, 1], [0, 1]], [[1, 10**30], [3, 4]]], r"^stroke 1: coordinates must be of magnitude <= 1e\+09, found 1e\+30"),
    ([[[0, 1], [0, 1], [0, 1]], [[1, 2], [3, 4], [0, 1e16]]],
     r"^stroke 1: times must be finite milliseconds of magnitude <= 1e\+15, found 1e\+16$"),
    ([[[0, 1], [0, 1]], [[0, 1], [0, 1]], [[1, "2"], [3, 4]]], r"^stroke 2: coordinates must be numbers, found a str$"),
])
def test_bad_values_name_their_stroke(drawing, message):
    with pytest.raises(FormatError, match=message):
        sketch_from_obj(drawing)


@pytest.mark.parametrize("points, spg", [(52, False), (4, False), (1, False), (1, True)])
def test_a_stroke_of_points_gets_a_hint(points, spg):
    """``[[x, y], ...]`` where ``[xs, ys]`` belongs: a stroke of other than two or three points is refused saying so
    (SPG files keep reading a stroke's first three lists: some of theirs carry a fourth)."""
    stroke = [[10 + i, 20 + i] for i in range(points)]
    want = r"\[xs, ys, part_ids\]" if spg else r"\[xs, ys\] or \[xs, ys, ts\]"
    with pytest.raises(FormatError, match=rf"^stroke 1: expected {want}, got a list of {points} \(points given as "
                                          rf"\[\[x, y\], \.\.\.\]\? give each stroke as {want}\)$"):
        parse_drawing([[[0, 1], [0, 1], [0, 1]], stroke], spg=spg)
    with pytest.raises(FormatError, match=r"got a list of 4$"):  # lists of 4 numbers are not points: no hint
        parse_drawing([[[0, 1, 2, 3]] * 4])


def test_two_and_three_point_strokes_are_read_as_the_layout_says():
    """A stroke of three points [[x, y], ...] has the shape of [xs, ys, ts] with two points, and one of two points
    the shape of [xs, ys]: valid strokes, read as such (documented in parse_drawing). Times that go back (here
    100 then 0) are accepted: nothing promises that RAW times increase, and valid drawings must not be refused."""
    (stroke,), _, _ = parse_drawing([[[0, 0], [50, 80], [100, 0]]])
    assert stroke.tolist() == [[0, 50, 100], [0, 80, 0]]
    (stroke,), _, _ = parse_drawing([[[0, 0], [50, 80]]])
    assert stroke.tolist() == [[0, 50], [0, 80]]


# ------------------------------------------------------------------------------------------ float32 precision
@pytest.mark.parametrize("x0", [2**20 + 1.0, 1.6e7, 2**24 - 16.0])
def test_coordinates_beyond_2_20_keep_their_sub_pixel_detail(x0):
    """From 2**20 on float32's step is 1/8 px or more (at 1.6e7 whole pixels): such coordinates are rebased in
    float64 as those beyond 2**24 are, from JSON lists and from float64 arrays alike; 2**20 itself is cast as is."""
    xs, ys = [x0 + 0.25, x0 + 0.5, x0 + 10.125], [3.0, 4.5, 5.0]
    for drawing in ([[xs, ys]], [np.array([xs, ys], np.float64).T]):
        sketch = sketch_from_obj(drawing)
        assert sketch.points().tolist() == [[0, 0], [0.25, 1.5], [9.875, 2]]
        assert sketch.meta == {COORD_ORIGIN: [x0 + 0.25, 3.0]}
    assert sketch_from_obj([[[2**20, 2**20 - 0.125], [0, 1]]]).meta == {}
    assert sketch_from_obj([np.array([[2**20, 0], [2**20 - 0.125, 1]])]).meta == {}


def test_times_up_to_2_24_are_not_rebased():
    """Millisecond times are exact in float32 up to 2**24 (4.6 hours): only coordinates are rebased from 2**20."""
    t0 = 2**24 - 100
    sketch = sketch_from_obj([[[0, 1], [0, 1], [t0, t0 + 16]]])
    assert sketch.meta == {} and sketch.times().tolist() == [t0, t0 + 16]


# ------------------------------------------------------------------------------------------ gzip
def gzipped(path: Path, name: str | None = None) -> Path:
    """``path`` gzip-compressed to ``name`` (default ``path`` plus ``.gz``)."""
    import gzip

    out = path.with_name(name or path.name + ".gz")
    out.write_bytes(gzip.compress(path.read_bytes()))
    return out


def test_gzipped_ndjson_reads_as_the_plain_file(tmp_path):
    plain = write_lines(tmp_path / "cat_test.ndjson", [json.dumps(r) for r in GOOD[:3]])
    packed = gzipped(plain)
    assert list(read_sketches(packed)) == list(read_sketches(plain)) and len(list(read_sketches(packed))) == 3
    assert detect_format(packed) == "simplified" and label_from_path(packed) == "cat"
    renamed = gzipped(plain, "download.dat")  # by content
    assert list(read_sketches(renamed)) == list(read_sketches(plain))
    assert list(read_sketches(plain, "raw")) == list(read_sketches(gzipped(plain, "x.gz"), "raw"))  # --format too


def test_gzipped_json_document(tmp_path):
    doc = tmp_path / "cat.json"
    doc.write_text(json.dumps([GOOD[0], {"drawing": []}, GOOD[1]], indent=2))
    got, errors = read_all(gzipped(doc))
    assert [s.key_id for s in got] == ["0", "1"]
    assert [str(e) for e in errors] == [f"{tmp_path / 'cat.json.gz'}: record 2: empty drawing (no points)"]


def test_gzipped_ndjson_errors_give_the_decompressed_line(tmp_path):
    lines = [json.dumps(r) for r in GOOD[:4]]
    lines.insert(2, "not json")
    packed = gzipped(write_lines(tmp_path / "cat.ndjson", lines))
    got, errors = read_all(packed)
    assert [s.key_id for s in got] == ["0", "1", "2", "3"]
    assert [(e.source, e.line) for e in errors] == [(str(packed), 3)]


def test_a_truncated_gzip_keeps_the_lines_before_the_break(tmp_path):
    import gzip

    lines = [json.dumps({**GOOD[i % 7], "key_id": str(i), "pad": "x" * 200}) for i in range(400)]
    data = gzip.compress("\n".join(lines).encode())
    path = tmp_path / "cat.ndjson.gz"
    path.write_bytes(data[: len(data) // 2])
    got, errors = read_all(path)
    assert 0 < len(got) < 400 and [s.key_id for s in got] == [str(i) for i in range(len(got))]
    assert len(errors) == 1 and errors[0].whole_file and errors[0].line is None
    assert re.fullmatch(rf"{re.escape(str(path))}: the compressed data breaks off after line {len(got)} \(EOFError: "
                        r".*\); the lines before it were read", str(errors[0]))


@pytest.mark.parametrize("kind", ["svg", "bin", "text"])
def test_other_gzipped_files_are_refused_saying_to_decompress_them(tmp_path, kind):
    """Only ndjson and JSON are read compressed; anything else gzip-compressed is refused with the command that
    decompresses it, not a pointer to format= (which would only read compressed bytes as that format)."""
    if kind == "svg":
        plain = write_svg(make_sketch(1), tmp_path / "a.svg")
    elif kind == "bin":
        plain = tmp_path / "a.bin"
        write_bin([make_sketch(1)], plain)
    else:
        plain = tmp_path / "a.txt"
        plain.write_text("hello\n")
    packed = gzipped(plain)
    message = (rf"^{re.escape(str(packed))}: gzip-compressed, and only ndjson or JSON is read compressed "
               rf"\(\.ndjson\.gz, \.jsonl\.gz, \.json\.gz\); decompress it first: "
               rf"gzip -dc '{re.escape(packed.name)}' > FILE$")
    with pytest.raises(FormatError, match=message):
        read_sketches(packed)
    if kind != "text":
        with pytest.raises(FormatError, match=message):
            read_sketches(packed, format=kind)


def test_folder_walks_read_gzipped_ndjson_and_prepare_s_walk_does_not(tmp_path):
    write_ndjson([make_sketch(2)], tmp_path / "b.ndjson")
    (tmp_path / "sub").mkdir()
    plain = tmp_path / "sub" / "c.ndjson"
    write_ndjson([make_sketch(3)], plain)
    gzipped(plain)
    plain.unlink()
    (tmp_path / "notes.txt.gz").write_bytes(b"\x1f\x8b not read")
    assert [p.name for p in sketch_files(tmp_path, gzipped=True)] == ["b.ndjson", "c.ndjson.gz"]
    assert [p.name for p in sketch_files(tmp_path)] == ["b.ndjson"]  # gzipped=False leaves them out
    assert [s.key_id for s in read_sketches(tmp_path)] == [make_sketch(2).key_id, make_sketch(3).key_id]


def test_sketch_files_lists_broken_links_only_when_asked_and_by_the_walk_s_rules(tmp_path):
    """``broken_links=True`` (``sketchgraph predict``) lists, in their sorted place, the links that lead to no file
    but that the walk would read if they did; by default (``prepare``, ``evaluate``, ``read_sketches``) they are
    left out as before. The name rules are the walk's: no ``.txt``, no hidden file or folder, no ``.npz`` (which
    goes to ``left_out``), a ``.gz`` only with ``gzipped``, nothing under a pruned folder."""
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "pruned").mkdir()
    write_ndjson([make_sketch(2)], tmp_path / "b.ndjson")
    for name in ("a.ndjson", "c.svg", "d.ndjson.gz", "sub/e.bin", "notes.txt", ".f.ndjson", ".hidden/g.ndjson",
                 "pruned/h.ndjson", "i.npz"):
        (tmp_path / name).symlink_to(tmp_path / "gone" / name)
    (tmp_path / "loop.jsonl").symlink_to("loop.jsonl")
    (tmp_path / "k.ndjson").symlink_to("b.ndjson")  # a link that leads to a file: listed either way

    def names(**options):
        return [str(p.relative_to(tmp_path)) for p in sketch_files(tmp_path, **options)]

    assert names() == names(gzipped=True) == ["b.ndjson", "k.ndjson"]
    assert names(broken_links=True) == [
        "a.ndjson", "b.ndjson", "c.svg", "k.ndjson", "loop.jsonl", "pruned/h.ndjson", "sub/e.bin"]
    left_out: list = []
    prune = lambda folder: "pruned" if folder.name == "pruned" else None  # noqa: E731
    assert names(gzipped=True, broken_links=True, prune=prune, left_out=left_out) == [
        "a.ndjson", "b.ndjson", "c.svg", "d.ndjson.gz", "k.ndjson", "loop.jsonl", "sub/e.bin"]
    assert [(p.name, reason) for p, reason in left_out] == [("i.npz", NPZ_NOT_WALKED), ("pruned", "pruned")]


# ------------------------------------------------------------------------------------------ places
def test_read_located_places_each_record_as_its_reader_names_errors(tmp_path):
    """Each sketch comes with where it was read, in the words the reader uses for a bad record there."""
    nd = write_lines(tmp_path / "a.ndjson", [json.dumps(GOOD[0]), "", json.dumps(GOOD[1])])
    doc = tmp_path / "d.json"
    doc.write_text(json.dumps([GOOD[0], GOOD[1]], indent=1))
    binary = tmp_path / "c.bin"
    write_bin([make_sketch(1), make_sketch(2)], binary)
    npz = write_stroke3_npz(tmp_path / "e.npz", test=[make_sketch(1), make_sketch(2)])
    svg = write_svg(make_sketch(1), tmp_path / "f.svg")
    one = tmp_path / "one.bin"
    write_bin([make_sketch(1)], one)  # record 2 of c.bin starts where record 1 ends
    places = {path.suffix: [str(place.locate(FormatError("why"))) for place, _ in read_located(path)]
              for path in (nd, doc, binary, npz, svg)}
    assert places[".ndjson"] == [f"{nd}:1: why", f"{nd}:3: why"]
    assert places[".json"] == [f"{doc}: record 1: why", f"{doc}: record 2: why"]
    assert places[".bin"] == [f"{binary}: record 1 (byte 0): why",
                              f"{binary}: record 2 (byte {one.stat().st_size}): why"]
    assert places[".npz"] == [f"{npz}: test[0]: why", f"{npz}: test[1]: why"]
    assert places[".svg"] == [f"{svg}: why"]


@pytest.mark.parametrize("compressed", [False, True])
def test_a_stream_loses_nothing_to_the_gzip_check(compressed):
    """The gzip magic is peeked at, not read, and a compressed stream is decompressed from the same open file: a
    pipe (``/dev/stdin`` with --format), plain or gzip, is read whole."""
    import gzip
    import os

    data = "\n".join(json.dumps(r) for r in GOOD[:3]).encode() + b"\n"
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, gzip.compress(data) if compressed else data)
        os.close(write_end)
        assert [s.key_id for s in read_sketches(f"/dev/fd/{read_end}", "simplified")] == ["0", "1", "2"]
    finally:
        os.close(read_end)


def test_a_json_object_without_a_drawing_is_not_a_sketch_file(tmp_path):
    """A ``.json`` file whose document is an object without ``drawing`` (a metadata file, an evaluate report) is an
    error about the whole file, not a failed record: a walk reports it as a file it could not read, and counts no
    record of its name's class as failed."""
    from sketchgraph.formats import read_sketches

    path = tmp_path / "cat.json"
    path.write_text(json.dumps({"classes": ["cat"], "version": 1}))
    errors: list[FormatError] = []
    assert list(read_sketches(path, on_error=errors.append)) == []
    (error,) = errors
    assert error.whole_file and str(error) == (f"{path}: a JSON object without a 'drawing' field (fields: "
                                               "['classes', 'version']): not a sketch file; nothing in it was read")
    path.write_text(json.dumps({"word": "cat", "drawing": [[[0, 10], [0, 10]]]}))  # one record: still read
    assert [sk.label for sk in read_sketches(path)] == ["cat"]
