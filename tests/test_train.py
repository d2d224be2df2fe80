"""Training: config files and overrides, the learning-rate schedules, and runs on tiny synthetic data
(learning, exact resume after a kill, early stopping, the time budget, the CLI)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sketchgraph.augment import AugmentConfig
from sketchgraph.checkpoint import load_checkpoint, load_train_state
from sketchgraph.errors import CheckpointError
from sketchgraph.train import TrainConfig, apply_overrides, config_from_dict, learning_rate, load_train_config, train

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

# ------------------------------------------------------------------------------------------ config


@pytest.mark.parametrize("suffix,text", [
    (".toml", 'preset = "gt-full"\nlr = 1\nepochs = 7\n[augment]\nrotation = 5\n[model]\ndropout = 0.3\n'),
    (".json", '{"preset": "gt-full", "lr": 1, "epochs": 7, "augment": {"rotation": 5}, "model": {"dropout": 0.3}}'),
])
def test_config_files(tmp_path, suffix, text):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    cfg = load_train_config(path)
    assert (cfg.preset, cfg.lr, cfg.epochs, cfg.model) == ("gt-full", 1.0, 7, {"dropout": 0.3})
    assert isinstance(cfg.lr, float) and cfg.augment == AugmentConfig(rotation=5.0)
    assert cfg.batch_size == TrainConfig().batch_size  # untouched defaults


def test_yaml_config(tmp_path, monkeypatch):
    pytest.importorskip("yaml")  # in the dev extra
    path = tmp_path / "c.yaml"
    path.write_text("preset: gt-full\nepochs: 7\naugment:\n  rotation: 5\n")
    cfg = load_train_config(path)
    assert (cfg.preset, cfg.epochs, cfg.augment.rotation) == ("gt-full", 7, 5.0)
    monkeypatch.setitem(sys.modules, "yaml", None)  # as without pyyaml: a clear error naming the file
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: YAML configs need pyyaml"):
        load_train_config(path)


def test_overrides_are_typed_by_the_dataclass():
    cfg = apply_overrides(TrainConfig(), [
        "lr=2e-4", "epochs=12", "bf16=false", "preset=gt-stroke2", "augment.point_drop=0.1",
        "model.classifier=[64, 32]", "model.dropout=0.2", "out=runs/x", "max_time_minutes=3",
    ])
    assert (cfg.lr, cfg.epochs, cfg.bf16, cfg.preset, cfg.out, cfg.max_time_minutes) == (
        2e-4, 12, False, "gt-stroke2", "runs/x", 3.0)
    assert cfg.augment.point_drop == 0.1
    assert cfg.model == {"classifier": (64, 32), "dropout": 0.2}  # typed by MGTConfig's fields


@pytest.mark.parametrize("override,message", [
    ("lr", "not key=value"),
    ("learning_rate=1", "unknown setting"),
    ("augment.spin=3", r"unknown setting\(s\) \['augment.spin'\]"),
    ("nothere.x=3", "unknown setting 'nothere'"),
    ("epochs=1.5", "epochs must be an integer"),
    ("bf16=maybe", "bf16 must be true or false"),
    ("optimizer=sgd", "optimizer must be one of"),
    ("augment.point_drop=2", "probability"),
])
def test_bad_overrides_are_reported(override, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(TrainConfig(), [override])


@pytest.mark.parametrize("override, field, want", [
    ("out=1e3", "out", "1e3"),  # a text field takes the text as typed, not a number made text again
    ("out=0x1F", "out", "0x1F"),
    ('out="quoted"', "out", "quoted"),
    ("train_split=true", "train_split", "true"),
    ("bf16=1", "bf16", True),
    ("bf16=off", "bf16", False),
    ("lr=1e3", "lr", 1000.0),
])
def test_override_text_reaches_text_fields_unchanged(override, field, want):
    assert getattr(apply_overrides(TrainConfig(), [override]), field) == want


def test_config_round_trips_through_its_dict():
    cfg = apply_overrides(TrainConfig(), ["augment.rotation=10", "model.layers=2", "schedule=cosine"])
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_shipped_configs_load():
    for name in ("spg20", "tiny", "paper"):
        cfg = load_train_config(CONFIGS / f"{name}.toml")
        assert cfg.epochs >= 1


# ------------------------------------------------------------------------------------------ schedule


@pytest.mark.parametrize("epoch,expected", [(0, 1.0), (9, 1.0), (10, 0.7), (19, 0.7), (20, 0.49), (35, 0.343)])
def test_step_schedule_is_the_papers(epoch, expected):
    cfg = TrainConfig(lr=5e-5, schedule="step")
    assert learning_rate(cfg, epoch * 100 + 50, 100) == pytest.approx(5e-5 * expected)


def _official_mgt17_rate(epoch: int) -> float:
    """The official MGT #17 script's lr_protocol, written out as it is: (epoch bound, rate) pairs, the first
    bound above the 0-based epoch wins."""
    protocol = [(10 * (i + 1), 5e-5 * 0.7 ** i) for i in range(8)] + [(80 + 5 * i, 5e-5 * 0.7 ** (i + 7))
                                                                     for i in range(1, 5)]
    return next((rate for bound, rate in protocol if bound > epoch), protocol[-1][1])


def test_paper_config_follows_the_official_lr_protocol_for_every_epoch():
    cfg = load_train_config(CONFIGS / "paper.toml")
    assert cfg.step_milestones == (10, 20, 30, 40, 50, 60, 70, 80, 85, 90, 95) and cfg.bf16 is False
    for epoch in range(cfg.epochs):
        for step in (epoch * 7, epoch * 7 + 6):  # first and last step of the epoch (7 steps per epoch)
            assert learning_rate(cfg, step, 7) == pytest.approx(_official_mgt17_rate(epoch), rel=1e-12), epoch
    assert learning_rate(cfg, 99 * 7, 7) == pytest.approx(5e-5 * 0.7 ** 11)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.toml")), ids=lambda p: p.name)
def test_every_committed_config_loads_and_builds_its_model(path):
    from sketchgraph.model import build_model

    cfg = load_train_config(path)
    model = build_model(cfg.preset, num_classes=20, **cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    if path.name == "anchor.toml":  # the issue's anchor run: official architecture, small size, no augmentation
        assert sum(p.numel() for p in model.parameters()) == 2_490_964
        assert (cfg.optimizer, cfg.lr, cfg.schedule, cfg.batch_size, cfg.epochs) == ("adam", 1e-3, "cosine", 64, 11)
        assert cfg.augment == AugmentConfig() and cfg.label_smoothing == 0 and cfg.weight_decay == 0


def test_step_milestones_from_overrides_and_their_checks():
    cfg = apply_overrides(TrainConfig(), ["step_milestones=[2, 5]", "lr=1"])
    assert cfg.step_milestones == (2, 5)
    assert [learning_rate(cfg, e, 1) for e in range(7)] == pytest.approx([1, 1, 0.7, 0.7, 0.7, 0.49, 0.49])
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # a checkpoint's config.json
    for bad, message in [("[5, 2]", "increasing"), ("[0, 3]", ">= 1"), ("[3, 3]", "increasing"),
                         ("3", "must be a list"), ('["a"]', r"step_milestones\[0\] must be an integer")]:
        with pytest.raises(ValueError, match=message):
            apply_overrides(TrainConfig(), [f"step_milestones={bad}"])


@pytest.mark.parametrize("step,expected", [
    (0, 0.1), (4, 0.5), (9, 1.0),  # linear warm-up over 1 epoch of 10 steps
    (10, 1.0), (55, 0.1 + 0.9 * 0.5), (99, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 89 / 90))),
])
def test_cosine_schedule_with_warmup(step, expected):
    cfg = TrainConfig(lr=1.0, schedule="cosine", epochs=10, warmup_epochs=1, min_lr_ratio=0.1)
    assert learning_rate(cfg, step, 10) == pytest.approx(expected)


def test_weight_decay_only_on_matrices():
    from sketchgraph.train import _make_optimizer

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    opt = _make_optimizer(TrainConfig(optimizer="adamw", weight_decay=0.1), model)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]}
    assert decayed == {id(model[0].weight)}
    assert isinstance(opt, torch.optim.AdamW)


# ------------------------------------------------------------------------------------------ runs


def tiny(data: Path, out: Path, *overrides: str) -> TrainConfig:
    return load_train_config(CONFIGS / "tiny.toml", [f"data={data}", f"out={out}", "progress=false", *overrides])


def test_a_dataset_of_one_class_is_refused(tmp_path):
    """A one-class dataset (sketch-rnn's aaron_sheep prepared as it is) "trained" to loss 0 and valid top-1 100%, a
    model answering its class for every drawing, without a word."""
    from sketchgraph.data import prepare
    from sketchgraph.synthetic import write_dataset

    write_dataset(tmp_path / "raw", 12, seed=0, splits={"train": 8, "valid": 2, "test": 2}, classes=["circle"])
    prepare(tmp_path / "raw", tmp_path / "one", workers=1, progress=False)
    with pytest.raises(ValueError, match=r"holds 1 class \(circle\): a classifier needs at least two"):
        train(tiny(tmp_path / "one", tmp_path / "run"))
    assert not (tmp_path / "run" / "best").exists()


def test_the_epoch_line_leaves_out_top5_for_five_classes_or_fewer():
    """With 5 classes or fewer the top-5 is 1 by definition: the log line printed "top-5 1.0000" (evaluate's summary
    leaves such a k out)."""
    from sketchgraph.train import _top5_shown

    metrics = {"valid_top5": 0.98765}
    assert _top5_shown(metrics, 4) == _top5_shown(metrics, 5) == ""
    assert _top5_shown(metrics, 6) == " top-5 0.9877"


def test_smoke_learns_easy_synthetic_classes(easy_prepared, tmp_path):
    t0 = time.perf_counter()
    result = train(tiny(easy_prepared, tmp_path / "run"))
    seconds = time.perf_counter() - t0
    assert result.best_valid_top1 > 0.9, result.history
    assert seconds < 20
    assert result.stop_reason == "completed" and result.epochs == 12

    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 13))
    assert {"train_loss", "train_acc", "valid_top1", "valid_top5", "lr", "time_s", "sketches_per_s"} <= rows[0].keys()
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]

    model, config = load_checkpoint(tmp_path / "run" / "best")
    assert config["metrics"]["epoch"] == result.best_epoch
    assert config["metrics"]["valid_top1"] == result.best_valid_top1 == max(r["valid_top1"] for r in rows)
    assert config["classes"] == ["circle", "cross", "square", "zigzag"]
    assert config["training"]["config"]["preset"] == "mgt" and config["training"]["epochs"] == result.best_epoch
    assert config["graph_spec"]["relations"] == ["stroke1", "stroke2", "temporal"]
    from sketchgraph.evaluate import evaluate

    report = evaluate(tmp_path / "run" / "best", easy_prepared, "valid", progress=False)
    assert report["top1"] == pytest.approx(result.best_valid_top1)


@pytest.mark.filterwarnings("ignore:.*no native bfloat16:RuntimeWarning")
def test_bf16_autocast_on_cpu_learns(easy_prepared, tmp_path):
    cfg = tiny(easy_prepared, tmp_path / "run", "bf16_cpu=true")
    from sketchgraph.train import Trainer

    run = Trainer(cfg, command=None)
    batch = next(iter(run.loader(run.train_split, 1, train=True)))
    loss, logits = run.train_step(batch)
    run.ctx.close()
    assert run.bf16 and logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert train(cfg).best_valid_top1 > 0.85


@pytest.mark.parametrize("machine, avx512_bf16, amx, onednn, native", [
    ("x86_64", False, False, True, False),  # AVX-512 without BF16 (Skylake, Cascade Lake): oneDNN says yes
    ("x86_64", True, False, False, True), ("AMD64", False, True, False, True),
    ("aarch64", False, False, True, True), ("aarch64", False, False, False, False),  # ARM: oneDNN's check
])
def test_native_bf16_on_cpu_needs_the_bf16_instructions(monkeypatch, machine, avx512_bf16, amx, onednn, native):
    """oneDNN's check is true on every AVX-512 CPU, so bfloat16 ran emulated there without the warning; on x86 the
    AVX512-BF16 / AMX checks decide, elsewhere oneDNN's."""
    import warnings

    from sketchgraph.model import precision

    monkeypatch.setattr(precision.platform, "machine", lambda: machine)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(precision, "_onednn_bf16", lambda: onednn)
    assert precision.native_bf16("cpu") is native
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert precision.warn_if_emulated_bf16("cpu", "bf16 autocast on cpu") is native
    assert [str(w.message).split(":")[0] for w in caught] == ([] if native else ["bf16 autocast on cpu"])


@pytest.mark.parametrize("ampere", [False, True])
def test_native_bf16_on_cuda_does_not_count_emulation(monkeypatch, ampere):
    """``torch.cuda.is_bf16_supported()`` counts emulation by default, so a V100 / T4 passed and bf16 (on by default
    for CUDA) ran emulated without the warning."""
    from sketchgraph.model import precision

    asked = []

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        asked.append(including_emulation)
        return ampere or including_emulation  # a pre-Ampere GPU emulates bfloat16

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    assert precision.native_bf16("cuda") is ampere and asked == [False]


@pytest.mark.parametrize("major", [7, 8])
def test_native_bf16_on_cuda_with_a_torch_without_the_emulation_keyword(monkeypatch, major):
    """pyproject allows an older torch whose is_bf16_supported takes no including_emulation: the compute capability
    decides instead of a TypeError."""
    from sketchgraph.model import precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)  # the old signature: emulation counted
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, 0))
    monkeypatch.setattr(torch.version, "hip", None)
    assert precision.native_bf16("cuda") is (major >= 8)


class Killed(Exception):
    pass


@pytest.mark.parametrize("schedule,bucket,kill_at", [
    ("step", 1, "epoch_end"), ("cosine", 1, "epoch_end"), ("cosine", 4, "epoch_end"),
    ("cosine", 4, "mid_epoch"),  # killed at step 6 of epoch 3: its 5 steps are lost, the epoch runs again
])
def test_resume_after_a_kill_is_exact(easy_prepared, tmp_path, monkeypatch, schedule, bucket, kill_at):
    """3 epochs straight == 2 epochs, killed (after epoch 2's checkpoints, or in the middle of epoch 3), then
    resumed to 3 (dropout, augmentation, bucketing on): bit-identical weights and metrics."""
    from sketchgraph.train import Trainer

    cfg = tiny(easy_prepared, tmp_path, "epochs=3", "batch_size=32", f"schedule={schedule}", "step_every=1",
               f"bucket={bucket}",
               "model.dropout=0.2", "augment.affine_prob=0.5", "augment.rotation=10", "augment.point_drop=0.1")
    straight = train(dataclasses.replace(cfg, out=str(tmp_path / "a")))

    def kill(metrics):
        if metrics["epoch"] == 2:
            raise Killed

    real_step, steps = Trainer.train_step, []

    def step_then_die(self, batch):
        steps.append(1)
        if len(steps) == 2 * 12 + 6:  # 12 steps per epoch (384 sketches, batch 32)
            raise Killed
        return real_step(self, batch)

    with pytest.raises(Killed), monkeypatch.context() as mp:
        if kill_at == "mid_epoch":
            mp.setattr(Trainer, "train_step", step_then_die)
        train(dataclasses.replace(cfg, out=str(tmp_path / "b")), on_epoch_end=kill if kill_at == "epoch_end" else None)
    assert load_train_state(tmp_path / "b" / "last").epoch == 2
    resumed = train(dataclasses.replace(cfg, out=str(tmp_path / "b"), resume=True))

    wa = load_file(str(tmp_path / "a" / "last" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "last" / "model.safetensors"))
    assert wa.keys() == wb.keys()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # exactly, not within a tolerance
    timing = {"time_s", "train_time_s", "sketches_per_s"}
    drop = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert drop(resumed.history) == drop(straight.history)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]


def test_resume_of_a_finished_run_does_nothing(easy_prepared, tmp_path):
    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=1", "batch_size=64")
    train(cfg)
    again = train(dataclasses.replace(cfg, resume=True))
    assert (again.stop_reason, again.epochs, len(again.history)) == ("already_done", 1, 1)
    # summary.json keeps why the run stopped (it used to say already_done); the invocation that did nothing is noted
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (summary["stop_reason"], summary["last_invocation"], summary["epochs"], summary["epochs_this_invocation"]) \
        == ("completed", "already_done", 1, 0)
    train(dataclasses.replace(cfg, resume=True))  # and again: still the run's own reason
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["stop_reason"] == "completed"
    (tmp_path / "r" / "summary.json").unlink()  # no earlier reason to keep (a kill after the last checkpoint)
    train(dataclasses.replace(cfg, resume=True))
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (summary["stop_reason"], summary["last_invocation"]) == ("already_done", "already_done")


def test_resume_refuses_another_dataset(easy_prepared, tmp_path):
    from sketchgraph.data import prepare
    from sketchgraph.synthetic import write_dataset

    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=1", "batch_size=64")
    train(cfg)
    write_dataset(tmp_path / "raw", 10, seed=1, splits={"train": 6, "valid": 2, "test": 2},
                  classes=["circle", "square", "zigzag", "cross"])
    other = prepare(tmp_path / "raw", tmp_path / "other", workers=1, progress=False).path
    with pytest.raises(CheckpointError, match="trained on another dataset .*splits differ"):
        train(dataclasses.replace(cfg, data=str(other), epochs=2, resume=True))


@pytest.mark.parametrize("scores, epochs, best_epoch, stop", [
    # patience 2: a score below the best counts; an equal score resets the count, as the official code's
    # EarlyStopping does (score < best -> counter + 1, else reset); best/ keeps the first epoch of a tie
    ([0.5, 0.5, 0.4, 0.5, 0.3, 0.2, 0.9], 6, 1, "early_stop"),
    ([0.5, 0.4, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6], 8, 3, "completed"),
    ([0.5, 0.4, 0.3, 0.9], 3, 1, "early_stop"),
])
def test_early_stopping(easy_prepared, tmp_path, monkeypatch, scores, epochs, best_epoch, stop):
    from sketchgraph.train import Trainer

    def scripted(self, epoch):
        return {"valid_loss": 1.0, "valid_top1": scores[epoch - 1], "valid_top5": 1.0}

    monkeypatch.setattr(Trainer, "validate", scripted)
    result = train(tiny(easy_prepared, tmp_path / "r", f"epochs={len(scores)}", "batch_size=64",
                        "early_stop_patience=2"))
    assert (result.stop_reason, result.epochs, result.best_epoch) == (stop, epochs, best_epoch)
    assert result.best_valid_top1 == max(scores[:epochs])


def test_early_stopping_on_a_real_plateau(easy_prepared, tmp_path):
    # a learning rate of 1e-12 leaves the predictions unchanged: every epoch ties the first, so nothing stops it
    result = train(tiny(easy_prepared, tmp_path / "r", "epochs=4", "batch_size=64", "lr=1e-12",
                        "schedule=constant", "early_stop_patience=2"))
    assert (result.stop_reason, result.epochs, result.best_epoch) == ("completed", 4, 1)
    assert len({round(h["valid_top1"], 9) for h in result.history}) == 1


def test_time_budget(easy_prepared, tmp_path):
    result = train(tiny(easy_prepared, tmp_path / "r", "epochs=10", "batch_size=64", "max_time_minutes=1e-6"))
    assert (result.stop_reason, result.epochs) == ("time_budget", 1)


def test_time_budget_holds_across_resumes(easy_prepared, tmp_path):
    """A resumed run checks the budget before its first epoch: it stops where the uninterrupted run stopped."""
    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=10", "batch_size=64", "max_time_minutes=1e-6")
    first = train(cfg)
    for _ in range(2):
        again = train(dataclasses.replace(cfg, resume=True))
        assert (again.stop_reason, again.epochs, len(again.history)) == ("time_budget", 1, 1)
    assert again.time_s == first.time_s


def test_a_diverged_run_stops_cleanly_and_keeps_the_last_good_epoch(easy_prepared, tmp_path, capsys):
    from sketchgraph.cli import main
    from sketchgraph.train import Trainer

    real = Trainer.train_epoch

    def nan_in_epoch_2(self, epoch):
        metrics = real(self, epoch)
        return {**metrics, "train_loss": float("nan")} if epoch == 2 else metrics

    out = tmp_path / "r"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Trainer, "train_epoch", nan_in_epoch_2)
        rc = main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out),
                   "--epochs", "4", "--batch-size", "64", "--no-progress"])
    assert rc == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out.strip().splitlines()[-1])["stop_reason"] == "diverged"
    assert "diverged" in captured.err and "lower lr" in captured.err
    assert load_train_state(out / "last").epoch == 1  # epoch 2 left nothing behind
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [1]


def test_non_finite_metrics_are_written_as_null(tmp_path):
    from sketchgraph.checkpoint import finite_or_null

    assert finite_or_null({"a": float("nan"), "b": [1.0, float("inf")], "c": "x", "d": 2}) == {
        "a": None, "b": [1.0, None], "c": "x", "d": 2}


def test_resume_after_a_kill_inside_the_checkpoint_swap(easy_prepared, tmp_path):
    """Killed after ``last/`` was moved aside and before the new one was renamed in: ``--resume`` puts the old
    one back and continues from it (it used to start from scratch)."""
    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=2", "batch_size=64", "schedule=step")  # epochs may then grow
    train(dataclasses.replace(cfg, epochs=1))
    last = tmp_path / "r" / "last"
    last.rename(tmp_path / "r" / ".last.old-12345")
    resumed = train(dataclasses.replace(cfg, resume=True))
    assert resumed.epochs == 2 and [r["epoch"] for r in resumed.history] == [1, 2]
    assert not (tmp_path / "r" / ".last.old-12345").exists() and load_train_state(last).epoch == 2


def test_recover_dir_takes_only_a_complete_folder_of_the_latest_epoch(easy_prepared, tmp_path):
    import shutil

    from sketchgraph.checkpoint import recover_dir

    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=2", "batch_size=64")
    train(cfg)
    last = tmp_path / "r" / "last"
    shutil.copytree(last, tmp_path / "r" / ".last.old-1")  # epoch 2, complete
    half = tmp_path / "r" / ".last.old-2"  # a removal cut short: newer, but its weights are gone
    shutil.copytree(last, half)
    (half / "model.safetensors").unlink()
    shutil.rmtree(last)
    assert recover_dir(last) and load_train_state(last).epoch == 2 and (last / "model.safetensors").is_file()
    assert half.exists() and not recover_dir(last)  # last exists now: nothing to do


@pytest.mark.parametrize("field", ["early_stop_patience", "seed", "warmup_epochs", "max_time_minutes",
                                   "num_workers", "grad_clip"])
def test_negative_settings_are_refused_by_name(field):
    with pytest.raises(ValueError, match=f"{field} must be >= 0"):
        apply_overrides(TrainConfig(), [f"{field}=-1"])


def test_measure_throughput_with_too_few_batches_says_so(easy_prepared, tmp_path):
    from sketchgraph.train import measure_throughput

    with pytest.raises(ValueError, match="too few batches"):
        measure_throughput(tiny(easy_prepared, tmp_path / "r", "batch_size=1000"), steps=3, warmup=2)


def test_scale_and_translate_that_do_nothing_are_pointed_out(easy_prepared, tmp_path, capsys):
    from sketchgraph.train import Trainer

    for preset, said in (("mgt", True), ("mgt-paper", False)):
        cfg = tiny(easy_prepared, tmp_path / preset, f"preset={preset}", "model={}", "augment.affine_prob=1",
                   "augment.scale=0.2")
        Trainer(cfg, command=None).ctx.close()
        assert ("change nothing for this model" in capsys.readouterr().err) is said


def test_cli(easy_prepared, tmp_path, capsys):
    from sketchgraph.cli import main

    out = tmp_path / "cli"
    rc = main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs", "1",
               "--batch-size", "64", "--no-progress", "--set", "model.layers=2", "--set", "augment.rotation=5"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 1 and summary["stop_reason"] == "completed"
    config = json.loads((out / "last" / "config.json").read_text())
    assert config["model"]["layers"] == 2 and config["training"]["config"]["augment"]["rotation"] == 5.0
    command = config["training"]["command"]
    assert command.startswith("sketchgraph train ") and "--epochs 1" in command and "--set model.layers=2" in command
    assert command in (out / "last" / "README.md").read_text()


def test_an_earlier_run_is_kept_unless_resume_or_overwrite(easy_prepared, tmp_path, capsys):
    """``train`` into an OUT that holds a run, without ``--resume``, used to empty ``metrics.jsonl`` at once and
    replace ``best/`` later; it is refused before anything is written, and ``--overwrite`` starts over."""
    from sketchgraph.cli import main

    out = tmp_path / "r"
    args = ["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--batch-size", "64",
            "--no-progress", "--set", "schedule=step"]  # not cosine: a resume may then raise epochs
    assert main([*args, "--epochs", "2"]) == 0
    files = [out / "metrics.jsonl", out / "best" / "model.safetensors", out / "last" / "model.safetensors"]
    before = [(f.read_bytes(), f.stat().st_mtime_ns) for f in files]
    capsys.readouterr()

    assert main([*args, "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"sketchgraph train: error: {out} already holds a training run (metrics.jsonl, best/, "
                          "last/, train_config.json, train.log, summary.json); pass --resume (resume=true) to continue "
                          "it or --overwrite (overwrite=true) to delete it and start over"), err
    assert [(f.read_bytes(), f.stat().st_mtime_ns) for f in files] == before  # nothing touched

    for name in ("train_config.json", "train.log", "summary.json"):  # each of these alone is a run too (below)
        (out / name).unlink()
    stale = out / ".last.old-99"  # what a kill inside the checkpoint swap leaves; --resume would bring it back
    (out / "last").rename(stale)
    (out / "best").rename(out / "best.kept")
    with pytest.raises(FileExistsError, match=r"already holds a training run \(metrics.jsonl, .last.old-99/\)"):
        train(tiny(easy_prepared, out, "epochs=1"))
    (out / "metrics.jsonl").write_text("")  # an empty log and a lone best/ are a run too
    (out / "best.kept").rename(out / "best")
    with pytest.raises(FileExistsError, match=r"already holds a training run \(best/, .last.old-99/\)"):
        train(tiny(easy_prepared, out, "epochs=1"))

    assert main([*args, "--epochs", "1", "--overwrite"]) == 0
    assert "deleted the earlier run" in capsys.readouterr().err
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1]
    assert load_train_state(out / "last").epoch == 1 and not stale.exists()
    assert "--overwrite" not in json.loads((out / "last" / "config.json").read_text())["training"]["command"]
    assert main([*args, "--epochs", "2", "--resume"]) == 0  # continues the new run
    assert load_train_state(out / "last").epoch == 2
    # a flag on the command line wins over the opposite setting in the config file
    assert main([*args, "--epochs", "3", "--set", "overwrite=true", "--resume"]) == 0
    assert load_train_state(out / "last").epoch == 3 and "deleted" not in capsys.readouterr().err


def test_a_new_folder_or_one_without_a_run_is_used_as_it_is(easy_prepared, tmp_path):
    out = tmp_path / "r"
    out.mkdir()
    (out / "metrics.jsonl").write_text("")
    (out / "notes.txt").write_text("mine")
    assert train(tiny(easy_prepared, out, "epochs=1", "batch_size=64")).epochs == 1
    assert (out / "notes.txt").read_text() == "mine"


def test_every_rank_follows_rank_0_about_out(easy_prepared, tmp_path, monkeypatch):
    """Under torchrun every rank decides on ``out`` as rank 0 does (``agree``: rank 0's flag on all ranks), so a rank
    whose own view differs (another machine's disk) neither trains alone nor stops alone."""
    import sketchgraph.train as train_module
    from sketchgraph.distributed import DistContext
    from sketchgraph.train import Trainer

    run = Trainer(tiny(easy_prepared, tmp_path / "r"), command=None)
    run.ctx.close()
    run.ctx = DistContext(rank=1, world_size=2)
    views = []
    answers = iter([True, False])  # rank 0: a run, not one to start over (only records of the same recipe are)
    monkeypatch.setattr(train_module, "agree", lambda flag, ctx, device: views.append(flag) or next(answers))
    with pytest.raises(FileExistsError, match=r"r already holds a training run; pass --resume"):
        run.claim_out()  # this rank sees nothing, rank 0 sees a run
    answers = iter([True, True])  # rank 0: only the records of this recipe, so every rank starts over
    run.claim_out()
    assert run.restarting
    (tmp_path / "r" / "best").mkdir(parents=True)
    monkeypatch.setattr(train_module, "agree", lambda flag, ctx, device: views.append(flag) and False)
    run.claim_out()  # this rank sees a run, rank 0 does not: it goes on, and only rank 0 would delete
    assert views == [False, False, False, False, True] and (tmp_path / "r" / "best").is_dir()


@pytest.mark.parametrize("preset, bucket, expected", [
    ("mgt", 0, 32), ("bigru", 0, 32),  # no BatchNorm: length-bucketed by default
    ("mgt-small", 0, 1), ("mgt-paper", 0, 1), ("gt-stroke2", 0, 1), ("cnn", 0, 1),  # BatchNorm: random batches
    ("mgt-small", 8, 8), ("mgt", 1, 1),  # an explicit setting wins
])
def test_bucketing_is_off_by_default_for_batchnorm_models(easy_prepared, tmp_path, preset, bucket, expected):
    """Length-bucketed batches skew BatchNorm's batch statistics (docs/benchmarks.md, "BatchNorm and bucketing"), so
    the default (0) leaves BatchNorm models' batches random; the batches the loader draws follow it."""
    from sketchgraph.train import Trainer

    run = Trainer(TrainConfig(data=str(easy_prepared), out=str(tmp_path / "r"), preset=preset, bucket=bucket,
                              batch_size=16, device="cpu", progress=False), command="test")
    assert run.bucket == expected
    lengths = run.train_split.lengths()
    rng = np.random.default_rng(0)
    random_pad = np.mean([lengths[rng.permutation(len(lengths))[:16]].max() for _ in range(50)])
    padded = np.mean([b.valid.shape[1] for b in run.loader(run.train_split, 0, train=True)])  # (B, N) per batch
    assert (padded < 0.9 * random_pad) == (expected > 1), (padded, random_pad)


def test_resume_and_overwrite_exclude_each_other():
    with pytest.raises(ValueError, match="resume .* and overwrite .* exclude each other"):
        TrainConfig(resume=True, overwrite=True)


@pytest.mark.parametrize("args, message", [
    (["--set", "lr=abc"], "lr must be a number, got 'abc'"),
    (["--set", "nosuch=1"], r"unknown setting\(s\) \['nosuch'\]"),
    (["--set", "epochs=0"], "epochs must be >= 1"),
    (["--set", "model.nosuch=1"], r"error: unknown setting\(s\) \['model.nosuch'\] for preset 'mgt'; known: "
                                  r"\['model.relations', "),
    (["--set", "model.layers=1.5"], r"error: model.layers must be an integer, got 1.5$"),
    (["--set", "model.heads=0"], r"error: model.heads must be an integer >= 1, got 0$"),
    (["--preset", "cnn"], r"error: unknown setting\(s\) \['model.classifier', 'model.classifier_dropout', "
                          r"'model.embed_dim', 'model.ffn_dim', 'model.head_dim', 'model.heads', 'model.layers'\] "
                          r"for preset 'cnn'; known: \['model.image_size', 'model.channels', 'model.line_width', "
                          r"'model.dropout'\] \(a config file's \[model\] table is for its own preset: --set "
                          r"model=\{\} clears it\)$"),
    (["--set", "warmup_epochs=nan"], r"error: warmup_epochs must be a finite number, got nan$"),
    (["--set", "lr=nan"], r"error: lr must be a finite number, got nan$"),
    (["--set", "train_split=nosuch"], "no split 'nosuch'"),
    (["--device", "cuda:7"], "device 'cuda:7'"),
])
def test_cli_reports_bad_settings_without_a_traceback(easy_prepared, tmp_path, capsys, args, message):
    from sketchgraph.cli import main

    rc = main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(tmp_path / "r"),
               "--epochs", "1", "--no-progress", *args])
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("sketchgraph train: error: ") and "Traceback" not in err
    assert re.search(message, err.strip()), err
    assert not (tmp_path / "r").exists()  # refused before anything was written


@pytest.mark.parametrize("preset,overrides", [
    ("cnn", ["model.channels=[4, 8]", "model.image_size=16"]),
    ("bigru", ["model.hidden=8", "model.embed_dim=8", "model.layers=1"]),
])
def test_baselines_train_and_reload(easy_prepared, tmp_path, preset, overrides):
    result = train(tiny(easy_prepared, tmp_path / "r", f"preset={preset}", "epochs=1", "batch_size=64",
                        "model={}", *overrides))
    model, config = load_checkpoint(tmp_path / "r" / "last")
    assert config["preset"] == preset and result.epochs == 1
    assert config["graph_spec"]["relations"]  # the dataset's, so predictors can still build batches


# ------------------------------------------------------------------------------------------ setting checks


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("field", ["lr", "weight_decay", "step_gamma", "warmup_epochs", "min_lr_ratio",
                                   "label_smoothing", "grad_clip", "max_time_minutes"])
def test_non_finite_settings_are_refused_by_name(field, value):
    """NaN passes no comparison, so ``warmup_epochs=nan`` used to train at learning rate 0 and report success."""
    from sketchgraph.train import _FLOAT_FIELDS

    assert field in _FLOAT_FIELDS
    with pytest.raises(ValueError, match=f"^{field} must be a finite number, got {value}$"):
        apply_overrides(TrainConfig(), [f"{field}={value}"])


def test_every_float_setting_is_checked_for_nan():
    from sketchgraph.train import _FLOAT_FIELDS

    floats = [f.name for f in dataclasses.fields(TrainConfig) if f.type == "float"]
    assert sorted(_FLOAT_FIELDS) == sorted(floats) and len(floats) == 8


@pytest.mark.parametrize("override, message", [
    ("step_gamma=0", r"^step_gamma must be > 0 \(the step schedule multiplies lr by it\), got 0.0$"),
    ("step_gamma=-0.5", r"^step_gamma must be > 0"),
    ("min_lr_ratio=1.5", r"^min_lr_ratio must be <= 1 \(the cosine floor is lr \* min_lr_ratio\), got 1.5$"),
    ("out=", r"^out is empty: name the run's folder"),
    ('out="  "', r"^out is empty"),
    ("preset=resnet", r"^preset must be one of \['mgt', 'mgt-paper', "),
])
def test_more_range_checks(override, message):
    with pytest.raises(ValueError, match=message):
        apply_overrides(TrainConfig(), [override])


@pytest.mark.parametrize("overrides, message", [
    (["model.foo=1"], r"^unknown setting\(s\) \['model.foo'\] for preset 'mgt'; known: \['model.relations', "
                      r"'model.embed', .*'model.backend'\] \(a config file's \[model\] table is for its own preset: "
                      r"--set model=\{\} clears it\)$"),
    (["model.dropout=abc"], r"^model.dropout must be a number, got 'abc'$"),
    (["model.layers=1.5"], r"^model.layers must be an integer, got 1.5$"),
    (["model.layers=true"], r"^model.layers must be an integer, got True$"),
    (["model.classifier=5"], r"^model.classifier must be a list, got 5 \(--set 'model.classifier=\[5, 8\]'; in a "
                             r"config file model.classifier = \[5, 8\]\)$"),
    (["model.relations=stroke1"], r"^model.relations must be a list, got 'stroke1' \(--set 'model.relations=\["
                                  r"\"stroke1\", \"temporal\"\]'"),  # the example fits the items: names
    (["model.classifier=[32, 0]"], r"^model.classifier\[1\] must be an integer >= 1, got 0$"),
    (["model.num_classes=3"], r"^model.num_classes cannot be set: it is the dataset's number of classes$"),
    (["model.preset=cnn"], r"^model.preset cannot be set: set the top-level preset \(--preset\) instead$"),
    (["model.heads=0"], r"^model.heads must be an integer >= 1, got 0$"),
    (["model.layers=-1"], r"^model.layers must be an integer >= 1, got -1$"),
    (["model.embed_dim=0"], r"^model.embed_dim must be an integer >= 1, got 0$"),
    (["model.ffn_dim=-1"], r"^model.ffn_dim must be an integer >= 0 \(0: the paper's one-Linear feed-forward\), "
                           r"got -1$"),
    (["model.dropout=1.5"], r"^model.dropout must be a probability in \[0, 1\), got 1.5$"),
    (["model.attn_dropout=nan"], r"^model.attn_dropout must be a probability in \[0, 1\), got nan$"),
    (["model.layout=sideways"], r"^model.layout must be one of \('per_relation', 'split_heads'\), got 'sideways'$"),
    (["model.relations=[\"stroke1\", \"nope\"]"], r"^model.relations must be names from "),
    (["model.head_dim=none"], r"^model.heads: the width 32 is not divisible by 3 heads; set head_dim$"),
    (["preset=cnn"], r"^unknown setting\(s\) \['model.classifier', 'model.classifier_dropout', 'model.embed_dim', "
                     r"'model.ffn_dim', 'model.head_dim', 'model.heads', 'model.layers'\] for preset 'cnn'"),
    (["preset=cnn", "model={}", "model.image_size=8"], r"^model.image_size must be an integer >= 16 \(at least 8, "
                                                       r"and each of the 4 blocks halves it\), got 8$"),
    (["preset=cnn", "model={}", "model.line_width=2"], r"^model.line_width must be odd"),
    (["preset=cnn", "model={}", "model.channels=[8, -4]"], r"^model.channels\[1\] must be an integer >= 1, got -4$"),
    (["preset=bigru", "model={}", "model.hidden=0"], r"^model.hidden must be an integer >= 1, got 0$"),
    (["preset=bigru", "model={}", "model.coord_norm=box"], r"^model.coord_norm must be 'none' or 'unit', got 'box'$"),
])
def test_model_settings_are_checked_against_the_presets_config(overrides, message):
    """``model`` (``[model]`` / ``--set model.*``) is checked against the preset's config dataclass with messages
    naming ``model.<field>`` (they used to surface as raw ``TypeError``s, or train a nonsensical model)."""
    with pytest.raises(ValueError, match=message):
        load_train_config(CONFIGS / "tiny.toml", overrides)


def test_model_settings_are_typed_like_the_top_level_ones():
    cfg = load_train_config(CONFIGS / "tiny.toml", [
        'model.dropout="0.1"', "model.classifier=[8]", "model.embed_dim=48", "model.head_dim=none",
        "model.coord_mlp=yes", "model.act=relu", "model.classifier_dropout=0"])
    assert cfg.model == {"embed_dim": 48, "layers": 1, "heads": 1, "head_dim": None, "ffn_dim": 64,
                         "classifier": (8,), "dropout": 0.1, "classifier_dropout": 0.0, "coord_mlp": True,
                         "act": "relu"}
    assert isinstance(cfg.model["classifier_dropout"], float)
    assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg  # head_dim null reads back as None
    from sketchgraph.model import build_model

    assert build_model(cfg.preset, 4, **cfg.model).config.head_width == 16


@pytest.mark.parametrize("preset", ["mgt", "mgt-paper", "mgt-small", "mgt-stroke2-temporal", "gt-full", "gt-stroke2",
                                    "cnn", "bigru"])
def test_every_preset_passes_the_checks_with_its_defaults(preset):
    from sketchgraph.model.registry import PRESETS

    assert preset in PRESETS and len(PRESETS) == 8
    assert TrainConfig(preset=preset).model == {}


def test_the_shipped_checkpoints_record_still_loads_and_its_command_is_the_same_recipe(monkeypatch):
    """``checkpoints/spg20/config.json`` (written before the resume checks) still loads, and its recorded command,
    read today with configs/spg20.toml, is the recipe it recorded: a resume would accept it."""
    import shlex

    from sketchgraph.cli import build_parser
    from sketchgraph.model import build_model, model_config_dict, model_from_config
    from sketchgraph.train import AUTO_BUCKET, _recipe_diff, config_from_args

    root = CONFIGS.parent
    config = json.loads((root / "checkpoints" / "spg20" / "config.json").read_text())
    recorded = config_from_dict(config["training"]["config"])
    assert (recorded.preset, recorded.model, recorded.bucket) == ("mgt", {"dropout": 0.0}, 32)
    model_from_config(config["model"])
    monkeypatch.chdir(root)
    argv = shlex.split(config["training"]["command"])[1:]
    cfg = config_from_args(build_parser(argv).parse_args(argv))
    built = model_config_dict(build_model(cfg.preset, len(config["classes"]), **cfg.model))
    assert _recipe_diff(config["training"]["config"], cfg, config["model"], built, auto_bucket=AUTO_BUCKET) == []
    changed = dataclasses.replace(cfg, lr=1e-3, augment=dataclasses.replace(cfg.augment, merge_prob=0.0))
    assert _recipe_diff(config["training"]["config"], changed, config["model"], built, auto_bucket=AUTO_BUCKET) == [
        "lr: 0.002 -> 0.001", "augment.merge_prob: 0.3 -> 0.0"]


# ------------------------------------------------------------------------------------------ config files


@pytest.mark.parametrize("name, content, message", [
    ("c.toml", "lr = \n", r"Invalid value \(at line 1, column 6\)$"),
    ("c.json", '{"epochs": 2,}', r"Expecting property name enclosed in double quotes: line 1 column 14 \(char 13\)$"),
    ("c.json", "[1, 2]", r"a config file holds a table of settings \(key = value\), got a list$"),
    ("c.toml", b"lr = 1\n\xff\n", r"not UTF-8 text \(.*invalid start byte\)$"),
    ("c.toml", "foo = 1\n", r"unknown setting\(s\) \['foo'\]; known: \['data', "),
    ("c.toml", "epochs = 0\n", r"epochs must be >= 1, got 0$"),
    ("c.toml", '[model]\nlayers = "x"\n', r"model.layers must be an integer, got 'x'$"),
    ("c.toml", "[augment]\njitter = nan\n", r"augment.jitter must be a finite number >= 0, got nan$"),
])
def test_config_file_errors_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: {message}"):
        load_train_config(path)


def test_yaml_syntax_errors_name_the_file(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "c.yaml"
    path.write_text("epochs: [1\n")
    with pytest.raises(ValueError, match=f"^{re.escape(str(path))}: "):
        load_train_config(path)


def test_an_override_error_does_not_blame_the_file():
    with pytest.raises(ValueError, match=r"^epochs must be >= 1, got 0$"):
        load_train_config(CONFIGS / "tiny.toml", ["epochs=0"])


def test_cli_names_the_config_file(tmp_path, capsys):
    from sketchgraph.cli import main

    path = tmp_path / "bad.toml"
    path.write_text("preset = 'mgt'\nlr = \n")
    assert main(["train", str(path), "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err == f"sketchgraph train: error: {path}: Invalid value (at line 2, column 6)\n"


# ------------------------------------------------------------------------------------------ resume checks


@pytest.mark.parametrize("overrides, listed", [
    (["seed=5"], "seed: 0 -> 5"),
    (["batch_size=7"], "batch_size: 64 -> 7"),
    (["lr=0.5"], "lr: 0.003 -> 0.5"),
    (["epochs=2"], "epochs: 1 -> 2"),  # the cosine schedule's length
    (["schedule=step"], 'schedule: "cosine" -> "step"'),
    (["bucket=4"], "bucket: 1 -> 4"),
    (["bf16_cpu=true"], "bf16_cpu: false -> true"),
    (["num_workers=1"], "num_workers: 0 -> 1"),  # each loader process draws its own augmentation
    (["augment.rotation=5"], "augment.rotation: 0.0 -> 5.0"),
    (["model.dropout=0.1"], "model.dropout: 0.0 -> 0.1"),
    (["model.classifier=[16]"], "model.classifier: [32] -> [16]"),
    (["seed=5", "lr=0.5", "augment.jitter=0.01"],
     "these settings differ from the run's (old -> new): lr: 0.003 -> 0.5; seed: 0 -> 5; augment.jitter: 0.0 -> 0.01"),
])
def test_resume_refuses_another_recipe(easy_prepared, tmp_path, overrides, listed):
    """A resume that changes (or leaves out) a setting of the run's recipe used to go on with the new one, and the
    recorded command then reproduced neither; every differing setting is listed with its old and new value."""
    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=1", "batch_size=64")
    train(cfg)
    before = (tmp_path / "r" / "last" / "model.safetensors").read_bytes()
    with pytest.raises(CheckpointError) as err:
        train(dataclasses.replace(apply_overrides(cfg, overrides), resume=True))
    message = str(err.value)
    assert message.startswith(f"cannot resume from {tmp_path / 'r' / 'last'}: ")
    assert listed in message
    assert message.count(" -> ") == 1 + len(overrides)  # "(old -> new)", then one per setting
    assert "start a new run (another --out, or --overwrite)" in message
    assert "A resume may change only data, out, resume, overwrite, progress, device, max_time_minutes, " \
           "early_stop_patience, and epochs unless the schedule is cosine" in message
    assert (tmp_path / "r" / "last" / "model.safetensors").read_bytes() == before


def test_resume_refuses_another_recipe_from_the_cli(easy_prepared, tmp_path, capsys):
    """The review's case: a resume that leaves out ``--set lr=...`` and adds others names each, and the command the
    run was started with."""
    from sketchgraph.cli import main

    out = tmp_path / "r"
    args = ["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs", "1",
            "--no-progress"]
    assert main([*args, "--set", "lr=0.01", "--set", "batch_size=64"]) == 0
    first = json.loads((out / "last" / "config.json").read_text())["training"]["command"]
    capsys.readouterr()
    assert main([*args, "--resume", "--set", "batch_size=7", "--set", "seed=5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"sketchgraph train: error: cannot resume from {out / 'last'}: these settings differ from "
                          "the run's (old -> new): batch_size: 64 -> 7; lr: 0.01 -> 0.003; seed: 0 -> 5. "), err
    assert f"(it was started with: {first})" in err and "--set lr=0.01" in first


def _stopped_before_its_first_checkpoint(cfg: TrainConfig, monkeypatch) -> Path:
    """Run ``cfg`` and stop it (Ctrl-C) as its first epoch starts, as a run killed before it wrote a checkpoint:
    ``cfg.out`` then holds only the run's records. Returns ``cfg.out``."""
    from sketchgraph.train import Trainer

    def interrupt(self, epoch):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(Trainer, "train_epoch", interrupt)
        with pytest.raises(KeyboardInterrupt):
            train(cfg)
    out = Path(cfg.out)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl", "summary.json", "train.log", "train_config.json"]
    return out


RECORDS = ("train_config.json", "train.log", "summary.json", "metrics.jsonl")


@pytest.mark.parametrize("overrides, listed", [
    (["lr=0.5"], "this setting differs from its recipe in train_config.json (old -> new): lr: 0.003 -> 0.5. "),
    (["epochs=2"], "epochs: 1 -> 2"),  # the cosine schedule's length
    (["model.dropout=0.1"], "model.dropout: 0.0 -> 0.1"),
    (["seed=5", "augment.jitter=0.01"],
     "these settings differ from its recipe in train_config.json (old -> new): seed: 0 -> 5; augment.jitter: 0.0 -> "
     "0.01. "),
])
def test_resume_of_a_run_without_a_checkpoint_refuses_another_recipe(easy_prepared, tmp_path, monkeypatch,
                                                                      overrides, listed):
    """A resume into a folder holding only the records of a run that wrote no checkpoint used to start over with
    whatever recipe it was given, under the old run's records; it is refused as a resume from last/ is, listing
    every setting that differs from train_config.json's recipe, and writes nothing."""
    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=1", "batch_size=64")
    out = _stopped_before_its_first_checkpoint(cfg, monkeypatch)
    before = {name: (out / name).read_bytes() for name in RECORDS}
    with pytest.raises(CheckpointError) as err:
        train(dataclasses.replace(apply_overrides(cfg, overrides), resume=True))
    message = str(err.value)
    assert message.startswith(f"cannot resume the run in {out}: it wrote no checkpoint, and "), message
    assert listed in message
    assert message.count(" -> ") == 1 + len(overrides)  # "(old -> new)", then one per setting
    assert "start a new run (another --out, or --overwrite)" in message
    assert message.endswith("A resume may change only data, out, resume, overwrite, progress, device, "
                            "max_time_minutes, early_stop_patience, and epochs unless the schedule is cosine")
    assert {name: (out / name).read_bytes() for name in RECORDS} == before
    assert not (out / "last").exists()


def test_resume_of_a_run_without_a_checkpoint_checks_its_dataset_and_processes(easy_prepared, tmp_path,
                                                                               monkeypatch):
    """The recorded dataset content (fingerprint) and number of processes are checked as on a resume from last/;
    what a resume may change (the dataset's folder, epochs under a step schedule, the time budget, the patience,
    the device) starts over under the same records, which then list both invocations."""
    import shutil

    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=1", "batch_size=64", "schedule=step", "step_every=1")
    out = _stopped_before_its_first_checkpoint(cfg, monkeypatch)
    path = out / "train_config.json"
    record = json.loads(path.read_text())
    assert record["world_size"] == 1 and record["dataset"]["path"] == str(easy_prepared)
    path.write_text(json.dumps({**record, "world_size": 2, "dataset": {**record["dataset"], "fingerprint": "0" * 64}}))
    with pytest.raises(CheckpointError) as err:
        train(dataclasses.replace(cfg, resume=True))
    message = str(err.value)
    assert message.startswith(f"cannot resume the run in {out}: it wrote no checkpoint, and these settings differ "
                              f"from its recipe in train_config.json (old -> new): dataset: "
                              f"{json.dumps(str(easy_prepared))} -> {json.dumps(str(easy_prepared))} (another "
                              "content); world_size: 2 -> 1. "), message
    assert message.endswith(". world_size is the number of processes: the run trained with 2 (torchrun "
                            "--nproc_per_node 2) and resumes only so")
    assert not (out / "last").exists()

    path.write_text(json.dumps(record))
    moved = tmp_path / "moved"
    shutil.copytree(easy_prepared, moved)
    result = train(dataclasses.replace(cfg, data=str(moved), resume=True, epochs=2, max_time_minutes=30.0,
                                       early_stop_patience=5, device="cpu"))
    assert (result.epochs, result.stop_reason) == (2, "completed")
    assert [i["from_epoch"] for i in json.loads(path.read_text())["invocations"]] == [0, 0]


@pytest.mark.parametrize("recorded, out, expected", [
    ("sketchgraph train c.toml --data d --out /runs/a --epochs 3", "/runs/b",
     "sketchgraph train c.toml --data d --out /runs/b --epochs 3"),
    ("sketchgraph train c.toml --out=/runs/a", "/runs/b", "sketchgraph train c.toml --out /runs/b"),
    ("sketchgraph train 'my c.toml' --out /runs/a", "/runs/new b", "sketchgraph train 'my c.toml' --out '/runs/new b'"),
    ("sketchgraph train c.toml --out /runs/a", "/runs/a/", "sketchgraph train c.toml --out /runs/a"),  # the same
    (None, "/runs/b", None),
])
def test_a_recorded_command_names_the_folder_the_run_is_now_in(recorded, out, expected):
    """A run folder of records only, copied or moved, started over under the command recorded in it, whose --out
    named the old folder: "start over with: ... --out OLD --overwrite" would have deleted the original."""
    from sketchgraph.train import _with_out

    assert _with_out(recorded, out) == expected


def test_resume_of_a_run_without_a_checkpoint_refuses_another_recipe_from_the_cli(easy_prepared, tmp_path, capsys,
                                                                                  monkeypatch):
    """The reported case: ``--resume`` with the config file and another ``--lr`` (and ``--resume --out DIR`` alone
    with one) is refused naming the setting and the command the run was started with; the same recipe resumes."""
    from sketchgraph.cli import main
    from sketchgraph.train import Trainer

    out = tmp_path / "r"
    args = ["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs", "1",
            "--no-progress", "--set", "lr=0.01"]

    def interrupt(self, epoch):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(Trainer, "train_epoch", interrupt)
        assert main(args) == 130
    first = json.loads((out / "train_config.json").read_text())["invocations"][0]["command"]
    capsys.readouterr()
    for again in ([*args, "--resume", "--lr", "0.5"], ["train", "--resume", "--out", str(out), "--lr", "0.5"]):
        assert main(again) == 1
        err = capsys.readouterr().err.splitlines()[-1]  # after the notes: the flag beats --set, the recipe taken
        assert err.startswith(f"sketchgraph train: error: cannot resume the run in {out}: it wrote no checkpoint, "
                              "and this setting differs from its recipe in train_config.json (old -> new): lr: 0.01 "
                              "-> 0.5. A resume that starts over keeps the recorded recipe"), err
        assert f"(it was started with: {first})" in err and "--set lr=0.01" in first
        assert not (out / "last").exists()
    assert main([*args, "--resume"]) == 0
    assert "[train] nothing to resume in" in capsys.readouterr().err
    assert json.loads((out / "summary.json").read_text())["stop_reason"] == "completed"


def test_resume_may_change_where_and_when_but_ends_as_a_straight_run(easy_prepared, tmp_path):
    """Run control may change on resume: the dataset's folder (same content), the time budget, the patience, and
    epochs under a non-cosine schedule; the result is bit-identical to an uninterrupted run with the new values."""
    import shutil

    cfg = tiny(easy_prepared, tmp_path / "a", "epochs=1", "batch_size=64", "schedule=step", "step_every=1")
    train(cfg)
    moved = tmp_path / "moved"
    shutil.copytree(easy_prepared, moved)
    new = dict(epochs=3, max_time_minutes=30.0, early_stop_patience=5, device="cpu", num_workers=0)
    resumed = train(dataclasses.replace(cfg, data=str(moved), resume=True, **new))
    straight = train(dataclasses.replace(cfg, out=str(tmp_path / "b"), **new))
    assert resumed.epochs == straight.epochs == 3
    wa = load_file(str(tmp_path / "a" / "last" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "last" / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_every_invocation_of_a_run_is_recorded(easy_prepared, tmp_path, capsys):
    from sketchgraph.cli import main

    out = tmp_path / "r"
    args = ["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--no-progress",
            "--set", "schedule=step", "--set", "batch_size=64"]
    assert main([*args, "--epochs", "1"]) == 0
    assert main([*args, "--epochs", "3", "--resume", "--set", "max_time_minutes=60"]) == 0
    training = json.loads((out / "last" / "config.json").read_text())["training"]
    commands = training["commands"]
    assert [c["from_epoch"] for c in commands] == [0, 1]
    assert "--epochs 1" in commands[0]["command"] and "--epochs 3" in commands[1]["command"]
    assert "max_time_minutes=60" in commands[1]["command"] and "--resume" not in commands[1]["command"]
    assert training["command"] == commands[1]["command"]  # the latest: with the checks, it reproduces the run
    assert training["config"]["max_time_minutes"] == 60.0


def test_resume_from_a_checkpoint_written_before_the_checks(easy_prepared, tmp_path):
    """A ``last/`` without ``commands``, a dataset fingerprint or settings added since (older sketchgraph) resumes:
    missing settings count as their defaults, and its one recorded command heads the list."""
    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=1", "batch_size=64", "schedule=step")
    train(cfg)
    path = tmp_path / "r" / "last" / "config.json"
    config = json.loads(path.read_text())
    training = config["training"]
    del training["commands"], training["dataset"]["fingerprint"]
    for key in ("step_milestones", "overwrite", "bf16_cpu"):
        del training["config"][key]
    del training["config"]["augment"]["incomplete_stroke_end"], config["model"]["coord_mlp"]
    training["command"] = "sketchgraph train old"
    path.write_text(json.dumps(config))
    assert train(dataclasses.replace(cfg, epochs=2, resume=True)).epochs == 2
    commands = json.loads(path.read_text())["training"]["commands"]
    assert commands == [{"command": "sketchgraph train old", "from_epoch": None}, {"command": "", "from_epoch": 1}]


def test_resume_refuses_a_dataset_with_the_same_shape_but_other_sketches(tmp_path):
    """Prepared again with another split seed: same classes, preprocessing and split sizes, other sketches in each
    split (some test sketches of the new one were trained on). The content fingerprint tells them apart; a moved
    copy of the run's dataset still resumes."""
    import shutil

    from sketchgraph.checkpoint import load_config
    from sketchgraph.data import PreparedDataset, prepare
    from sketchgraph.synthetic import write_dataset

    write_dataset(tmp_path / "raw", 20, seed=0, classes=["circle", "square", "zigzag", "cross"])
    made = [prepare(tmp_path / "raw", tmp_path / f"p{seed}", protocol="train=12,valid=4,test=4", seed=seed,
                    workers=1, progress=False).path for seed in (0, 1)]
    first, second = (PreparedDataset(p) for p in made)
    assert first.meta["splits"] == second.meta["splits"] and first.classes == second.classes
    cfg = tiny(made[0], tmp_path / "r", "epochs=1", "batch_size=16")
    train(cfg)
    recorded = load_config(tmp_path / "r" / "last")["training"]["dataset"]
    assert recorded["fingerprint"] == first.fingerprint != second.fingerprint
    with pytest.raises(CheckpointError, match=(
            rf"^cannot resume from .*last: it was trained on another dataset: {re.escape(str(made[1]))} has the same "
            rf"classes and split sizes but not the same content \(fingerprint {second.fingerprint[:16]}\.\.\., the "
            rf"run's {first.fingerprint[:16]}\.\.\.\), e.g. it was prepared again with another --seed or from other "
            r"files, so its splits hold other sketches")):
        train(dataclasses.replace(cfg, data=str(made[1]), epochs=2, resume=True))
    shutil.copytree(made[0], tmp_path / "moved")
    again = train(dataclasses.replace(cfg, data=str(tmp_path / "moved"), resume=True))
    assert again.stop_reason == "already_done"


# ------------------------------------------------------------------------------------------ the output folder


def test_resume_and_overwrite_flags_together_are_refused(easy_prepared, tmp_path, capsys):
    """Both flags on the command line used to resume silently (each flag cleared the other)."""
    from sketchgraph.cli import main

    out = tmp_path / "r"
    args = ["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs", "1",
            "--batch-size", "64", "--no-progress"]
    assert main(args) == 0
    before = (out / "last" / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert main([*args, "--resume", "--overwrite"]) == 1
    assert capsys.readouterr().err == ("sketchgraph train: error: --resume (continue the run in --out) and "
                                       "--overwrite (delete it and start over) exclude each other; pass one\n")
    assert (out / "last" / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize("out, message", [
    ("afile", "--out {tmp}/afile is a file, not a folder: name a folder for the run (metrics.jsonl, best/, last/)"),
    ("afile/run", "--out {tmp}/afile/run is inside {tmp}/afile, which is a file, not a folder: name a folder for the "
                  "run (metrics.jsonl, best/, last/)"),
    ("", "out is empty: name the run's folder (metrics.jsonl, best/, last/), e.g. --out runs/x; --out . is the "
         "current folder"),
])
@pytest.mark.parametrize("resume", [False, True])
def test_an_unusable_out_is_refused_before_training(easy_prepared, tmp_path, capsys, monkeypatch, out, message,
                                                    resume):
    """``--out afile`` used to train an epoch and then fail with a bare ``[Errno 17] File exists``; ``--out ""``
    trained into the current folder."""
    from sketchgraph.cli import main

    (tmp_path / "afile").write_text("mine")
    monkeypatch.chdir(tmp_path)
    rc = main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out",
               str(tmp_path / out) if out else "", "--epochs", "1", "--no-progress", *(["--resume"] if resume else [])])
    assert rc == 1
    assert capsys.readouterr().err == f"sketchgraph train: error: {message.format(tmp=tmp_path)}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"] and (tmp_path / "afile").read_text() == "mine"


def test_overwrite_names_what_it_leaves_in_the_folder(easy_prepared, tmp_path, capsys):
    """``--overwrite`` deletes only what train writes; an ``eval/`` of the deleted model (the README's layout puts
    it in the run folder) stays, and is named, since it no longer matches the new model."""
    from sketchgraph.cli import main

    out = tmp_path / "r"
    args = ["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs", "1",
            "--batch-size", "64", "--no-progress"]
    assert main(args) == 0
    (out / "eval").mkdir()
    (out / "eval" / "report.json").write_text("{}")
    (out / "notes.txt").write_text("mine")
    (out / ".best.tmp-123").mkdir()  # a checkpoint write cut short by a kill
    capsys.readouterr()
    assert main([*args, "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert (f"[train] overwrite: deleted the earlier run in {out} (metrics.jsonl, best/, last/, train_config.json, "
            "train.log, summary.json, .best.tmp-123/)\n") in err
    assert (f"[train] overwrite: left in {out} as they were (train did not write them): eval/, notes.txt; delete what "
            "belongs to the deleted run (e.g. an evaluation of its best/), it no longer matches the new model\n") in err
    assert (out / "eval" / "report.json").is_file() and not (out / ".best.tmp-123").exists()


# ------------------------------------------------------------------------------------------ processes
@pytest.mark.parametrize("recorded", [
    {"world_size": 2},
    {"hardware": "2 x CPU x86_64 (2 cores), torch 2.13.0"},  # written before world_size was: its hardware says 2
])
def test_resume_refuses_another_number_of_processes(easy_prepared, tmp_path, recorded):
    """Resumed with another number of processes, a run has other steps per epoch (the learning-rate schedule counts
    in them) and another global batch: refused as any recipe change, naming world_size (test_ddp resumes a real
    two-process run in one)."""
    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=1", "batch_size=64")
    train(cfg)
    path = tmp_path / "r" / "last" / "config.json"
    config = json.loads(path.read_text())
    assert config["training"]["world_size"] == 1
    del config["training"]["world_size"]
    config["training"].update(recorded)
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"this setting differs from the run's \(old -> new\): "
                                              r"world_size: 2 -> 1\. .* world_size is the number of processes: the run "
                                              r"trained with 2 \(torchrun --nproc_per_node 2\) and resumes only so"):
        train(dataclasses.replace(cfg, resume=True))
    config["training"].pop("world_size", None)
    config["training"]["hardware"] = "1 x CPU x86_64 (2 cores), torch 2.13.0"
    path.write_text(json.dumps(config))
    assert train(dataclasses.replace(cfg, resume=True)).stop_reason == "already_done"


def test_the_recorded_fingerprint_is_of_the_dataset_the_run_opened(easy_prepared, tmp_path):
    """The fingerprint was taken at the first save (after epoch 1) from the files then at the path: a dataset prepared
    again meanwhile (--overwrite renames a new folder in) was recorded, though the run trained on the one it opened."""
    import shutil

    from sketchgraph.data import PreparedDataset
    from sketchgraph.train import Trainer

    data = tmp_path / "data"
    shutil.copytree(easy_prepared, data)
    opened = PreparedDataset(data).fingerprint
    run = Trainer(tiny(data, tmp_path / "r"), command=None)
    try:
        other = tmp_path / "other"
        shutil.copytree(easy_prepared, other)
        np.save(other / "labels.npy", np.load(other / "labels.npy")[::-1].copy())
        data.rename(tmp_path / "old")
        other.rename(data)
        assert PreparedDataset(data).fingerprint != opened
        run.save("last", {"epoch": 0}, with_state=False)
    finally:
        run.ctx.close()
    assert json.loads((tmp_path / "r" / "last" / "config.json").read_text())["training"]["dataset"]["fingerprint"] \
        == opened


def test_an_explicit_gpu_index_under_torchrun_is_refused():
    """``--device cuda:1`` under torchrun was taken by every process (NCCL then fails: duplicate GPU)."""
    from sketchgraph.distributed import DistContext
    from sketchgraph.train import _resolve_device

    with pytest.raises(ValueError, match=r"^device 'cuda:1' under torchrun \(2 processes\): every process would use "
                                         r"that one GPU .* Use --device cuda \(or auto\)"):
        _resolve_device(torch.device("cuda", 1), DistContext(rank=0, world_size=2))


def test_a_train_split_smaller_than_the_number_of_processes_is_refused(easy_prepared, tmp_path, monkeypatch):
    """Fewer train sketches than processes gave a rank no batch: a ZeroDivisionError in the step schedule, or a loss of
    0 "trained" on nothing."""
    import sketchgraph.train as train_module
    from sketchgraph.distributed import DistContext

    monkeypatch.setattr(train_module, "init_distributed", lambda device_type: DistContext(rank=0, world_size=400))
    with pytest.raises(ValueError, match=rf"^the 'train' split of {re.escape(str(easy_prepared))} holds 384 sketches, "
                                         r"fewer than the 400 processes \(torchrun --nproc_per_node\)"):
        train_module.Trainer(tiny(easy_prepared, tmp_path / "r"), command=None)


def test_a_configuration_error_leaves_the_process_group(easy_prepared, tmp_path, monkeypatch):
    """A configuration error in Trainer (an unknown split) left the process group of a torchrun process alive: the
    Trainer was built outside train()'s try/finally. It leaves it now, without waiting for the other ranks."""
    import sketchgraph.train as train_module
    from sketchgraph.distributed import DistContext

    closed = []
    monkeypatch.setattr(DistContext, "close", lambda self, *, sync=True: closed.append(sync))
    monkeypatch.setattr(train_module, "init_distributed", lambda device_type: DistContext(owns_group=True))
    with pytest.raises(KeyError, match="no split 'nope'"):
        train(tiny(easy_prepared, tmp_path / "r", "valid_split=nope"))
    assert closed == [False]


def test_checkpoints_and_metrics_are_synced_to_disk_before_their_renames(easy_prepared, tmp_path, sync_events):
    """A power loss after a rename could publish a checkpoint or metrics.jsonl whose files are empty: each file is
    synced before the rename that publishes it (and the folders around it)."""
    import os

    events = sync_events
    train(tiny(easy_prepared, tmp_path / "r", "epochs=1"))
    out = os.path.realpath(tmp_path / "r")
    for name in ("best", "last", "metrics.jsonl"):
        target = os.path.join(out, name)
        renamed = next(i for i, e in enumerate(events) if e[0] == "replace" and e[2] == target)
        source = events[renamed][1]
        synced = {e[1] for e in events[:renamed] if e[0] == "fsync"}
        written = [os.path.join(source, f) for f in os.listdir(target)] if os.path.isdir(target) else [source]
        assert set(written) <= synced, (name, set(written) - synced)


# ------------------------------------------------------------------------------------------ run records and the CLI


def _train_parser():
    from sketchgraph.cli import build_parser

    return build_parser(["train"])


def test_train_help_states_the_precedence_and_the_defaults():
    parser = _train_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["train"]
    text = " ".join(sub.format_help().split())
    assert ("the defaults (the paper's MGT optimisation recipe: Adam lr 5e-05, step schedule, batch size 192, 100 "
            "epochs, with the project's 'mgt' preset; configs/spg20.toml holds the tuned recipe for 'mgt'), the config "
            "file, the --set overrides (in order), then the flags") in text
    for option, default in (("--epochs", "100"), ("--lr", "5e-05"), ("--batch-size", "192"), ("--seed", "0"),
                            ("--out", "runs/train")):
        assert re.search(rf"{option} \S+ .*?\(default {re.escape(default)}; a config file's value otherwise\)", text), \
            option


def test_a_flag_and_a_set_of_the_same_key_warn_and_the_flag_wins(capsys):
    from sketchgraph.train import config_from_args

    args = _train_parser().parse_args(["train", str(CONFIGS / "tiny.toml"), "--set", "epochs=5", "--epochs", "1",
                                       "--set", "lr=0.1", "--set", "overwrite=true", "--resume"])
    config = config_from_args(args)
    assert (config.epochs, config.lr, config.resume, config.overwrite) == (1, 0.1, True, False)
    assert capsys.readouterr().err.splitlines() == [
        "[train] warning: --epochs 1 wins over --set epochs=5 (a flag wins over --set, which wins over the config "
        "file)",
        "[train] warning: --resume wins over --set overwrite=true (a flag wins over --set, which wins over the config "
        "file)"]


@pytest.mark.parametrize("how", [["--preset", "mgt-paper"], ["--set", "preset=mgt-paper"]])
def test_a_preset_replacing_the_files_names_the_model_table_it_still_applies(capsys, how):
    from sketchgraph.train import config_from_args

    path = str(CONFIGS / "spg20.toml")
    config = config_from_args(_train_parser().parse_args(["train", path, *how]))
    assert config.preset == "mgt-paper" and config.model == {"dropout": 0.0}
    assert capsys.readouterr().err == (f"[train] warning: [model] from {path} (written for preset mgt) applied over "
                                       "mgt-paper: dropout 0.0 (preset 0.25); --set model={} drops the table\n")
    config_from_args(_train_parser().parse_args(["train", path, *how, "--set", "model={}"]))
    config_from_args(_train_parser().parse_args(["train", path, "--preset", "mgt"]))
    assert capsys.readouterr().err == ""  # the table dropped, or the file's own preset: nothing to say


def test_the_run_folder_records_the_config_the_log_and_the_outcome(easy_prepared, tmp_path, capsys, monkeypatch):
    from sketchgraph.cli import main

    out = tmp_path / "r"
    args = ["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--batch-size", "64",
            "--no-progress", "--set", "schedule=step", "--set", "epochs=9"]
    assert main([*args, "--epochs", "1"]) == 0
    err = capsys.readouterr().err
    assert f"; out {out}, 1 epoch, adamw lr 0.003 (step), batch size 64\n" in err  # the resolved settings
    record = json.loads((out / "train_config.json").read_text())
    assert record["config"]["epochs"] == 1 and record["config"]["batch_size"] == 64
    assert record["dataset"]["path"] == str(easy_prepared) and record["world_size"] == 1
    (first,) = record["invocations"]
    assert first["cwd"] == str(Path.cwd()) and first["from_epoch"] == 0 and "--epochs 1" in first["command"]
    assert isinstance(first["argv"], list) and re.match(r"\d{4}-\d\d-\d\dT", first["start_time"])
    log = (out / "train.log").read_text().splitlines()
    assert "==== started: sketchgraph train " in log[0]
    assert "[train] warning: --epochs 1 wins over --set epochs=9" in log[1]
    assert any("[train] epoch 1: loss " in line for line in log) and "\r" not in "".join(log)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "completed" and (summary["epochs"], summary["best_epoch"]) == (1, 1)
    assert summary["best_valid_top1"] == json.loads((out / "best" / "config.json").read_text())["metrics"][
        "valid_top1"]

    assert main([*args, "--epochs", "3", "--resume", "--set", "max_time_minutes=1e-6"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["stop_reason"], summary["epochs"], summary["epochs_this_invocation"]) == ("time_budget", 1, 0)
    assert "; out " in capsys.readouterr().err and "3 epochs, adamw" in (out / "train.log").read_text()
    log = (out / "train.log").read_text()
    assert log.count("==== started") == 1 and log.count("==== resumed after epoch 1: ") == 1  # appended
    assert [i["from_epoch"] for i in json.loads((out / "train_config.json").read_text())["invocations"]] == [0, 1]

    from sketchgraph.train import Trainer  # a run that diverges in its first epoch leaves its records too

    monkeypatch.setattr(Trainer, "validate", lambda self, epoch: {"valid_loss": 1.0, "valid_top1": 0.5,
                                                                  "valid_top5": 1.0})
    real = Trainer.train_epoch
    monkeypatch.setattr(Trainer, "train_epoch", lambda self, epoch: {**real(self, epoch), "train_loss": math.nan})
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "dv"), "--epochs", "1"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["best_valid_top1"] is None  # not the -1.0 kept inside
    assert printed["best_epoch"] is None  # as summary.json says; 0 is no epoch a run has
    summary = json.loads((tmp_path / "dv" / "summary.json").read_text())
    assert (summary["stop_reason"], summary["best_epoch"], summary["best_valid_top1"]) == ("diverged", None, None)
    assert "diverged" in (tmp_path / "dv" / "train.log").read_text()
    assert (tmp_path / "dv" / "train_config.json").is_file()
    # the records alone, of a run that wrote no checkpoint: the same recipe starts over, another one is refused
    assert main([*args, "--out", str(tmp_path / "dv"), "--epochs", "1", "--lr", "0.5"]) == 1
    assert ("already holds a training run (train_config.json, train.log, summary.json); it wrote no checkpoint, and "
            "its recipe in train_config.json differs from this one (recorded -> now): lr: 0.003 -> 0.5; start it "
            f"over with its recipe (sketchgraph train --resume --out {tmp_path / 'dv'} alone, or this command without "
            "the changes), or "
            "pass --overwrite (overwrite=true) to start over with this one") in capsys.readouterr().err
    record_path = tmp_path / "dv" / "train_config.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps({**record, "world_size": 2}))  # as torchrun with 2 processes records it
    assert main([*args, "--out", str(tmp_path / "dv"), "--epochs", "1"]) == 1
    assert ("(recorded -> now): world_size: 2 -> 1; start it over with its recipe (torchrun --standalone "
            f"--nproc_per_node 2 -m sketchgraph train --resume --out {tmp_path / 'dv'} alone, or this command "
            "without the changes)") in capsys.readouterr().err
    record_path.write_text(json.dumps(record))
    assert main([*args, "--out", str(tmp_path / "dv"), "--epochs", "1"]) == 1  # diverges again
    assert (f"[train] no checkpoint was written by the earlier run in {tmp_path / 'dv'} (train_config.json, "
            "train.log, summary.json); starting over\n") in capsys.readouterr().err
    assert len(json.loads((tmp_path / "dv" / "train_config.json").read_text())["invocations"]) == 2


def test_ctrl_c_says_how_to_continue_and_resume_takes_the_recorded_recipe(easy_prepared, tmp_path, capsys,
                                                                           monkeypatch):
    """Interrupted in epoch 2 of 2, the CLI prints one line with the command that continues it; that command
    (``--resume --out DIR``, no config file or recipe flags) takes the recipe from ``last/config.json`` and ends as a
    run that never stopped did."""
    import shlex

    from sketchgraph.cli import main
    from sketchgraph.train import Trainer

    recipe = [str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--epochs", "2", "--batch-size", "32",
              "--no-progress", "--set", "model.dropout=0.2", "--set", "augment.rotation=10", "--set", "bucket=4"]
    assert main(["train", *recipe, "--out", str(tmp_path / "a")]) == 0
    real = Trainer.validate

    def interrupt_in_epoch_2(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return real(self, epoch)

    out = tmp_path / "b"
    with monkeypatch.context() as mp:
        mp.setattr(Trainer, "validate", interrupt_in_epoch_2)
        capsys.readouterr()
        assert main(["train", *recipe, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1] == (f"sketchgraph train: interrupted in epoch 2; last/ holds epoch 1; continue with: "
                                    f"sketchgraph train --resume --out {out}")
    assert json.loads((out / "summary.json").read_text())["stop_reason"] == "interrupted"

    assert main(["train", "--resume", "--out", str(out), "--lr", "0.5"]) == 1  # an explicit recipe change: refused
    assert "lr: 0.003 -> 0.5" in capsys.readouterr().err
    assert main(shlex.split(err.splitlines()[-1].split("continue with: ")[1])[1:] + ["--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert f"[train] resume: recipe and dataset ({easy_prepared}) from {out / 'last' / 'config.json'}; the run was " \
           "started with: sketchgraph train " in err
    # a dataset named with --data (a moved folder) is said to come from --data, not from the checkpoint
    assert main(["train", "--resume", "--out", str(out), "--data", str(easy_prepared), "--device", "cpu"]) == 0
    assert f"[train] resume: recipe from {out / 'last' / 'config.json'}, dataset {easy_prepared} from --data; " in \
        capsys.readouterr().err
    wa = load_file(str(tmp_path / "a" / "last" / "model.safetensors"))
    wb = load_file(str(out / "last" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert json.loads((out / "summary.json").read_text())["stop_reason"] == "completed"


def test_a_run_stopped_before_its_first_checkpoint_can_be_run_again_or_resumed(easy_prepared, tmp_path, capsys,
                                                                               monkeypatch):
    """A run stopped in its first epoch (Ctrl-C here; a kill -9 leaves no summary.json) leaves only its records.
    The same command then starts over (it used to be refused), another recipe is refused with the differences,
    and `--resume --out DIR` alone takes the recipe recorded in train_config.json (it used to fail for want of a
    dataset, or train the library defaults with --data); `--resume` with no recorded recipe is refused."""
    import shutil

    from sketchgraph.cli import main
    from sketchgraph.train import Trainer

    recipe = [str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--epochs", "1", "--batch-size", "32",
              "--no-progress", "--set", "model.dropout=0.2", "--set", "bucket=4"]
    out, killed = tmp_path / "a", tmp_path / "k"

    def interrupt(self, epoch):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(Trainer, "validate", interrupt)
        assert main(["train", *recipe, "--out", str(out)]) == 130
    assert sorted(p.name for p in out.iterdir()) == ["metrics.jsonl", "summary.json", "train.log",
                                                     "train_config.json"]
    assert (out / "metrics.jsonl").read_text() == ""
    shutil.copytree(out, killed)
    (killed / "summary.json").unlink()  # as a kill -9 leaves it
    capsys.readouterr()

    assert main(["train", *recipe, "--out", str(killed), "--lr", "0.5", "--set", "augment.rotation=3"]) == 1
    err = capsys.readouterr().err
    assert (f"error: {killed} already holds a training run (train_config.json, train.log); it wrote no checkpoint, "
            "and its recipe in train_config.json differs from this one (recorded -> now): lr: 0.003 -> 0.5; "
            "augment.rotation: 0.0 -> 3.0; start it over with its recipe") in err, err
    assert not (killed / "last").exists()
    # the ways out it names: --resume with the changed settings is refused; --resume alone starts over
    assert main(["train", "--resume", "--out", str(killed), "--lr", "0.5"]) == 1
    capsys.readouterr()

    assert main(["train", *recipe, "--out", str(out)]) == 0  # the same command: starts over
    err = capsys.readouterr().err
    assert (f"[train] no checkpoint was written by the earlier run in {out} (train_config.json, train.log, "
            "summary.json); starting over\n") in err
    record = json.loads((out / "train_config.json").read_text())
    assert [i["from_epoch"] for i in record["invocations"]] == [0, 0]  # both invocations recorded
    assert (out / "train.log").read_text().count("==== started") == 2
    assert json.loads((out / "summary.json").read_text())["stop_reason"] == "completed"

    assert main(["train", "--resume", "--out", str(killed)]) == 0  # the form the help advertises
    err = capsys.readouterr().err
    assert (f"[train] resume: recipe and dataset ({easy_prepared}) from {killed / 'train_config.json'}; the run was "
            f"started with: sketchgraph train {recipe[0]} ") in err
    assert "; it wrote no checkpoint, so it starts over\n" in err and "bucket 4)" in err
    trained = json.loads((killed / "last" / "config.json").read_text())["training"]["config"]
    assert (trained["batch_size"], trained["epochs"], trained["model"]["dropout"], trained["bucket"]) == (32, 1, 0.2, 4)
    wa, wb = (load_file(str(d / "last" / "model.safetensors")) for d in (out, killed))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)  # the recorded recipe, exactly

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["train", "--resume", "--out", str(empty), "--data", str(easy_prepared)]) == 1
    assert capsys.readouterr().err == (
        f"sketchgraph train: error: --resume without a config file takes the recipe recorded in {empty} "
        f"(last/config.json, or train_config.json when the run wrote no checkpoint), and {empty} holds none: name "
        "the run's folder with --out, or pass the config file and settings of the run to start\n")
    assert list(empty.iterdir()) == []


def test_classes_without_sketches_and_odd_validation_splits_are_pointed_out(easy_prepared, tmp_path, capsys):
    from sketchgraph.data import prepare
    from sketchgraph.synthetic import write_dataset
    from sketchgraph.train import Trainer

    raw = tmp_path / "raw"
    write_dataset(raw, 10, seed=0, splits={"train": 6, "valid": 2, "test": 2},
                  classes=["circle", "square", "zigzag", "cross"])
    (raw / "zigzag_train.ndjson").unlink()
    (raw / "cross_valid.ndjson").unlink()
    data = prepare(raw, tmp_path / "p", workers=1, progress=False).path
    Trainer(tiny(data, tmp_path / "r", "batch_size=4"), command=None).ctx.close()
    err = capsys.readouterr().err
    assert ("[train] warning: class(es) with no sketch in the 'train' split: zigzag; the model cannot learn them, and "
            "the valid top-1 cannot reach 100%\n") in err
    assert ("[train] warning: class(es) with no sketch in the 'valid' split: cross; validation does not measure "
            "them") in err

    for split, said in (("train", "valid_split is the training split ('train')"), ("test", "valid_split is 'test'")):
        Trainer(tiny(easy_prepared, tmp_path / "r", f"valid_split={split}"), command=None).ctx.close()
        assert f"[train] warning: {said}" in capsys.readouterr().err
    Trainer(tiny(easy_prepared, tmp_path / "r"), command=None).ctx.close()
    assert "warning" not in capsys.readouterr().err

    write_dataset(tmp_path / "flat", 3, seed=0, classes=["circle", "square"])  # no split in the file names: 'all'
    flat = prepare(tmp_path / "flat", tmp_path / "pflat", workers=1, progress=False).path
    with pytest.raises(KeyError, match=r"no split 'train'; this dataset has \['all'\]; prepare it again with splits "
                                       r"\(sketchgraph prepare ... --protocol, see its --help\), or name the splits to "
                                       r"use \(--set train_split=... --set valid_split=...\)"):
        Trainer(tiny(flat, tmp_path / "r"), command=None)


@pytest.mark.parametrize("where, message", [
    ("data", "--out {data} is a prepared dataset (it holds meta.json / coords.npy): name another folder for the run"),
    ("inside", "--out {data}/run is inside the dataset folder --data {data}: keep runs and prepared datasets apart"),
    ("above", "--out {parent} holds the dataset folder --data {data}: keep runs and prepared datasets apart"),
])
def test_out_may_not_be_a_dataset_or_overlap_the_data(easy_prepared, tmp_path, capsys, where, message):
    import shutil

    from sketchgraph.cli import main

    data = tmp_path / "parent" / "data"
    shutil.copytree(easy_prepared, data)
    out = {"data": data, "inside": data / "run", "above": data.parent}[where]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["train", str(CONFIGS / "tiny.toml"), "--data", str(data), "--out", str(out), "--epochs", "1",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sketchgraph train: error: " + message.format(data=data, parent=data.parent)), err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing written


def test_a_save_that_fails_while_an_interrupt_is_held_reports_the_failure(easy_prepared, tmp_path, capsys,
                                                                          monkeypatch):
    """A full disk in epoch 2's save, with a Ctrl-C held meanwhile, said "interrupted after epoch 2 was saved" and
    summary.json said 2 epochs, while last/ held epoch 1 and the disk error was shown nowhere."""
    import errno

    from sketchgraph.cli import main
    from sketchgraph.train import Trainer

    real = Trainer.save

    def full_disk_in_epoch_2(self, name, metrics, *args, **kwargs):
        if name == "last" and metrics["epoch"] == 2:
            os.kill(os.getpid(), signal.SIGINT)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, name, metrics, *args, **kwargs)

    out = tmp_path / "r"
    monkeypatch.setattr(Trainer, "save", full_disk_in_epoch_2)
    assert main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs",
                 "3", "--no-progress"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"sketchgraph train: error: [Errno {errno.ENOSPC}] {os.strerror(errno.ENOSPC)}")
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["stop_reason"], summary["epochs"]) == ("failed", 1)
    assert json.loads((out / "last" / "state.json").read_text())["epoch"] == 1


def test_another_projects_config_and_weights_do_not_make_a_checkpoint(tmp_path):
    """Any folder holding a config.json and a model.pt (another ML project, a container's /app) counted as a
    checkpoint, and every --out below it was refused."""
    from sketchgraph.checkpoint import is_checkpoint
    from sketchgraph.train import _check_out_is_not_data

    (tmp_path / "config.json").write_text('{"name": "x"}')
    (tmp_path / "model.pt").write_bytes(b"")
    assert not is_checkpoint(tmp_path)
    _check_out_is_not_data(tmp_path / "runs" / "a", "")  # no error
    (tmp_path / "config.json").write_text("{broken")
    assert not is_checkpoint(tmp_path)
    assert is_checkpoint(Path(__file__).resolve().parent.parent / "checkpoints" / "spg20")


def test_train_help_shows_every_set_key_with_its_default(capsys):
    """docs/training.md says ``train --help`` shows each default; it showed only the flags'."""
    from sketchgraph.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "early_stop_patience=10," in text and "bf16=true," in text and "weight_decay=0.0," in text
    assert all(f"{f.name}=" in text for f in dataclasses.fields(TrainConfig) if f.name not in ("model", "augment"))
    augment = AugmentConfig()
    assert all(f"augment.{f.name}={getattr(augment, f.name)}" in text for f in dataclasses.fields(AugmentConfig))
    assert "model.KEY: any field of the preset's model config" in text
    cfg = load_train_config(None, ["bf16=true", "early_stop_patience=10", 'data=""'])  # as shown, the defaults
    assert (cfg.bf16, cfg.early_stop_patience, cfg.data) == (True, 10, "")


@pytest.mark.parametrize("where", ["checkpoint", "inside", "shipped"])
def test_out_may_not_be_or_lie_inside_a_checkpoint(easy_prepared, tmp_path, capsys, where):
    """``--out runs/def/last`` (or the shipped model's folder) was accepted: the run's next save of last/ deleted
    the run inside it, without a word."""
    import shutil

    from sketchgraph.cli import main

    shipped = Path(__file__).resolve().parent.parent / "checkpoints" / "spg20"
    ckpt = shipped if where == "shipped" else tmp_path / "runs" / "def" / "last"
    if where != "shipped":
        shutil.copytree(shipped, ckpt)
    out = ckpt / "sub" / "run" if where == "inside" else ckpt
    before = sorted(p.relative_to(ckpt.parent) for p in ckpt.parent.rglob("*"))
    for extra in ([], ["--resume"], ["--overwrite"]):
        assert main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out),
                     "--epochs", "1", "--no-progress", *extra]) == 1
        err = capsys.readouterr().err
        what = "is a checkpoint" if out == ckpt else f"is inside the checkpoint {ckpt}"
        assert err.startswith(f"sketchgraph train: error: --out {out} {what}: name a folder of its own for the run "
                              "(e.g. --out runs/NAME); a checkpoint is replaced whole when it is saved again"), err
    assert sorted(p.relative_to(ckpt.parent) for p in ckpt.parent.rglob("*")) == before  # nothing written


def test_a_resume_removes_the_checkpoint_writes_of_dead_processes(easy_prepared, tmp_path, capsys):
    import os
    import subprocess

    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=2", "batch_size=64", "schedule=step")
    train(dataclasses.replace(cfg, epochs=1))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / "r" / f".best.tmp-{int(gone.stdout)}"  # that process has ended
    alive = tmp_path / "r" / f".last.tmp-{os.getppid()}"  # a running process (pytest's parent) may still write it
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half")
    capsys.readouterr()
    assert train(dataclasses.replace(cfg, resume=True)).epochs == 2
    assert not dead.exists() and alive.is_dir()
    assert f"[train] removed {dead.name}/: checkpoint writes cut short by a process that is no longer running" in \
        capsys.readouterr().err


def test_checkpoint_writes_of_another_machine_are_kept_and_named(easy_prepared, tmp_path, capsys):
    """A pid says nothing about a process of another machine (or container) sharing the folder: its temporary
    folders are kept, and named, until they are a day old; this machine's dead ones still go."""
    import os
    import subprocess

    from sketchgraph.temporaries import host as _host

    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=2", "batch_size=64", "schedule=step")
    train(dataclasses.replace(cfg, epochs=1))
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    out = tmp_path / "r"
    mine_dead = out / f".last.tmp-{_host()}-{gone}"
    theirs, theirs_old = out / f".last.tmp-other-host-{gone}", out / f".best.tmp-other-host-{gone}"
    for folder in (mine_dead, theirs, theirs_old):
        folder.mkdir()
    os.utime(theirs_old, (time.time() - 25 * 3600,) * 2)
    capsys.readouterr()
    assert train(dataclasses.replace(cfg, resume=True)).epochs == 2
    assert theirs.is_dir() and not mine_dead.exists() and not theirs_old.exists()
    err = capsys.readouterr().err
    assert f"[train] removed {theirs_old.name}/, {mine_dead.name}/: checkpoint writes cut short" in err
    assert f"[train] note: kept {theirs.name}/: checkpoint writes of a process on another machine" in err


def test_seed_range_augment_prefix_and_a_missing_config_file(tmp_path, capsys):
    from sketchgraph.cli import main

    with pytest.raises(ValueError, match=r"^seed must be < 2\*\*64 \(torch's seeds are 64-bit\), got "
                                         r"18446744073709551616$"):
        apply_overrides(TrainConfig(), [f"seed={2**64}"])
    assert apply_overrides(TrainConfig(), [f"seed={2**64 - 1}"]).seed == 2**64 - 1
    with pytest.raises(ValueError, match=r"^augment.rotation must be a finite number >= 0, got -5.0$"):
        apply_overrides(TrainConfig(), ["augment.rotation=-5"])
    assert main(["train", "configs/nothere.toml", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 1
    assert capsys.readouterr().err == "sketchgraph train: error: no such config file: configs/nothere.toml\n"


def test_checkpoints_record_where_and_from_which_code_they_were_trained(easy_prepared, tmp_path, monkeypatch):
    import os

    monkeypatch.chdir(easy_prepared.parent)  # a relative --data is recorded as an absolute path as well
    train(tiny(Path(easy_prepared.name), tmp_path / "r", "epochs=1", "batch_size=64"))
    training = json.loads((tmp_path / "r" / "last" / "config.json").read_text())["training"]
    assert training["cwd"] == os.getcwd() and training["dataset"]["path"] == str(easy_prepared)
    assert training["config"]["data"] == easy_prepared.name
    git = training["git"]
    assert git is None or (re.fullmatch(r"[0-9a-f]{40}", git["commit"]) and isinstance(git["dirty"], bool))


@pytest.mark.parametrize("tty, setting, shown", [(True, None, True), (False, None, False), (False, True, True),
                                                 (True, False, False)])
def test_progress_bars_default_to_a_terminal_only(easy_prepared, tmp_path, monkeypatch, tty, setting, shown):
    import sketchgraph.train as train_module
    from sketchgraph.train import Trainer, config_from_args

    assert TrainConfig().progress is None
    assert config_from_args(_train_parser().parse_args(["train", "--progress"])).progress is True
    monkeypatch.setattr(train_module, "_stderr_is_tty", lambda: tty)
    run = Trainer(dataclasses.replace(tiny(easy_prepared, tmp_path / "r"), progress=setting), command=None)
    run.ctx.close()
    assert run.show_progress is shown


# ------------------------------------------------------------------------------------------ hostile review 12-02e
def test_a_resume_without_last_of_a_run_that_trained_is_refused_and_changes_nothing(easy_prepared, tmp_path, capsys):
    """``last/`` deleted (to save room) or not copied: ``--resume`` must not start over in place, which cut the
    run's metrics.jsonl back and wrote a new best/ over the old one."""
    import shutil

    from sketchgraph.cli import main

    out = tmp_path / "r"
    assert main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs",
                 "2", "--no-progress"]) == 0
    shutil.rmtree(out / "last")
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "it wrote no checkpoint, so it starts over" not in err
    assert err.endswith(f"sketchgraph train: error: cannot resume the run in {out}: it has no last/ (the model, "
                        "optimizer and schedule a resume continues from), but it trained (metrics.jsonl, best/). "
                        "Bring last/ back to continue the run; or train afresh: --overwrite deletes this run first, "
                        "another --out keeps it (its best/ is a checkpoint as it is)\n"), err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_a_damaged_last_model_is_a_clear_error_on_resume(easy_prepared, tmp_path, capsys):
    from sketchgraph.cli import main

    out = tmp_path / "r"
    assert main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs",
                 "1", "--no-progress", "--set", "schedule=step"]) == 0
    weights = out / "last" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--epochs", "2"]) == 1
    err = capsys.readouterr().err
    assert f"sketchgraph train: error: {weights} is not a valid safetensors file (" in err and "Traceback" not in err
    weights.unlink()
    assert main(["train", "--resume", "--out", str(out), "--epochs", "2"]) == 1
    assert f"error: cannot resume from {out / 'last'}: No such file or directory: {weights}" in capsys.readouterr().err


def test_summary_says_running_while_an_invocation_runs_and_failed_after_an_error(easy_prepared, tmp_path,
                                                                                 monkeypatch):
    """``summary.json`` is ``running`` (no end time) from the start of an invocation, so a kill -9 cannot leave an
    earlier invocation's ``completed`` beside newer checkpoints; an error in an epoch makes it ``failed`` (it said
    ``completed``)."""
    from sketchgraph.train import Trainer

    cfg = tiny(easy_prepared, tmp_path / "r", "epochs=1", "schedule=step")
    train(cfg)
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["stop_reason"] == "completed"
    seen = []
    real = Trainer.validate

    def fail_in_epoch_3(self, epoch):
        seen.append(json.loads((tmp_path / "r" / "summary.json").read_text()))
        if epoch == 3:
            raise RuntimeError("disk on fire")
        return real(self, epoch)

    monkeypatch.setattr(Trainer, "validate", fail_in_epoch_3)
    with pytest.raises(RuntimeError, match="disk on fire"):
        train(dataclasses.replace(cfg, epochs=4, resume=True))
    # written again after each saved epoch: a kill -9 in epoch 3 leaves "running" with the 2 epochs saved
    assert [(s["stop_reason"], s["end_time"], s["epochs"]) for s in seen] == [("running", None, n) for n in (1, 2)]
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert (summary["stop_reason"], summary["epochs"], summary["error"]) == ("failed", 2, "RuntimeError: disk on fire")
    assert summary["end_time"] is not None


@pytest.mark.parametrize("given", [["--epochs", "3"], ["--set", "max_time_minutes=30"]])
def test_the_continue_command_of_an_extension_keeps_its_new_stop_settings(easy_prepared, tmp_path, capsys,
                                                                          monkeypatch, given):
    """Interrupted before an extension (``--resume --epochs 3``) saved an epoch, ``last/`` still records the old
    settings: the command printed gives the new ones again (it used to drop them, and then did nothing)."""
    import shlex

    from sketchgraph.cli import main
    from sketchgraph.train import Trainer

    out = tmp_path / "r"
    assert main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs",
                 "1", "--no-progress", "--set", "schedule=step"]) == 0

    def interrupt(self, epoch):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(Trainer, "validate", interrupt)
        capsys.readouterr()
        assert main(["train", "--resume", "--out", str(out), "--epochs", "3", *given]) == 130
    last = capsys.readouterr().err.splitlines()[-1]
    want = "--epochs 3" + (" --set max_time_minutes=30.0" if given[0] == "--set" else "")
    assert last == (f"sketchgraph train: interrupted in epoch 2; last/ holds epoch 1; continue with: "
                    f"sketchgraph train --resume --out {out} {want}")
    assert main(shlex.split(last.split("continue with: ")[1])[1:]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs"] == 3


def test_a_run_started_over_records_the_command_it_was_started_with(easy_prepared, tmp_path, monkeypatch, capsys):
    """A run whose first invocation wrote no checkpoint, started over by ``--resume --out DIR`` alone: its
    checkpoints (and model card) give the first command, which reproduces it, not ``sketchgraph train --out DIR``."""
    from sketchgraph.cli import main
    from sketchgraph.train import Trainer

    out = tmp_path / "r"
    recipe = [str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs", "1",
              "--no-progress"]

    def interrupt(self, epoch):
        raise KeyboardInterrupt

    with monkeypatch.context() as mp:
        mp.setattr(Trainer, "validate", interrupt)
        assert main(["train", *recipe]) == 130
    assert main(["train", "--resume", "--out", str(out)]) == 0
    first = json.loads((out / "train_config.json").read_text())["invocations"][0]["command"]
    assert first.startswith(f"sketchgraph train {recipe[0]} --data ")
    for name in ("best", "last"):
        training = json.loads((out / name / "config.json").read_text())["training"]
        assert training["command"] == first and training["commands"] == [{"command": first, "from_epoch": 0}]
    assert f"```\n{first}\n```" in (out / "best" / "README.md").read_text()
    capsys.readouterr()


@pytest.mark.slow
@pytest.mark.parametrize("how, workers", [("kill", 0), ("kill", 2), ("group", 2), ("ctrl_c", 2)])
def test_a_stop_signal_ends_training_and_says_how_to_continue(easy_prepared, tmp_path, terminated_cli, how, workers):
    """SIGTERM (``kill``, ``timeout``, Slurm): the run says in which epoch it stopped and how to continue, records
    ``interrupted`` and exits with 143, where it used to die at once and leave an earlier summary in place. With
    loader workers, a SIGTERM to the whole group (``timeout``) killed them too, and the run often stopped on torch's
    "DataLoader worker is killed by signal" (exit status 1, summary.json left "running"), or printed an "Exception
    ignored" traceback; a Ctrl-C could be swallowed in a loader's clean-up, and the run trained on to the end."""
    out = tmp_path / "r"
    metrics = out / "metrics.jsonl"
    err = terminated_cli(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out),
                          "--epochs", "500", "--no-progress", "--set", "schedule=step", "--set",
                          f"num_workers={workers}"],
                         lambda: metrics.is_file() and metrics.read_text().count("\n") >= 2, "an epoch",
                         ctrl_c=how == "ctrl_c", group=how == "group")
    said = re.fullmatch(rf"sketchgraph train: interrupted (?:in epoch \d+; last/ holds epoch (\d+)|after epoch (\d+) "
                        rf"was saved); continue with: sketchgraph train --resume --out {re.escape(str(out))}",
                        err.splitlines()[-1])
    assert said, err
    summary = json.loads((out / "summary.json").read_text())
    saved = int(said[1] or said[2])
    assert summary["stop_reason"] == "interrupted" and summary["epochs"] == saved
    assert json.loads((out / "last" / "state.json").read_text())["epoch"] == saved


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_while_an_epoch_is_saved_waits_for_the_save(easy_prepared, tmp_path, capsys, monkeypatch,
                                                                   signum, status):
    """Ctrl-C or SIGTERM while an epoch's records were written said "last/ holds epoch 1" of a last/ not yet
    written, and the resume it gave was refused (the run had trained, and had no last/): the epoch's metrics line,
    checkpoints and summary are now written whole, and the interrupt takes effect after them."""
    from sketchgraph.cli import main
    from sketchgraph.train import Trainer

    real = Trainer.save

    def signalled_while_saving(self, name, *args, **kwargs):
        if name == "best":
            os.kill(os.getpid(), signum)
        return real(self, name, *args, **kwargs)

    out = tmp_path / "r"
    monkeypatch.setattr(Trainer, "save", signalled_while_saving)
    assert main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs",
                 "3", "--no-progress"]) == status
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"sketchgraph train: interrupted after epoch 1 was saved; continue with: sketchgraph train --resume --out "
        f"{out}")
    assert json.loads((out / "last" / "state.json").read_text())["epoch"] == 1 and (out / "best").is_dir()
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["epochs"] == 1
    monkeypatch.setattr(Trainer, "save", real)
    assert main(["train", "--resume", "--out", str(out)]) == 0
    assert json.loads((out / "last" / "state.json").read_text())["epoch"] == 3


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_second_interrupt_does_not_cut_the_records_of_an_interrupted_run_short(easy_prepared, tmp_path, capsys,
                                                                                 monkeypatch, signum):
    """``timeout`` sends its signal twice (to the command, then to its process group): a second one while the
    interrupted run wrote its summary left summary.json "running" beside a summary.json.tmp, and the last line said
    only "interrupted". Once the run stops on an interrupt, further ones are dropped until its records are
    written."""
    from sketchgraph.cli import main
    from sketchgraph.train import Trainer

    real_save, real_summary = Trainer.save, Trainer.write_summary

    def signalled_in_epoch_2(self, name, *args, **kwargs):
        if args and args[0]["epoch"] == 2:
            raise KeyboardInterrupt  # the first interrupt, in epoch 2
        return real_save(self, name, *args, **kwargs)

    def signalled_again(self, stop_reason, *args, **kwargs):
        if stop_reason == "interrupted":
            os.kill(os.getpid(), signum)  # the second, while the summary is written
        return real_summary(self, stop_reason, *args, **kwargs)

    out = tmp_path / "r"
    monkeypatch.setattr(Trainer, "save", signalled_in_epoch_2)
    monkeypatch.setattr(Trainer, "write_summary", signalled_again)
    assert main(["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--epochs",
                 "3", "--no-progress"]) == 130  # the first interrupt's status: the second was dropped
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"sketchgraph train: interrupted in epoch 2; last/ holds epoch 1; continue with: sketchgraph train --resume "
        f"--out {out}")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted" and summary["epochs"] == 1
    assert not list(out.glob("*.tmp"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are back


@pytest.mark.parametrize("env, words", [
    ({}, ["sketchgraph"]),
    ({"WORLD_SIZE": "1"}, ["sketchgraph"]),
    ({"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}, ["torchrun", "--standalone", "--nproc_per_node", "2", "-m",
                                                    "sketchgraph"]),
    ({"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "4"}, ["torchrun", "--nnodes", "2", "--nproc_per_node", "4", "-m",
                                                    "sketchgraph"]),
    ({"WORLD_SIZE": "3"}, ["torchrun", "--standalone", "--nproc_per_node", "3", "-m", "sketchgraph"]),
    ({"WORLD_SIZE": "6", "LOCAL_WORLD_SIZE": "4"}, ["torchrun", "--standalone", "--nproc_per_node", "6", "-m",
                                                    "sketchgraph"]),  # not a whole number of nodes: one
])
def test_the_recorded_command_starts_as_many_processes_as_the_run(monkeypatch, env, words):
    """A torchrun run recorded ``sketchgraph train ...``, which trains in one process, with another global batch."""
    from sketchgraph.cli import build_parser
    from sketchgraph.train import _command_line

    for key in ("WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    argv = ["train", "c.toml", "--data", "d", "--out", "o", "--epochs", "2"]
    args = build_parser(argv).parse_args(argv)
    assert _command_line(args) == shlex.join([*words, "train", "c.toml", "--data", "d", "--out", "o", "--epochs", "2"])


def test_a_resume_without_the_config_file_records_a_whole_command(easy_prepared, tmp_path):
    """``--resume --out DIR --epochs 3`` alone was recorded as ``sketchgraph train --out DIR --epochs 3``, which trains
    the defaults on no data: the recorded command is now the run's, with the resume's settings in place of its own."""
    from sketchgraph.cli import main

    out = tmp_path / "r"
    first = ["train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out", str(out), "--no-progress",
             "--set", "schedule=step", "--set", "batch_size=64", "--set", "max_time_minutes=30"]
    assert main([*first, "--epochs", "1"]) == 0
    assert main(["train", "--resume", "--out", str(out), "--epochs", "2", "--set", "max_time_minutes=60"]) == 0
    training = json.loads((out / "last" / "config.json").read_text())["training"]
    expected = shlex.join(["sketchgraph", "train", str(CONFIGS / "tiny.toml"), "--data", str(easy_prepared), "--out",
                           str(out), "--epochs", "2", "--no-progress", "--set", "schedule=step", "--set",
                           "batch_size=64", "--set", "max_time_minutes=60"])
    assert training["command"] == expected and [c["command"] for c in training["commands"]][-1] == expected
    invocations = json.loads((out / "train_config.json").read_text())["invocations"]
    assert invocations[-1]["command"] == expected and "--epochs 1" in invocations[0]["command"]
    # settings given by --set that the run had as flags: the flags go, or they would win over the --set again
    from sketchgraph.cli import build_parser
    from sketchgraph.train import _resumed_command

    argv = ["train", "--resume", "--out", str(out), "--set", "epochs=3", "--set", "data=moved"]
    assert _resumed_command(build_parser(argv).parse_args(argv)) == shlex.join([
        "sketchgraph", "train", str(CONFIGS / "tiny.toml"), "--out", str(out), "--no-progress", "--set",
        "schedule=step", "--set", "batch_size=64", "--set", "max_time_minutes=60", "--set", "epochs=3", "--set",
        "data=moved"])


def test_more_loader_workers_than_cpus_is_said_once_at_the_start(easy_prepared, tmp_path, capsys, monkeypatch):
    """configs/paper.toml's num_workers = 4 on a 2-core machine gave only torch's warning, twice; the setting cannot
    change on a resume, so the trainer says so at the start."""
    import sketchgraph.train as train_mod

    monkeypatch.setattr(train_mod, "usable_cpus", lambda: 1)
    train(tiny(easy_prepared, tmp_path / "r", "epochs=1", "num_workers=2"))
    err = capsys.readouterr().err
    assert err.count("note: num_workers 2 is more than the 1 CPU this process may use: the loader processes share "
                     "them, which is slower, not wrong") == 1
    assert "so a resume keeps it: to change it, start the run afresh" in err
