"""SIGTERM ends a command as Ctrl-C does.

SIGTERM is what ``kill``, ``timeout``, Slurm, ``docker stop`` and systemd send. Python's default is to die at once,
so a command's cleanup (a training run's ``summary.json`` and its "continue with" line, ``evaluate``'s temporary
files, ``prepare``'s worker processes, ``predict -``'s copy of standard input) never runs. Within
``sigterm_as_interrupt()`` the signal raises ``KeyboardInterrupt`` in the main thread instead, so the code that
handles Ctrl-C handles it too; the command then exits with ``TERMINATED_STATUS`` (128 + SIGTERM), as a shell
reports a process the signal killed.

A process forked inside the block (a ``multiprocessing`` worker) inherits the handler but not the role: there the
signal is taken the default way (the process ends quietly), so terminating a pool does not print a traceback per
worker. A pool's workers are forked in ``stop_signals_blocked()`` and call ``worker_takes_stop_signals()`` first: a
SIGTERM that reaches a worker before that (a pool ended right after it started) is held back, not lost (Python
forgets a signal that lands between ``fork`` and its after-fork reset, and ``Pool.terminate`` then waits for ever).

Python swallows an exception raised in some places (an at-fork hook, when the signal lands while a pool forks its
workers: "Exception ignored in ..."), so while the block runs after SIGTERM, the interrupt is raised again every
``RESEND_S`` seconds. Imports nothing heavy (``data_prep``'s downloader uses it without torch).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["TERMINATED_STATUS", "Received", "sigterm_as_interrupt", "stop_signals_blocked", "worker_takes_stop_signals",
           "interrupts_deferred"]

TERMINATED_STATUS = 128 + signal.SIGTERM
"""The exit status after SIGTERM (143), as a shell reports a process the signal ended."""

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
"""Ctrl-C and SIGTERM: what ``stop_signals_blocked`` holds back while a pool forks its workers."""

RESEND_S = 0.5
"""After SIGTERM, the interrupt is raised again this often while the block still runs (it was swallowed)."""


@dataclass
class Received:
    """Whether SIGTERM came while the block ran (``sigterm_as_interrupt``): the ``KeyboardInterrupt`` was then
    the signal's, not Ctrl-C's."""

    sigterm: bool = False
    #: the interrupt is raised and the block has not ended yet: a raise Python swallowed is sent again
    pending: bool = False

    def status(self, interrupted: int) -> int:
        """The exit status of an interrupted command: ``TERMINATED_STATUS`` after SIGTERM, else ``interrupted``."""
        return TERMINATED_STATUS if self.sigterm else interrupted


@contextmanager
def sigterm_as_interrupt() -> Iterator[Received]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` in the main thread (and sets ``Received.sigterm``);
    in a process forked inside the block it ends that process the default way. Outside the main thread (a server's
    worker, a test runner's thread) nothing changes. The previous handler is back after the block."""
    received = Received()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    owner = os.getpid()

    def interrupt(signum: int, frame: object) -> None:
        if os.getpid() != owner:  # a forked worker: end it as the default handler would
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        received.sigterm = received.pending = True
        # Python swallows an exception raised where it cannot propagate (an at-fork hook when the signal lands
        # during os.fork: "Exception ignored in ..."), and the run would go on: until the block ends, send again
        timer = threading.Timer(RESEND_S, again)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt("terminated (SIGTERM)")

    def again() -> None:
        if received.pending:
            os.kill(owner, signal.SIGTERM)

    def unraisable(info: Any) -> None:  # the swallowed interrupt is sent again: no "Exception ignored" traceback
        if not (received.sigterm and isinstance(info.exc_value, KeyboardInterrupt)):
            hook(info)

    previous, hook = signal.signal(signal.SIGTERM, interrupt), sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        yield received
    finally:
        received.pending = False
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = hook


@contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM blocked in this thread for the block, where the platform can (POSIX). A process forked in
    the block starts with them blocked: one that reaches it is held back (pending), not lost or taken by the
    handler it inherited, until it calls ``worker_takes_stop_signals``. Threads started in the block keep them
    blocked, so the process itself still takes them, in its main thread, at the latest when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def worker_takes_stop_signals() -> None:
    """In a worker forked in ``stop_signals_blocked``: Ctrl-C is ignored (it reaches the terminal's whole process
    group; the main process, interrupted, ends the pool), SIGTERM ends the process the default way (as
    ``Pool.terminate`` expects), and both are unblocked: a SIGTERM held back since the fork ends it now."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM that come while the block runs take effect when it ends, in the main thread (elsewhere
    nothing changes): records that must agree (a training epoch's metrics line, its checkpoints and its summary)
    are written whole or not at all. One signal is sent again once the handlers are back (SIGTERM when it came,
    else Ctrl-C), so it is handled as it would have been (``KeyboardInterrupt``, ``sigterm_as_interrupt``'s, or the
    default). A block that fails keeps its own error, which notes the interrupt (the error says what went wrong,
    and the process is ending anyway). The handlers are swapped with both signals blocked, so none is lost
    between."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []

    def hold(signum: int, frame: object) -> None:
        came.append(signum)

    with stop_signals_blocked():
        previous = {sig: signal.signal(sig, hold) for sig in sorted(STOP_SIGNALS)}
    try:
        yield
    except BaseException as exc:
        if came and not isinstance(exc, KeyboardInterrupt):
            exc.add_note(f"({signal.Signals(came[0]).name} came meanwhile: the run stops here anyway)")
        came.clear()
        raise
    finally:
        with stop_signals_blocked():  # a signal now waits, pending, for the handler it is meant for
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if came:
                again = signal.SIGTERM if signal.SIGTERM in came else came[0]
                if again not in (signal.sigpending() if hasattr(signal, "sigpending") else ()):
                    os.kill(os.getpid(), again)
