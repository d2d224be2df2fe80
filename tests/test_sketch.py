"""``Sketch``: constructors, validation, stroke-3 / stroke-5 conversions and properties."""

from __future__ import annotations

import numpy as np
import pytest

from sketchgraph.errors import SketchError
from sketchgraph.sketch import Sketch

LIST_FORM = [[[0, 10, 20], [5, 5, 15]], [[7], [8]]]


@pytest.mark.parametrize(
    "strokes",
    [
        LIST_FORM,
        [np.array([[0, 5], [10, 5], [20, 15]]), np.array([[7, 8]])],  # (n, 2) arrays
        [[np.array([0, 10, 20]), np.array([5, 5, 15])], [[7], [8]]],  # lists of column arrays
        tuple(LIST_FORM),
        [[[0, 10, 20], [5, 5, 15]], [[], []], [[7], [8]]],  # empty strokes are dropped
        np.array([np.array([[0, 5], [10, 5], [20, 15]]), np.array([[7, 8]])], dtype=object),
    ],
)
def test_from_strokes_forms(strokes):
    sk = Sketch.from_strokes(strokes, label="x", key_id="1")
    assert sk.num_strokes == 2 and sk.num_points == 4
    np.testing.assert_array_equal(sk.points(), [[0, 5], [10, 5], [20, 15], [7, 8]])
    assert all(s.dtype == np.float32 for s in sk.strokes)
    assert sk.stroke_lengths().tolist() == [3, 1]
    assert (sk.label, sk.key_id, sk.has_time, sk.times()) == ("x", "1", False, None)


def test_single_array_is_one_stroke():
    sk = Sketch.from_strokes(np.array([[1.5, 2.0], [3.0, 4.0]]))
    assert sk.num_strokes == 1 and sk.bounds == (1.5, 2.0, 3.0, 4.0)


def test_times():
    sk = Sketch.from_strokes([[[0, 1], [0, 1], [0, 16]], [[2], [2], [400]]])
    assert sk.has_time and sk.strokes[0].shape == (2, 3)
    np.testing.assert_array_equal(sk.times(), [0, 16, 400])
    assert sk.points().shape == (3, 2)


@pytest.mark.parametrize(
    "strokes, match",
    [
        ([[[0, 1], [0]]], "not numeric"),  # ragged
        ([[[0, 1]]], "2 or 3"),  # xs only
        ([[[0, 1], [0, 1], [0, 1], [0, 1]]], "2 or 3"),
        ([[[0, np.nan], [0, 1]]], "NaN"),
        ([[[0, np.inf], [0, 1]]], "NaN"),
        ([[[0, 2e9], [0, 1]]], r"larger than 1e\+09 in magnitude"),
        ([[[0, 1], [0, 1]], [[0], [0], [5]]], "mix"),
        ([[["a", "b"], [0, 1]]], r"^stroke 0: coordinates must be numbers, found a str$"),
        ([[1, 2]], "expected"),
        ("drawing", "list of strokes"),
        (42, "list of strokes"),
    ],
)
def test_from_strokes_rejects(strokes, match):
    with pytest.raises(SketchError, match=match):
        Sketch.from_strokes(strokes)


def test_direct_construction_is_validated():
    with pytest.raises(SketchError, match="from_strokes"):
        Sketch([[[0, 1], [0, 1]]])
    with pytest.raises(SketchError):
        Sketch([np.zeros((3, 4), np.float32)])
    with pytest.raises(SketchError, match="parts"):
        Sketch([np.zeros((3, 2), np.float32)], parts=[np.zeros(2)])
    with pytest.raises(SketchError, match="empty"):
        Sketch.from_strokes([[[0], [0]], [[], []]], drop_empty=False)


def test_empty_sketch():
    sk = Sketch.from_strokes([])
    assert sk.num_points == 0 and sk.num_strokes == 0 and not sk.has_time
    assert sk.points().shape == (0, 2) and sk.to_stroke3().shape == (0, 3)
    with pytest.raises(SketchError):
        _ = sk.bounds


def test_stroke3_hand_worked():
    sk = Sketch.from_strokes(LIST_FORM)
    s3 = sk.to_stroke3()
    np.testing.assert_array_equal(s3, [[0, 5, 0], [10, 0, 0], [10, 10, 1], [-13, -7, 1]])
    back = Sketch.from_stroke3(s3)
    np.testing.assert_array_equal(back.points(), sk.points())
    assert back.stroke_lengths().tolist() == [3, 1]


def test_stroke5_hand_worked():
    sk = Sketch.from_strokes(LIST_FORM)
    s5 = sk.to_stroke5(max_len=6)
    np.testing.assert_array_equal(
        s5,
        [[0, 5, 1, 0, 0], [10, 0, 1, 0, 0], [10, 10, 0, 1, 0], [-13, -7, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1]],
    )
    assert Sketch.from_stroke5(s5) == Sketch.from_strokes(LIST_FORM)
    with pytest.raises(SketchError):
        sk.to_stroke5(max_len=4)


@pytest.mark.parametrize("seed", range(4))
def test_stroke3_round_trip(seed):
    rng = np.random.default_rng(seed)
    strokes = [rng.integers(-300, 300, (int(rng.integers(1, 20)), 2)).astype(np.float32) for _ in range(5)]
    sk = Sketch(strokes)
    assert Sketch.from_stroke3(sk.to_stroke3()) == sk
    assert Sketch.from_stroke5(sk.to_stroke5()) == sk


def test_from_stroke3_last_row_without_pen_up_and_bad_input():
    sk = Sketch.from_stroke3(np.array([[1, 1, 0], [1, 0, 1], [5, 5, 0], [1, 1, 0]]))
    assert sk.stroke_lengths().tolist() == [2, 2]
    with pytest.raises(SketchError):
        Sketch.from_stroke3(np.zeros((3, 2)))
    with pytest.raises(SketchError):
        Sketch.from_stroke3(np.array([[np.nan, 0, 0]]))


def test_to_lists():
    sk = Sketch.from_strokes([[[0, 1.5], [2, 3.25], [10, 20]]])
    assert sk.to_lists() == [[[0, 1.5], [2, 3.25], [10, 20]]]
    assert isinstance(sk.to_lists()[0][0][0], int)
    assert Sketch.from_strokes([[[0.123456], [1.0]]]).to_lists(ndigits=2) == [[[0.12], [1]]]


def test_equality_and_replace():
    a = Sketch.from_strokes(LIST_FORM, label="x")
    b = Sketch.from_strokes([np.array(s, np.float64).T for s in LIST_FORM], label="x")
    assert a == b and a != a.replace(label="y") and a != a.replace(strokes=a.strokes[:1])
    assert a != "not a sketch"
    c = a.replace(meta={"k": 1})
    assert c.strokes is a.strokes and c.meta == {"k": 1} and a.meta == {}
    assert "points=4" in repr(a)


@pytest.mark.parametrize("stroke, message", [
    (np.array([["1", "2"], ["3", "4"]]), r"^stroke 0: coordinates must be numbers, found a str array \(<U1\)$"),
    (np.array([[True, False], [False, True]]), r"^stroke 0: coordinates must be numbers, found a bool array \(bool\)$"),
    (np.array([[1 + 2j, 0], [0, 1]]), r"found a complex array \(complex128\)$"),
    (np.array([[10, 20], [30, True]], dtype=object), r"^stroke 0: coordinates must be numbers, found a bool$"),
    (np.array([[10, 20], [30, "40"]], dtype=object), r"^stroke 0: coordinates must be numbers, found a str$"),
    (np.array([[10, 20], [30, None]], dtype=object), r"^stroke 0: coordinates must be numbers, found a NoneType$"),
])
def test_strokes_must_hold_numbers_as_lists_do(stroke, message):
    """numpy would read "1" and True as 1.0: arrays (and lists reaching from_strokes) of anything but integers and
    floats are refused as the JSON reader refuses them, naming the stroke."""
    with pytest.raises(SketchError, match=message):
        Sketch.from_strokes([stroke])


def test_object_arrays_of_numbers_are_numbers():
    sk = Sketch.from_strokes([np.array([[10, 20.5], [np.int16(30), np.float32(40)]], dtype=object)])
    np.testing.assert_array_equal(sk.points(), [[10, 20.5], [30, 40]])


@pytest.mark.parametrize("data, message", [
    (np.array([[10, 20, False], [30, 40, True]], dtype=object), r"^stroke-3 data: .* found a bool$"),
    (np.array([["1", "2", "0"], ["3", "4", "1"]]), r"^stroke-3 data: .* found a str array"),
    (np.array([[1, 2, True, False, False]], dtype=object), r"^stroke-5 data: .* found a bool$"),
])
def test_stroke3_and_stroke5_data_must_hold_numbers(data, message):
    make = Sketch.from_stroke3 if data.shape[1] == 3 else Sketch.from_stroke5
    with pytest.raises(SketchError, match=message):
        make(data)


def test_a_sketch_of_string_arrays_is_refused():
    with pytest.raises(SketchError, match=r"^stroke 1: coordinates must be numbers, found a str array \(<U1\)$"):
        Sketch([np.zeros((2, 2), np.float32), np.array([["1", "2"]])])


def test_mixed_columns_name_the_first_stroke_that_differs():
    strokes = [[[0, 1], [0, 1]], [[2, 3], [2, 3]], [[0], [0], [5]], [[1], [1]]]
    with pytest.raises(SketchError, match=r"^strokes mix 2 and 3 columns: stroke 2 has 3, the strokes before it 2$"):
        Sketch.from_strokes(strokes)


@pytest.mark.parametrize("points", [4, 52])
def test_a_stroke_of_points_gets_a_hint(points):
    stroke = [[i, 2 * i] for i in range(points)]
    with pytest.raises(SketchError, match=rf"got {points} lists of 2 \(points given as \[\[x, y\], \.\.\.\]\? give "
                                          r"each stroke as \[xs, ys\] or \[xs, ys, ts\]\)$"):
        Sketch.from_strokes([stroke])
    with pytest.raises(SketchError, match=r"got 5 lists of 4$"):  # 5 lists of 4: no points, no hint
        Sketch.from_strokes([[[0] * 4] * 5])
