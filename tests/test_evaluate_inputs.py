"""``sketchgraph evaluate`` on sketch files: which files and records it reads (``sketchgraph.evaluate_inputs``): each
file and drawing once, the files of the split asked, the key ids to exclude, the labels of unreadable records, the
label map, and what a folder walk leaves out."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

TINY_CLASSES = ["apple", "cat", "dog", "house", "sun"]  # the tiny_checkpoint fixture's
SHAPES_AS = {"circle": "apple", "square": "cat", "triangle": "dog", "house": "house", "star": "sun"}


def write_lines(path, records):
    """An ndjson file of ``records`` (dicts, or text written as it is), its folder made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def shape_records(n_per_class, seed=0):
    """Quick, Draw! RAW records of synthetic shapes (16-digit key ids), each with a ``word`` of the tiny classes."""
    from sketchgraph.synthetic import make_dataset, sketch_record

    sketches = make_dataset(n_per_class, seed=seed, classes=list(SHAPES_AS))
    return [{**sketch_record(sk, "raw"), "word": SHAPES_AS[sk.label]} for sk in sketches]


def read_all(paths, split="test", select=None):
    """``(sketches, errors, counts)`` of ``all_records``: the readable records, ``(file, index, message)`` of the
    others and of the files left out (``index`` None)."""
    from sketchgraph.evaluate_inputs import ReadCounts, Selection, all_records
    from sketchgraph.sketch import Sketch

    counts = ReadCounts()
    sketches, errors = [], []
    for tag, item in all_records([str(p) for p in paths], None, split, counts, select or Selection()):
        if isinstance(item, Sketch):
            sketches.append(item)
        else:
            errors.append((tag.file, tag.index, str(item)))
    return sketches, errors, counts


# ---------------------------------------------------------------------------------------------- each file, drawing once
def test_each_file_and_each_drawing_is_read_once(tiny_checkpoint, tmp_path):
    """A file named twice (two spellings, or a folder and a file in it), ``X.gz`` beside ``X`` (prepare's rule) and
    records repeating a drawing id (the first kept) were all evaluated again: 10 drawings gave 44 sketches."""
    from sketchgraph.evaluate import evaluate

    records = shape_records(2)  # 10 records, 16-digit key ids
    raw = tmp_path / "raw"
    first = write_lines(raw / "cat_test.ndjson", records)
    write_lines(raw / "cat_copy_test.ndjson", records[:4])  # 4 of them again
    (raw / "cat_test.ndjson.gz").write_bytes(gzip.compress(first.read_bytes()))
    spellings = [raw, first, tmp_path / "raw" / "." / "cat_test.ndjson", first]
    sketches, errors, counts = read_all(spellings)
    assert len(sketches) == 10 and counts.repeated == 4
    assert [s.key_id for s in sketches] == [r["key_id"] for r in records]  # the first of each kept, in order
    assert errors == [(str(raw / "cat_test.ndjson.gz"), None, "not read: a gzip copy of cat_test.ndjson, which is "
                       "read instead (both hold the same drawings, e.g. after gunzip -k)")]
    report = evaluate(tiny_checkpoint, spellings, progress=False)
    assert report["records"] == 10 and report["num_samples"] == 10


def test_made_up_key_ids_are_not_taken_for_repeats(tmp_path):
    """Key ids numbered per file (``0``, ``1``) and an ``.npz``'s ``test/0`` name no drawing (prepare keeps them
    all), so files that share them are all read."""
    from sketchgraph.formats import write_stroke3_npz
    from sketchgraph.sketch import Sketch

    records = shape_records(1)
    short = [{**r, "key_id": str(i)} for i, r in enumerate(records)]
    a = write_lines(tmp_path / "a.ndjson", short)
    b = write_lines(tmp_path / "b.ndjson", short)
    square = Sketch.from_stroke3(np.array([[0, 0, 0], [10, 0, 0], [0, 10, 1]], np.float32))
    npz = [write_stroke3_npz(tmp_path / f"{name}.npz", test=[square, square]) for name in ("cat", "dog")]
    sketches, errors, counts = read_all([a, b, *npz])
    assert len(sketches) == 2 * 5 + 2 * 2 and counts.repeated == 0 and errors == []
    assert counts.npz_files == 2


# ---------------------------------------------------------------------------------------------- splits
def split_folder(tmp_path):
    """SPG's ``splits/`` layout: ``cat_{train,valid,test}.ndjson`` (4, 3, 2 records) and ``dog.ndjson`` (1),
    whose name carries no split."""
    records = shape_records(2, seed=5)
    folder = tmp_path / "splits"
    for split, part in (("train", records[:4]), ("valid", records[4:7]), ("test", records[7:9])):
        write_lines(folder / f"cat_{split}.ndjson", part)
    write_lines(folder / "dog.ndjson", records[9:])
    return folder


def test_only_the_files_of_the_split_asked_are_read(tmp_path):
    """A folder of ``_train/_valid/_test`` files was evaluated whole whatever ``--split`` said, so the figure mixed
    in the training drawings. Now the other splits' files are left out, counted and said in one line;
    ``split=None`` (``--all-splits``) reads every file."""
    from sketchgraph.evaluate_inputs import choose_files, name_splits

    folder = split_folder(tmp_path)
    choice = choose_files([str(folder)], "test")
    assert [path for path, _ in choice.entries] == [str(folder / "cat_test.ndjson"), str(folder / "dog.ndjson")]
    assert choice.left_out == [str(folder / "cat_train.ndjson"), str(folder / "cat_valid.ndjson")]
    assert choice.note == ("note: evaluating the test split (--split test): left out 2 files whose names carry "
                           "another (train 1 file, valid 1 file); --all-splits evaluates every file")
    sketches, _, counts = read_all([folder], "test")
    assert len(sketches) == 2 + 1 and counts.other_split_files == 2 and counts.npz_files == 0
    sketches, _, counts = read_all([folder], "valid")
    assert len(sketches) == 3 + 1 and counts.other_split_files == 2
    sketches, _, counts = read_all([folder], None)
    assert len(sketches) == 10 and counts.other_split_files == 0
    assert choose_files([str(folder)], None).note == (
        "note: the files' names hold several splits (train 1 file, valid 1 file, test 1 file), all of them "
        "evaluated (--all-splits): the figures mix them")
    assert name_splits([str(folder)]) == {"train": 1, "valid": 1, "test": 1}


def test_files_named_for_another_split_are_read_and_said_so(tmp_path):
    """Naming ``*_train`` files alone (no ``_test`` among them) evaluates them, with a warning that the figures are
    on the train split: before, nothing was said."""
    from sketchgraph.evaluate_inputs import choose_files

    folder = split_folder(tmp_path)
    choice = choose_files([str(folder / "cat_train.ndjson")], "test")
    assert choice.entries == [(str(folder / "cat_train.ndjson"), None)] and choice.left_out == []
    assert choice.note == ("warning: no file's name carries the test split (--split test): the figures are on the "
                           "files named for train 1 file")
    assert choose_files([str(folder / "dog.ndjson")], "test").note is None  # no split in the names: nothing to say


def test_a_split_sketch_files_cannot_have_is_refused(tiny_checkpoint, easy_prepared, tmp_path, capsys):
    """``--split tset`` was accepted (and ignored) for sketch files; ``--all-splits`` is for sketch files only. A
    prepared dataset keeps its own split names (``--split all``)."""
    from sketchgraph.cli import main
    from sketchgraph.evaluate_inputs import choose_files

    folder = split_folder(tmp_path)
    with pytest.raises(ValueError, match=r"^--split 'tset': the splits of sketch files are train, valid, test"):
        choose_files([str(folder)], "tset")
    assert main(["evaluate", str(tiny_checkpoint), str(folder), "--split", "tset", "--no-progress"]) == 1
    assert "error: --split 'tset': the splits of sketch files are train, valid, test" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_checkpoint), str(easy_prepared), "--all-splits"]) == 1
    assert ("error: --all-splits applies to sketch files; a prepared dataset is evaluated one --split at a time"
            in capsys.readouterr().err)
    # an empty --split (a script's unset "$SPLIT") is refused, not taken for the default
    from sketchgraph.evaluate_inputs import cli_file_options

    assert cli_file_options(str(easy_prepared), None, "", False, None, None, print)[0] == ""  # evaluate refuses ''
    assert cli_file_options(str(easy_prepared), None, None, False, None, None, print)[0] == "test"
    assert main(["evaluate", str(tiny_checkpoint), str(folder), "--split", "", "--no-progress"]) == 1
    assert "error: --split '': the splits of sketch files are train, valid, test" in capsys.readouterr().err


def test_options_sketch_files_do_not_use_are_said_so(tiny_checkpoint, tmp_path, capsys):
    """``--split valid --all-splits`` took all splits without a word, and ``--num-workers`` /
    ``--allow-preprocessing-mismatch`` (a prepared dataset's) were accepted for sketch files and did nothing."""
    from sketchgraph.cli import main

    folder = split_folder(tmp_path)
    assert main(["evaluate", str(tiny_checkpoint), str(folder), "--split", "valid", "--all-splits"]) == 1
    assert capsys.readouterr().err == ("sketchgraph evaluate: error: give --split valid or --all-splits, not both: "
                                       "--all-splits evaluates every split of the sketch files\n")
    assert main(["evaluate", str(tiny_checkpoint), str(folder), "--json", "--num-workers", "2",
                 "--allow-preprocessing-mismatch"]) == 0
    err = capsys.readouterr().err
    for flag in ("--num-workers", "--allow-preprocessing-mismatch"):
        assert f"sketchgraph evaluate: note: {flag} applies to a prepared dataset only; sketch files do not use it\n" \
            in err


def test_the_cli_evaluates_the_split_asked_or_all_of_them(tiny_checkpoint, tmp_path, capsys):
    """End to end: the default ``--split test`` counts the test file (and the one without a split), ``--all-splits``
    every file."""
    from sketchgraph.cli import main

    folder = split_folder(tmp_path)
    assert main(["evaluate", str(tiny_checkpoint), str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 3
    assert main(["evaluate", str(tiny_checkpoint), str(folder), "--json", "--all-splits"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 10


def test_an_npz_is_read_at_the_split_and_counted(tmp_path):
    """``npz_files`` says whether an ``.npz`` was read (the report's ``npz_split`` is meaningful only then)."""
    from sketchgraph.formats import write_stroke3_npz
    from sketchgraph.sketch import Sketch

    square = Sketch.from_stroke3(np.array([[0, 0, 0], [10, 0, 0], [0, 10, 1]], np.float32))
    npz = write_stroke3_npz(tmp_path / "cat.npz", train=[square] * 3, test=[square])
    assert [len(read_all([npz], split)[0]) for split in ("train", "test", None)] == [3, 1, 4]
    assert read_all([npz])[2].npz_files == 1


# ---------------------------------------------------------------------------------------------- what a walk leaves out
def test_a_walk_reports_the_npz_files_it_leaves_out(tmp_path):
    """``dog.npz`` beside ``a.ndjson`` was skipped without a word (only a folder of nothing but ``.npz`` files was
    reported)."""
    from sketchgraph.evaluate_inputs import expand
    from sketchgraph.formats import write_stroke3_npz
    from sketchgraph.formats.sniff import NPZ_NOT_WALKED
    from sketchgraph.sketch import Sketch

    a = write_lines(tmp_path / "mix" / "a.ndjson", shape_records(1))
    square = Sketch.from_stroke3(np.array([[0, 0, 0], [10, 0, 0], [0, 10, 1]], np.float32))
    npz = write_stroke3_npz(tmp_path / "mix" / "dog.npz", test=[square])
    assert list(expand([str(tmp_path / "mix")])) == [(str(npz), f"not read: {NPZ_NOT_WALKED}"), (str(a), None)]
    _, errors, _ = read_all([tmp_path / "mix"])
    assert errors == [(str(npz), None, f"not read: {NPZ_NOT_WALKED}")]


def test_an_evaluate_report_in_a_walked_folder_is_left_out(tmp_path):
    """``evaluate d --out d`` then ``evaluate d`` read ``d/report.json`` as a failed record of the class ``report``;
    a ``report.json`` without an evaluate run's CSVs beside it is read as any JSON file."""
    from sketchgraph.evaluate_inputs import EVALUATE_REPORT, expand

    a = write_lines(tmp_path / "d" / "a.ndjson", shape_records(1))
    report = tmp_path / "d" / "report.json"
    report.write_text(json.dumps({"top1": 0.5}))
    assert list(expand([str(tmp_path / "d")])) == [(str(a), None), (str(report), None)]
    (tmp_path / "d" / "predictions.csv").write_text("file,index\n")
    assert list(expand([str(tmp_path / "d")])) == [(str(report), f"not read: {EVALUATE_REPORT}"), (str(a), None)]


def test_prepare_and_predict_walks_leave_an_evaluate_report_out_too(tmp_path):
    """Every walk is ``sketch_files``'s: ``prepare`` read an evaluate report in a folder of sketches as sketches (and
    refused the folder: "1 has no split in its name")."""
    from sketchgraph.data.sources import expand_inputs
    from sketchgraph.formats import sketch_files
    from sketchgraph.formats.sniff import EVALUATE_REPORT

    a = write_lines(tmp_path / "d" / "cat_train.ndjson", shape_records(1))
    (tmp_path / "d" / "report.json").write_text(json.dumps({"top1": 0.5}))
    (tmp_path / "d" / "confusions.csv").write_text("true,predicted,count\n")
    left_out: list = []
    assert sketch_files(tmp_path / "d", gzipped=True, left_out=left_out) == [a]
    assert left_out == [(tmp_path / "d" / "report.json", EVALUATE_REPORT)]
    left_out = []
    assert [s.path for s in expand_inputs([tmp_path / "d"], left_out=left_out)] == [a]
    assert left_out == [(tmp_path / "d" / "report.json", EVALUATE_REPORT)]


def test_a_broken_link_in_a_walked_folder_is_an_unread_file(tmp_path):
    """A link with a sketch file's name that leads to no file was skipped silently (exit 0, nothing said); it is
    an unread file, said as ``predict`` says it. Links that the walk would not read anyway stay unsaid."""
    from sketchgraph.evaluate_inputs import expand

    a = write_lines(tmp_path / "d" / "a.ndjson", shape_records(1))
    (tmp_path / "d" / "gone.ndjson").symlink_to(tmp_path / "nowhere.ndjson")
    (tmp_path / "d" / "notes.txt").symlink_to(tmp_path / "nowhere.txt")
    (tmp_path / "d" / "loop.ndjson").symlink_to(tmp_path / "d" / "loop.ndjson")
    found = list(expand([str(tmp_path / "d")]))
    assert found[:2] == [
        (str(tmp_path / "d" / "gone.ndjson"), f"not read: a broken link to {tmp_path / 'nowhere.ndjson'}: No such "
                                              "file or directory"),
        (str(tmp_path / "d" / "loop.ndjson"), f"not read: a broken link to {tmp_path / 'd' / 'loop.ndjson'}: Too "
                                              "many levels of symbolic links")]
    assert found[2:] == [(str(a), None)]
    sketches, errors, _ = read_all([tmp_path / "d"])
    assert len(sketches) == 5 and [e[:2] for e in errors] == [(found[0][0], None), (found[1][0], None)]


def test_links_to_folders_are_followed_once(tmp_path):
    """A link to a folder was skipped silently; now it is walked, once, and a link that would loop is named."""
    from sketchgraph.evaluate_inputs import expand

    root, other = tmp_path / "root", tmp_path / "other"
    a = write_lines(root / "a.ndjson", shape_records(1))
    write_lines(other / "b.ndjson", shape_records(1, seed=1))
    (root / "linked").symlink_to(other, target_is_directory=True)
    (root / "again").symlink_to(other, target_is_directory=True)  # the same folder: its files are read once
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)  # above the walk: a loop
    (root / "sub" / "self").symlink_to(root, target_is_directory=True)  # the walk itself: read already
    found = list(expand([str(root)]))
    assert found == [
        (str(root / "sub" / "up"), f"not read: a link to {tmp_path.resolve()}, a folder holding one walked already: "
                                   "not followed (it would loop)"),
        (str(a), None), (str(root / "again" / "b.ndjson"), None),
    ]


# ---------------------------------------------------------------------------------------------- key ids to exclude
def test_key_ids_come_from_one_path_a_pattern_or_several(tmp_path):
    """``read_key_ids("ids.txt")`` iterated the string, its first "path" ``/`` (it walked the whole file system);
    a glob pattern is matched here; each source's count is given for the report and the stderr line."""
    from sketchgraph.evaluate_inputs import read_key_ids, read_key_ids_by_source

    records = shape_records(2)
    ids = [r["key_id"] for r in records]
    listed = tmp_path / "ids.txt"
    listed.write_text(f" {ids[0]} \r\n# a comment\n\n{ids[1]}\n{ids[1]}\n")
    write_lines(tmp_path / "splits" / "cat_train.ndjson", records[2:5])
    write_lines(tmp_path / "splits" / "dog_train.ndjson", records[4:8])
    assert read_key_ids(str(listed)) == read_key_ids(listed) == frozenset(ids[:2])
    pattern = str(tmp_path / "splits" / "*_train.ndjson")
    found, per_source = read_key_ids_by_source([listed, pattern])
    assert found == frozenset(ids[:8]) and per_source == {str(listed): 2, pattern: 6}
    with pytest.raises(FileNotFoundError, match=r"--exclude-key-ids .*\*_valid.ndjson: no file matches this pattern"):
        read_key_ids(str(tmp_path / "splits" / "*_valid.ndjson"))


def test_key_ids_made_up_per_file_or_not_in_a_sketch_file_are_refused(tmp_path):
    """``--exclude-key-ids cat.npz`` excluded ``test/0`` of every ``.npz`` (house.npz too); an SVG's id is its file
    name; ``ids.csv`` got "cannot tell the format ... (--format)", naming neither the option nor what it takes."""
    from sketchgraph.evaluate_inputs import read_key_ids
    from sketchgraph.formats import write_stroke3_npz, write_svg
    from sketchgraph.sketch import Sketch

    square = Sketch.from_stroke3(np.array([[0, 0, 0], [10, 0, 0], [0, 10, 1]], np.float32))
    npz = write_stroke3_npz(tmp_path / "cat.npz", test=[square])
    with pytest.raises(ValueError, match=r"--exclude-key-ids .*cat.npz: the key ids of npz records are made up per "
                                         r"file \(split/index"):
        read_key_ids(npz)
    (tmp_path / "cat").mkdir()
    write_svg(square, tmp_path / "cat" / "81.svg")
    with pytest.raises(ValueError, match=r"81.svg: the key ids of svg records are made up per file"):
        read_key_ids(tmp_path / "cat")  # a folder of them
    (tmp_path / "ids.csv").write_text("key_id\n5629189624315904\n")
    with pytest.raises(ValueError, match=r"--exclude-key-ids .*ids.csv: not a list of key ids nor a sketch file; a "
                                         r"list of key ids is a .txt file"):
        read_key_ids(tmp_path / "ids.csv")
    write_lines(tmp_path / "nokeys.ndjson", [{"word": "cat", "drawing": [[[0, 9], [0, 9]]]}])
    with pytest.raises(ValueError, match=r"nokeys.ndjson: no key id in it, nothing to exclude"):
        read_key_ids(tmp_path / "nokeys.ndjson")


def test_excluded_ids_are_normalised_and_compared_stripped():
    """Integer ids (pandas reads 16-digit ids as int64) excluded nothing; a bare string was iterated character by
    character; a Path raised "not iterable"; a record's key id with white space around it was not matched."""
    from sketchgraph.evaluate_inputs import Selection, key_id_set

    assert key_id_set([9021000000000000, np.int64(9021000000000001), " 17 ", 5.0]) == frozenset(
        {"9021000000000000", "9021000000000001", "17", "5"})
    assert Selection(None, [9021000000000000]).skips(" 9021000000000000\t")
    assert not Selection(None, ["9021000000000000"]).skips("902100000000000")
    with pytest.raises(TypeError, match="expected a collection of key ids, got one str"):
        key_id_set("9021000000000000")
    with pytest.raises(TypeError, match="got one PosixPath|got one WindowsPath"):
        Selection(None, Path("ids.txt"))
    with pytest.raises(TypeError, match="'key_id' must be a string or an integer, found a list"):
        key_id_set([[1, 2]])


def test_cli_takes_one_id_path_per_flag_and_says_what_each_gave(tiny_checkpoint, tmp_path, capsys):
    """``--exclude-key-ids ids.txt b.ndjson`` took the dataset b.ndjson as a second id list; one PATH per flag, so
    the option can come before the datasets, and each source is named on stderr with its count. A mistyped dataset
    is reported before the id lists are read."""
    from sketchgraph.cli import main

    records = shape_records(2)
    data = write_lines(tmp_path / "data.ndjson", records)
    listed = tmp_path / "ids.txt"
    listed.write_text("\n".join(r["key_id"] for r in records[:3]) + "\n")
    train = write_lines(tmp_path / "train.ndjson", records[2:6])
    assert main(["evaluate", str(tiny_checkpoint), "--exclude-key-ids", str(listed), str(data),
                 "--exclude-key-ids", str(train), "--json", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines() == [f"sketchgraph evaluate: excluding 3 key ids from {listed}",
                                f"sketchgraph evaluate: excluding 4 key ids from {train}"]
    report = json.loads(out)
    assert report["records"] == 4 and report["source"]["excluded_records"] == 6
    (tmp_path / "ids.csv").write_text("x\n")
    assert main(["evaluate", str(tiny_checkpoint), str(tmp_path / "dta.ndjson"), "--exclude-key-ids",
                 str(tmp_path / "ids.csv")]) == 1
    assert f"error: no such file or folder: {tmp_path / 'dta.ndjson'}" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- labels
def test_an_unreadable_record_takes_its_files_label(tiny_checkpoint, tmp_path):
    """An invalid JSON line of ``cat_test.ndjson`` (records without ``word`` take the file's class) was
    "unlabelled", so it stayed out of the strict figure; it is a ``cat`` that could not be classified."""
    from sketchgraph.evaluate import evaluate
    from sketchgraph.evaluate_inputs import ReadCounts, records

    good = [{"drawing": r["drawing"]} for r in shape_records(1)[:2]]
    path = write_lines(tmp_path / "cat_test.ndjson", [good[0], "{not json", good[1]])
    failed = [(tag.index, item) for tag, item in records(0, str(path), None, "test", ReadCounts())
              if isinstance(item, Exception)]
    assert [(index, error.label, error.line) for index, error in failed] == [(1, "cat", 2)]
    worded = write_lines(tmp_path / "mixed.ndjson", ["{not json", *shape_records(1)[:2]])  # classes from words
    assert [item.label for _, item in records(0, str(worded), None, "test", ReadCounts())
            if isinstance(item, Exception)] == [None]  # not "mixed": unlabelled, as before
    report = evaluate(tiny_checkpoint, [path], progress=False)
    assert report["unlabelled"] == 0 and report["unclassified"]["of_model_classes"] == 1
    assert report["top1_counting_unclassified_as_wrong"] == pytest.approx(report["top1"] * 2 / 3)


def test_a_label_map_conflict_after_canonical_names_is_an_error_and_use_is_counted():
    """``--label-map moon=sun --label-map Moon=cat`` mapped both spellings to cat, silently; an unused mapping
    (``mon=sun``) was not said."""
    from sketchgraph.evaluate_inputs import ClassIndex, parse_label_map

    with pytest.raises(ValueError, match=r"'Moon' is mapped to both 'sun' and 'cat' \('moon' and 'Moon' are one "
                                         r"label, compared as 'moon'\)"):
        parse_label_map(["moon=sun", "Moon=cat"])
    assert parse_label_map(["moon=sun", "Moon=Sun"]) == {"moon": "sun"}  # the same class: no conflict
    with pytest.raises(ValueError, match=r"'moon' and 'Moon' are one label \(compared as 'moon'\) mapped to two "
                                         r"classes, 'sun' and 'cat'"):
        ClassIndex(TINY_CLASSES, {"moon": "sun", "Moon": "cat"})
    index = ClassIndex(TINY_CLASSES, {"Moon": "sun", "mon": "sun", "kitty": "cat"})
    assert [index(label) for label in ("moon", "MOON", "kitty", "cat", "lion", None)] == [4, 4, 1, 1, None, None]
    assert index.label_map_applied() == {"Moon": 2, "mon": 0, "kitty": 1}
    assert index.unused_note() == ("warning: --label-map: no record is labelled 'mon' (compared as canonical_label): "
                                   "this mapping was never used")
    assert ClassIndex(TINY_CLASSES).unused_note() is None


def test_unknown_labels_are_grouped_by_canonical_name():
    """``unknown_labels`` listed ``Moon: 1, moon: 1``: one label, counted under its first spelling."""
    from sketchgraph.evaluate_inputs import group_labels

    assert group_labels({"Moon": 1, "lion": 1, "moon": 1, "Lion ": 2, "tiger": 1}) == {
        "lion": 3, "Moon": 2, "tiger": 1}


def test_what_the_reading_left_out_is_in_the_report_and_the_summary(tiny_checkpoint, tmp_path, capsys):
    """The report says what the reading did: the split asked and the files of other splits left out, the
    repeated drawings counted once, the label map's use (an unused mapping warned about), and a digest of the
    excluded key ids; the summary says the same in words."""
    import hashlib

    from sketchgraph.evaluate import _summary, evaluate

    records = shape_records(2, seed=7)  # 10 records, 2 per class
    data = tmp_path / "data"
    data.mkdir()
    write_lines(data / "shapes_test.ndjson", [*records, records[0]])  # the first drawing twice
    write_lines(data / "shapes_train.ndjson", records)
    ids = [str(records[1]["key_id"]), str(records[2]["key_id"])]
    capsys.readouterr()
    report = evaluate(tiny_checkpoint, data, progress=False, exclude_key_ids=[int(i) for i in ids],
                      label_map={"kitty": "cat", "apple": "apple"})
    source = report["source"]
    assert (source["split"], source["other_split_files"], source["repeated_records"]) == ("test", 1, 1)
    assert source["excluded_records"] == 2 and report["num_samples"] == 8
    assert source["excluded_key_ids_sha256"] == hashlib.sha256("".join(f"{i}\n" for i in sorted(ids)).encode()
                                                               ).hexdigest()
    assert report["label_map_applied"] == {"kitty": 0, "apple": 1}  # one apple excluded, one repeat counted once
    assert "--label-map: no record is labelled 'kitty'" in capsys.readouterr().err
    summary = _summary(report)
    assert "1 drawing repeated an earlier record's key id: each counted once, at its first record" in summary
    assert "left out" in summary and "train 1 file" in summary
    with pytest.raises(TypeError):
        evaluate(tiny_checkpoint, data, progress=False, exclude_key_ids=ids[0])  # one id, not a list


def test_sample_per_file_draws_a_seeded_uniform_sample_in_file_order(tiny_checkpoint, tmp_path, capsys):
    """``--sample-per-file N`` evaluates N records of each file drawn uniformly (reservoir sampling, after the
    excluded and repeated ones are left out), in the file's order; the same seed and file name give the same
    sample, another seed another; it excludes --limit-per-file. Over many seeds every record is drawn about
    equally often."""
    import random
    from collections import Counter

    from sketchgraph.cli import main
    from sketchgraph.evaluate import evaluate
    from sketchgraph.evaluate_inputs import ReadCounts, Selection, Tag, sampled
    from sketchgraph.formats.base import Place

    items = [(Tag(0, "f", i, Place("f"), i), f"record {i}") for i in range(20)]
    items.insert(3, (Tag(0, "f", None, Place("f"), 2.5), "about the file"))
    counts = ReadCounts()
    draws = Counter()
    for seed in range(4000):
        got = sampled(iter(items), 5, random.Random(seed), counts)
        assert [t.order for t, _ in got] == sorted(t.order for t, _ in got) and (2.5, "about the file") in [
            (t.order, x) for t, x in got]
        draws.update(x for t, x in got if t.index is not None)
    assert counts.sampled == 4000 and len(draws) == 20
    assert all(abs(n / 4000 - 5 / 20) < 0.035 for n in draws.values())  # each record in about 1/4 of the draws
    assert sampled(iter(items[:4]), 5, random.Random(0), ReadCounts()) == items[:4]  # fewer than N: all, in order

    records = shape_records(6, seed=8)  # 30 records
    path = write_lines(tmp_path / "all.ndjson", records)
    one = evaluate(tiny_checkpoint, [path], progress=False, sample_per_file=7, seed=1, out=tmp_path / "a")
    again = evaluate(tiny_checkpoint, [path], progress=False, sample_per_file=7, seed=1, out=tmp_path / "b")
    other = evaluate(tiny_checkpoint, [path], progress=False, sample_per_file=7, seed=2, out=tmp_path / "c")
    rows = {k: (tmp_path / k / "predictions.csv").read_text() for k in "abc"}
    assert one["num_samples"] == 7 and one["source"]["files_sampled"] == 1 and rows["a"] == rows["b"] != rows["c"]
    indexes = [int(line.split(",")[1]) for line in rows["a"].splitlines()[1:]]
    assert indexes == sorted(indexes) and len(set(indexes)) == 7
    assert one["confusion_matrix"] == again["confusion_matrix"] and other["num_samples"] == 7
    capsys.readouterr()
    assert main(["evaluate", str(tiny_checkpoint), str(path), "--sample-per-file", "7", "--seed", "1",
                 "--no-progress"]) == 0
    assert "a random sample of 7 records of each file (seed 1): 1 file held more (--sample-per-file)" in (
        capsys.readouterr().out)
    with pytest.raises(ValueError, match="give one of them"):
        Selection(limit=5, sample=5)


# -------------------------------------------------------------------------------------- a sample parses its lines
def hostile_lines():
    """An ndjson file's lines covering every way a line's key id can be written or hidden: 16-digit string and
    integer ids, an integral float, ids to exclude (string and integer), repeats (readable and not), invalid JSON with
    and without an id, a nested id, an escaped key, an id after a brace in a string, empty drawings, blank lines."""
    rows = [{**r, "key_id": f"90210000000{i:05d}"} for i, r in enumerate(shape_records(4, seed=3))]  # 20 records
    rows[1]["key_id"] = 9021000000000001  # an integer id
    rows[2]["key_id"] = 9021000000000002.0  # an integral float: the integer's id
    rows[3]["key_id"] = "9021000000000000"  # repeats row 0's (readable)
    rows[5]["drawing"] = []  # unreadable (empty), with an id
    rows[6]["key_id"] = rows[5]["key_id"]  # repeats an unreadable record's id
    rows[7] = {k: v for k, v in rows[7].items() if k != "key_id"}  # no id
    rows[8]["meta"] = {"key_id": "1"}  # a nested object: the record's own id is the top-level one
    rows[9]["word"] = 'apple {"key_id": "2"}'  # braces and an id inside a string
    lines = [json.dumps(r) for r in rows]
    lines[10] = lines[10].replace('"key_id"', '"key\\u005fid"')  # the same key, escaped
    lines[11] = lines[11][:60]  # cut short: invalid JSON that still names its drawing
    lines[12] = '{"word": "cat", "drawing": [[[1, 2'  # invalid JSON without an id
    lines.insert(13, "")
    lines.insert(14, "   ")
    return "\ufeff" + "\n".join(lines) + "\n", rows


def test_line_key_id_is_the_key_id_of_the_parsed_record_or_its_error():
    """``line_key_id`` (a regular expression where the line makes it plain) gives each line's key id exactly as
    ``parse_line`` gives it, readable or not."""
    from sketchgraph.errors import FormatError
    from sketchgraph.formats.ndjson import line_key_id, parse_line

    text, _ = hostile_lines()
    extra = ['{"key_id": -0, "drawing": [[[1, 2], [3, 4]]]}', '{"key_id": 12e3, "drawing": []}',
             '{"key_id": "1", "key_id": "2", "drawing": [[[1], [2]]]}', '{"key_id": null, "drawing": [[[1], [2]]]}',
             '{"key_id": [1], "drawing": [[[1], [2]]]}', '[[[1, 2], [3, 4]]]', '{"key_id": "a\\"b", "drawing": []}',
             '{"key_id":"77" , "drawing": 5}', '{"drawing": [[[1], [2]]], "key_id": 5}']
    lines = [line for line in text.removeprefix("\ufeff").splitlines() if line.strip()] + extra
    seen = []
    for line in lines:
        try:
            expected = parse_line(line, style="raw").key_id
        except FormatError as exc:
            expected = exc.key_id
        assert line_key_id(line.encode()) == line_key_id(line) == expected, line
        seen.append(expected)
    assert seen[11] == "9021000000000011" and seen[12] is None  # the cut line keeps its id; the other has none
    assert seen[2] == "9021000000000002" and seen[8] == "9021000000000008" and seen[10] == "9021000000000010"
    assert seen[-9:] == ["0", "12000", "2", None, None, None, 'a"b', "77", "5"]


@pytest.mark.parametrize("name", ["cat_test.ndjson", "cat_test.ndjson.gz", "cat_test.json"])
def test_a_sample_of_a_json_document_is_drawn_over_its_records_whatever_its_name(tmp_path, name):
    """A JSON list of records named ``.ndjson`` is read whole by the readers, so ``--sample-per-file`` must draw
    over its records as for a ``.json`` file; it took the file for lines and failed with ``KeyError: None``."""
    import random

    from sketchgraph.evaluate_inputs import ReadCounts, Selection, records

    text = json.dumps(shape_records(3), indent=2).encode()
    path = tmp_path / name
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    counts = ReadCounts()
    items = list(records(0, str(path), None, None, counts, Selection(None, [], 4, 0), set(), sample=random.Random(0)))
    assert len(items) == 4 and all(not isinstance(x, Exception) for _, x in items)
    assert [t.index for t, _ in items] == sorted(t.index for t, _ in items)


@pytest.mark.parametrize("gz", [False, True])
def test_a_sample_parses_only_its_lines_and_takes_what_reading_every_record_takes(tmp_path, monkeypatch, gz):
    """``--sample-per-file`` on a file of lines parses only the sampled lines (on Google's RAW files the reading of
    every drawing was 90% of the time), yet takes and counts what reading every record takes: with N at least the
    file's records, the records, errors and counts of no sample; with a smaller N, for every seed, the very sample
    the reservoir over every parsed record draws."""
    import random

    import sketchgraph.formats.ndjson as ndjson
    from sketchgraph.evaluate_inputs import ReadCounts, Selection, records, sampled

    text, rows = hostile_lines()
    path = tmp_path / ("cat_raw.ndjson.gz" if gz else "cat_raw.ndjson")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    excluded = [rows[4]["key_id"], 9021000000000015]  # a string and an integer id
    select = Selection(None, excluded)

    def shown(items):
        return [(t.index, t.order, str(t.place.line), str(x.key_id), str(x)) for t, x in items]

    def every(seed, n):
        counts = ReadCounts()
        items = list(records(0, str(path), None, None, counts, select, set()))
        if seed is not None:
            items = sampled(items, n, random.Random(seed), counts)
        return shown(items), counts

    parsed = []
    parse_line = ndjson.parse_line
    monkeypatch.setattr(ndjson, "parse_line", lambda line, **kw: parsed.append(line) or parse_line(line, **kw))

    def chosen(seed, n):
        counts = ReadCounts()
        del parsed[:]
        items = list(records(0, str(path), None, None, counts, Selection(None, excluded, n, seed), set(),
                             sample=random.Random(seed)))
        return shown(items), counts, len(parsed)

    whole, counts = every(None, None)
    assert counts.excluded == 2 and counts.repeated == 2  # a readable and an unreadable record repeated
    errors = [(index, key_id) for index, _, _, key_id, shown_item in whole if not shown_item.startswith("Sketch(")]
    assert len(whole) == 16 and errors == [(5, "9021000000000005"), (11, "9021000000000011"), (12, "None")]
    for n in (16, 50):
        assert chosen(0, n)[:2] == (whole, counts)  # every record: what no sample takes
    for seed in range(12):
        items, sample_counts, parsed_lines = chosen(seed, 5)
        assert (items, sample_counts) == every(seed, 5) and parsed_lines == 5 and sample_counts.sampled == 1
    if gz:  # compressed data that breaks off: the sample is of the lines before the break, then the break's error
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
        whole, counts = every(None, None)
        assert chosen(0, 50)[:2] == (whole, counts) and "breaks off after line" in whole[-1][4]
        assert whole[-1][0] is None and 3 < len(whole) < 16


@pytest.mark.parametrize("key_id", ["5629189624315904", " 5629189624315904\t", "0", "17", "12345678901", "123456789012",
                                    "\u0661" * 12, "\u00b2" * 12, "56291896243159a4", "", " ", "-562918962431590"])
def test_drawing_key_tells_drawing_ids_as_prepare_does(key_id):
    """``_drawing_key`` (one id at a time, as a sample reads a line) agrees with ``prepare``'s ``drawing_ids``."""
    from sketchgraph.data.reading import drawing_ids
    from sketchgraph.evaluate_inputs import _drawing_key

    expected = bool(drawing_ids(np.array([key_id.strip()]))[0])
    assert (_drawing_key(key_id) is not None) == expected
    assert _drawing_key(key_id) in (None, key_id.strip())
