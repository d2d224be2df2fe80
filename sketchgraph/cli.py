"""The ``sketchgraph`` console script (``DESCRIPTION`` is what ``sketchgraph --help`` says about it).

Each subcommand lives in the module that owns its concept; that module defines
``configure_parser(parser)`` and ``run_cli(args) -> int``. This file only dispatches, importing the
module lazily so ``sketchgraph --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import NoReturn

os.environ.setdefault("DGLBACKEND", "pytorch")

DESCRIPTION = "Recognise free-hand sketches as graphs with the Multi-Graph Transformer (MGT)."

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("sketchgraph.data", "turn sketch files into a prepared (memory-mapped) dataset"),
    "train": ("sketchgraph.train", "train a model on a prepared dataset"),
    "evaluate": ("sketchgraph.evaluate", "evaluate a checkpoint on a prepared dataset split or labelled sketch files"),
    "predict": ("sketchgraph.predict", "classify sketch files with a checkpoint"),
    "serve": ("sketchgraph.serve.app", "HTTP service with a drawing page"),
    "export": ("sketchgraph.export", "export a checkpoint to ONNX or TorchScript"),
    "demo": ("sketchgraph.demo", "classify and draw the project's example sketches"),
    "curves": ("sketchgraph.curves", "draw training runs' loss and accuracy by epoch"),
}


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` (and so each subcommand's, ``add_subparsers`` making them of this class) whose usage
    errors a command may explain further: its ``configure_parser`` sets ``error_hint``, ``(message, argv) ->
    message``, given the command line parsed (``argv``, set by ``build_parser``)."""

    error_hint: Callable[[str, list[str]], str] | None = None
    argv: list[str] = []

    def error(self, message: str) -> NoReturn:
        if self.error_hint is not None:
            message = self.error_hint(message, self.argv)
        super().error(message)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` (or all, when ``argv`` is None) gets its
    options, so unrelated modules are not imported."""
    from . import __version__

    parser = _Parser(prog="sketchgraph", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"sketchgraph {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.commands = {}
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module)
        parser.commands[name] = p
        if argv is None or name in argv:
            importlib.import_module(module).configure_parser(p)
            p.argv = list(argv or [])
    return parser


def parse_command_line(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``, but words no option takes are reported by the subcommand's parser: its usage,
    not the top-level one, and its ``error_hint`` (``evaluate --exclude-key-ids DIR/*_train.ndjson``, a glob the
    shell expanded, left all but one file over)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = getattr(parser, "commands", {}).get(getattr(args, "command", None), parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _quiet_stdout() -> None:
    """Point stdout at ``os.devnull``, so the interpreter's flush at exit does not fail again on a closed pipe."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (a test's capture): nothing will flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _error_prefix(command: str) -> str:
    """``sketchgraph COMMAND: error:``; under torchrun with several processes, each of which reports its own error
    (usually the same one), ``sketchgraph COMMAND: error (rank 1 of 2):``, so the copies read as what they are."""
    world, rank = os.environ.get("WORLD_SIZE", ""), os.environ.get("RANK", "")
    if world.isdigit() and rank.isdigit() and int(world) > 1:
        return f"sketchgraph {command}: error (rank {rank} of {world}):"
    return f"sketchgraph {command}: error:"


def _interrupt_prefix(command: str) -> str:
    """``sketchgraph COMMAND:``, with ``(rank R of W)`` under torchrun with several processes (as ``_error_prefix``)."""
    return _error_prefix(command).replace(": error (", " (").replace(": error:", ":")


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; its exit status. Bad input is one ``sketchgraph COMMAND: error: ...`` line on stderr;
    a reader that closes the output early (``| head``) ends the run quietly with status 1, as Python advises. Ctrl-C
    is one line, ``sketchgraph COMMAND: interrupted`` (``train`` says in which epoch and how to continue), and status
    130 (128 + SIGINT), without a traceback; SIGTERM is handled the same way (``sketchgraph.signals``), with status
    143."""
    console = argv is None  # the console script itself, not a call from Python
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parse_command_line(parser, argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    from .errors import CheckpointError, MissingExtraError, SketchError
    from .signals import sigterm_as_interrupt

    received = None
    try:
        with sigterm_as_interrupt() as received:  # SIGTERM (kill, timeout, Slurm) is handled as Ctrl-C is
            status = int(importlib.import_module(args._module).run_cli(args) or 0)
            sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return status
    except KeyboardInterrupt as exc:
        if os.environ.get("SKETCHGRAPH_DEBUG"):
            raise
        said = str(exc.args[0]) if exc.args else "interrupted"
        print(f"{_interrupt_prefix(args.command)} {said}", file=sys.stderr)
        return received.status(130) if received is not None else 130
    except BrokenPipeError as exc:
        if os.environ.get("SKETCHGRAPH_DEBUG"):
            raise
        if exc.filename is not None:  # a named file or pipe: a real error
            print(f"{_error_prefix(args.command)} {exc}", file=sys.stderr)
        elif console:  # the reader of stdout has gone (`| head`): the interpreter's last flush must not fail again
            _quiet_stdout()
        return 1
    except (SketchError, CheckpointError, OSError) as exc:  # bad input: the message says what is wrong
        print(f"{_error_prefix(args.command)} {exc}", file=sys.stderr)
        return 1
    except (ValueError, KeyError, MissingExtraError) as exc:  # a bad option value, a missing extra: the message says
        if os.environ.get("SKETCHGRAPH_DEBUG"):
            raise
        print(f"{_error_prefix(args.command)} {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 1
    except (TypeError, RuntimeError) as exc:  # e.g. an unknown model field, a device torch cannot use
        if os.environ.get("SKETCHGRAPH_DEBUG"):
            raise
        print(f"{_error_prefix(args.command)} {type(exc).__name__}: {exc} (SKETCHGRAPH_DEBUG=1 shows the "
              "traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
