"""Named model presets, and rebuilding any model from its JSON config (for checkpoints).

    model = build_model("mgt-paper", num_classes=345)              # 39,984,729 parameters
    model = build_model("mgt", num_classes=20, backend="dgl")     # overrides are config fields
    cfg = model_config_dict(model)                                  # {"arch": "mgt", ...}, JSON-serialisable
    same = model_from_config(cfg)                                   # same architecture, fresh weights

Every model takes a ``Batch`` and returns logits ``(B, C)``, has ``.config`` (a dataclass) and ``.relations``
(the graph relations its batches must carry; empty for the baselines).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from .attention import BACKENDS
from .baselines import BiGRU, BiGRUConfig, CNNConfig, SketchCNN
from .mgt import MGT, MGTConfig

__all__ = [
    "ARCHS", "PRESETS", "Preset", "build_model", "list_presets", "model_config_dict", "model_from_config",
    "set_backend",
]

# arch name -> (config dataclass, model class)
ARCHS: dict[str, tuple[type, type[nn.Module]]] = {
    "mgt": (MGTConfig, MGT),
    "cnn": (CNNConfig, SketchCNN),
    "bigru": (BiGRUConfig, BiGRU),
}


@dataclass(frozen=True)
class Preset:
    arch: str
    description: str
    fields: dict[str, Any] = field(default_factory=dict)  # config fields over the arch's config defaults


_PAPER: dict[str, Any] = {}  # MGTConfig's defaults are the paper's MGT #17

PRESETS: dict[str, Preset] = {
    "mgt": Preset("mgt", "our default: split-heads MGT over 3 relations, pre-LayerNorm, width 96", dict(
        embed="sum", embed_dim=96, coord_norm="unit", layers=4, layout="split_heads", heads=2, head_dim=16,
        ffn_dim=192, act="gelu", norm="layer", prenorm=True, dropout=0.0, readout="mean", classifier=(256,),
        classifier_dropout=0.1, init="default",
    )),
    "mgt-paper": Preset("mgt", "the paper's MGT #17 (stroke1 + stroke2 + temporal), official architecture", _PAPER),
    "mgt-small": Preset("mgt", "the official architecture at width 192 (embed 64, 4 heads)", dict(
        embed_dim=64, heads=4, classifier=(256, 256),
    )),
    "mgt-stroke2-temporal": Preset("mgt", "the paper's MGT #13 (stroke2 + temporal)", dict(
        relations=("stroke2", "temporal"),
    )),
    # the official GT #1 / #7 scripts train with dropout 0.10 (MGT #13 / #17: 0.25, MGTConfig's default)
    "gt-full": Preset("mgt", "the paper's GT #1: plain Transformer (fully connected graph)", dict(
        relations=("full",), dropout=0.1, classifier_dropout=0.1,
    )),
    "gt-stroke2": Preset("mgt", "the paper's GT #7: Graph Transformer on stroke2", dict(
        relations=("stroke2",), dropout=0.1, classifier_dropout=0.1,
    )),
    "cnn": Preset("cnn", "4-block CNN on 64x64 rasters rendered from the points", {}),
    "bigru": Preset("bigru", "the paper's bidirectional GRU baseline (5 layers, hidden 256)", {}),
}


def list_presets() -> list[str]:
    """Preset names (``mgt`` first)."""
    return list(PRESETS)


def build_model(name: str, num_classes: int, **overrides: Any) -> nn.Module:
    """A fresh model from preset ``name`` with ``num_classes`` outputs; ``overrides`` replace config fields."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; choose from {list_presets()}")
    preset = PRESETS[name]
    cfg_cls, model_cls = ARCHS[preset.arch]
    cfg = cfg_cls(**{**preset.fields, **overrides, "num_classes": num_classes, "preset": name})
    return model_cls(cfg)


def model_config_dict(model: nn.Module) -> dict[str, Any]:
    """``{"arch": ..., **config}``: plain JSON types; ``model_from_config`` rebuilds the architecture."""
    d = asdict(model.config)
    d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
    return {"arch": model.arch, **d}


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild a model (fresh weights) from ``model_config_dict`` output, e.g. read back from ``config.json``."""
    d = dict(config)
    arch = d.pop("arch", "mgt")
    if arch not in ARCHS:
        raise ValueError(f"unknown model arch {arch!r}; choose from {list(ARCHS)}")
    cfg_cls, model_cls = ARCHS[arch]
    return model_cls(cfg_cls(**d))


def set_backend(model: nn.Module, backend: str) -> nn.Module:
    """Select the attention implementation, ``"dense"`` (SDPA with masks) or ``"dgl"`` (message passing).

    Models without graph attention (the CNN and BiGRU baselines) accept only ``"dense"``. Returns ``model``.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if hasattr(model, "set_backend"):
        model.set_backend(backend)
    elif backend != "dense":
        raise ValueError(f"{type(model).__name__} has no graph attention; only backend 'dense' applies")
    return model
