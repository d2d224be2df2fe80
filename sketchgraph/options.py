"""argparse types shared by the command lines: a bad value is a usage error (exit status 2, before anything
loads) that argparse prefixes with the option's name (``argument --top-k: expected a positive integer, got '0'``)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["float_option", "int_option", "add_point_cap_options"]


def int_option(lo: int, hi: int | None = None, note: str = "") -> Callable[[str], int]:
    """The type of an integer option in ``[lo, hi]`` (``hi=None``: no upper bound); ``note`` is added to the
    wording of the range (``" (0: all)"``)."""
    if hi is not None:
        wanted = f"an integer in {lo}..{hi}"
    else:
        wanted = {1: "a positive integer", 0: "an integer >= 0"}.get(lo, f"an integer >= {lo}")

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"expected {wanted}{note}, got {text!r}")
        return value

    return parse


def float_option(lo: float = 0.0, *, above: bool = False) -> Callable[[str], float]:
    """The type of a finite number option ``>= lo`` (``> lo`` with ``above``)."""
    wanted = f"a finite number {'>' if above else '>='} {lo:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value > lo if above else value >= lo)):
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    return parse


def add_point_cap_options(p: argparse.ArgumentParser, max_points: int, *, simplify_option: str | None = None,
                          count: Callable[[str], int] = int_option(1)) -> None:
    """``--cap`` and ``--max-points`` (default ``max_points``), as ``Preprocessing(cap=, max_points=)`` takes them:
    ``sketchgraph prepare``'s and the ``data_prep`` scripts'. ``simplify_option``: the parser's option that turns
    the simplification off, which ``--cap adapt`` needs (named in its help). ``count``: the argparse type of
    ``--max-points`` (a parser's own wording of a positive whole number)."""
    needs = f"; adapt needs the simplification: not with {simplify_option}" if simplify_option else ""
    p.add_argument("--cap", choices=("truncate", "adapt"), default="truncate",
                   help="over the point cap: truncate (the paper) or re-simplify coarser until it fits "
                        f"(default %(default)s{needs})")
    p.add_argument("--max-points", type=count, default=max_points,
                   help="point cap per sketch (default %(default)s): a longer drawing is truncated to it, or "
                        "simplified again, coarser, with --cap adapt")
