"""Training curves (``sketchgraph.curves``, ``sketchgraph curves``): a run's metrics.jsonl drawn as it is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sketchgraph.curves import best_epoch, plot_curves, read_metrics

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def write_run(folder: Path, records: list[dict], extra: str = "") -> Path:
    """A run folder holding ``records`` as its metrics.jsonl (and ``extra`` appended as it is)."""
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + extra)
    return folder


def epochs(n: int, peak: int, seed: int = 0) -> list[dict]:
    """``n`` epochs whose valid top-1 peaks at ``peak`` (and repeats that value once after it, a tie)."""
    rng = np.random.default_rng(seed)
    top1 = [0.5 + 0.4 * min(e, peak) / peak - (0.1 if e > peak + 1 else 0.0) for e in range(1, n + 1)]
    return [{"epoch": e, "train_loss": float(2.0 / e), "train_acc": float(rng.uniform(0.3, 1.0)),
             "valid_loss": float(2.5 / e), "valid_top1": top1[e - 1], "valid_top5": 1.0, "time_s": 0.5}
            for e in range(1, n + 1)]


def lines_by_gid(fig) -> dict[str, tuple[list, list]]:
    return {line.get_gid(): (list(line.get_xdata()), list(line.get_ydata())) for ax in fig.axes
            for line in ax.get_lines()}


def test_read_metrics_takes_a_run_folder_or_its_file_in_epoch_order(tmp_path):
    records = epochs(4, 2)
    run = write_run(tmp_path / "r", [records[2], records[0], records[3], records[1]], extra="\n")
    assert read_metrics(run) == records == read_metrics(run / "metrics.jsonl")


@pytest.mark.parametrize("content, message", [
    ('{"epoch": 1}\nnot json\n', r":2: not JSON \(Expecting value\)$"),
    ('{"epoch": 1}\n[1, 2]\n', r":2: not an epoch's record \(a JSON object with an integer 'epoch'\)$"),
    ('{"epoch": true}\n', r":1: not an epoch's record"),
    ("", r"holds no epoch: the run stopped before its first epoch ended$"),
])
def test_read_metrics_names_the_line_that_is_not_an_epoch(tmp_path, content, message):
    (tmp_path / "metrics.jsonl").write_text(content)
    with pytest.raises(ValueError, match=message):
        read_metrics(tmp_path)


def test_read_metrics_says_what_a_run_folder_is(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^no metrics.jsonl in .*: name the folder a `sketchgraph train` "):
        read_metrics(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^no such run folder or metrics.jsonl file: .*nope$"):
        read_metrics(tmp_path / "nope")


def test_best_epoch_is_the_first_highest_valid_top1_as_best_holds_it():
    records = epochs(6, 3)
    assert records[2]["valid_top1"] == records[3]["valid_top1"]  # a tie: the first is best/'s
    assert best_epoch(records)["epoch"] == 3
    assert best_epoch([{"epoch": 1, "valid_top1": float("nan")}, {"epoch": 2}]) is None


def test_plot_curves_draws_each_runs_records_as_they_are(tmp_path):
    """Every curve holds exactly its run's values by epoch; the best epoch is marked; each run has its colour."""
    a, b = epochs(5, 2, seed=1), epochs(3, 3, seed=2)
    runs = [write_run(tmp_path / "a", a), write_run(tmp_path / "b", b)]
    fig = plot_curves(runs, tmp_path / "curves.png")
    drawn = lines_by_gid(fig)
    for name, records in (("a", a), ("b", b)):
        for key in ("train_loss", "valid_loss", "valid_top1", "train_acc"):
            assert drawn[f"{name}:{key}"] == ([r["epoch"] for r in records], [r[key] for r in records])
    assert drawn["a:best"] == ([2], [a[1]["valid_top1"]]) and drawn["b:best"] == ([3], [b[2]["valid_top1"]])
    loss_ax, acc_ax = fig.axes[:2]
    assert {line.get_gid().split(":")[1] for line in loss_ax.get_lines()} == {"train_loss", "valid_loss"}
    colours = {line.get_gid(): line.get_color() for ax in fig.axes for line in ax.get_lines()}
    assert colours["a:train_loss"] == colours["a:best"] != colours["b:train_loss"]
    assert "a: best, epoch 2 (90.00%)" in [t.get_text() for t in acc_ax.get_legend().get_texts()]
    with Image.open(tmp_path / "curves.png") as image:
        assert image.format == "PNG" and image.size == (1000, 400)


def test_plot_curves_checks_its_output_and_labels_before_reading(tmp_path):
    run = write_run(tmp_path / "r", epochs(2, 1))
    with pytest.raises(ValueError, match=r"'\.txt' is no figure format"):
        plot_curves(tmp_path / "missing", tmp_path / "curves.txt")  # the suffix, not the missing run
    with pytest.raises(ValueError, match=r"^2 labels for 1 runs: give one per run$"):
        plot_curves(run, labels=["x", "y"])
    with pytest.raises(ValueError, match=r"^no run to plot"):
        plot_curves([])
    assert lines_by_gid(plot_curves(run, labels=["mine"]))["mine:valid_top1"][0] == [1, 2]


def test_cli_curves_of_a_training_run(easy_prepared, tmp_path, capsys, monkeypatch):
    """``sketchgraph curves`` on the folder ``sketchgraph train`` wrote: the figure, and each run's best epoch as its
    summary.json gives it."""
    from sketchgraph.cli import main

    out = tmp_path / "run"
    assert main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs",
                 "3", "--no-progress"]) == 0
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    monkeypatch.chdir(tmp_path)
    assert main(["curves", str(out)]) == 0
    assert capsys.readouterr().out == (f"{out}: 3 epochs, best valid top-1 {summary['best_valid_top1']:.2%} at epoch "
                                       f"{summary['best_epoch']}\nwrote curves.png\n")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert main(["curves", str(out), str(tmp_path / "nowhere"), "--out", "c.pdf"]) == 1
    assert capsys.readouterr().err == f"sketchgraph curves: error: no such run folder or metrics.jsonl file: " \
                                      f"{tmp_path / 'nowhere'}\n"
    assert not (tmp_path / "c.pdf").exists()
