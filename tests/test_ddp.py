"""Distributed training: ``torchrun --nproc_per_node 2`` (gloo on CPU) through the real CLI, compared
with a one-process run of the same global batch size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sketchgraph.train import load_train_config, train

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def torchrun_train(data: Path, out: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``sketchgraph train configs/tiny.toml`` in two processes (``torchrun --nproc_per_node 2``, gloo)."""
    env = {**os.environ, "DGLBACKEND": "pytorch", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "sketchgraph", "train", str(CONFIGS / "tiny.toml"), "--data", str(data), "--out", str(out),
           "--no-progress", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_two_processes_match_one(easy_prepared, tmp_path):
    out = tmp_path / "ddp"
    proc = torchrun_train(easy_prepared, out, "--batch-size", "8", "--epochs", "8")
    assert proc.returncode == 0, proc.stderr[-3000:]

    # rank 0 alone wrote: one summary line, one metrics line per epoch, checkpoints recording 2 processes
    summaries = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(summaries) == 1
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 9))
    config = json.loads((out / "last" / "config.json").read_text())
    assert config["training"]["hardware"].startswith("2 x ")
    # the recorded command starts two processes too: run alone, it would train with another global batch
    command = config["training"]["command"]
    assert command.startswith("torchrun --standalone --nproc_per_node 2 -m sketchgraph train "), command
    assert command in (out / "best" / "README.md").read_text()
    assert rows[0]["sketches_per_s"] > 0

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = train(load_train_config(CONFIGS / "tiny.toml", [
            f"data={easy_prepared}", f"out={tmp_path / 'one'}", "batch_size=16", "epochs=8", "progress=false"]))
    finally:
        torch.set_num_threads(threads)
    ddp_best = max(r["valid_top1"] for r in rows)
    assert ddp_best > 0.85 and single.best_valid_top1 > 0.85
    assert abs(ddp_best - single.best_valid_top1) <= 0.1
    assert json.loads(summaries[0])["epochs"] == single.epochs == 8


@pytest.mark.slow
def test_every_process_refuses_an_earlier_run(easy_prepared, tmp_path):
    """An OUT holding a run, without --resume or --overwrite: the run stops with the message and nothing is written
    (rank 0's view of the folder decides on every rank: test_train's test_every_rank_follows_rank_0_about_out)."""
    out = tmp_path / "ddp"
    (out / "best").mkdir(parents=True)
    (out / "metrics.jsonl").write_text('{"epoch": 1}\n')
    proc = torchrun_train(easy_prepared, out, "--epochs", "1", timeout=120)
    assert proc.returncode != 0
    assert f"{out} already holds a training run (metrics.jsonl, best/)" in proc.stderr, proc.stderr[-3000:]
    assert (out / "metrics.jsonl").read_text() == '{"epoch": 1}\n' and not (out / "last").exists()


RANK_WEIGHTS = """
import hashlib, os, sys
from pathlib import Path
from sketchgraph.train import load_train_config, train
result = train(load_train_config(sys.argv[1], sys.argv[3:]))
digest = hashlib.sha256()
for name, tensor in sorted(result.model.state_dict().items()):
    digest.update(name.encode())
    digest.update(tensor.detach().cpu().numpy().tobytes())
Path(f"{sys.argv[2]}.rank{os.environ['RANK']}").write_text(digest.hexdigest())
"""


@pytest.mark.slow
def test_ranks_validate_the_saved_batchnorm_model_and_a_resume_keeps_the_number_of_processes(easy_prepared, tmp_path):
    """BatchNorm's running statistics: DDP sends rank 0's only at the start of a training forward, so each rank
    ended an epoch with its own and validated its half of the valid split with them, while rank 0 saved its own.
    Every rank takes rank 0's before validating: the final weights and buffers are the same on both ranks, and the
    logged validation is the saved model's. Resuming that two-process run in one process is refused (world_size)."""
    from sketchgraph.errors import CheckpointError
    from sketchgraph.evaluate import evaluate

    script = tmp_path / "rank_weights.py"
    script.write_text(RANK_WEIGHTS)
    out = tmp_path / "bn"
    settings = [f"data={easy_prepared}", f"out={out}", "progress=false", "preset=cnn", "model={}", "epochs=2",
                "batch_size=16"]
    env = {**os.environ, "DGLBACKEND": "pytorch", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
           str(CONFIGS / "tiny.toml"), str(tmp_path / "weights"), *settings]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "weights.rank0").read_text() == (tmp_path / "weights.rank1").read_text()
    logged = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = evaluate(out / "last", easy_prepared, "valid", progress=False)
        with pytest.raises(CheckpointError, match=r"world_size: 2 -> 1"):
            train(load_train_config(CONFIGS / "tiny.toml", [*settings, "epochs=3", "resume=true"]))
    finally:
        torch.set_num_threads(threads)
    assert report["top1"] == pytest.approx(logged["valid_top1"])
    assert report["loss"] == pytest.approx(logged["valid_loss"], rel=1e-4)
