"""Temporary names that say who writes them, so the ones a killed process left can be told apart and removed.

Everything sketchgraph publishes is written under a temporary name and renamed into place
(``formats.base.atomic_write`` for files, ``checkpoint.atomic_dir`` for folders). A process killed outright
(``kill -9``, out of memory, a power cut) leaves its temporary behind. The names end in
``.tmp-<host>-<pid>``, and the writer holds an advisory lock (``flock``, ``hold``) on its temporary until it is
renamed, so the next write can tell:

- a temporary someone holds the lock on is being written, and is left alone, whatever its name says (a process
  of another PID namespace on this host, a container run with the host's name, has a process id that means
  nothing here); where the file system has no locks (NFS without lockd), the names alone tell;
- one of this machine whose process no longer runs is abandoned;
- one of another machine (another host name: a machine sharing the folder, another container) is abandoned only
  once it is ``STALE_AFTER_S`` old, since whether its process runs cannot be told from here;
- one of a running process is being written, and is left alone.

Only names of the exact form a writer gives are considered (``writer_of``): a user's ``.report.json.backup.tmp``
is never taken for a temporary.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; there every process counts as running (pid_alive)
    fcntl = None  # type: ignore[assignment]

__all__ = ["STALE_AFTER_S", "RANDOM", "host", "pid_alive", "suffix", "writer_of", "hold", "release", "locked",
           "abandoned"]

STALE_AFTER_S = 24 * 3600  # a temporary of another machine older than this is removed (a write takes minutes)

RANDOM = r"[a-z0-9_]{8}"
"""The random part ``tempfile.mkstemp`` puts in a name, as a regular expression."""

_WRITER = re.compile(r"\.tmp(?:-(?:(?P<host>[A-Za-z0-9._-]+)-)?(?P<pid>[0-9]+))?")


def host() -> str:
    """This machine's name as it goes into a temporary name: letters, digits, ``.``, ``_`` and ``-`` only, at most
    64 characters (``localhost`` when it has none)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())[:64] or "localhost"


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (one of another user counts; on Windows, where probing a
    process with signal 0 would end it, every process counts as running)."""
    if os.name == "nt":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it runs, as another user
        return True
    return True


def suffix() -> str:
    """``.tmp-<host>-<pid>``: the end of every temporary name this process writes."""
    return f".tmp-{host()}-{os.getpid()}"


def writer_of(name: str, head: str) -> tuple[str | None, int | None] | None:
    """Who wrote the temporary ``name``, if it is one: ``name`` must be ``head`` (a regular expression: the part a
    writer puts before ``.tmp``) followed by ``.tmp-<host>-<pid>`` -> ``(host, pid)``, by ``.tmp-<pid>`` (folders
    of earlier versions: this machine's as far as anyone can tell) -> ``(None, pid)``, or by ``.tmp`` alone (files of
    earlier versions) -> ``(None, None)``. Anything else -> None. The process id is the name's last number, the host
    all between: ``.best.tmp-ci.tmp-runner-7`` -> ``("ci.tmp-runner", 7)``."""
    match = re.fullmatch(head + _WRITER.pattern, name)
    if match is None:
        return None
    pid = match["pid"]
    return match["host"], (int(pid) if pid is not None else None)


def hold(path: Path) -> int | None:
    """Take the writer's lock on the temporary file or folder ``path``: returns the descriptor that holds it (the
    lock lasts until it is closed, after the rename), or None where there are no advisory locks or ``path`` cannot
    be opened for it (a folder on Windows). It waits while another process's ``locked`` probes it (a moment)."""
    if fcntl is None:
        return None
    fd = _open_for_lock(path)
    if fd is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except OSError:  # a file system without flock: the names alone tell
        pass
    return fd


def _open_for_lock(path: Path) -> int | None:
    """A descriptor of ``path`` to lock: a file opened for writing where it may be (NFS emulates ``flock`` with
    POSIX locks, whose exclusive kind needs a writable descriptor), else read-only (a folder); None when it cannot
    be opened. Never follows a symbolic link."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    for mode in ((os.O_RDWR, os.O_RDONLY) if not os.path.isdir(path) else (os.O_RDONLY,)):
        try:
            return os.open(path, mode | nofollow)
        except OSError:
            continue
    return None


def release(fd: int | None) -> None:
    """Drop the lock ``hold`` took."""
    if fd is not None:
        os.close(fd)


def locked(path: Path) -> bool:
    """Whether a writer holds the lock on the temporary file or folder ``path`` (``hold``). False where it cannot
    be told (no advisory locks, or ``path`` cannot be opened)."""
    if fcntl is None:
        return False
    fd = _open_for_lock(path)
    if fd is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:  # a file system without flock
        return False
    finally:
        os.close(fd)  # closing drops the lock this took
    return False


def abandoned(path: Path, writer: tuple[str | None, int | None], *, own: bool,
              stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether the process that wrote the temporary ``path`` (``writer``: what ``writer_of`` read from its name)
    has stopped writing it.

    ``own``: whether a temporary of this very process counts as abandoned (true where the caller knows no write of
    its own is under way; a file may be written by another thread meanwhile, so its callers pass false). One a
    writer holds the lock on never is. A name without a process id, or of another host, is judged by its age."""
    their_host, pid = writer
    if locked(path):
        return False
    if pid is None or their_host not in (None, host()):
        try:
            return time.time() - path.lstat().st_mtime > stale_after_s
        except OSError:
            return False
    if pid == os.getpid():
        return own
    return not pid_alive(pid)
