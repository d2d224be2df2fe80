"""Temporaries a killed process left (``sketchgraph.temporaries``): the next ``atomic_write`` of the same file
removes the abandoned ones and leaves those still being written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sketchgraph.formats.base import atomic_write, remove_abandoned
from sketchgraph.temporaries import host, suffix, writer_of

DAY_AND_MORE = 25 * 3600


def gone_pid() -> int:
    """The id of a process that ran and ended."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("name", ["predictions.csv", "[x] *?.csv", "n" * 250 + ".csv"])
def test_the_next_write_removes_what_a_killed_writer_left(tmp_path, name):
    """``evaluate --out`` killed with ``kill -9`` while it streamed ``predictions.csv`` left a hidden temporary
    that no later run removed. The name may hold glob characters, and may be as long as a file system allows."""
    target = tmp_path / name
    code = ("import sys, time\nfrom sketchgraph.formats.base import atomic_write\n"
            "with atomic_write(sys.argv[1], 'w') as f:\n"
            "    f.write('half of it'); f.flush(); print('writing', flush=True); time.sleep(60)\n")
    writer = subprocess.Popen([sys.executable, "-c", code, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        left = hidden(tmp_path)
        assert len(left) == 1 and left[0].endswith(f".tmp-{host()}-{writer.pid}"), left
        with atomic_write(tmp_path / "other.csv", "w") as f:  # another file's write leaves it alone
            f.write("x")
        assert hidden(tmp_path) == left  # its writer still runs
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert hidden(tmp_path) == left and not target.exists()
    with atomic_write(target, "w") as f:
        f.write("whole")
    assert hidden(tmp_path) == [] and target.read_text() == "whole"


def test_only_abandoned_temporaries_go(tmp_path):
    """This machine's of a process that ended go; one of a running process stays (this process's own too: another
    thread may be writing it); another machine's, and the ``.<name>.<random>.tmp`` of earlier versions, stay
    until they are a day old; files of other names and folders are never touched."""
    target, dead = tmp_path / "report.json", gone_pid()
    names = {
        "dead": f".report.json.abc.tmp-{host()}-{dead}",
        "running": f".report.json.abc.tmp-{host()}-{os.getppid()}",
        "mine": f".report.json.abc{suffix()}",
        "theirs": f".report.json.abc.tmp-{host()}x-{dead}",
        "theirs_old": f".report.json.def.tmp-other.example-{dead}",
        "legacy": ".report.json.k2j4h5g6.tmp",
        "legacy_old": ".report.json.a1b2c3d4.tmp",
        "other_file": f".metrics.json.abc.tmp-{host()}-{dead}",
        "folder": f".report.json.dir.tmp-{host()}-{dead}",
    }
    for key, name in names.items():
        path = tmp_path / name
        path.mkdir() if key == "folder" else path.write_text(key)
    for key in ("theirs_old", "legacy_old"):
        os.utime(tmp_path / names[key], (time.time() - DAY_AND_MORE,) * 2)
    removed = remove_abandoned(target)
    assert sorted(p.name for p in removed) == sorted(names[k] for k in ("dead", "theirs_old", "legacy_old"))
    assert hidden(tmp_path) == sorted(names[k] for k in ("running", "mine", "theirs", "legacy", "other_file",
                                                         "folder"))


@pytest.mark.parametrize("name, writer", [
    (".best.tmp-node1.cluster-42", ("node1.cluster", 42)),
    (".best.tmp-42", (None, 42)),
    (".a.csv.x1y2.tmp-my-host-7", ("my-host", 7)),
    (".a.csv.x1y2.tmp", None),
    (".best.tmp-notapid", None),
    ("best", None),
])
def test_writer_of_a_temporary_name(name, writer):
    assert writer_of(Path(name)) == writer


def test_a_failed_write_leaves_nothing_and_the_old_file_whole(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="cut short"):
        with atomic_write(target, "w") as f:
            f.write("new, half")
            raise RuntimeError("cut short")
    assert target.read_text() == "old" and hidden(tmp_path) == []
