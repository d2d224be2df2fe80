"""ONNX / TorchScript export: the exported graph gives PyTorch's logits (dynamic batch and length, padding,
padding-only rows, every preset family), the relation masks it builds from ``flags`` equal ``relation_masks``,
the files carry their classes, preprocessing and relations, writes are atomic, and the shipped checkpoint
exports."""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchgraph import export as export_module
from sketchgraph.batch import Batch
from sketchgraph.errors import CheckpointError, SketchError
from sketchgraph.examples import example_paths
from sketchgraph.export import (
    INPUT_CONTRACT,
    MAX_OPSET,
    METADATA_KEYS,
    ExportableMGT,
    check_inputs,
    export_onnx,
    export_torchscript,
    main,
    output_format,
    prepare_inputs,
    preprocessing_recipe,
)
from sketchgraph.formats import write_ndjson
from sketchgraph.graph import FLAG_END, FLAG_PAD, RELATIONS, GraphSpec, relation_masks
from sketchgraph.model import build_model
from sketchgraph.model.attention import GraphAttention
from sketchgraph.predict import SHIPPED_CHECKPOINT, SketchClassifier, resolve_checkpoint
from sketchgraph.preprocess import ADAPT_FACTOR, ADAPT_STEPS, Preprocessing, preprocess
from sketchgraph.sketch import Sketch

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

TOL = 1e-4


def varied_sketches() -> list[Sketch]:
    """Lengths from 1 point to past the 100-point cap, 1 to many strokes: a batch with a lot of padding."""
    t = np.linspace(0, 2 * math.pi, 400)
    spiral = [[(200 + t * 20 * np.cos(3 * t)).tolist(), (200 + t * 20 * np.sin(3 * t)).tolist()]]
    zigzag = [[list(range(0, 1500, 10)), [0 if i % 2 else 100 for i in range(150)]]]  # 150 corners: capped at 100
    house = [[[100, 300, 300, 100, 100], [300, 300, 150, 150, 300]], [[90, 200, 310], [160, 60, 160]]]
    dashes = [[[10 * i, 10 * i + 5], [50, 50]] for i in range(12)]  # 12 two-point strokes
    dot = [[[5], [5]]]
    line = [[[0, 100], [0, 100]]]
    return [Sketch.from_strokes(s) for s in (spiral, zigzag, house, dashes, dot, line)]


def inputs() -> list:
    return [*example_paths(), *varied_sketches()]


def onnx_runner(path):
    """``feeds -> logits`` with onnxruntime on the CPU; checks the graph's input and output names."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["coords", "flags"]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    return lambda feeds: sess.run(None, feeds)[0]


def jit_load(path, **kwargs) -> torch.jit.ScriptModule:
    """``torch.jit.load`` without its deprecation notice."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.load` is deprecated", DeprecationWarning)
        return torch.jit.load(str(path), map_location="cpu", **kwargs)


def torchscript_runner(path):
    """``feeds -> logits`` with the TorchScript module loaded on the CPU."""
    module = jit_load(path)

    def run(feeds):
        with torch.inference_mode():
            return module(torch.from_numpy(feeds["coords"]), torch.from_numpy(feeds["flags"])).numpy()

    return run


def run_onnx(path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return onnx_runner(path)(feeds)


def torch_logits(clf: SketchClassifier, feeds: dict[str, np.ndarray]) -> np.ndarray:
    batch = Batch.from_padded(torch.from_numpy(feeds["coords"]), torch.from_numpy(feeds["flags"]),
                              clf.graph_spec.relations)
    with torch.inference_mode():
        return clf.model(batch).numpy()


def with_padding_row(feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``feeds`` plus a last row that is all padding (no valid point)."""
    n = feeds["flags"].shape[1]
    return {"coords": np.concatenate([feeds["coords"], np.zeros((1, n, 2), np.float32)]),
            "flags": np.concatenate([feeds["flags"], np.full((1, n), FLAG_PAD, np.int64)])}


def check_parity(clf: SketchClassifier, run) -> None:
    """``run(feeds) -> logits`` (an exported model) against PyTorch: the full padded batch, a padding-only row,
    a sub-batch of different size and length, one sketch alone; and the ranking of ``predict_batch``."""
    xs = inputs()
    feeds = prepare_inputs(clf, xs)
    assert feeds["coords"].dtype == np.float32 and feeds["flags"].dtype == np.int64
    lengths = (feeds["flags"] != FLAG_PAD).sum(1)
    assert lengths.min() == 1 and lengths.max() == clf.preprocessing.max_points  # padding really happens
    full = run(feeds)
    assert full.shape == (len(xs), clf.num_classes)
    np.testing.assert_allclose(full, torch_logits(clf, feeds), atol=TOL, rtol=0)
    padded = with_padding_row(feeds)
    got = run(padded)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, torch_logits(clf, padded), atol=TOL, rtol=0)
    np.testing.assert_allclose(got[:-1], full, atol=1e-5, rtol=0)  # the empty row changes no other row
    for part in (xs[1:4], xs[-2:-1]):  # other B and N than the traced example
        sub = prepare_inputs(clf, part)
        np.testing.assert_allclose(run(sub), torch_logits(clf, sub), atol=TOL, rtol=0)
    # the exported model ranks like the classifier itself
    probs = torch.softmax(torch.from_numpy(full), -1)
    expected = clf.predict_batch(xs, top_k=3)
    for p, ranked in zip(probs, expected):
        assert [clf.classes[i] for i in p.topk(3).indices.tolist()] == [r.label for r in ranked]


def read_metadata(path) -> dict[str, dict]:
    """The JSON metadata of an exported file as a client reads it: ``{"onnx": ..., "onnxruntime": ...}`` for an
    ONNX file, ``{"torchscript": ...}`` for a TorchScript one; each ``{key: decoded value}``."""
    if output_format(path) == "onnx":
        props = {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props}
        custom = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
        return {"onnx": props, "onnxruntime": {k: json.loads(v) for k, v in custom.custom_metadata_map.items()}}
    files = dict.fromkeys(METADATA_KEYS, "")
    jit_load(path, _extra_files=files)
    return {"torchscript": {k: json.loads(v) for k, v in files.items() if v}}


# ------------------------------------------------------------------------------------------ masks
def random_flags(rng: np.random.Generator, B: int, N: int) -> torch.Tensor:
    """``(B, N)`` int64 flags: row 0 fills ``N``, the others random lengths 1..N, strokes ending at random."""
    flags = np.full((B, N), FLAG_PAD, dtype=np.int64)
    for b in range(B):
        n = int(rng.integers(1, N + 1)) if b else N  # row 0 unpadded
        row = np.where(rng.random(n) < 0.3, FLAG_END, 100)
        row[-1] = FLAG_END
        flags[b, :n] = row
    return torch.from_numpy(flags)


class StackedMasks(torch.nn.Module):
    """``flags (B, N) -> (B, R, N, N)`` bool: ``relation_masks`` of every relation, as the exported graph builds
    them (padding rows with self-loops)."""

    def forward(self, flags: torch.Tensor) -> torch.Tensor:
        masks = relation_masks(flags, RELATIONS, pad_self_loops=True)
        return torch.stack([masks[r] for r in RELATIONS], 1)


def test_traced_masks_equal_relation_masks(tmp_path):
    """The masks traced into ONNX (at one B and N) equal ``relation_masks`` run in Python at other sizes, with
    1-point rows and a padding-only row: the broadcast comparisons trace without baking in the example's shape."""
    path = tmp_path / "masks.onnx"
    with export_module._tracing():
        torch.onnx.export(StackedMasks(), (random_flags(np.random.default_rng(0), 2, 12),), str(path),
                          dynamo=False, input_names=["flags"], output_names=["masks"],
                          dynamic_axes={"flags": {0: "batch", 1: "points"}, "masks": {0: "batch", 2: "n", 3: "n"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    for B, N in [(1, 1), (3, 2), (4, 7), (6, 40), (2, 100)]:
        flags = random_flags(rng, B, N)
        if B > 2:
            flags[-1] = FLAG_PAD  # a padding-only row
        (got,) = sess.run(None, {"flags": flags.numpy()})
        expected = StackedMasks()(flags).numpy()
        assert got.shape == (B, len(RELATIONS), N, N) and got.dtype == np.bool_
        np.testing.assert_array_equal(got, expected, err_msg=f"B={B} N={N}")


# ------------------------------------------------------------------------------------------ parity
def test_onnx_parity_tiny_checkpoint(tiny_checkpoint, tmp_path):
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    path = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx")
    assert path.is_file()
    check_parity(clf, onnx_runner(path))


def _random_batchnorm_statistics(model: torch.nn.Module) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("preset", ["mgt-paper", "gt-full"])
def test_parity_of_both_formats_across_presets(preset, tmp_path):
    """The paper's architecture (BatchNorm over valid nodes, per-relation attention, non-trivial statistics) and
    the plain Transformer over the ``full`` relation, in ONNX and TorchScript."""
    torch.manual_seed(1)
    model = build_model(preset, num_classes=4, embed_dim=16, heads=2, layers=2, classifier=(32,))
    _random_batchnorm_statistics(model)
    clf = SketchClassifier(model, ["a", "b", "c", "d"], graph_spec=GraphSpec(model.relations))
    check_parity(clf, onnx_runner(export_onnx(model, tmp_path / "m.onnx")))
    check_parity(clf, torchscript_runner(export_torchscript(model, tmp_path / "m.pt")))
    assert not model.training  # SketchClassifier put it in eval; export worked on a copy
    assert all(a.fused for a in model.modules() if hasattr(a, "fused"))  # the original is untouched


def test_shipped_checkpoint_exports_with_its_effective_preprocessing(tmp_path):
    """Both formats of ``spg20`` match PyTorch, and their metadata hold the classes, the relations and the
    preprocessing ``predict`` applies: the checkpoint's ``preprocessing`` updated by ``inference_preprocessing``
    (``cap: adapt``). A client that preprocesses with that metadata gets ``predict``'s graph and scores for a
    drawing longer than the cap (the checkpoint's ``preprocessing`` alone would truncate it)."""
    try:
        path = resolve_checkpoint(SHIPPED_CHECKPOINT)
    except CheckpointError as exc:
        pytest.fail(f"the shipped checkpoint must be in the repository (checkpoints/{SHIPPED_CHECKPOINT}): {exc}")
    config = json.loads((path / "config.json").read_text())
    clf = SketchClassifier.from_pretrained(SHIPPED_CHECKPOINT)
    assert config["inference_preprocessing"] == {"cap": "adapt"} and config["preprocessing"]["cap"] == "truncate"
    onnx_path = export_onnx(SHIPPED_CHECKPOINT, tmp_path / f"{SHIPPED_CHECKPOINT}.onnx")
    ts_path = export_torchscript(SHIPPED_CHECKPOINT, tmp_path / f"{SHIPPED_CHECKPOINT}.pt")
    truncating = SketchClassifier.from_pretrained(SHIPPED_CHECKPOINT, cap="truncate")  # a drawing at the full cap
    check_parity(truncating, onnx_runner(onnx_path))
    check_parity(truncating, torchscript_runner(ts_path))

    expected = {"classes": clf.classes, "preprocessing": {**config["preprocessing"], "cap": "adapt"},
                "preprocessing_recipe": preprocessing_recipe(clf.preprocessing),
                "relations": list(clf.graph_spec.relations), "input_contract": INPUT_CONTRACT}
    assert expected["preprocessing"] == clf.preprocessing.to_dict()
    for path_ in (onnx_path, ts_path):
        for reader, meta in read_metadata(path_).items():
            assert meta == expected, reader

    # a client's recipe from the metadata alone: preprocess, pad, run
    meta = read_metadata(onnx_path)["onnxruntime"]
    zigzag = varied_sketches()[1]
    simplified = preprocess(zigzag, Preprocessing.from_dict(meta["preprocessing"]))
    n = simplified.num_points
    assert n == clf.graph(zigzag).num_nodes < 100  # re-simplified to fit, not truncated at 100
    feeds = prepare_inputs(clf, [zigzag])
    np.testing.assert_array_equal(feeds["coords"][0, :n], simplified.points())
    probs = torch.softmax(torch.from_numpy(onnx_runner(onnx_path)(feeds)), -1)[0]
    top = clf.predict(zigzag, top_k=1)[0]
    assert meta["classes"][int(probs.argmax())] == top.label and abs(float(probs.max()) - top.score) < 1e-4


def test_torchscript_parity(tiny_checkpoint, tmp_path):
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    check_parity(clf, torchscript_runner(export_torchscript(clf, tmp_path / "tiny.pt")))


def test_metadata_of_a_checkpoint_a_classifier_and_a_bare_model(tiny_checkpoint, tmp_path):
    """A checkpoint or a ``SketchClassifier`` gives every ``METADATA_KEYS`` entry (the classifier's own
    preprocessing, ``cap`` override included, and its recipe); a bare model knows only its relations and the input
    contract."""
    clf = SketchClassifier.from_pretrained(tiny_checkpoint, cap="adapt")
    relations = list(clf.graph_spec.relations)
    common = {"relations": relations, "input_contract": INPUT_CONTRACT}
    truncating = {"adapt_epsilons": [], "recipe": preprocessing_recipe(Preprocessing())["recipe"]}
    for source, expected in [
        (tiny_checkpoint, {"classes": clf.classes, "preprocessing": Preprocessing().to_dict(),
                           "preprocessing_recipe": truncating, **common}),
        (clf, {"classes": clf.classes, "preprocessing": clf.preprocessing.to_dict(),
               "preprocessing_recipe": preprocessing_recipe(clf.preprocessing), **common}),
        (clf.model, common),
    ]:
        for suffix in (".onnx", ".pt"):
            path = tmp_path / f"m{suffix}"
            (export_onnx if suffix == ".onnx" else export_torchscript)(source, path)
            for reader, meta in read_metadata(path).items():
                assert meta == expected, (type(source).__name__, reader)
    assert set(METADATA_KEYS) == {"classes", "preprocessing", "preprocessing_recipe", "relations", "input_contract"}


# ------------------------------------------------------------------------------------------ writing
def _previous(tmp_path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(b"an earlier export, still in use")
    return path


def test_a_failed_write_leaves_the_earlier_file_and_no_temporary_file(tiny_checkpoint, tmp_path, monkeypatch):
    """The file is serialised in memory and renamed into place: when the write fails, the file that was there is
    byte for byte as it was, and no temporary file is left beside it."""
    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    for name, export in (("m.onnx", export_onnx), ("m.pt", export_torchscript)):
        path = _previous(tmp_path, name)
        with pytest.raises(OSError, match="No space left"):
            export(tiny_checkpoint, path)
        assert path.read_bytes() == b"an earlier export, still in use"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.pt"]


def test_a_write_cut_short_by_the_file_size_limit_keeps_the_earlier_files(tiny_checkpoint, tmp_path):
    """A real short write (``ulimit -f``, as on a full disk): each format fails with one error line and leaves
    the earlier, loadable file; the TorchScript writer does not abort the process."""
    good = {name: export(tiny_checkpoint, tmp_path / name)
            for name, export in (("m.onnx", export_onnx), ("m.pt", export_torchscript))}
    before = {name: path.read_bytes() for name, path in good.items()}
    limit = min(len(b) for b in before.values()) // 2
    code = textwrap.dedent("""
        import resource, sys
        from sketchgraph.export import main
        limit, onnx_out, pt_out, checkpoint = sys.argv[1:]
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        sys.exit(10 * main([onnx_out, "--checkpoint", checkpoint]) + main([pt_out, "--checkpoint", checkpoint]))
    """)
    proc = subprocess.run([sys.executable, "-c", code, str(limit), str(good["m.onnx"]), str(good["m.pt"]),
                           str(tiny_checkpoint)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "DGLBACKEND": "pytorch"})
    assert proc.returncode == 11, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == ["sketchgraph export: error: [Errno 27] File too large"] * 2
    assert {name: path.read_bytes() for name, path in good.items()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.pt"]
    check_parity(SketchClassifier.from_pretrained(tiny_checkpoint), onnx_runner(good["m.onnx"]))


def test_a_missing_folder_is_refused_not_created(tiny_checkpoint, tmp_path, monkeypatch):
    """An output whose folder does not exist is refused before anything loads (the exporter is never called), in
    both formats and from the CLI; no folder is made (it used to be created silently)."""
    def exporter(*args, **kwargs):
        raise AssertionError("the exporter was called")

    monkeypatch.setattr(torch.onnx, "export", exporter)
    monkeypatch.setattr(torch.jit, "trace", exporter)
    out = tmp_path / "new" / "dir"
    for export, name in ((export_onnx, "m.onnx"), (export_torchscript, "m.pt")):
        with pytest.raises(FileNotFoundError) as refused:
            export(tiny_checkpoint, out / name)
        assert str(refused.value) == f"cannot write {out / name}: no such directory: {out}"
    assert not list(tmp_path.iterdir())
    monkeypatch.undo()
    (tmp_path / "new").mkdir()
    with pytest.raises(FileNotFoundError, match="no such directory"):
        export_onnx(tiny_checkpoint, out / "m.onnx")
    out.mkdir()
    assert export_onnx(tiny_checkpoint, out / "m.onnx").is_file()


# ------------------------------------------------------------------------------------------ settings and CLI
def test_cli_entry_point(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main([str(out), "--checkpoint", str(tiny_checkpoint)]) == 0
    assert out.is_file() and "coords" in capsys.readouterr().out
    feeds = prepare_inputs(SketchClassifier.from_pretrained(tiny_checkpoint), varied_sketches())
    assert run_onnx(out, feeds).shape == (6, 5)


def test_cli_entry_point_reports_a_bad_checkpoint_in_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "m.onnx"), "--checkpoint", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "sketchgraph export: error: checkpoint" in err and "Traceback" not in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("name, fmt", [
    ("m.pt", "torchscript"), ("m.PT", "torchscript"), ("m.pth", "torchscript"), ("m.Pth", "torchscript"),
    ("m.ts", "torchscript"), ("m.TS", "torchscript"), ("m.onnx", "onnx"), ("m.ONNX", "onnx"), ("m", "onnx"),
    ("m.bin", "onnx"), ("pt", "onnx"),
])
def test_the_format_follows_the_suffix_in_any_case(name, fmt):
    assert output_format(name) == fmt


def test_cli_writes_torchscript_for_any_case_of_its_suffixes(tiny_checkpoint, tmp_path, capsys):
    for name in ("m.PT", "m.pth"):
        assert main([str(tmp_path / name), "--checkpoint", str(tiny_checkpoint)]) == 0
        assert f"wrote {tmp_path / name} (torchscript;" in capsys.readouterr().out
        assert not onnx_bytes(tmp_path / name)
        torchscript_runner(tmp_path / name)  # loads
    assert main([str(tmp_path / "m.ONNX"), "--checkpoint", str(tiny_checkpoint)]) == 0
    assert onnx_bytes(tmp_path / "m.ONNX")


def onnx_bytes(path) -> bool:
    try:
        onnx.load(str(path))
    except Exception:  # noqa: BLE001 - any parse error: not ONNX
        return False
    return True


@pytest.mark.parametrize("args, says", [
    (["m.pt", "--opset", "17"], "the suffix .pt"),
    (["m.onnx", "--format", "torchscript", "--opset", "3"], "--format torchscript"),
])
def test_cli_refuses_opset_for_torchscript(tmp_path, capsys, args, says):
    """``--opset`` is an ONNX setting: with a TorchScript output it is refused in one line, before the
    checkpoint loads (this one does not exist) and before anything is written."""
    argv = [str(tmp_path / args[0]), *args[1:], "--checkpoint", str(tmp_path / "nowhere")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("sketchgraph export: error: --opset applies to ONNX only") and says in err
    assert err.count("\n") == 1 and not list(tmp_path.iterdir())


def test_rejects_models_without_attention(tmp_path):
    with pytest.raises(TypeError, match="only MGT"):
        export_onnx(build_model("bigru", num_classes=3), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="max_points"):
        export_onnx(build_model("mgt", num_classes=3), tmp_path / "x.onnx", max_points=101)


def test_bad_export_settings_are_refused(tmp_path):
    model = build_model("mgt", num_classes=3)
    for opset in (11, MAX_OPSET + 1, 99):
        with pytest.raises(ValueError, match=rf"opset must be in 14\.\.{MAX_OPSET} .*got {opset}$"):
            export_onnx(model, tmp_path / "new" / "x.onnx", opset=opset)
    with pytest.raises(ValueError, match="max_points"):
        export_torchscript(model, tmp_path / "x.pt", max_points=1)
    with pytest.raises(TypeError, match="ONNX or TorchScript"):
        export_torchscript(build_model("cnn", num_classes=3), tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())


def test_cli_refuses_an_opset_past_the_newest_in_one_line(tmp_path, capsys):
    """Opset 24 fails inside torch's exporter after dumping its IR; it is refused before anything loads."""
    out = tmp_path / "a" / "b" / "m.onnx"
    assert main([str(out), "--opset", str(MAX_OPSET + 1)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == (
        f"sketchgraph export: error: opset must be in 14..{MAX_OPSET} (older opsets cannot express the model's ops; "
        f"PyTorch's exporter supports none newer than {MAX_OPSET}), got {MAX_OPSET + 1}\n")
    assert not list(tmp_path.iterdir())


def test_the_newest_opset_exports(tiny_checkpoint, tmp_path):
    """``MAX_OPSET`` is one torch's exporter supports: it exports without a warning, with the same logits."""
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = export_onnx(clf, tmp_path / "m.onnx", opset=MAX_OPSET)
    run = onnx_runner(path)
    feeds = prepare_inputs(clf, varied_sketches())
    np.testing.assert_allclose(run(feeds), torch_logits(clf, feeds), atol=TOL, rtol=0)


def test_exported_graph_reads_only_the_first_100_points(tiny_checkpoint, tmp_path):
    """Columns past the model's cap are ignored inside the graph (never indexed past the position table)."""
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    feeds = prepare_inputs(clf, varied_sketches()[:2])  # the zigzag fills all 100 points
    assert feeds["coords"].shape[1] == 100
    longer = {"coords": np.concatenate([feeds["coords"], np.full((2, 7, 2), 50, np.float32)], axis=1),
              "flags": np.concatenate([feeds["flags"], np.full((2, 7), FLAG_END, np.int64)], axis=1)}
    path = export_onnx(clf, tmp_path / "m.onnx")
    np.testing.assert_allclose(run_onnx(path, longer), run_onnx(path, feeds), atol=1e-6, rtol=0)


def test_prepare_inputs_reads_every_sketch_of_one_file_path(tiny_checkpoint, tmp_path):
    """One path (``str`` or ``Path``) means every sketch of the file, as in ``predict_batch``; one sketch
    outside a sequence is a ``TypeError``."""
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    sketches = varied_sketches()[2:5]
    path = tmp_path / "three.ndjson"
    write_ndjson(sketches, path)
    expected = prepare_inputs(clf, sketches)
    for arg in (str(path), Path(path)):
        got = prepare_inputs(clf, arg)
        assert got["coords"].shape[0] == 3
        for key in ("coords", "flags"):
            np.testing.assert_array_equal(got[key], expected[key])
    one = prepare_inputs(clf, [str(path)])  # a path item: that file's first sketch
    assert one["coords"].shape[0] == 1
    drawing = {"drawing": sketches[0].to_lists()}
    for single in (sketches[0], drawing, json.dumps(drawing)):
        with pytest.raises(TypeError, match="pass \\[sketch\\]"):
            prepare_inputs(clf, single)


def test_onnx_export_without_onnx_says_which_extra_to_install(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    """A runtime-only install has no ``onnx``: one clear line naming the extra, before torch's exporter is called
    and before any file or folder is written; a .pt (TorchScript) export still works."""
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` fails and find_spec finds nothing, as when absent

    def exporter(*args, **kwargs):
        raise AssertionError("torch.onnx.export was called")

    monkeypatch.setattr(torch.onnx, "export", exporter)
    out = tmp_path / "sub" / "m.onnx"
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install -e '.[onnx]' in a sketchgraph checkout")):
        export_onnx(tiny_checkpoint, out)
    assert main([str(out), "--checkpoint", str(tiny_checkpoint)]) == 1
    assert capsys.readouterr().err == (
        "sketchgraph export: error: ONNX export needs the onnx package: pip install -e '.[onnx]' in a sketchgraph "
        "checkout, or pip install onnx onnxruntime (or export to .pt for TorchScript)\n")
    assert "sketchgraph[onnx]" not in export_module.__doc__  # not on PyPI under that name: from a checkout
    assert not list(tmp_path.iterdir())
    assert main([str(tmp_path / "m.pt"), "--checkpoint", str(tiny_checkpoint)]) == 0


def test_the_onnx_extra_holds_what_onnx_export_and_its_runtime_need():
    """``pip install -e '.[onnx]'`` (the error above says so) brings onnx and onnxruntime, the two packages the error
    names for installing without a checkout; dev keeps them."""
    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    assert {re.match(r"[\w.-]+", r)[0] for r in extras["onnx"]} == {"onnx", "onnxruntime"}
    assert "sketchgraph[onnx]" in extras["dev"]  # dev installs the extra itself: the two cannot drift apart


# ------------------------------------------------------------------------------------------ warnings
def test_export_silences_only_the_known_tracer_warnings(tiny_checkpoint, tmp_path, monkeypatch):
    """Tracing the model warns in two known, harmless places, and torch says its tracer is deprecated: none of
    that reaches the user. Any other tracer warning (a model change that makes the trace depend on the example's
    shape, say) does, even with the known text from elsewhere."""
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        export_onnx(clf, tmp_path / "m.onnx")
        export_torchscript(clf, tmp_path / "m.pt")

    original = Batch.from_padded

    def from_padded(*args, **kwargs):
        warnings.warn("Converting a tensor to a Python boolean might cause the trace to be incorrect",
                      torch.jit.TracerWarning, stacklevel=2)
        return original(*args, **kwargs)

    monkeypatch.setattr(Batch, "from_padded", staticmethod(from_padded))
    for export, name in ((export_torchscript, "n.pt"), (export_onnx, "n.onnx")):
        with pytest.warns(torch.jit.TracerWarning, match="Converting a tensor to a Python boolean"):
            export(clf, tmp_path / name)


# ------------------------------------------------------------------------------------------ what the docs say
def test_the_plain_attention_path_matches_the_fused_one_up_to_rounding():
    """The module docstring says the export's matmul-softmax path gives the fused kernel's numbers up to float
    rounding (~1e-6), not identical ones."""
    clf = SketchClassifier.from_pretrained(SHIPPED_CHECKPOINT)
    batch = clf.batch([clf.sketch(p) for p in example_paths()])
    plain = ExportableMGT(clf.model).model
    with torch.inference_mode():
        fused, unfused = clf.model(batch), plain(clf.batch([clf.sketch(p) for p in example_paths()]))
    assert not any(m.fused for m in plain.modules() if isinstance(m, GraphAttention))
    assert float((fused - unfused).abs().max()) < 1e-5
    doc = export_module.__doc__
    assert "identical numbers" not in doc and "up to float rounding" in doc


def test_torchscript_is_cpu_only_as_documented(tiny_checkpoint):
    """The traced graph creates its positions and masks on the CPU (a device fixed at trace time), which the
    docstrings say; if a change makes the trace device-independent, update them."""
    wrapper = ExportableMGT(SketchClassifier.from_pretrained(tiny_checkpoint).model)
    with export_module._tracing():
        traced = torch.jit.trace(wrapper, export_module._example_inputs(10), check_trace=False)
    assert re.search(r'Device = prim::Constant\[value="cpu"\]', str(traced.inlined_graph))
    assert "runs on the CPU only" in export_torchscript.__doc__
    assert "runs on the CPU only" in export_module.__doc__


def test_docstrings_state_the_recipe_and_the_errors():
    doc = export_module.__doc__
    assert "inference_preprocessing" in doc and "SketchClassifier.from_pretrained(checkpoint).preprocessing" in doc
    assert ".pth" in doc and "any case" in doc
    for function, errors in [
        (export_onnx, ("ValueError", "ModuleNotFoundError", "CheckpointError", "TypeError", "RuntimeError", "OSError")),
        (export_torchscript, ("ValueError", "CheckpointError", "TypeError", "OSError")),
    ]:
        raises = function.__doc__.split("Raises:")[1]
        assert all(f"{e}:" in raises for e in errors), function.__name__
        assert "Args:" in function.__doc__ and "Returns:" in function.__doc__
    assert "--opset" in export_module.run_cli.__doc__


@pytest.mark.parametrize("module", ["sketchgraph.export", "sketchgraph.viz", "sketchgraph.demo"])
def test_public_functions_have_docstrings(module):
    """Every public function and public method of a public class, ``forward`` included, has a docstring."""
    mod = sys.modules.get(module) or __import__(module, fromlist=["_"])
    missing = []
    for name, obj in vars(mod).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module:
            continue
        if inspect.isfunction(obj) and not inspect.getdoc(obj):
            missing.append(name)
        if inspect.isclass(obj):
            missing += [f"{name}.{m}" for m, f in vars(obj).items()
                        if inspect.isfunction(f) and (not m.startswith("_")) and not f.__doc__]
    assert not missing


# ------------------------------------------------------------------------------------------ review fixes
def test_torchscript_logits_do_not_require_grad(tiny_checkpoint, tmp_path):
    """A loaded .pt called without ``torch.no_grad`` gives logits that do not require grad (``.numpy()`` works,
    as the docstring's call pattern needs), the same numbers as under ``inference_mode``."""
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    module = jit_load(export_torchscript(clf, tmp_path / "m.pt"))
    assert not any(p.requires_grad for p in module.parameters())
    feeds = prepare_inputs(clf, varied_sketches())
    coords, flags = torch.from_numpy(feeds["coords"]), torch.from_numpy(feeds["flags"])
    logits = module(coords, flags)
    assert logits.requires_grad is False and logits.grad_fn is None
    with torch.inference_mode():
        expected = module(coords, flags).numpy()
    np.testing.assert_array_equal(logits.numpy(), expected)
    np.testing.assert_allclose(logits.numpy(), torch_logits(clf, feeds), atol=TOL, rtol=0)


def _good_feeds() -> dict[str, np.ndarray]:
    """Two rows of 5 columns: row 0 has 5 points in two strokes, row 1 has 3 points then padding."""
    coords = np.array([[[0, 0], [10, 20], [255, 255], [30, 40], [50, 60]],
                       [[1, 2], [3, 4], [5, 6], [0, 0], [0, 0]]], np.float32)
    flags = np.array([[100, 100, 101, 100, 101], [100, 100, 101, 102, 102]], np.int64)
    return {"coords": coords, "flags": flags}


def _broken(change) -> dict[str, np.ndarray]:
    feeds = {k: v.copy() for k, v in _good_feeds().items()}
    change(feeds)
    return feeds


def _left_pad(feeds):
    feeds["flags"][1] = [102, 102, 100, 100, 101]


def _flags_0_1(feeds):
    feeds["flags"][1] = [0, 0, 1, 102, 102]


def _raw_points(feeds):
    feeds["coords"][0, 3] = [612.5, 40]


@pytest.mark.parametrize("change, message", [
    (lambda f: f.update(coords=f["coords"].astype(np.float64)), "coords must be float32, got float64"),
    (lambda f: f.update(flags=f["flags"].astype(np.int32)), "flags must be int64, got int32"),
    (lambda f: f.update(coords=f["coords"][..., 0]), "coords must have the shape (B, N, 2), got (2, 5)"),
    (lambda f: f.update(flags=f["flags"][:, :4]),
     "flags must have the shape (B, N) = (2, 5) of coords (2, 5, 2), got (2, 4)"),
    (lambda f: f.update(coords=f["coords"][:, :0], flags=f["flags"][:, :0]),
     "coords and flags need B >= 1 rows of N >= 1 points, got (B, N) = (2, 0)"),
    (_left_pad, "row 1: point 2 comes after padding (flag 102 at point 0); a row's points come first, padding only "
                "after them"),
    (_flags_0_1, "row 1: flag 0 at point 0; flags are 100 (the pen continues), 101 (the stroke ends here) or 102 "
                 "(padding)"),
    (lambda f: f["flags"].__setitem__((0, 4), 100),
     "row 0: its last point (4) has flag 100, not 101: the last point of a drawing ends its stroke"),
    (lambda f: f["flags"].__setitem__((1, 2), 100),
     "row 1: its last point (2) has flag 100, not 101: the last point of a drawing ends its stroke"),
    (_raw_points, "row 0: point 3 is at (612.5, 40), outside 0..255: coords must be the preprocessed points (scaled "
                  "so the drawing's larger extent is 255), not raw ones"),
    (lambda f: f["coords"].__setitem__((1, 1, 1), -1), "row 1: point 1 is at (3, -1), outside 0..255"),
    (lambda f: f["coords"].__setitem__((1, 0, 0), np.nan), "row 1: point 0 is at (nan, 2), outside 0..255"),
])
def test_check_inputs_refuses_what_the_exported_graph_would_misread(change, message):
    """Each contract break the graph runs silently (left padding, flags 0/1, raw canvas points; review L2) and
    each wrong dtype, rank or shape is a ``ValueError`` naming the row and the point."""
    check_inputs(**_good_feeds())  # the unbroken arrays pass
    with pytest.raises(ValueError) as refused:
        check_inputs(**_broken(change))
    assert str(refused.value).startswith(message), str(refused.value)


def test_check_inputs_refuses_rows_past_the_cap_the_graph_reads():
    """The graph reads 100 columns: a row of 101 points would lose its last stroke's end flag there."""
    n = 101
    flags = np.full((1, n), 100, np.int64)
    flags[0, -1] = 101
    with pytest.raises(ValueError, match=r"^row 0: 101 points, more than the 100 the model reads"):
        check_inputs(np.zeros((1, n, 2), np.float32), flags)
    check_inputs(np.zeros((1, 100, 2), np.float32), np.where(np.arange(n) == 99, 101, flags)[:, :100])  # capped
    with pytest.raises(ValueError, match=r"^row 0: 5 points, more than the 4 the model reads"):
        check_inputs(**_good_feeds(), max_points=4)


def test_prepare_inputs_output_passes_check_inputs(tiny_checkpoint):
    """What ``prepare_inputs`` gives (1 point to the full cap, padding, raw and simplified input, ``cap: adapt``)
    passes, and so does an added padding-only row."""
    for cap in ("truncate", "adapt"):
        feeds = prepare_inputs(SketchClassifier.from_pretrained(tiny_checkpoint, cap=cap), inputs())
        assert feeds["coords"].max() == 255 and feeds["coords"].min() == 0
        check_inputs(**feeds)
        check_inputs(**with_padding_row(feeds))


def test_the_input_contract_is_stored_in_both_formats(tiny_checkpoint, tmp_path):
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    for path in (export_onnx(clf, tmp_path / "m.onnx"), export_torchscript(clf, tmp_path / "m.pt")):
        for reader, meta in read_metadata(path).items():
            assert meta["input_contract"] == INPUT_CONTRACT, reader
    for words in ("float32", "int64", "padding", "101", "0..255", "check_inputs"):
        assert words in INPUT_CONTRACT


def test_the_stored_recipe_has_the_adapt_schedule_of_the_preprocess_module(tiny_checkpoint, tmp_path):
    """``cap: "adapt"`` needs the preprocess module's ``ADAPT_FACTOR`` and ``ADAPT_STEPS``: the export stores the
    tolerances themselves (3.0 ... 22.78125 for spg20) and a recipe naming them; applying the recipe with
    sketchgraph's own steps reproduces ``preprocess``."""
    assert (ADAPT_FACTOR, ADAPT_STEPS) == (1.5, 6)
    pre = Preprocessing(cap="adapt")
    recipe = preprocessing_recipe(pre)
    assert recipe["adapt_epsilons"] == [2.0 * ADAPT_FACTOR**k for k in range(1, ADAPT_STEPS + 1)]
    assert recipe["adapt_epsilons"] == pre.adapt_epsilons() == [3.0, 4.5, 6.75, 10.125, 15.1875, 22.78125]
    assert "(3.0, 4.5, 6.75, 10.125, 15.1875, 22.78125)" in recipe["recipe"]
    assert "more than 100 points" in recipe["recipe"] and "epsilon = 2" in recipe["recipe"]
    assert preprocessing_recipe(Preprocessing())["adapt_epsilons"] == []
    assert "adapt_epsilons" not in preprocessing_recipe(Preprocessing())["recipe"]

    from sketchgraph.preprocess import cap_points, simplify

    clf = SketchClassifier.from_pretrained(tiny_checkpoint, cap="adapt")
    meta = read_metadata(export_onnx(clf, tmp_path / "m.onnx"))["onnxruntime"]
    stored = Preprocessing.from_dict(meta["preprocessing"])
    zigzag = varied_sketches()[1]
    result = simplify(zigzag, stored.epsilon)
    for eps in meta["preprocessing_recipe"]["adapt_epsilons"]:  # the recipe, step by step
        if result.num_points <= stored.max_points:
            break
        result = simplify(zigzag, eps)
    result = cap_points(result, stored.max_points)
    np.testing.assert_array_equal(result.points(), preprocess(zigzag, stored).points())
    assert result.num_points < 100  # re-simplified, not truncated


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_output_that_is_a_folder_is_refused_before_anything_loads(tmp_path, capsys, fmt):
    """The error names the output, not the atomic write's temporary file, and comes before the checkpoint (which
    does not exist here) is loaded."""
    out = tmp_path / ("isdir.onnx" if fmt == "onnx" else "isdir.pt")
    out.mkdir()
    assert main([str(out), "--checkpoint", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err == f"sketchgraph export: error: cannot write {out}: it is a directory\n"
    with pytest.raises(IsADirectoryError, match=f"^cannot write {re.escape(str(out))}: it is a directory$"):
        (export_onnx if fmt == "onnx" else export_torchscript)(tmp_path / "nowhere", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name] and not list(out.iterdir())


def test_an_output_the_folder_cannot_take_is_refused_before_anything_loads(tmp_path, capsys):
    """A missing folder, a "folder" that is a file, and /proc (which takes no new file, even for root): one line
    naming the output, before the (missing) checkpoint is loaded; nothing is created."""
    nowhere = str(tmp_path / "nowhere")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases = [
        (tmp_path / "no" / "dir" / "m.pt", f"no such directory: {tmp_path / 'no' / 'dir'}"),
        (a_file / "m.onnx", f"{a_file} is not a directory"),
        (Path("/proc/x.onnx"), "cannot create a file in /proc ("),
    ]
    for out, says in cases:
        assert main([str(out), "--checkpoint", nowhere]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"sketchgraph export: error: cannot write {out}: {says}"), err
        assert err.count("\n") == 1 and ".tmp" not in err and ".probe" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


@pytest.mark.parametrize("name, fmt, note", [
    ("m.onnx", "torchscript", "writing {out} as TorchScript (--format torchscript), although its suffix .onnx "
                              "usually means ONNX"),
    ("m.PT", "onnx", "writing {out} as ONNX (--format onnx), although its suffix .PT usually means TorchScript"),
    ("m.onnx", "onnx", None),
    ("m.bin", "torchscript", None),
])
def test_a_format_the_suffix_disagrees_with_gets_a_note(tiny_checkpoint, tmp_path, capsys, name, fmt, note):
    out = tmp_path / name
    assert main([str(out), "--format", fmt, "--checkpoint", str(tiny_checkpoint)]) == 0
    captured = capsys.readouterr()
    expected = "" if note is None else f"sketchgraph export: note: {note.format(out=out)}\n"
    assert captured.err == expected
    assert f"wrote {out} ({fmt};" in captured.out
    assert onnx_bytes(out) == (fmt == "onnx")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_model_with_reduced_precision_weights_exports_in_float32(tmp_path, dtype):
    """Weights cast to bfloat16 (or float16) used to fail with "expected m1 and m2 to have the same dtype": the
    export is a float32 copy (the model passed in keeps its dtype), its logits those of the float32 model."""
    torch.manual_seed(0)
    model = build_model("mgt", num_classes=3, embed_dim=16, heads=2, layers=2, classifier=(32,))
    low = build_model("mgt", num_classes=3, embed_dim=16, heads=2, layers=2, classifier=(32,))
    low.load_state_dict(model.state_dict())
    low.to(dtype)
    rounded = build_model("mgt", num_classes=3, embed_dim=16, heads=2, layers=2, classifier=(32,))
    rounded.load_state_dict({k: v.float() for k, v in low.state_dict().items()})  # float32 of the rounded weights
    clf = SketchClassifier(rounded, ["a", "b", "c"], graph_spec=GraphSpec(rounded.relations))
    feeds = prepare_inputs(clf, varied_sketches())
    for path, run in ((export_onnx(low, tmp_path / "m.onnx"), onnx_runner),
                      (export_torchscript(low, tmp_path / "m.pt"), torchscript_runner)):
        got = run(path)(feeds)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, torch_logits(clf, feeds), atol=TOL, rtol=0)
    assert next(low.parameters()).dtype == dtype
    assert "float32" in ExportableMGT.__doc__ and "Exports are float32 whatever the model's precision" in \
        export_module.__doc__


def test_an_empty_output_name_says_no_file_was_named(tmp_path, capsys, monkeypatch):
    """``sketchgraph export ""`` said "cannot write .: it is a directory"."""
    monkeypatch.chdir(tmp_path)
    assert main(["", "--checkpoint", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err == ("sketchgraph export: error: no output file named (''): give the file to write, "
                                       "e.g. spg20.onnx or spg20.pt\n")
    assert list(tmp_path.iterdir()) == []


def test_prepare_inputs_of_no_sketch_says_so(tiny_checkpoint):
    """It said "a batch needs >= 1 sketch and one length per start; got 0 and 0"."""
    with pytest.raises(SketchError, match=r"^prepare_inputs needs at least one sketch, got none$"):
        prepare_inputs(SketchClassifier.from_pretrained(tiny_checkpoint), [])


def test_prepare_inputs_names_the_item_it_cannot_use(tiny_checkpoint, tmp_path):
    """As ``predict_batch`` does: ``item i: `` before the reader's or the preprocessing's message."""
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    good = varied_sketches()[2]
    with pytest.raises(SketchError, match=r"^item 1: stroke 0: its lists differ in length \(2, 1\)$"):
        prepare_inputs(clf, [good, [[[1, 2], [3]]]])
    missing = tmp_path / "missing.ndjson"
    with pytest.raises(SketchError, match=rf"^item 2: .*{re.escape(str(missing))}"):
        prepare_inputs(clf, [good, good, str(missing)])
    degenerate = Sketch.from_strokes([[[0, 255] * 5000, [0, 255] * 5000]])  # too much ink to simplify
    with pytest.raises(SketchError, match=r"^item 2: drawing too long to simplify"):
        prepare_inputs(clf, [good, good, degenerate])


def test_the_module_docstring_example_runs_as_written(tmp_path, monkeypatch):
    """Every name the example uses is imported in it (it used ``SketchClassifier`` and ``prepare_inputs`` without
    importing them); it runs in a fresh namespace with the shipped checkpoint and gives its output."""
    import doctest

    monkeypatch.chdir(tmp_path)
    test = doctest.DocTestParser().get_doctest(export_module.__doc__, {}, "sketchgraph.export", None, 0)
    assert len(test.examples) >= 8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        result = doctest.DocTestRunner(verbose=False).run(test, out=lambda text: None)
    assert result.failed == 0 and result.attempted == len(test.examples)
    assert (tmp_path / "spg20.onnx").is_file()
