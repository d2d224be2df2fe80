"""Training curves: a run's ``metrics.jsonl`` (one JSON line per epoch, written by ``sketchgraph train``) as a figure.

    sketchgraph curves runs/spg20                          # writes curves.png
    sketchgraph curves runs/a runs/b --out ablation.pdf    # several runs on one figure, to compare them

Two panels share the epoch axis: the loss (train solid, valid dashed) and the accuracy (valid top-1 solid, train
dashed), one colour per run, each run's best epoch (its first highest valid top-1, the epoch ``best/`` holds)
marked with a dot. ``plot_curves`` does the same from Python.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["read_metrics", "best_epoch", "plot_curves"]

METRICS = "metrics.jsonl"
SIZE = (10.0, 4.0)  # inches, both panels
DPI = 100


def read_metrics(run: str | os.PathLike) -> list[dict[str, Any]]:
    """The epoch records of a run: ``RUN/metrics.jsonl`` (or that file named itself), in epoch order.

    Raises:
        FileNotFoundError: no such folder or file, or a folder without ``metrics.jsonl``.
        ValueError: a line that is not a JSON object with an integer ``epoch`` (naming the file and line), or a
            file without any epoch (the run stopped before its first one ended).
    """
    path = Path(run).expanduser()
    if path.is_dir():
        path = path / METRICS
        if not path.is_file():
            raise FileNotFoundError(f"no {METRICS} in {run}: name the folder a `sketchgraph train` run wrote "
                                    "(its --out)")
    elif not path.is_file():
        raise FileNotFoundError(f"no such run folder or {METRICS} file: {run}")
    records = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc.msg})") from None
            if not isinstance(record, dict) or isinstance(record.get("epoch"), bool) or not isinstance(
                    record.get("epoch"), int):
                raise ValueError(f"{path}:{number}: not an epoch's record (a JSON object with an integer 'epoch')")
            records.append(record)
    if not records:
        raise ValueError(f"{path} holds no epoch: the run stopped before its first epoch ended")
    return sorted(records, key=lambda r: r["epoch"])


def best_epoch(records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The record of the first epoch with the highest ``valid_top1`` (the one ``best/`` holds), or ``None`` when no
    record has a finite one."""
    scored = [r for r in records if _finite(r.get("valid_top1"))]
    return max(scored, key=lambda r: (r["valid_top1"], -r["epoch"])) if scored else None


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """The epochs and values of ``key`` where a record has a finite one."""
    kept = [(r["epoch"], float(r[key])) for r in records if _finite(r.get(key))]
    return [e for e, _ in kept], [v for _, v in kept]


def plot_curves(runs: str | os.PathLike | Sequence[str | os.PathLike], path: str | os.PathLike | None = None, *,
                labels: Sequence[str] | None = None, size: tuple[float, float] = SIZE, dpi: int = DPI) -> Figure:
    """The training curves of one run or several (each a run folder or its ``metrics.jsonl``).

    Args:
        runs: the runs, drawn in this order, one colour each.
        path: where to write the figure (``sketchgraph.viz.save_figure``: the suffix names the format; checked
            before anything is read or drawn).
        labels: the legend's name of each run (default: its folder's name).

    Returns:
        the ``Figure``: ``axes[0]`` the loss (``train_loss`` solid, ``valid_loss`` dashed), ``axes[1]`` the
        accuracy (``valid_top1`` solid, ``train_acc`` dashed), both by epoch; each run's best epoch
        (``best_epoch``) a dot on its valid top-1 curve.

    Raises:
        FileNotFoundError / ValueError: as ``read_metrics``; ``ValueError`` for no run, or ``labels`` of another
        length than ``runs``.
    """
    runs = [runs] if isinstance(runs, (str, os.PathLike)) else list(runs)
    target, names = _checked(runs, path, labels, "labels")
    return _draw([read_metrics(run) for run in runs], names, target, size, dpi)


def _checked(runs: Sequence[str | os.PathLike], path: str | os.PathLike | None, labels: Sequence[str] | None,
             option: str) -> tuple[Any, list[str]]:
    """Before anything is read: the figure's target (``viz.figure_target``; ``None`` without a ``path``) and the
    legend's name of each run (``labels``, else each run's folder name). ``ValueError`` for no run, or ``labels``
    (``option`` names them in the message) of another length than ``runs``."""
    from .viz import figure_target

    target = None if path is None else figure_target(path)
    if not runs:
        raise ValueError("no run to plot: name one or more run folders")
    if labels is not None and len(labels) != len(runs):
        raise ValueError(f"{len(labels)} {option} for {len(runs)} runs: give one per run")
    return target, list(labels) if labels is not None else [_run_name(run) for run in runs]


def _draw(histories: Sequence[Sequence[dict[str, Any]]], names: Sequence[str], target: Any,
          size: tuple[float, float], dpi: int) -> Figure:
    """``plot_curves``'s figure of the runs' records (``read_metrics``), written to ``target`` when given."""
    from matplotlib.figure import Figure

    from .viz import save_figure

    fig = Figure(figsize=size, layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    colours = [f"C{i % 10}" for i in range(len(histories))]
    for records, name, colour in zip(histories, names, colours):
        for ax, key, style in ((loss_ax, "train_loss", "-"), (loss_ax, "valid_loss", "--"),
                               (acc_ax, "valid_top1", "-"), (acc_ax, "train_acc", "--")):
            epochs, values = _series(records, key)
            if epochs:
                ax.plot(epochs, values, style, color=colour, marker="." if len(epochs) == 1 else None,
                        label=f"{name}: {key.replace('_', ' ')}", gid=f"{name}:{key}")
        best = best_epoch(records)
        if best is not None:
            acc_ax.plot([best["epoch"]], [best["valid_top1"]], "o", color=colour, gid=f"{name}:best",
                        label=f"{name}: best, epoch {best['epoch']} ({best['valid_top1']:.2%})")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0.0, 1.0))
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if target is not None:
        save_figure(fig, target, dpi)
    return fig


def _run_name(run: str | os.PathLike) -> str:
    """A run's name in the legend: its folder's (the folder holding ``metrics.jsonl`` when that file is named)."""
    path = Path(run).expanduser().resolve()
    return (path.parent if path.is_file() else path).name


def configure_parser(p: argparse.ArgumentParser) -> None:
    """``sketchgraph curves``'s arguments: ``RUN...``, ``--out``, ``--label``."""
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help=f"a folder `sketchgraph train` wrote (its --out), or its {METRICS}; several are drawn on "
                        "one figure")
    p.add_argument("--out", default="curves.png",
                   help="the figure to write; its suffix names the format (.png, .pdf, .svg, ...) (default "
                        "%(default)s)")
    p.add_argument("--label", action="append", metavar="NAME",
                   help="the legend's name of a run, once per run in order (default: each run's folder name)")


def run_cli(args: argparse.Namespace) -> int:
    """Draw the curves, then say each run's best epoch, and where the figure is."""
    target, names = _checked(args.runs, args.out, args.label, "--label")
    histories = [read_metrics(run) for run in args.runs]  # read once: drawn, then summed up
    _draw(histories, names, target, SIZE, DPI)
    for run, records in zip(args.runs, histories):
        best = best_epoch(records)
        said = (f"best valid top-1 {best['valid_top1']:.2%} at epoch {best['epoch']}" if best is not None
                else "no valid top-1 recorded")
        print(f"{run}: {len(records)} epochs, {said}")
    print(f"wrote {args.out}")
    return 0
