"""``sketchgraph prepare``: the command-line face of ``prepare``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import SketchError
from ..formats import FORMATS
from ..graph import RELATIONS, GraphSpec
from ..options import add_point_cap_options, float_option, int_option
from ..preprocess import Preprocessing
from .pipeline import prepare, resume_note
from .splits import PROTOCOLS, Protocol, parse_protocol

__all__ = ["configure_parser", "run_cli"]


def _relations(text: str) -> tuple[str, ...]:
    rels = tuple(r.strip() for r in text.split(",") if r.strip())
    try:
        GraphSpec(rels)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return rels


def _protocol(text: str):
    try:
        return parse_protocol(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="sketch files or folders, walked recursively (gzip-compressed ndjson/JSON included; an .npz "
                        "only when named; another prepared dataset or DIR.partial inside is left out, and said so)")
    p.add_argument("--out", required=True, metavar="DIR", help="the prepared dataset directory to create")
    p.add_argument("--format", choices=FORMATS, help="force the input format (default: sniffed per file)")
    p.add_argument("--split-files", metavar="DIR",
                   help="assign splits by key_id from the <class>_<split>.ndjson files in DIR; 'auto' = by the "
                        "inputs' own file names (default: by file name when every input's name ends in _train, _valid "
                        "or _test, or is an .npz, which keeps its own train/valid/test arrays; one split 'all' when "
                        "none does; a mix is refused before anything is read)")
    p.add_argument("--protocol", type=_protocol, metavar="SPEC",
                   help=f"per-class seeded sample: {', '.join(PROTOCOLS)} or e.g. train=650,valid=50,test=100 "
                        "(default: none: every sketch read is kept; splits as --split-files says); not with "
                        "--split-files")
    p.add_argument("--no-simplify", action="store_true",
                   help="skip Google's simplification (inputs already simplified); still normalised to 0..255")
    p.add_argument("--epsilon", type=float_option(0), default=Preprocessing().epsilon,
                   help="RDP tolerance, a number >= 0 (default %(default)s)")
    add_point_cap_options(p, Preprocessing().max_points, simplify_option="--no-simplify")
    p.add_argument("--relations", type=_relations, default=GraphSpec().relations,
                   help=f"comma-separated, from {', '.join(RELATIONS)} (default: {','.join(GraphSpec().relations)}): "
                        "recorded in meta.json as the relation masks the Python API's make_loader(split) builds when "
                        "given none. sketchgraph train and evaluate do not use it: they build the model's own "
                        "relations (its preset's, recorded in the checkpoint)")
    p.add_argument("--workers", type=int_option(1), default=2,
                   help="worker processes; 1 reads in this process (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="protocol seed (default %(default)s)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing prepared dataset at --out")
    p.add_argument("--no-resume", action="store_true", help="ignore the shards of an interrupted run")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")


def run_cli(args: argparse.Namespace) -> int:
    """Run ``sketchgraph prepare``: 0 when a dataset was written. A refusal after reading (``SketchError``) is
    raised again with the user's ``--protocol`` named as given and a note on the work folder it leaves."""
    try:
        info = _run(args)
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM: the CLI prints it; say what is kept, as data_prep does
        out = Path(args.out)
        if not out.with_name(out.name + ".partial").is_dir():  # stopped before anything was read
            raise
        said = str(exc.args[0]) if exc.args else "interrupted"
        raise KeyboardInterrupt(f"{said} ({resume_note(out, resume=not args.no_resume)})") from None
    except FileExistsError as exc:
        print(f"sketchgraph prepare: error: {exc}", file=sys.stderr)
        return 1
    except SketchError as exc:
        raise SketchError(_explained(str(exc), args.protocol)) from None
    if not info.num_sketches:
        return 1
    from ..formats.base import BROKEN_LINK
    from ..wording import counted
    from .pipeline import barren_inputs

    unread = info.counts.get("unreadable", 0)
    lost = [f"{unread:,} {'file or part of a file' if unread == 1 else 'files or parts of files'} could not be read "
            "at all"] if unread else []
    barren = barren_inputs(info)
    lost += [f"{counted(len(barren), 'input file')} gave no sketch"] if barren else []
    broken = [entry for entry in info.meta.get("left_out", []) if entry.get("reason", "").startswith(BROKEN_LINK)]
    lost += [f"{counted(len(broken), 'broken link')} in the input folders"] if broken else []
    if lost:  # a class may be missing: a script running prepare && train should stop and look
        print(f"sketchgraph prepare: {' and '.join(lost)} (named in the summary above, and in "
              f"{Path(args.out) / 'meta.json'}); the dataset was written with the rest: exit status 1",
              file=sys.stderr)
        return 1
    return 0


def _explained(message: str, protocol: Protocol | None) -> str:
    """``message`` with its ``protocol SIZES`` said as the ``--protocol`` option given (``prepare`` itself says
    what a refusal leaves in ``OUT.partial``)."""
    if protocol is not None and message.startswith(f"protocol {protocol.text} needs "):
        message = "--" + message
    return message


def _run(args: argparse.Namespace):
    return prepare(
        args.inputs, args.out,
        preprocessing=Preprocessing(simplify=not args.no_simplify, epsilon=args.epsilon, max_points=args.max_points,
                                    cap=args.cap),
        graph_spec=GraphSpec(args.relations),
        split_files=args.split_files,
        protocol=args.protocol,
        seed=args.seed,
        workers=args.workers,
        resume=not args.no_resume,
        overwrite=args.overwrite,
        format=args.format,
        progress=not args.quiet,
    )
