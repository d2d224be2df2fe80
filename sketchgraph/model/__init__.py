"""Models: the Multi-Graph Transformer (``mgt``), its attention, presets, baselines and MAC counting."""

from .attention import BACKENDS, GraphAttention
from .baselines import BiGRU, BiGRUConfig, CNNConfig, SketchCNN, rasterize_batch
from .flops import count_macs
from .mgt import MAX_POINTS, MGT, MGTConfig, normalize_coords
from .registry import PRESETS, build_model, list_presets, model_config_dict, model_from_config, set_backend

__all__ = [
    "BACKENDS", "GraphAttention", "MGT", "MGTConfig", "MAX_POINTS", "normalize_coords",
    "SketchCNN", "CNNConfig", "BiGRU", "BiGRUConfig", "rasterize_batch",
    "PRESETS", "build_model", "list_presets", "model_config_dict", "model_from_config", "set_backend", "count_macs",
]
