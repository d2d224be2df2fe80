"""SPG-20 (Li et al., ECCV 2018, as distributed with SketchGNN) -> a prepared dataset.

The drawings come from ``raw/<class>_raw.ndjson`` (their original Quick, Draw! coordinates, simplified
here with Google's procedure and capped at 100 points); the split is SPG's published one, joined by
``key_id`` from ``splits/<class>_{train,valid,test}.ndjson``: 650 / 50 / 100 per class, 13,000 / 1,000 /
2,000 over 20 classes. The class is the file name (the records have no ``word``). SPG-20 is the ``data/``
folder of the SketchGNN repository (github.com/sYeaLumin/SketchGNN)::

    python -m data_prep.spg ../shared/data/spg20 prepared/spg20
"""

from __future__ import annotations

import sys
from pathlib import Path

from data_prep import add_prepare_options, existing_folder, run_script, script_parser
from sketchgraph.data import PreparedInfo, prepare
from sketchgraph.preprocess import Preprocessing

__all__ = ["EXPECTED_SPLITS", "prepare_spg", "main"]

EXPECTED_SPLITS = {"train": 13000, "valid": 1000, "test": 2000}


def prepare_spg(root: str | Path, out: str | Path, *, preprocessing: Preprocessing = Preprocessing(),
                workers: int = 2, overwrite: bool = False, progress: bool = True) -> PreparedInfo:
    """Prepare SPG-20 from ``root`` (the folder holding ``raw/`` and ``splits/``) into ``out``."""
    root = existing_folder(root, "the SPG-20 folder, with raw/ and splits/: the data/ folder of "
                                 "github.com/sYeaLumin/SketchGNN")
    raw = sorted((root / "raw").glob("*_raw.ndjson"))
    if not raw or not (root / "splits").is_dir():
        raise FileNotFoundError(f"{root} does not look like SPG: expected raw/<class>_raw.ndjson and splits/")
    return prepare(raw, out, preprocessing=preprocessing, split_files=root / "splits", format="spg",
                   workers=workers, overwrite=overwrite, progress=progress)


def main(argv: list[str] | None = None) -> int:
    p = script_parser("python -m data_prep.spg", __doc__.splitlines()[0])
    p.add_argument("root", help="the SPG folder (with raw/ and splits/)")
    p.add_argument("out", help="the prepared dataset directory to create")
    add_prepare_options(p, max_points=Preprocessing().max_points)
    args = p.parse_args(argv)

    def body() -> int:
        info = prepare_spg(args.root, args.out, preprocessing=Preprocessing(max_points=args.max_points),
                           workers=args.workers, overwrite=args.overwrite)
        if info.splits != EXPECTED_SPLITS or len(info.classes) != 20:
            print(f"warning: expected {EXPECTED_SPLITS} over 20 classes, got {info.splits} over "
                  f"{len(info.classes)}", file=sys.stderr)
            return 1
        return 0

    return run_script(p.prog, body)


if __name__ == "__main__":
    raise SystemExit(main())
