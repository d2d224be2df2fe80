"""Export an MGT checkpoint to ONNX (or TorchScript) for serving without sketchgraph.

    >>> from sketchgraph.export import export_onnx
    >>> export_onnx("spg20", "spg20.onnx")            # a shipped name, a checkpoint directory or a model
    PosixPath('spg20.onnx')
    >>> import onnxruntime as ort
    >>> clf = SketchClassifier.from_pretrained("spg20")
    >>> logits, = ort.InferenceSession("spg20.onnx").run(None, prepare_inputs(clf, ["face.ndjson"]))

or from the shell: ``python -m sketchgraph.export spg20.onnx --checkpoint spg20``.

The exported graph takes the *padded, preprocessed* batch, exactly what ``Batch.from_padded`` takes:

==========  ============  ===========================================================================
name        shape, dtype  meaning
==========  ============  ===========================================================================
``coords``  (B, N, 2) f32 point coordinates after the checkpoint's preprocessing (0 on padding)
``flags``   (B, N) int64  100 = the pen continues, 101 = the stroke ends here, 102 = padding
``logits``  (B, C) f32    class scores, in the order of the checkpoint's ``classes``
==========  ============  ===========================================================================

``B`` and ``N`` are dynamic (``1 <= N``, valid points first in each row). The graph reads only the first
``MAX_POINTS`` (100) columns, the model's cap: a longer input cannot index past the position embeddings
(which Python refuses and a traced graph cannot check), so cap drawings yourself to keep their last
stroke's end flag. The relation
masks are built *inside* the graph from ``flags`` by ``sketchgraph.graph.relation_masks`` itself (written
with broadcast comparisons so it traces), so a client only has to simplify the
drawing (``sketchgraph.preprocess.preprocess`` with the checkpoint's ``preprocessing``, or take
Google's simplified data), cap it at ``max_points`` points and pad.

``prepare_inputs(classifier, sketches)`` gives these arrays for any inputs ``SketchClassifier`` accepts.

The export runs on a copy of the model in eval mode: attention takes the plain matmul-softmax path
(identical numbers to the fused kernel) and ``BatchNorm`` models (``mgt-paper``) normalise every row
with their running statistics, masking padding rows afterwards, which in eval mode equals the training
code's valid-rows-only indexing. Only the ``dense`` attention backend exports (the DGL one is message
passing over a graph built on the host). The exporter is PyTorch's TorchScript-based one
(``dynamo=False``), which needs nothing beyond ``onnx``: ``pip install 'sketchgraph[onnx]'`` installs it and
``onnxruntime`` (to run the exported model). TorchScript export needs neither.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .batch import Batch
from .errors import MissingExtraError
from .model.attention import GraphAttention
from .model.mgt import MAX_POINTS, MGT, Norm

__all__ = [
    "ExportableMGT", "export_onnx", "export_torchscript", "prepare_inputs", "INPUT_NAMES",
    "OUTPUT_NAMES",
]

MIN_OPSET = 14
INPUT_NAMES = ("coords", "flags")
OUTPUT_NAMES = ("logits",)


class _EvalBatchNorm(nn.Module):
    """``Norm("batch")`` in eval mode without boolean indexing: every row normalised with the running
    statistics (a per-row affine map), padding rows set to 0 - the same numbers as ``Norm`` in eval."""

    def __init__(self, norm: Norm) -> None:
        super().__init__()
        self.norm = norm.norm

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        B, N, D = x.shape
        y = self.norm(x.reshape(B * N, D)).reshape(B, N, D)  # (B, N, D)
        return y * valid[..., None].to(y.dtype)


class ExportableMGT(nn.Module):
    """``forward(coords (B, N, 2) float32, flags (B, N) int64) -> logits (B, C)`` around an MGT: builds the
    ``Batch`` (masks included) from the two tensors, so it traces into one self-contained graph.

    The wrapped model is a deep copy in eval mode with export-friendly layers (see the module docstring); the
    model passed in is not touched.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, MGT):
            raise TypeError(f"only MGT models export (ONNX or TorchScript), got {type(model).__name__}")
        net = copy.deepcopy(model).cpu().eval().set_backend("dense")
        for module in list(net.modules()):
            if isinstance(module, GraphAttention):
                module.fused = False  # plain masked softmax: every exporter and runtime knows its ops
            for name, child in list(module.named_children()):
                if isinstance(child, Norm) and child.kind == "batch":
                    setattr(module, name, _EvalBatchNorm(child))
        self.model = net
        self.relations = tuple(net.relations)

    def forward(self, coords: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
        coords, flags = coords[:, :MAX_POINTS], flags[:, :MAX_POINTS]  # the model's cap, kept in the traced graph
        return self.model(Batch.from_padded(coords, flags.long(), self.relations))  # (B, C)


def _as_model(checkpoint_or_model: Any) -> nn.Module:
    """A model from an ``nn.Module``, a ``SketchClassifier``, a checkpoint directory or a shipped name."""
    from .checkpoint import load_checkpoint, unwrap_model

    if isinstance(checkpoint_or_model, nn.Module):
        return unwrap_model(checkpoint_or_model)  # DDP / torch.compile wrappers
    if hasattr(checkpoint_or_model, "model") and isinstance(checkpoint_or_model.model, nn.Module):
        return unwrap_model(checkpoint_or_model.model)
    from .predict import resolve_checkpoint

    model, _ = load_checkpoint(resolve_checkpoint(checkpoint_or_model))
    return model


def _example_inputs(max_points: int, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded example batch: row 0 fills ``max_points`` with three strokes, row 1 is shorter (padding)."""
    n, short = max_points, max(max_points // 2, 2)
    g = torch.Generator().manual_seed(0)
    coords = torch.rand(batch, n, 2, generator=g) * 255  # (B, N, 2)
    flags = torch.full((batch, n), 100, dtype=torch.long)  # (B, N)
    lengths = [n] + [short] * (batch - 1)
    for b, length in enumerate(lengths):
        for end in (length // 3, 2 * length // 3, length - 1):
            flags[b, max(end, 0)] = 101
        flags[b, length:] = 102
        coords[b, length:] = 0
    return coords, flags


def _check_max_points(max_points: int) -> None:
    if not 2 <= max_points <= MAX_POINTS:
        raise ValueError(f"max_points must be in 2..{MAX_POINTS}, got {max_points}")


def _require_onnx() -> None:
    """``MissingExtraError`` saying how to install ``onnx`` when it is missing (torch's exporter only says it
    is not installed, after loading the model)."""
    if importlib.util.find_spec("onnx") is None:
        raise MissingExtraError(
            "ONNX export needs the onnx package: pip install 'sketchgraph[onnx]' (or export to .pt for TorchScript)",
            name="onnx",
        )


def _prepare(checkpoint_or_model: Any, path: str | os.PathLike) -> tuple[ExportableMGT, Path]:
    """The export wrapper of the model, and ``path`` with its parent folders created."""
    wrapper = ExportableMGT(_as_model(checkpoint_or_model))  # before any folder is made: loading may fail
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return wrapper, path


def export_onnx(
    checkpoint_or_model: Any, path: str | os.PathLike, *, max_points: int = MAX_POINTS, opset: int = 17,
) -> Path:
    """Write an ONNX model with inputs ``coords (B, N, 2)`` float32, ``flags (B, N)`` int64 and output
    ``logits (B, C)`` (dynamic ``B`` and ``N``; see the module docstring).

    Args:
        checkpoint_or_model: an ``MGT``, a ``SketchClassifier``, a checkpoint directory or a shipped name.
        path: the ``.onnx`` file to write (parent folders are created).
        max_points: the point cap the example batch is traced at (the model's maximum, 100).
        opset: ONNX opset version (>= 14).

    Returns:
        ``path``.

    Raises:
        ModuleNotFoundError: ``onnx`` is not installed (``pip install 'sketchgraph[onnx]'``); nothing is written.
    """
    _check_max_points(max_points)
    _require_onnx()
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET} (older opsets cannot express the model's ops), got {opset}")
    wrapper, path = _prepare(checkpoint_or_model, path)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python ints from shapes; the axes stay dynamic
        torch.onnx.export(
            wrapper, _example_inputs(max_points), str(path), dynamo=False, opset_version=opset,
            input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
            dynamic_axes={"coords": {0: "batch", 1: "points"}, "flags": {0: "batch", 1: "points"},
                          "logits": {0: "batch"}},
        )
    return path


def export_torchscript(checkpoint_or_model: Any, path: str | os.PathLike, *, max_points: int = MAX_POINTS) -> Path:
    """Write a traced TorchScript module (``torch.jit.load(path)(coords, flags) -> logits``), same inputs as
    ``export_onnx``; loads in C++ (libtorch) or Python without sketchgraph."""
    _check_max_points(max_points)
    wrapper, path = _prepare(checkpoint_or_model, path)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, _example_inputs(max_points), check_trace=False)
    traced.save(str(path))
    return path


def prepare_inputs(classifier: Any, sketches: Sequence[Any]) -> dict[str, np.ndarray]:
    """``{"coords": (B, N, 2) float32, "flags": (B, N) int64}`` for an exported model: ``sketches`` (anything
    ``SketchClassifier`` accepts) preprocessed with ``classifier``'s checkpoint settings, padded to the longest."""
    batch = classifier.batch([classifier.sketch(x) for x in sketches]).to("cpu")
    return {"coords": batch.coords.numpy(), "flags": batch.flags.numpy()}


# ---------------------------------------------------------------------------------- CLI
def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("output", help="file to write (.onnx, or .pt for TorchScript)")
    p.add_argument("--checkpoint", default="spg20", help="checkpoint directory or shipped name (default spg20)")
    p.add_argument("--format", choices=("onnx", "torchscript"), default=None,
                   help="default: from the output suffix (.pt / .ts -> torchscript, else onnx)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset version (default 17)")


def run_cli(args: argparse.Namespace) -> int:
    """``sketchgraph export OUT [--checkpoint NAME] [--format onnx|torchscript]``."""
    fmt = args.format or ("torchscript" if Path(args.output).suffix in (".pt", ".ts") else "onnx")
    if fmt == "onnx":
        out = export_onnx(args.checkpoint, args.output, opset=args.opset)
    else:
        out = export_torchscript(args.checkpoint, args.output)
    print(f"wrote {out} ({fmt}; inputs coords (B, N, 2) float32, flags (B, N) int64 -> logits (B, C))")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sketchgraph.export ...``: the same as ``sketchgraph export ...`` (a bad checkpoint or option is
    one error line, not a traceback)."""
    import sys

    from .cli import main as cli_main

    return cli_main(["export", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
