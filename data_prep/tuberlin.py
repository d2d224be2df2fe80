"""TU-Berlin (Eitz, Hays, Alexa 2012): ``ROOT/<class>/<n>.svg`` -> a prepared dataset.

The dataset has no official split; this applies a seeded per-class one (default 70 % / 10 % / 20 %,
i.e. 56 / 8 / 16 of the 80 sketches of each class; what rounding leaves goes to train). The SVG
paths (group transforms applied) are sampled to polylines by ``sketchgraph.formats`` and then
simplified with Google's procedure into the 0..255 frame::

    python -m data_prep.tuberlin path/to/tuberlin_svg prepared/tuberlin --seed 0
"""

from __future__ import annotations

from pathlib import Path

from data_prep import add_prepare_options, existing_folder, preprocessing_of, resume_note, run_script, script_parser
from sketchgraph.data import PreparedInfo, prepare
from sketchgraph.preprocess import Preprocessing

__all__ = ["DEFAULT_PROTOCOL", "prepare_tuberlin", "main"]

DEFAULT_PROTOCOL = "train=0.7,valid=0.1,test=0.2"


def prepare_tuberlin(root: str | Path, out: str | Path, *, protocol: str | dict = DEFAULT_PROTOCOL, seed: int = 0,
                     preprocessing: Preprocessing = Preprocessing(), workers: int = 2, overwrite: bool = False,
                     progress: bool = True, resume: bool = True) -> PreparedInfo:
    """Prepare the class folders of SVGs under ``root`` into ``out`` with a seeded per-class split."""
    root = existing_folder(root, "TU-Berlin's class folders of SVG files")
    if not any(root.glob("*/*.svg")):
        raise FileNotFoundError(f"{root} holds no <class>/<n>.svg files")
    return prepare([root], out, preprocessing=preprocessing, protocol=protocol, seed=seed, format="svg",
                   workers=workers, overwrite=overwrite, progress=progress, resume=resume)


def main(argv: list[str] | None = None) -> int:
    p = script_parser("python -m data_prep.tuberlin", __doc__.splitlines()[0])
    p.add_argument("root", help="folder of class folders of SVG files")
    p.add_argument("out", help="the prepared dataset directory to create")
    p.add_argument("--protocol", default=DEFAULT_PROTOCOL, help="per-class split (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of the per-class split (default %(default)s)")
    add_prepare_options(p, point_cap=True)
    args = p.parse_args(argv)
    return run_script(p.prog, lambda: prepare_tuberlin(
        args.root, args.out, protocol=args.protocol, seed=args.seed,
        preprocessing=preprocessing_of(args), workers=args.workers,
        overwrite=args.overwrite, resume=args.resume,
    ), interrupted=resume_note(args.out, resume=args.resume))


if __name__ == "__main__":
    raise SystemExit(main())
