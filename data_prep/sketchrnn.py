"""sketch-rnn stroke-3 ``.npz`` files -> a prepared dataset, keeping each file's train/valid/test.

The class of a file's drawings is the file name (``cat.npz`` -> ``cat``, ``aaron_sheep.npz`` ->
``aaron_sheep``); Google's per-class Quick, Draw! ``.npz`` files have this layout too. Offsets are
integrated into absolute coordinates and simplified (Google's procedure) into the 0..255 frame::

    python -m data_prep.sketchrnn ../shared/data/sketchrnn/aaron_sheep.npz prepared/sheep
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from data_prep import add_prepare_options, preprocessing_of, resume_note, run_script, script_parser
from sketchgraph.data import PreparedInfo, prepare
from sketchgraph.preprocess import Preprocessing

__all__ = ["prepare_sketchrnn", "main"]


def prepare_sketchrnn(files: Iterable[str | Path], out: str | Path, *, preprocessing: Preprocessing = Preprocessing(),
                      workers: int = 2, overwrite: bool = False, progress: bool = True,
                      resume: bool = True) -> PreparedInfo:
    """Prepare ``.npz`` files (each one class) into ``out``, splits from the files' own keys."""
    files = [Path(f) for f in files]
    if not files:
        raise ValueError("give one or more sketch-rnn .npz files")
    others = [str(f) for f in files if f.suffix.lower() != ".npz"]
    if others:
        raise ValueError(f"not a sketch-rnn .npz file: {', '.join(others[:3])}{' ...' if len(others) > 3 else ''} "
                         "(give the .npz files first, then the folder to create: FILE.npz ... OUT)")
    return prepare(files, out, preprocessing=preprocessing, split_files="auto", format="npz", workers=workers,
                   overwrite=overwrite, progress=progress, resume=resume)


def main(argv: list[str] | None = None) -> int:
    p = script_parser("python -m data_prep.sketchrnn", __doc__.splitlines()[0])
    p.add_argument("files", nargs="+", metavar="FILE.npz", help="sketch-rnn .npz files, one class each (its name)")
    p.add_argument("out", help="the prepared dataset directory to create")
    add_prepare_options(p, point_cap=True)
    args = p.parse_args(argv)
    return run_script(p.prog, lambda: prepare_sketchrnn(
        args.files, args.out, preprocessing=preprocessing_of(args),
        workers=args.workers, overwrite=args.overwrite, resume=args.resume,
    ), interrupted=resume_note(args.out, resume=args.resume))


if __name__ == "__main__":
    raise SystemExit(main())
