"""SPG-20 (Li et al., ECCV 2018, as distributed with SketchGNN) -> a prepared dataset.

The drawings come from ``raw/<class>_raw.ndjson`` (their original Quick, Draw! coordinates, simplified
here with Google's procedure and capped at 100 points); the split is SPG's published one, joined by
``key_id`` from ``splits/<class>_{train,valid,test}.ndjson``: 650 / 50 / 100 per class, 13,000 / 1,000 /
2,000 over 20 classes. The class is the file name (the records have no ``word``). SPG-20 is distributed in the
SketchGNN repository (github.com/sYeaLumin/SketchGNN), whose own layout is read as it is: a clone, or its
``data/`` folder, with ``SPG/<class>_raw.ndjson`` and ``SPG256/train/<class>_{train,valid,test}.ndjson``::

    python -m data_prep.spg ../shared/data/spg20 prepared/spg20       # raw/ and splits/
    python -m data_prep.spg SketchGNN prepared/spg20                  # a clone of SketchGNN
"""

from __future__ import annotations

import sys
from pathlib import Path

from data_prep import add_prepare_options, existing_folder, preprocessing_of, resume_note, run_script, script_parser
from sketchgraph.data import PreparedInfo, prepare
from sketchgraph.preprocess import Preprocessing

__all__ = ["EXPECTED_SPLITS", "LAYOUTS", "spg_files", "prepare_spg", "main"]

EXPECTED_SPLITS = {"train": 13000, "valid": 1000, "test": 2000}
PARTIAL_RESULT = ("A folder with fewer classes or sketches (a subset of SPG-20) is still prepared, but with a warning "
                  "and exit status 1: the result is not SPG-20's published 13,000 / 1,000 / 2,000 over 20 classes, "
                  "so its scores do not compare with the paper's.")
"""What ``--help`` says about a result that is not the whole SPG-20."""
LAYOUTS = (("raw", "splits"), ("SPG", "SPG256/train"), ("data/SPG", "data/SPG256/train"))
"""(raw folder, split folder) under the root: ours, SketchGNN's ``data/``, a clone of SketchGNN."""


def spg_files(root: str | Path) -> tuple[list[Path], list[Path]]:
    """``(raw files, split files)`` of the SPG folder ``root``, in any of the ``LAYOUTS``. Only the
    ``_train`` / ``_valid`` / ``_test`` split files are taken (SketchGNN's folder also holds ``_res`` files)."""
    root = existing_folder(root, "the SPG-20 folder: raw/ and splits/, or a clone of github.com/sYeaLumin/SketchGNN")
    for raw_dir, split_dir in LAYOUTS:
        raw = sorted((root / raw_dir).glob("*_raw.ndjson"))
        splits = sorted(p for split in EXPECTED_SPLITS for p in (root / split_dir).glob(f"*_{split}.ndjson"))
        if raw and splits:
            return raw, splits
    wanted = " or ".join(f"{r}/<class>_raw.ndjson with {s}/<class>_<split>.ndjson" for r, s in LAYOUTS)
    raise FileNotFoundError(f"{root} does not look like SPG: expected {wanted}")


def prepare_spg(root: str | Path, out: str | Path, *, preprocessing: Preprocessing = Preprocessing(),
                workers: int = 2, overwrite: bool = False, progress: bool = True, resume: bool = True) -> PreparedInfo:
    """Prepare SPG-20 from ``root`` (see ``spg_files``) into ``out``."""
    raw, splits = spg_files(root)
    return prepare(raw, out, preprocessing=preprocessing, split_files=splits, format="spg",
                   workers=workers, overwrite=overwrite, progress=progress, resume=resume)


def main(argv: list[str] | None = None) -> int:
    p = script_parser("python -m data_prep.spg", __doc__.splitlines()[0] + " " + PARTIAL_RESULT)
    p.add_argument("root", help="the SPG folder: raw/ and splits/, or a clone of SketchGNN (or its data/ folder)")
    p.add_argument("out", help="the prepared dataset directory to create")
    add_prepare_options(p, point_cap=True)
    args = p.parse_args(argv)

    def body() -> int:
        info = prepare_spg(args.root, args.out, preprocessing=preprocessing_of(args),
                           workers=args.workers, overwrite=args.overwrite, resume=args.resume)
        if info.splits != EXPECTED_SPLITS or len(info.classes) != 20:
            print(f"warning: expected {EXPECTED_SPLITS} over 20 classes, got {info.splits} over "
                  f"{len(info.classes)} classes (prepared in {info.path}, but it is not SPG-20)", file=sys.stderr)
            return 1
        return 0

    return run_script(p.prog, body, interrupted=resume_note(args.out, resume=args.resume))


if __name__ == "__main__":
    raise SystemExit(main())
