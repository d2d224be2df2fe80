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

Data-loader workers (``sketchgraph.data.make_loader``) are forked with the stop signals blocked too, and call
``loader_worker_takes_stop_signals()`` first: Ctrl-C is ignored there, and a SIGTERM sent to the whole process
group (``timeout``, Slurm, systemd) ends a worker quietly, so the main process stops on its own SIGTERM, not on
torch's "DataLoader worker is killed by signal" error.

Python swallows an exception raised in some places (an object's ``__del__``, such as a data loader's joining its
workers, or an at-fork hook, when the signal lands while a pool forks its workers: "Exception ignored in ..."), so
within the block a ``KeyboardInterrupt`` swallowed there is not printed but sent again ``RESEND_AFTER_S`` later
(SIGTERM when that came, else Ctrl-C's SIGINT) to the main thread, and raised where it can stop the command. One
that the code catches is not: the command's clean-up (a training run's ``summary.json``) is not interrupted again. A
command that is already stopping on an interrupt writes its last records in ``interrupts_ignored()``: ``timeout``
sends its signal twice (to the command, then to its process group), and the second must not cut them short. Imports
nothing heavy (``data_prep``'s downloader uses it without torch).
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
           "loader_worker_takes_stop_signals", "interrupts_deferred", "interrupts_ignored"]

TERMINATED_STATUS = 128 + signal.SIGTERM
"""The exit status after SIGTERM (143), as a shell reports a process the signal ended."""

RESEND_AFTER_S = 0.05
"""An interrupt Python swallowed is sent again this long after (``sigterm_as_interrupt``)."""

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})
"""Ctrl-C and SIGTERM: what ``stop_signals_blocked`` holds back while a pool forks its workers."""

@dataclass
class Received:
    """Whether SIGTERM came while the block ran (``sigterm_as_interrupt``): the ``KeyboardInterrupt`` was then
    the signal's, not Ctrl-C's."""

    sigterm: bool = False
    #: interrupts Python swallowed in the block (``__del__``, an at-fork hook) and that were sent again
    resent: int = 0

    def status(self, interrupted: int) -> int:
        """The exit status of an interrupted command: ``TERMINATED_STATUS`` after SIGTERM, else ``interrupted``."""
        return TERMINATED_STATUS if self.sigterm else interrupted


@contextmanager
def sigterm_as_interrupt() -> Iterator[Received]:
    """Within the block, SIGTERM raises ``KeyboardInterrupt`` in the main thread (and sets ``Received.sigterm``);
    in a process forked inside the block it ends that process the default way. A ``KeyboardInterrupt`` (SIGTERM's or
    Ctrl-C's) that Python swallows in the block (``sys.unraisablehook``: a ``__del__``, an at-fork hook) is sent
    again, not printed. Outside the main thread (a server's worker, a test runner's thread) nothing changes. The
    previous handler and hook are back after the block."""
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
        received.sigterm = True
        raise KeyboardInterrupt("terminated (SIGTERM)")

    def unraisable(info: Any) -> None:
        # Python swallowed the interrupt where it cannot propagate ("Exception ignored in ...": a data loader's
        # __del__ joining its workers, an at-fork hook), and the run would go on: send it again, raised at the next
        # step of the main thread's code, and print no traceback
        if not isinstance(info.exc_value, KeyboardInterrupt) or os.getpid() != owner:
            hook(info)
            return
        received.resent += 1
        # from another thread, a moment later: sent from here, it would be raised in this hook and swallowed again
        timer = threading.Timer(RESEND_AFTER_S, _send_to_main_thread,
                                (signal.SIGTERM if received.sigterm else signal.SIGINT,))
        timer.daemon = True
        timer.start()

    previous, hook = signal.signal(signal.SIGTERM, interrupt), sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        yield received
    finally:
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


def loader_worker_takes_stop_signals() -> None:
    """In a data-loader worker forked in ``stop_signals_blocked`` (``make_loader``'s ``worker_init_fn``): Ctrl-C is
    ignored, and SIGTERM ends the worker at once with status 0 (the main process, which a signal sent to the whole
    group reaches too, stops the run; a worker killed by the signal would make torch raise "DataLoader worker is
    killed by signal" there instead, and its loader's ``terminate`` still ends the worker); both are unblocked.
    A connection error reported in the worker (``sys.excepthook``, which ``multiprocessing``'s resource sharer
    thread calls) prints no traceback: the main process, interrupted, let go of a batch while the worker was handing
    it over, and nothing of the run is lost."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_quietly)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    hook = sys.excepthook

    def quiet(kind: type[BaseException], value: BaseException, tb: Any) -> None:
        if not issubclass(kind, ConnectionError):
            hook(kind, value, tb)

    sys.excepthook = quiet


def _send_to_main_thread(signum: int) -> None:
    """Send ``signum`` to this process's main thread, where Python runs its handlers: while the thread has it blocked
    it waits there, pending, and it interrupts what the thread is waiting on (a sleep, a loader's queue). Sent to
    the process, any other thread that does not block it may take it instead (a data loader's, a Timer's, a
    library's), and Python runs the handler only later, wherever the main thread then is (it was raised in the test
    runner's code, after the block that was meant to end on it). Without ``pthread_kill`` (Windows) it is sent to
    the process."""
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.main_thread().ident, signum)
    else:
        os.kill(os.getpid(), signum)


def _exit_quietly(signum: int, frame: object) -> None:
    os._exit(0)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM that come while the block runs take effect when it ends, in the main thread (elsewhere nothing
    changes): records that must agree (a training epoch's metrics line, its checkpoints and its summary) are written
    whole or not at all. One signal is sent again once the handlers are back (SIGTERM when it came, else Ctrl-C), to
    the main thread, so it is handled as it would have been (``KeyboardInterrupt``, ``sigterm_as_interrupt``'s, or
    the default), as the block ends. A block that fails keeps its own error, which notes the interrupt (the error
    says what went wrong, and the process is ending anyway). The handlers are swapped with both signals blocked, so
    none is lost between."""
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
                    _send_to_main_thread(again)


@contextmanager
def interrupts_ignored() -> Iterator[None]:
    """Ctrl-C and SIGTERM that come while the block runs are dropped (in the main thread; elsewhere nothing
    changes): for the last records of a command that is already stopping on an interrupt, which a second signal
    (``timeout`` sends two, a second Ctrl-C) must not cut short. The handlers are back after the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    with stop_signals_blocked():
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in sorted(STOP_SIGNALS)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
