"""ONNX / TorchScript export: the exported graph gives PyTorch's logits (dynamic batch and length, padding),
its traceable masks equal ``relation_masks``, and the shipped checkpoint exports."""

from __future__ import annotations

import math
import re
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from sketchgraph.batch import Batch
from sketchgraph.errors import CheckpointError
from sketchgraph.examples import example_paths
from sketchgraph.export import export_onnx, export_torchscript, main, prepare_inputs
from sketchgraph.graph import FLAG_END, FLAG_PAD
from sketchgraph.model import build_model
from sketchgraph.predict import SHIPPED_CHECKPOINT, SketchClassifier, resolve_checkpoint
from sketchgraph.sketch import Sketch

ort = pytest.importorskip("onnxruntime")

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


def run_onnx(path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["coords", "flags"]
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    return sess.run(None, feeds)[0]


def torch_logits(clf: SketchClassifier, feeds: dict[str, np.ndarray]) -> np.ndarray:
    batch = Batch.from_padded(torch.from_numpy(feeds["coords"]), torch.from_numpy(feeds["flags"]),
                              clf.graph_spec.relations)
    with torch.inference_mode():
        return clf.model(batch).numpy()


def check_parity(clf: SketchClassifier, onnx_path) -> None:
    """Full padded batch, a sub-batch of different size and length, and one sketch alone."""
    xs = inputs()
    feeds = prepare_inputs(clf, xs)
    assert feeds["coords"].dtype == np.float32 and feeds["flags"].dtype == np.int64
    lengths = (feeds["flags"] != FLAG_PAD).sum(1)
    assert lengths.min() == 1 and lengths.max() == clf.preprocessing.max_points  # padding really happens
    full = run_onnx(onnx_path, feeds)
    assert full.shape == (len(xs), clf.num_classes)
    np.testing.assert_allclose(full, torch_logits(clf, feeds), atol=TOL, rtol=0)
    for part in (xs[1:4], xs[-2:-1]):  # other B and N than the traced example
        sub = prepare_inputs(clf, part)
        np.testing.assert_allclose(run_onnx(onnx_path, sub), torch_logits(clf, sub), atol=TOL, rtol=0)
    # the exported model ranks like the classifier itself
    probs = torch.softmax(torch.from_numpy(full), -1)
    expected = clf.predict_batch(xs, top_k=3)
    for p, ranked in zip(probs, expected):
        assert [clf.classes[i] for i in p.topk(3).indices.tolist()] == [r.label for r in ranked]


# ------------------------------------------------------------------------------------------ masks
def random_flags(rng: np.random.Generator, B: int, N: int) -> torch.Tensor:
    flags = np.full((B, N), FLAG_PAD, dtype=np.int64)
    for b in range(B):
        n = int(rng.integers(1, N + 1)) if b else N  # row 0 unpadded
        row = np.where(rng.random(n) < 0.3, FLAG_END, 100)
        row[-1] = FLAG_END
        flags[b, :n] = row
    return torch.from_numpy(flags)


# ------------------------------------------------------------------------------------------ parity
def test_onnx_parity_tiny_checkpoint(tiny_checkpoint, tmp_path):
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    path = export_onnx(tiny_checkpoint, tmp_path / "tiny.onnx")
    assert path.is_file()
    check_parity(clf, path)


def test_onnx_parity_batchnorm_preset(tmp_path):
    """The paper's architecture (BatchNorm over valid nodes, per-relation attention), non-trivial statistics."""
    torch.manual_seed(1)
    model = build_model("mgt-paper", num_classes=4, embed_dim=16, heads=2, layers=2, classifier=(32,))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2.0)
    clf = SketchClassifier(model, ["a", "b", "c", "d"])
    check_parity(clf, export_onnx(model, tmp_path / "paper.onnx"))
    assert not model.training  # SketchClassifier put it in eval; export worked on a copy
    assert all(a.fused for a in model.modules() if hasattr(a, "fused"))  # the original is untouched


def test_onnx_parity_shipped_checkpoint(tmp_path):
    try:
        resolve_checkpoint(SHIPPED_CHECKPOINT)
    except CheckpointError as exc:
        pytest.fail(f"the shipped checkpoint must be in the repository (checkpoints/{SHIPPED_CHECKPOINT}): {exc}")
    clf = SketchClassifier.from_pretrained(SHIPPED_CHECKPOINT, cap="truncate")  # a drawing at the full cap
    check_parity(clf, export_onnx(SHIPPED_CHECKPOINT, tmp_path / f"{SHIPPED_CHECKPOINT}.onnx"))


def test_torchscript_parity(tiny_checkpoint, tmp_path):
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    module = torch.jit.load(str(export_torchscript(clf, tmp_path / "tiny.pt")))
    for part in (inputs(), inputs()[2:5]):
        feeds = prepare_inputs(clf, part)
        with torch.inference_mode():
            got = module(torch.from_numpy(feeds["coords"]), torch.from_numpy(feeds["flags"])).numpy()
        np.testing.assert_allclose(got, torch_logits(clf, feeds), atol=TOL, rtol=0)


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


def test_rejects_models_without_attention(tmp_path):
    with pytest.raises(TypeError, match="only MGT"):
        export_onnx(build_model("bigru", num_classes=3), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="max_points"):
        export_onnx(build_model("mgt", num_classes=3), tmp_path / "x.onnx", max_points=101)


def test_bad_export_settings_are_refused(tmp_path):
    model = build_model("mgt", num_classes=3)
    with pytest.raises(ValueError, match="opset must be >= 14"):
        export_onnx(model, tmp_path / "x.onnx", opset=11)
    with pytest.raises(ValueError, match="max_points"):
        export_torchscript(model, tmp_path / "x.pt", max_points=1)
    with pytest.raises(TypeError, match="ONNX or TorchScript"):
        export_torchscript(build_model("cnn", num_classes=3), tmp_path / "x.pt")
    assert not list(tmp_path.iterdir())


def test_exported_graph_reads_only_the_first_100_points(tiny_checkpoint, tmp_path):
    """Columns past the model's cap are ignored inside the graph (never indexed past the position table)."""
    clf = SketchClassifier.from_pretrained(tiny_checkpoint)
    feeds = prepare_inputs(clf, varied_sketches()[:2])  # the zigzag fills all 100 points
    assert feeds["coords"].shape[1] == 100
    longer = {"coords": np.concatenate([feeds["coords"], np.full((2, 7, 2), 50, np.float32)], axis=1),
              "flags": np.concatenate([feeds["flags"], np.full((2, 7), FLAG_END, np.int64)], axis=1)}
    path = export_onnx(clf, tmp_path / "m.onnx")
    np.testing.assert_allclose(run_onnx(path, longer), run_onnx(path, feeds), atol=1e-6, rtol=0)


def test_onnx_export_without_onnx_says_which_extra_to_install(tiny_checkpoint, tmp_path, monkeypatch, capsys):
    """A runtime-only install has no ``onnx``: one clear line naming the extra, before torch's exporter is called
    and before any file or folder is written; a .pt (TorchScript) export still works."""
    monkeypatch.setitem(sys.modules, "onnx", None)  # `import onnx` fails and find_spec finds nothing, as when absent

    def exporter(*args, **kwargs):
        raise AssertionError("torch.onnx.export was called")

    monkeypatch.setattr(torch.onnx, "export", exporter)
    out = tmp_path / "sub" / "m.onnx"
    with pytest.raises(ModuleNotFoundError, match=re.escape("pip install 'sketchgraph[onnx]'")):
        export_onnx(tiny_checkpoint, out)
    assert main([str(out), "--checkpoint", str(tiny_checkpoint)]) == 1
    assert capsys.readouterr().err == (
        "sketchgraph export: error: ONNX export needs the onnx package: pip install 'sketchgraph[onnx]' "
        "(or export to .pt for TorchScript)\n")
    assert not list(tmp_path.iterdir())
    assert main([str(tmp_path / "m.pt"), "--checkpoint", str(tiny_checkpoint)]) == 0


def test_the_onnx_extra_holds_what_onnx_export_and_its_runtime_need():
    """``pip install 'sketchgraph[onnx]'`` (the error above says so) brings onnx and onnxruntime; dev keeps them."""
    extras = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())[
        "project"]["optional-dependencies"]
    assert {re.match(r"[\w.-]+", r)[0] for r in extras["onnx"]} == {"onnx", "onnxruntime"}
    assert "sketchgraph[onnx]" in extras["dev"]  # dev installs the extra itself: the two cannot drift apart
