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
from sketchgraph.temporaries import RANDOM, hold, host, locked, release, suffix, writer_of

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
    until they are a day old; files of other names, names not of a writer's exact form (a user's backup, another
    file's temporary that starts with this name) and folders are never touched, however old."""
    target, dead = tmp_path / "report.json", gone_pid()
    names = {
        "dead": f".report.json.abc_1234.tmp-{host()}-{dead}",
        "running": f".report.json.abc_1234.tmp-{host()}-{os.getppid()}",
        "mine": f".report.json.abcd1234{suffix()}",
        "theirs": f".report.json.abcd1234.tmp-{host()}x-{dead}",
        "theirs_old": f".report.json.defg5678.tmp-other.example-{dead}",
        "legacy": ".report.json.k2j4h5g6.tmp",
        "legacy_old": ".report.json.a1b2c3d4.tmp",
        "other_file": f".metrics.json.abcd1234.tmp-{host()}-{dead}",
        "folder": f".report.json.dir12345.tmp-{host()}-{dead}",
        "backup_old": ".report.json.backup.tmp",
        "draft": f".report.json.draft.tmp-{host()}-{dead}",
        "longer_name_old": f".report.json.gz.abcd1234.tmp-{host()}-{dead}",
    }
    for key, name in names.items():
        path = tmp_path / name
        path.mkdir() if key == "folder" else path.write_text(key)
    for key in ("theirs_old", "legacy_old", "backup_old", "longer_name_old", "folder"):
        os.utime(tmp_path / names[key], (time.time() - DAY_AND_MORE,) * 2)
    removed = remove_abandoned(target)
    gone = ("dead", "theirs_old", "legacy_old")
    assert sorted(p.name for p in removed) == sorted(names[k] for k in gone)
    assert hidden(tmp_path) == sorted(names[k] for k in names if k not in gone)


def test_a_locked_temporary_is_being_written_whatever_its_name_says(tmp_path):
    """A writer of another PID namespace on this host (a container run with the host's name) has a process id
    that means nothing here: its temporary looked abandoned and was removed under it. The writer's lock tells."""
    target = tmp_path / "out.csv"
    tmp = tmp_path / f".out.csv.abcd1234.tmp-{host()}-{gone_pid()}"
    tmp.write_text("half")
    held = hold(tmp)
    try:
        assert locked(tmp) and remove_abandoned(target) == [] and tmp.exists()
    finally:
        release(held)
    assert not locked(tmp) and remove_abandoned(target) == [tmp] and not tmp.exists()


def test_a_writer_holds_its_lock_until_the_rename(tmp_path):
    target = tmp_path / "out.csv"
    with atomic_write(target, "w") as f:
        f.write("x")
        (tmp,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.csv.")]
        assert locked(tmp)
        assert remove_abandoned(target) == [] and tmp.exists()
    assert target.read_text() == "x" and hidden(tmp_path) == []


def test_a_loop_of_writes_into_one_folder_lists_it_once_not_per_file(tmp_path, monkeypatch):
    """Each write listed its folder: writing 4,000 files into one folder took 13 s instead of 0.4 s."""
    import sketchgraph.formats.base as base

    listed = []
    real = os.listdir
    monkeypatch.setattr(base.os, "listdir", lambda p: listed.append(p) or real(p))
    monkeypatch.setattr(base, "LISTING_FRESH_S", 3600.0)
    for i in range(200):
        with atomic_write(tmp_path / f"{i:03d}.svg", "w") as f:
            f.write("<svg/>")
    assert len(listed) == 1 and len(list(tmp_path.iterdir())) == 200


def test_a_long_name_in_another_script_fits_with_a_long_host_name(tmp_path, monkeypatch):
    """The name was cut to 120 characters, not bytes: 60 CJK characters (180 bytes) and a 64-character host name
    made a temporary name over 255 bytes."""
    import sketchgraph.temporaries as temporaries

    monkeypatch.setattr(temporaries, "host", lambda: "h" * 64)
    for name in ["猫" * 60 + ".csv", "猫" * 81 + ".c", "é" * 125 + ".csv"]:
        target = tmp_path / name
        assert len(os.fsencode(name)) <= 255
        with atomic_write(target, "w") as f:
            (tmp,) = [p for p in tmp_path.iterdir() if p.name.endswith(f".tmp-{'h' * 64}-{os.getpid()}")]
            assert len(os.fsencode(tmp.name)) <= 255
            tmp.name.encode("utf-8")  # whole characters only: no byte of a cut one (a surrogate) is left
            f.write("ok")
        assert target.read_text() == "ok"


@pytest.mark.parametrize("name, head, writer", [
    (".best.tmp-node1.cluster-42", r"\.best", ("node1.cluster", 42)),
    (".best.tmp-42", r"\.best", (None, 42)),
    (".best.tmp-ci.tmp-runner-10474", r"\.best", ("ci.tmp-runner", 10474)),  # a host name holding ".tmp-"
    (".best.tmp-x.tmp-thishost-5", r"\.best", ("x.tmp-thishost", 5)),
    (".best.tmp-node-1-42", r"\.best", ("node-1", 42)),
    (".a.csv.x1y2z3w4.tmp-my-host-7", r"\.a\.csv\." + RANDOM, ("my-host", 7)),
    (".a.csv.x1y2z3w4.tmp", r"\.a\.csv\." + RANDOM, (None, None)),
    (".a.csv.x1y2.tmp-my-host-7", r"\.a\.csv\." + RANDOM, None),  # not mkstemp's random part
    (".best.tmp-notapid", r"\.best", None),
    (".best.tmp", r"\.best", (None, None)),
    (".bestx.tmp-h-1", r"\.best", None),
    ("best", r"\.best", None),
])
def test_writer_of_a_temporary_name(name, head, writer):
    assert writer_of(name, head) == writer


def test_a_failed_write_leaves_nothing_and_the_old_file_whole(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="cut short"):
        with atomic_write(target, "w") as f:
            f.write("new, half")
            raise RuntimeError("cut short")
    assert target.read_text() == "old" and hidden(tmp_path) == []


def test_without_advisory_locks_no_descriptor_is_open_at_the_rename(tmp_path, monkeypatch):
    """Windows has no ``fcntl``, and refuses to rename an open file: there the writer holds nothing open."""
    import sketchgraph.temporaries as temporaries

    monkeypatch.setattr(temporaries, "fcntl", None)
    real, open_at_rename = os.replace, []

    def replace(src, dst):
        fds = Path("/proc/self/fd")
        open_at_rename.extend(str(src) == os.path.realpath(fds / fd) for fd in os.listdir(fds)
                              if (fds / fd).is_symlink())
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with atomic_write(tmp_path / "out.csv", "w") as f:
        f.write("x")
    assert open_at_rename and not any(open_at_rename) and (tmp_path / "out.csv").read_text() == "x"


def test_a_long_name_is_cut_alike_by_every_writer(monkeypatch):
    """The cut of a long name depended on the writer's process id and host name: a writer with a 3-digit pid and a
    cleaner with a 5-digit one cut it differently, and the killed writer's temporary was never found (a CI run)."""
    import sketchgraph.formats.base as base
    import sketchgraph.temporaries as temporaries

    target = Path("n" * 250 + ".csv")
    cuts = set()
    for pid, name in [(7, "a"), (4194304, "h" * 64), (os.getpid(), host())]:
        monkeypatch.setattr(base.os, "getpid", lambda pid=pid: pid)
        monkeypatch.setattr(temporaries, "host", lambda name=name: name)
        cuts.add(base._temporary_prefix(target))
        assert len(os.fsencode(next(iter(cuts)) + "abcd1234" + temporaries.suffix())) <= 255
    assert len(cuts) == 1
