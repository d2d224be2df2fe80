"""Temporary names that say who writes them, so the ones a killed process left can be told apart and removed.

Everything sketchgraph publishes is written under a temporary name and renamed into place
(``formats.base.atomic_write`` for files, ``checkpoint.atomic_dir`` for folders). A process killed outright
(``kill -9``, out of memory, a power cut) leaves its temporary behind. The names end in
``.tmp-<host>-<pid>``, so the next write can tell:

- a temporary of this machine whose process no longer runs is abandoned;
- one of another machine (another host name: a machine sharing the folder, another container) is abandoned only
  once it is ``STALE_AFTER_S`` old, since whether its process runs cannot be told from here;
- one of a running process is being written, and is left alone.
"""

from __future__ import annotations

import os
import re
import socket
import time
from pathlib import Path

__all__ = ["STALE_AFTER_S", "host", "pid_alive", "suffix", "writer_of", "abandoned"]

STALE_AFTER_S = 24 * 3600  # a temporary of another machine older than this is removed (a write takes minutes)


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


def writer_of(path: Path) -> tuple[str | None, int] | None:
    """``(host, pid)`` of a temporary named ``...tmp-<host>-<pid>``; ``(None, pid)`` of one named
    ``...tmp-<pid>`` by earlier versions (written on this machine as far as anyone can tell); None when the name
    does not end so."""
    _, sep, tail = path.name.rpartition(".tmp-")
    if not sep:
        return None
    their_host, _, pid = tail.rpartition("-")
    if not pid.isdigit():
        return None
    return (their_host or None), int(pid)


def abandoned(path: Path, *, own: bool, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether the process that wrote the temporary ``path`` has stopped writing it.

    ``own``: whether a temporary of this very process counts as abandoned (true where the caller knows no write of
    its own is under way; a file may be written by another thread meanwhile, so its callers pass false). A name
    without a writer (``writer_of`` is None) is judged by its age alone, as one of another machine is."""
    writer = writer_of(path)
    if writer is None or writer[0] not in (None, host()):
        try:
            return time.time() - path.stat().st_mtime > stale_after_s
        except OSError:
            return False
    pid = writer[1]
    if pid == os.getpid():
        return own
    return not pid_alive(pid)
