"""Prepared datasets: sketch files -> memory-mapped arrays on disk -> batches for training.

- ``prepare(inputs, out_dir, ...)`` (``pipeline.py``): parallel, resumable, atomic, deterministic.
- ``PreparedDataset(path)`` (``storage.py``): the on-disk layout and its memory-mapped reader.
- ``SketchSplit``, ``make_loader`` (``loader.py``): a ``torch`` ``Dataset`` and a ``DataLoader`` with a
  vectorised collate yielding ``Batch`` (and the augmentation hook).
- ``splits.py``: split by file name, by key_id from split files, or by a seeded per-class protocol.
- ``flat.py``: batched preprocessing (bit-identical to ``preprocess`` per sketch).

``configure_parser`` / ``run_cli`` implement ``sketchgraph prepare``.
"""

from __future__ import annotations

from .cli import configure_parser, run_cli
from .flat import FlatPrepared, preprocess_flat
from .loader import FlatCollate, SketchSplit, bucket_batches, make_loader
from .pipeline import PreparedInfo, prepare
from .splits import PROTOCOLS, Protocol, parse_protocol
from .storage import FORMAT_VERSION, PreparedDataset, is_prepared

__all__ = [
    "prepare", "PreparedInfo", "PreparedDataset", "SketchSplit", "FlatCollate", "make_loader", "bucket_batches",
    "is_prepared",
    "Protocol", "PROTOCOLS", "parse_protocol", "preprocess_flat", "FlatPrepared", "FORMAT_VERSION",
    "configure_parser", "run_cli",
]
