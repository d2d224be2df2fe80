"""Shared fixtures.

Real data lives in ``../shared/data`` next to the checkout (never in the repository); fixtures and
tests that need it skip cleanly when it is absent. Everything else uses the project's own
synthetic sketches (``sketchgraph.synthetic``), generated on the fly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data_path(*parts: str) -> Path:
    """``../shared/data/<parts>``, or ``pytest.skip`` when it is not there (a user's clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path}")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ``../shared/data`` folder (skips when absent)."""
    return shared_data_path()


@pytest.fixture(name="shared_data_path", scope="session")
def _shared_data_path_fixture():
    """``shared_data_path(*parts)`` as a fixture: a path under ``../shared/data``, skipping the test
    when it is absent."""
    return shared_data_path


@pytest.fixture(scope="session")
def synthetic_sketches():
    """40 RAW-like synthetic sketches (4 per class of ``sketchgraph.synthetic.CLASSES``), with
    float canvas coordinates, ms times, ``label`` and ``key_id``. Shared: do not mutate."""
    from sketchgraph.synthetic import make_dataset

    return make_dataset(4, seed=0)


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """A tiny synthetic dataset on disk: RAW ndjson ``<class>_{train,valid,test}.ndjson`` for all 10
    classes, 6 / 2 / 2 sketches per class (seed 0). Shared: do not write into it."""
    from sketchgraph.synthetic import write_dataset

    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, 10, seed=0, format="raw", splits={"train": 6, "valid": 2, "test": 2})
    return root


@pytest.fixture(scope="session")
def easy_prepared(tmp_path_factory) -> Path:
    """A prepared dataset of 4 easy synthetic classes (circle, square, zigzag, cross), 96 / 12 / 12
    sketches per class (seed 0): a tiny model learns it to > 90% in seconds. Shared: read only."""
    from sketchgraph.data import prepare
    from sketchgraph.synthetic import write_dataset

    root = tmp_path_factory.mktemp("easy")
    write_dataset(root / "raw", 120, seed=0, splits={"train": 96, "valid": 12, "test": 12},
                  classes=["circle", "square", "zigzag", "cross"])
    prepare(root / "raw", root / "prepared", workers=1, progress=False)
    return root / "prepared"


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A checkpoint directory with a tiny random MGT over 5 classes (the real one, spg20, is trained
    separately); deterministic weights, default preprocessing."""
    import torch

    from sketchgraph.checkpoint import save_checkpoint
    from sketchgraph.graph import GraphSpec
    from sketchgraph.model import build_model
    from sketchgraph.preprocess import Preprocessing

    torch.manual_seed(0)
    model = build_model("mgt", num_classes=5, embed_dim=16, layers=2, heads=2, head_dim=8, ffn_dim=32,
                        classifier=(32,))
    return save_checkpoint(
        tmp_path_factory.mktemp("ckpt") / "tiny", model, classes=["apple", "cat", "dog", "house", "sun"],
        preprocessing=Preprocessing(), graph_spec=GraphSpec(model.relations), metrics={"valid_top1": 0.2},
    )


@pytest.fixture(name="break_npz_split")
def _break_npz_split_fixture():
    """``corrupt(path, split)``: overwrite the member of ``split`` in an ``.npz`` with bytes no reader can load
    (the other splits stay readable); returns ``path``."""
    import zipfile

    def corrupt(path: Path, split: str) -> Path:
        with zipfile.ZipFile(path) as z:
            members = {n: z.read(n) for n in z.namelist()}
        members[next(n for n in members if n.startswith(split))] = b"\x93NUMPY garbage"
        with zipfile.ZipFile(path, "w") as z:
            for name, data in members.items():
                z.writestr(name, data)
        return path

    return corrupt


@pytest.fixture
def preprocessed_points(monkeypatch) -> list[int]:
    """The point counts of the sketches ``sketchgraph.data.flat.preprocess_flat`` is given, in call order (the
    function itself still runs; the service and the batcher call it through the module)."""
    from sketchgraph.data import flat

    seen: list[int] = []
    original = flat.preprocess_flat

    def recorded(sketches, *args, **kwargs):
        seen.extend(s.num_points for s in sketches)
        return original(sketches, *args, **kwargs)

    monkeypatch.setattr(flat, "preprocess_flat", recorded)
    return seen


@pytest.fixture
def sync_events(monkeypatch) -> list[tuple[str, ...]]:
    """``("fsync", path)`` and ``("replace", src, dst)`` events, in order, from now on (real paths; Linux: /proc names a
    fd; skipped where it is missing)."""
    import os

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to name the file an fsync is for")
    events: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("replace", os.path.realpath(src), os.path.realpath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def _terminated_cli(args: list[str], ready, what: str, *, ctrl_c: bool = False, group: bool = False) -> str:
    """Run ``python -m sketchgraph ARGS``, send SIGTERM once ``ready()`` holds, check it exits with 143 (``kill``,
    ``timeout`` and Slurm stop a command as Ctrl-C does); its stderr, read until every process holding it (forked
    workers too) has closed it. ``ctrl_c``: send SIGINT to its whole process group instead, as a terminal's Ctrl-C
    does (forked workers get it too), and check it exits with 130. ``group``: send the SIGTERM to the whole process
    group, as ``timeout`` does (Slurm and systemd reach every process too)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "DGLBACKEND": "pytorch"}
    child = subprocess.Popen([sys.executable, "-m", "sketchgraph", *args], stderr=subprocess.PIPE, text=True,
                             env=env, start_new_session=ctrl_c or group)
    try:
        deadline = time.monotonic() + 120
        while not ready():
            assert time.monotonic() < deadline and child.poll() is None, f"{what} did not come"
            time.sleep(0.02)
        if ctrl_c or group:
            os.killpg(child.pid, signal.SIGINT if ctrl_c else signal.SIGTERM)
        else:
            child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == (130 if ctrl_c else 143)
    finally:
        child.kill()
        err = child.communicate()[1]
    assert "Traceback" not in err and "ForkPoolWorker" not in err and "Exception ignored" not in err, err
    return err


@pytest.fixture(name="terminated_cli", scope="session")
def _terminated_cli_fixture():
    """``_terminated_cli(args, ready, what, ctrl_c=False)`` as a fixture: stderr of a ``sketchgraph`` command stopped
    by SIGTERM (or a Ctrl-C) once ``ready()`` holds."""
    return _terminated_cli
