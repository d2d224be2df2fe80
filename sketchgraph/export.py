"""Export an MGT checkpoint to ONNX (or TorchScript) for serving without sketchgraph.

    >>> import onnxruntime as ort
    >>> from sketchgraph.examples import example_path
    >>> from sketchgraph.export import check_inputs, export_onnx, prepare_inputs
    >>> from sketchgraph.predict import SketchClassifier
    >>> export_onnx("spg20", "spg20.onnx")            # a shipped name, a checkpoint directory or a model
    PosixPath('spg20.onnx')
    >>> clf = SketchClassifier.from_pretrained("spg20")
    >>> feeds = prepare_inputs(clf, [example_path("face")])
    >>> check_inputs(**feeds)                         # optional: refuses arrays that break the contract below
    >>> logits, = ort.InferenceSession("spg20.onnx").run(None, feeds)

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
stroke's end flag. The graph checks nothing else either: left padding, flags 0 / 1 instead of 100 / 101 or raw
canvas points run and give wrong scores. ``check_inputs(coords, flags)`` (pure NumPy) refuses such arrays with a
``ValueError`` naming the row; the rules are ``INPUT_CONTRACT``, also stored in the file.

The relation masks are built *inside* the graph from ``flags`` by ``sketchgraph.graph.relation_masks`` itself
(written with broadcast comparisons so it traces), so a client only has to preprocess the drawing as
``SketchClassifier.from_pretrained(checkpoint).preprocessing`` says and pad it. That preprocessing is the
checkpoint's ``preprocessing`` *updated by* its ``inference_preprocessing`` (the shipped ``spg20`` has ``{"cap":
"adapt"}``: a drawing longer than ``max_points`` after simplification is simplified again, not truncated);
``preprocessing`` alone gives other graphs and other scores for long drawings. ``prepare_inputs(classifier,
sketches)`` gives the two arrays for any inputs ``SketchClassifier`` accepts.

Metadata: the file carries what a client needs besides the arrays, as JSON strings under the keys of
``METADATA_KEYS``: ``classes`` (the ``C`` names, in logit order), ``preprocessing`` (the effective one above,
``Preprocessing.to_dict()``), ``preprocessing_recipe`` (``{"adapt_epsilons": [...], "recipe": "..."}``: the
tolerances ``cap: "adapt"`` tries in order, ``Preprocessing.adapt_epsilons()``, and the steps in words, so the
preprocessing can be reproduced without sketchgraph), ``relations`` (the masks the graph builds) and
``input_contract`` (``INPUT_CONTRACT``, the rules ``check_inputs`` applies). An exported ``nn.Module`` (no
checkpoint) has only ``relations`` and ``input_contract``. ONNX stores them in the model's ``metadata_props``
(``onnxruntime.InferenceSession(path).get_modelmeta().custom_metadata_map``), TorchScript as extra files
(``files = dict.fromkeys(METADATA_KEYS, ""); torch.jit.load(path, _extra_files=files)`` fills ``files``
with bytes; ``json.loads`` reads either).

The format follows the file name: ``.pt``, ``.pth`` and ``.ts`` (any case) are TorchScript, anything else
ONNX. A TorchScript file runs on the CPU only: tracing fixes the device of the tensors the graph creates
(positions, masks) to the CPU, so load it with ``map_location="cpu"`` and give it CPU tensors (ONNX runtimes
choose their own device). The output is checked before anything loads: a path that is a folder, or whose
folder does not exist or takes no new file, is refused (``OSError``, ``cannot write OUT: ...``); no folder is
created. The file is serialised in memory and then written atomically: a failed write (a full disk, a kill)
leaves any earlier file of that name as it was.

Exports are float32 whatever the model's precision: a ``SketchClassifier(precision="bfloat16")`` (which only
runs under autocast) and a model whose weights were cast to bfloat16 or float16 are both exported from a float32
copy, so the file's logits are float32 PyTorch's, not the reduced-precision ones.

The export runs on a copy of the model in eval mode: attention takes the plain matmul-softmax path
(the same numbers as the fused kernel up to float rounding, ~1e-6) and ``BatchNorm`` models (``mgt-paper``)
normalise every row with their running statistics, masking padding rows afterwards, which in eval mode
equals the training code's valid-rows-only indexing. Only the ``dense`` attention backend exports (the
DGL one is message passing over a graph built on the host). The exporter is PyTorch's TorchScript-based
one (``dynamo=False``), which needs nothing beyond ``onnx``: ``pip install -e '.[onnx]'`` in a sketchgraph checkout
(or ``pip install onnx onnxruntime``) installs it and ``onnxruntime`` (to run the exported model). TorchScript
export needs neither.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib.util
import io
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .batch import Batch
from .errors import MissingExtraError
from .formats.base import atomic_write
from .graph import FLAG_CONTINUE, FLAG_END, FLAG_PAD
from .model.attention import GraphAttention
from .model.mgt import MAX_POINTS, MGT, Norm
from .preprocess import Preprocessing

__all__ = [
    "ExportableMGT", "export_onnx", "export_torchscript", "prepare_inputs", "check_inputs", "INPUT_NAMES",
    "OUTPUT_NAMES", "METADATA_KEYS", "INPUT_CONTRACT", "COORD_RANGE", "TORCHSCRIPT_SUFFIXES", "MIN_OPSET",
    "DEFAULT_OPSET", "MAX_OPSET", "output_format", "preprocessing_recipe",
]

MIN_OPSET = 14
DEFAULT_OPSET = 17  # what export_onnx and `sketchgraph export` use when no opset is given
_TORCH_ONNX_CONSTANTS = getattr(torch.onnx, "_constants", None)
#: the newest opset PyTorch's TorchScript-based exporter supports (20 with torch 2.13; it warns from 21 and fails
#: from 24, after printing its whole IR)
MAX_OPSET = int(getattr(_TORCH_ONNX_CONSTANTS, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET",
                        getattr(_TORCH_ONNX_CONSTANTS, "ONNX_MAX_OPSET", 20)))
INPUT_NAMES = ("coords", "flags")
OUTPUT_NAMES = ("logits",)
#: the JSON metadata an exported file carries (ONNX ``metadata_props``, TorchScript ``_extra_files``)
METADATA_KEYS = ("classes", "preprocessing", "preprocessing_recipe", "relations", "input_contract")
#: the range of preprocessed coordinates: the preprocessing scales every drawing so its larger extent is 255
COORD_RANGE = (0.0, 255.0)
#: the rules an exported model's inputs must follow (stored as ``input_contract``; ``check_inputs`` applies them)
INPUT_CONTRACT = (
    "coords (B, N, 2) float32 and flags (B, N) int64 with B >= 1, N >= 1; in each row the drawing's points come "
    f"first, then padding (flag {FLAG_PAD}, coords 0) up to N; flags are {FLAG_CONTINUE} (the pen continues to "
    f"the next point), {FLAG_END} (the stroke ends here; a row's last point always has it) or {FLAG_PAD}; at most "
    f"{MAX_POINTS} points a row (the graph reads only the first {MAX_POINTS} columns); coords are the points after "
    "the preprocessing in 'preprocessing' and 'preprocessing_recipe', each in "
    f"{COORD_RANGE[0]:g}..{COORD_RANGE[1]:g} (raw canvas points are not); "
    "output logits (B, C) float32 in the order of 'classes'. A row of padding only gives finite, meaningless "
    "logits. Nothing of this is checked by the graph: sketchgraph.export.check_inputs checks it"
)
_ONNX_INSTALL = "pip install -e '.[onnx]' in a sketchgraph checkout, or pip install onnx onnxruntime"
#: output suffixes (compared in lower case) that ``sketchgraph export`` writes as TorchScript; others are ONNX
TORCHSCRIPT_SUFFIXES = (".pt", ".pth", ".ts")

# Warnings that tracing this model always gives and that are harmless; any other warning (a new tracer warning
# after a model change, say) is shown. (category, message regex, module regex of the code that warns)
_KNOWN_WARNINGS = (
    # relation_masks' torch.as_tensor(flags) on a tensor that is already one: no constant is made
    (torch.jit.TracerWarning, r"torch\.as_tensor results are registered as constants", r"sketchgraph\.graph"),
    # MGT.embed's `N > MAX_POINTS` check: always False here, ExportableMGT cuts N to MAX_POINTS first
    (torch.jit.TracerWarning, r"Converting a tensor to a Python boolean", r"sketchgraph\.model\.mgt"),
    # torch's notices that the TorchScript tracer and exporter are deprecated
    (DeprecationWarning, r"`torch\.jit\.trace", r""),
    (DeprecationWarning, r"You are using the legacy TorchScript-based ONNX export", r""),
    (DeprecationWarning, r"The feature will be removed", r"torch\.onnx"),
)


class _EvalBatchNorm(nn.Module):
    """``Norm("batch")`` in eval mode without boolean indexing: every row normalised with the running
    statistics (a per-row affine map), padding rows set to 0 - the same numbers as ``Norm`` in eval."""

    def __init__(self, norm: Norm) -> None:
        super().__init__()
        self.norm = norm.norm

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``x (B, N, D)`` float, ``valid (B, N)`` bool -> ``(B, N, D)``, zero on padding rows."""
        B, N, D = x.shape
        y = self.norm(x.reshape(B * N, D)).reshape(B, N, D)  # (B, N, D)
        return y * valid[..., None].to(y.dtype)


class ExportableMGT(nn.Module):
    """``forward(coords (B, N, 2) float32, flags (B, N) int64) -> logits (B, C)`` around an MGT: builds the
    ``Batch`` (masks included) from the two tensors, so it traces into one self-contained graph.

    The wrapped model is a float32 deep copy in eval mode with export-friendly layers (see the module docstring),
    its parameters frozen (``requires_grad`` False, so a traced module's logits do not track gradients and
    ``.numpy()`` works on them); the model passed in is not touched. Precision does not carry over: a model whose
    weights are bfloat16 or float16 is exported in float32. ``TypeError`` for a model that is not an ``MGT``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, MGT):
            raise TypeError(f"only MGT models export (ONNX or TorchScript), got {type(model).__name__}")
        net = copy.deepcopy(model).cpu().float().eval().set_backend("dense")  # float32: exports are float32
        for module in list(net.modules()):
            if isinstance(module, GraphAttention):
                module.fused = False  # plain masked softmax: every exporter and runtime knows its ops
            for name, child in list(module.named_children()):
                if isinstance(child, Norm) and child.kind == "batch":
                    setattr(module, name, _EvalBatchNorm(child))
        self.model = net
        self.relations = tuple(net.relations)
        self.requires_grad_(False)  # an inference artifact: its outputs must not require grad

    def forward(self, coords: torch.Tensor, flags: torch.Tensor) -> torch.Tensor:
        """``coords (B, N, 2)`` float, ``flags (B, N)`` int -> ``logits (B, C)``; columns past
        ``MAX_POINTS`` are ignored."""
        coords, flags = coords[:, :MAX_POINTS], flags[:, :MAX_POINTS]  # the model's cap, kept in the traced graph
        return self.model(Batch.from_padded(coords, flags.long(), self.relations))  # (B, C)


def _load(checkpoint_or_model: Any) -> tuple[ExportableMGT, dict[str, str]]:
    """The export wrapper of an ``nn.Module``, a ``SketchClassifier``, a checkpoint directory or a shipped name,
    and the metadata to store with it (``METADATA_KEYS`` -> JSON; ``classes`` and ``preprocessing`` only when
    they are known, i.e. not for a bare model)."""
    from .checkpoint import unwrap_model

    if isinstance(checkpoint_or_model, nn.Module):
        classifier, model = None, checkpoint_or_model
    elif hasattr(checkpoint_or_model, "model") and isinstance(checkpoint_or_model.model, nn.Module):
        classifier, model = checkpoint_or_model, checkpoint_or_model.model
    else:
        from .predict import SketchClassifier

        classifier = SketchClassifier.from_pretrained(checkpoint_or_model)  # preprocessing as predict applies it
        model = classifier.model
    wrapper = ExportableMGT(unwrap_model(model))  # DDP / torch.compile wrappers
    metadata: dict[str, Any] = {"relations": list(wrapper.relations), "input_contract": INPUT_CONTRACT}
    if classifier is not None:
        metadata["classes"] = list(classifier.classes)
        metadata["preprocessing"] = classifier.preprocessing.to_dict()
        metadata["preprocessing_recipe"] = preprocessing_recipe(classifier.preprocessing)
    return wrapper, {key: json.dumps(value) for key, value in metadata.items()}


def preprocessing_recipe(pre: Preprocessing) -> dict[str, Any]:
    """What ``pre`` does, for a client without sketchgraph: ``{"adapt_epsilons": [...], "recipe": "..."}``.

    ``adapt_epsilons`` is ``pre.adapt_epsilons()`` (the coarser RDP tolerances ``cap: "adapt"`` tries, in order:
    ``epsilon * ADAPT_FACTOR ** k`` for k = 1..``ADAPT_STEPS``, ``[]`` for ``cap: "truncate"``); ``recipe`` says
    the steps in words, with this preprocessing's numbers (stored in exports as ``preprocessing_recipe``).
    """
    size = f"{COORD_RANGE[1]:g}"
    if pre.simplify:
        steps = [f"Simplify the drawing as Google's Quick, Draw! data (tolerance epsilon = {pre.epsilon:g}): shift it "
                 f"so its smallest x and y are 0, scale it uniformly so its larger extent is {size}, resample each "
                 "stroke at 1 px of arc length (its first and last points always kept), run Ramer-Douglas-Peucker on "
                 "each stroke with tolerance epsilon (distance to the chord segment), then round to integers."]
    else:
        steps = [f"Shift the drawing so its smallest x and y are 0 and scale it uniformly so its larger extent is "
                 f"{size} (no simplification, no rounding)."]
    epsilons = pre.adapt_epsilons()
    if epsilons:
        listed = ", ".join(str(e) for e in epsilons)
        steps.append(f"While the result has more than {pre.max_points} points, simplify the original drawing again "
                     f"with the next tolerance of adapt_epsilons ({listed}) instead of epsilon.")
    steps.append(f"Keep the first {pre.max_points} points in drawing order (a stroke cut there ends at the last "
                 f"kept point). Flag each stroke's last point {FLAG_END} and the others {FLAG_CONTINUE}, then pad "
                 f"each row to N with flag {FLAG_PAD} and coords 0.")
    return {"adapt_epsilons": epsilons, "recipe": " ".join(steps)}


def _example_inputs(max_points: int, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded example batch, ``coords (batch, max_points, 2)`` and ``flags (batch, max_points)``: row 0 fills
    ``max_points`` with three strokes, the other rows are shorter (padding)."""
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
    """``ValueError`` unless ``max_points`` (the traced example's length) is in ``2..MAX_POINTS``."""
    if not 2 <= max_points <= MAX_POINTS:
        raise ValueError(f"max_points must be in 2..{MAX_POINTS}, got {max_points}")


def _check_opset(opset: int) -> None:
    """``ValueError`` unless ``MIN_OPSET <= opset <= MAX_OPSET``."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset must be in {MIN_OPSET}..{MAX_OPSET} (older opsets cannot express the model's ops; "
                         f"PyTorch's exporter supports none newer than {MAX_OPSET}), got {opset}")


def _require_onnx() -> None:
    """``MissingExtraError`` saying how to install ``onnx`` when it is missing (torch's exporter only says it
    is not installed, after loading the model)."""
    if importlib.util.find_spec("onnx") is None:
        raise MissingExtraError(
            f"ONNX export needs the onnx package: {_ONNX_INSTALL} (or export to .pt for TorchScript)", name="onnx",
        )


@contextlib.contextmanager
def _tracing() -> Iterator[None]:
    """No gradients, and the known harmless warnings of tracing (``_KNOWN_WARNINGS``) silenced; others show."""
    with warnings.catch_warnings(), torch.no_grad():
        for category, message, module in _KNOWN_WARNINGS:
            warnings.filterwarnings("ignore", message, category, module)
        yield


def _check_output(path: str | os.PathLike) -> None:
    """Refuse, before anything loads, an output ``path`` that cannot be written: an existing folder
    (``IsADirectoryError``), a folder that does not exist (``FileNotFoundError``; none is created), a parent that is
    a file (``NotADirectoryError``), or a folder that takes no new file (the error creating one, e.g.
    ``PermissionError``). Each says ``cannot write PATH: ...``; nothing is left behind. An empty path (``""``,
    which ``Path`` reads as ``.``) is a ``ValueError`` saying no file was named."""
    if not os.fspath(path).strip():
        raise ValueError(f"no output file named ({os.fspath(path)!r}): give the file to write, e.g. spg20.onnx or "
                         "spg20.pt")
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory")
    if not parent.exists():
        raise FileNotFoundError(f"cannot write {path}: no such directory: {parent}")
    if not parent.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {parent} is not a directory")
    try:  # what the atomic write will do first: create a file in that folder
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise type(exc)(f"cannot write {path}: cannot create a file in {parent} ({exc.strerror or exc})") from None


def _write(path: str | os.PathLike, data: bytes) -> Path:
    """``data`` written atomically to ``path`` (its folder must exist): a failed write leaves any earlier file
    there as it was, and no temporary file."""
    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def export_onnx(
    checkpoint_or_model: Any, path: str | os.PathLike, *, max_points: int = MAX_POINTS, opset: int = DEFAULT_OPSET,
) -> Path:
    """Write an ONNX model with inputs ``coords (B, N, 2)`` float32, ``flags (B, N)`` int64 and output
    ``logits (B, C)`` (dynamic ``B`` and ``N``; see the module docstring), with ``METADATA_KEYS`` in its
    ``metadata_props``. The model is exported in float32 whatever its precision.

    Args:
        checkpoint_or_model: an ``MGT``, a ``SketchClassifier``, a checkpoint directory or a shipped name.
        path: the file to write, whatever its suffix (written atomically; its folder must exist).
        max_points: the point cap the example batch is traced at (2..100; the axes stay dynamic).
        opset: ONNX opset version, ``MIN_OPSET``..``MAX_OPSET`` (14..20 with torch 2.13).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: ``max_points`` or ``opset`` out of range (checked first; nothing is loaded or written).
        ModuleNotFoundError: ``onnx`` is not installed (``pip install -e '.[onnx]'`` in a checkout, or
            ``pip install onnx onnxruntime``); nothing is written.
        CheckpointError: the checkpoint is missing or broken.
        TypeError: the model is not an MGT (the ``cnn`` and ``bigru`` baselines do not export).
        RuntimeError: PyTorch's exporter failed.
        OSError: ``path`` is a folder, or its folder is missing or takes no new file (checked before anything
            loads, ``cannot write PATH: ...``), or the write failed (an earlier file at ``path`` is left as it was).
    """
    _check_max_points(max_points)
    _check_opset(opset)
    _require_onnx()
    _check_output(path)
    import onnx

    wrapper, metadata = _load(checkpoint_or_model)
    buf = io.BytesIO()
    with _tracing():
        torch.onnx.export(
            wrapper, _example_inputs(max_points), buf, dynamo=False, opset_version=opset,
            input_names=list(INPUT_NAMES), output_names=list(OUTPUT_NAMES),
            dynamic_axes={"coords": {0: "batch", 1: "points"}, "flags": {0: "batch", 1: "points"},
                          "logits": {0: "batch"}},
        )
    proto = onnx.load_from_string(buf.getvalue())
    onnx.helper.set_model_props(proto, metadata)
    return _write(path, proto.SerializeToString())


def export_torchscript(checkpoint_or_model: Any, path: str | os.PathLike, *, max_points: int = MAX_POINTS) -> Path:
    """Write a traced TorchScript module, ``torch.jit.load(path)(coords (B, N, 2) float32, flags (B, N) int64)
    -> logits (B, C)``, with ``METADATA_KEYS`` as extra files. It loads in C++ (libtorch) or Python without
    sketchgraph, and runs on the CPU only (load it with ``map_location="cpu"``; see the module docstring). Its
    parameters do not require grad, so the logits do not either; the model is exported in float32 whatever its
    precision.

    Args:
        checkpoint_or_model: an ``MGT``, a ``SketchClassifier``, a checkpoint directory or a shipped name.
        path: the file to write, whatever its suffix (written atomically; its folder must exist).
        max_points: the point cap the example batch is traced at (2..100; ``B`` and ``N`` stay dynamic).

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ValueError: ``max_points`` out of range (checked first; nothing is loaded or written).
        CheckpointError: the checkpoint is missing or broken.
        TypeError: the model is not an MGT.
        OSError: ``path`` is a folder, or its folder is missing or takes no new file (checked before anything
            loads, ``cannot write PATH: ...``), or the write failed (an earlier file at ``path`` is left as it was).
    """
    _check_max_points(max_points)
    _check_output(path)
    wrapper, metadata = _load(checkpoint_or_model)
    with _tracing():
        traced = torch.jit.trace(wrapper, _example_inputs(max_points), check_trace=False)
    return _write(path, traced.save_to_buffer(_extra_files=metadata))


def prepare_inputs(classifier: Any, sketches: Any) -> dict[str, np.ndarray]:
    """``{"coords": (B, N, 2) float32, "flags": (B, N) int64}`` for an exported model: ``sketches`` preprocessed
    with ``classifier``'s settings (``classifier.preprocessing``), padded to the longest (``N``).

    ``sketches`` is a sequence of anything ``SketchClassifier`` accepts (a path item means that file's first
    sketch), or one file path (every sketch of the file, as ``predict_batch`` reads it). One sketch that is not
    in a sequence raises ``TypeError``; an unusable drawing raises ``SketchError`` naming its position as
    ``predict_batch`` does (``item 1: stroke 0: its lists differ in length (2, 1)``). The arrays pass
    ``check_inputs``.
    """
    from .errors import SketchError, UnusableSketchesError
    from .predict import _is_path, _read
    from .sketch import Sketch

    if _is_path(sketches):
        items = list(_read(sketches))
    elif isinstance(sketches, (str, bytes, dict, Sketch)) or (
            isinstance(sketches, np.ndarray) and sketches.dtype != object):
        raise TypeError(f"prepare_inputs takes a sequence of sketches or one file path, got a single "
                        f"{type(sketches).__name__}: pass [sketch]")
    else:
        items = list(sketches)
    if not items:
        raise SketchError("prepare_inputs needs at least one sketch, got none")
    checked = []
    for i, x in enumerate(items):
        try:
            checked.append(classifier.sketch(x))
        except (SketchError, OSError) as exc:  # OSError: a path item that is missing or unreadable
            raise SketchError(f"item {i}: {exc}") from None
    try:
        batch = classifier.batch(checked).to("cpu")
    except UnusableSketchesError as exc:  # preprocessing refused a drawing
        i, reason = next(iter(exc.problems.items()))
        raise SketchError(f"item {i}: {reason}") from None
    return {"coords": batch.coords.numpy(), "flags": batch.flags.numpy()}


def _check_arrays(coords: np.ndarray, flags: np.ndarray) -> None:
    """``ValueError`` unless ``coords`` is ``(B, N, 2)`` float32 and ``flags`` ``(B, N)`` int64 of one ``B`` and
    ``N`` (both >= 1)."""
    if coords.dtype != np.float32:
        raise ValueError(f"coords must be float32, got {coords.dtype}")
    if flags.dtype != np.int64:
        raise ValueError(f"flags must be int64, got {flags.dtype}")
    if coords.ndim != 3 or coords.shape[2] != 2:
        raise ValueError(f"coords must have the shape (B, N, 2), got {coords.shape}")
    if flags.shape != coords.shape[:2]:
        raise ValueError(f"flags must have the shape (B, N) = {coords.shape[:2]} of coords {coords.shape}, "
                         f"got {flags.shape}")
    if 0 in flags.shape:
        raise ValueError(f"coords and flags need B >= 1 rows of N >= 1 points, got (B, N) = {flags.shape}")


def _check_row(b: int, coords: np.ndarray, flags: np.ndarray, max_points: int) -> None:
    """``ValueError`` naming row ``b`` when its ``coords (N, 2)`` and ``flags (N,)`` break ``INPUT_CONTRACT``."""
    allowed = (FLAG_CONTINUE, FLAG_END, FLAG_PAD)
    bad = np.flatnonzero(~np.isin(flags, allowed))
    if len(bad):
        j = int(bad[0])
        raise ValueError(f"row {b}: flag {int(flags[j])} at point {j}; flags are {FLAG_CONTINUE} (the pen continues), "
                         f"{FLAG_END} (the stroke ends here) or {FLAG_PAD} (padding)")
    pad = np.flatnonzero(flags == FLAG_PAD)
    n = int(pad[0]) if len(pad) else len(flags)  # the row's points: everything before the first padding
    if n < len(flags) and (flags[n:] != FLAG_PAD).any():
        j = n + int(np.flatnonzero(flags[n:] != FLAG_PAD)[0])
        raise ValueError(f"row {b}: point {j} comes after padding (flag {FLAG_PAD} at point {n}); a row's points "
                         "come first, padding only after them")
    if n == 0:
        return  # a row of padding only
    if n > max_points:
        raise ValueError(f"row {b}: {n} points, more than the {max_points} the model reads; preprocess the drawing "
                         "(its cap keeps the last stroke's end flag)")
    if flags[n - 1] != FLAG_END:
        raise ValueError(f"row {b}: its last point ({n - 1}) has flag {int(flags[n - 1])}, not {FLAG_END}: the last "
                         "point of a drawing ends its stroke")
    points = coords[:n]
    lo, hi = COORD_RANGE
    outside = np.flatnonzero(~(np.isfinite(points).all(1) & (points >= lo).all(1) & (points <= hi).all(1)))
    if len(outside):
        j = int(outside[0])
        x, y = (float(v) for v in points[j])
        raise ValueError(f"row {b}: point {j} is at ({x:g}, {y:g}), outside {lo:g}..{hi:g}: coords must be the "
                         "preprocessed points (scaled so the drawing's larger extent is 255), not raw ones")


def check_inputs(coords: Any, flags: Any, *, max_points: int = MAX_POINTS) -> None:
    """Refuse arrays an exported model would silently misread (``INPUT_CONTRACT``; pure NumPy, no torch needed).

    Checks that ``coords`` is ``(B, N, 2)`` float32 and ``flags`` ``(B, N)`` int64 (``B, N >= 1``), and in each
    row: flags only 100 / 101 / 102, padding (102) only after the points, at most ``max_points`` points, the
    last point flagged 101 (end of stroke), and every point's coordinates finite and in ``COORD_RANGE``
    (0..255, what the preprocessing produces). A row of padding only passes. ``prepare_inputs``' output passes;
    ``check_inputs(**feeds)`` works on it.

    Raises:
        ValueError: the first problem found, naming the row and the point (``row 2: point 5 comes after
            padding ...``).
    """
    coords, flags = np.asarray(coords), np.asarray(flags)
    _check_arrays(coords, flags)
    for b in range(flags.shape[0]):
        _check_row(b, coords[b], flags[b], max_points)


# ---------------------------------------------------------------------------------- CLI
def output_format(path: str | os.PathLike) -> str:
    """``"torchscript"`` for a ``TORCHSCRIPT_SUFFIXES`` file name (``.pt``, ``.pth``, ``.ts``, any case), else
    ``"onnx"``: the format ``sketchgraph export OUT`` writes without ``--format``."""
    return "torchscript" if Path(path).suffix.lower() in TORCHSCRIPT_SUFFIXES else "onnx"


def configure_parser(p: argparse.ArgumentParser) -> None:
    """Add ``sketchgraph export``'s arguments to ``p``: ``OUT``, ``--checkpoint``, ``--format``, ``--opset``."""
    p.add_argument("output", help="file to write (.onnx; .pt, .pth or .ts for TorchScript)")
    p.add_argument("--checkpoint", default="spg20", help="checkpoint directory or shipped name (default spg20)")
    p.add_argument("--format", choices=("onnx", "torchscript"), default=None,
                   help="default: from the output suffix, in any case (.pt / .pth / .ts -> torchscript, else onnx)")
    p.add_argument("--opset", type=int, default=None,
                   help=f"ONNX opset version, {MIN_OPSET}..{MAX_OPSET} (default {DEFAULT_OPSET}; ONNX only)")


def _suffix_note(output: str | os.PathLike, fmt: str) -> str | None:
    """A one-line note when ``output``'s suffix names the other format than ``fmt`` (``x.onnx`` written as
    TorchScript, ``x.pt`` as ONNX), else ``None`` (a suffix that names no format gets no note)."""
    suffix = Path(output).suffix
    implied = {".onnx": "onnx", **dict.fromkeys(TORCHSCRIPT_SUFFIXES, "torchscript")}.get(suffix.lower())
    if implied is None or implied == fmt:
        return None
    names = {"onnx": "ONNX", "torchscript": "TorchScript"}
    return (f"sketchgraph export: note: writing {output} as {names[fmt]} (--format {fmt}), although its suffix "
            f"{suffix} usually means {names[implied]}")


def run_cli(args: argparse.Namespace) -> int:
    """``sketchgraph export OUT [--checkpoint NAME] [--format onnx|torchscript] [--opset N]``; ``--opset`` with a
    TorchScript output is refused (``ValueError``) before anything loads, and so is an ``OUT`` that cannot be
    written (``OSError``: a folder, a missing folder). A ``--format`` the suffix disagrees with is written as asked,
    with a one-line note on stderr."""
    fmt = args.format or output_format(args.output)
    if fmt == "torchscript" and args.opset is not None:
        why = "--format torchscript" if args.format else f"the suffix {Path(args.output).suffix}"
        raise ValueError(f"--opset applies to ONNX only, and {args.output} is written as TorchScript ({why}); "
                         "drop --opset, or write a .onnx file")
    note = _suffix_note(args.output, fmt)
    if note:
        print(note, file=sys.stderr)
    if fmt == "onnx":
        out = export_onnx(args.checkpoint, args.output, opset=DEFAULT_OPSET if args.opset is None else args.opset)
    else:
        out = export_torchscript(args.checkpoint, args.output)
    print(f"wrote {out} ({fmt}; inputs coords (B, N, 2) float32, flags (B, N) int64 -> logits (B, C))")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sketchgraph.export ...``: the same as ``sketchgraph export ...`` (a bad checkpoint or option is
    one error line, not a traceback)."""
    from .cli import main as cli_main

    return cli_main(["export", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
