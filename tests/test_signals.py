"""SIGTERM handled as Ctrl-C (``sketchgraph.signals``): in the process, in forked workers, and by the commands."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from sketchgraph.signals import TERMINATED_STATUS, sigterm_as_interrupt


def test_sigterm_raises_keyboard_interrupt_in_the_block_and_the_handler_is_restored_after():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match=r"^terminated \(SIGTERM\)$"):
        with sigterm_as_interrupt() as received:
            assert not received.sigterm
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs at once; this is never reached
    assert received.sigterm and received.status(130) == TERMINATED_STATUS == 143
    assert signal.getsignal(signal.SIGTERM) is before
    with sigterm_as_interrupt() as quiet:
        pass
    assert not quiet.sigterm and quiet.status(130) == 130


class _SwallowsInterrupts:
    """An object whose ``__del__`` sends ``signum`` to its process and waits: the ``KeyboardInterrupt`` is raised in
    ``__del__``, where Python swallows it ("Exception ignored in ..."), as in a data loader's ``__del__`` joining its
    workers, or an at-fork hook. ``to_thread``: send it to the calling thread alone (``raise_signal``), so that no
    other thread can take it."""

    def __init__(self, signum: int, to_thread: bool = False):
        self.signum, self.to_thread = signum, to_thread

    def __del__(self):
        if self.to_thread:
            signal.raise_signal(self.signum)
        else:
            os.kill(os.getpid(), self.signum)
        time.sleep(5)  # the handler runs at once; this is never reached


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupt_that_was_swallowed_is_raised_again(signum, capsys):
    """An interrupt Python swallowed (the signal landing in a ``__del__``) let the run go on to the end (Ctrl-C as
    well as SIGTERM): it is sent again at once, raised in the block's own code, and no traceback is printed."""
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt() as received:
            holder = _SwallowsInterrupts(signum)
            del holder  # __del__ runs here: its interrupt is swallowed
            time.sleep(5)  # the interrupt sent again ends this
    assert time.monotonic() - start < 4
    assert received.resent == 1 and received.sigterm == (signum == signal.SIGTERM)
    assert "Exception ignored" not in capsys.readouterr().err


def test_an_interrupt_the_code_caught_is_not_raised_again():
    """The interrupt was sent again every half second until the block ended, so a command's clean-up after it (a
    training run's summary.json, written as the interrupt unwinds) was itself interrupted and left half done."""
    with sigterm_as_interrupt() as received:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except KeyboardInterrupt:
            pass  # the command's clean-up
        time.sleep(1.0)  # nothing comes again
    assert received.sigterm and received.resent == 0


def test_interrupts_ignored_drop_both_signals_and_give_the_handlers_back():
    from sketchgraph.signals import interrupts_ignored

    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with sigterm_as_interrupt() as received:
        with interrupts_ignored():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # neither raises
        time.sleep(0.2)  # nor comes later
    assert not received.sigterm and received.resent == 0
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_a_worker_forked_in_the_block_ends_quietly_on_sigterm():
    """A ``multiprocessing`` worker inherits the handler, not the role: terminating it must not raise (and print a
    traceback) in it, but end it as the default handler would."""
    with sigterm_as_interrupt():
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker: say it is ready, then wait to be terminated
            try:
                os.close(read)
                os.write(write, b"ready")
                time.sleep(30)
            finally:
                os._exit(3)  # reached only if SIGTERM raised here instead of ending the process
        os.close(write)
        assert os.read(read, 5) == b"ready"
        os.close(read)
        os.kill(pid, signal.SIGTERM)
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM


def test_outside_the_main_thread_nothing_changes():
    seen = []

    def body():
        with sigterm_as_interrupt() as received:
            seen.append((signal.getsignal(signal.SIGTERM), received.sigterm))

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert seen == [(before, False)]


@pytest.mark.slow
def test_prepare_stopped_by_sigterm_says_so_and_exits_143_without_worker_tracebacks(tmp_path, terminated_cli):
    """``sketchgraph prepare`` with worker processes, stopped by SIGTERM (``kill``, ``timeout``): it died at once, and
    its orphaned workers printed tracebacks after the shell prompt came back."""
    from sketchgraph.synthetic import write_dataset

    write_dataset(tmp_path / "raw", 4000, seed=0, classes=["circle", "square", "zigzag", "cross"])
    err = terminated_cli(["prepare", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--workers", "2"],
                         lambda: (tmp_path / "out.partial").is_dir(), "reading")
    assert err.rstrip().endswith(f"sketchgraph prepare: terminated (SIGTERM) (the source files read so far are cached "
                                 f"in {tmp_path / 'out.partial'}; rerun the same command to resume)"), err
    assert not (tmp_path / "out").exists()  # nothing that looks complete


@pytest.mark.slow
def test_prepare_stopped_by_ctrl_c_says_what_it_keeps_without_worker_tracebacks(tmp_path, terminated_cli):
    """A terminal's Ctrl-C reaches the workers too: each printed "Process ForkPoolWorker-N:" and a traceback of its
    own (a review found it in 2 runs of 3) before the one-line message, which did not say what was kept."""
    from sketchgraph.synthetic import write_dataset

    write_dataset(tmp_path / "raw", 4000, seed=0, classes=["circle", "square", "zigzag", "cross"])
    err = terminated_cli(["prepare", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--workers", "2"],
                         lambda: (tmp_path / "out.partial").is_dir(), "reading", ctrl_c=True)
    assert err.rstrip().endswith(f"sketchgraph prepare: interrupted (the source files read so far are cached in "
                                 f"{tmp_path / 'out.partial'}; rerun the same command to resume)"), err
    assert not (tmp_path / "out").exists()


def _forked_worker(send: int) -> tuple[bytes, int]:
    """Fork as ``pipeline._pool`` does, inside the CLI's SIGTERM handling: the child reports whether the stop
    signals are blocked, sends itself ``send`` (held back), runs the pool initializer, and reports again if it is
    still alive. Returns ``(what the child wrote, its wait status)``."""
    from sketchgraph.data.reading import init_worker
    from sketchgraph.signals import STOP_SIGNALS, stop_signals_blocked

    reader, writer = os.pipe()
    with sigterm_as_interrupt(), stop_signals_blocked():
        assert STOP_SIGNALS <= signal.pthread_sigmask(signal.SIG_BLOCK, set())
        pid = os.fork()
        if pid == 0:  # the worker
            try:
                blocked = STOP_SIGNALS <= signal.pthread_sigmask(signal.SIG_BLOCK, set())
                os.write(writer, b"blocked, " * blocked)
                os.kill(os.getpid(), send)  # held back: neither lost nor taken by the inherited handler
                init_worker(None)
                still = signal.pthread_sigmask(signal.SIG_BLOCK, set()) & STOP_SIGNALS
                os.write(writer, b"alive, " + b"unblocked" * (not still))
            finally:
                os._exit(0)
    os.close(writer)
    chunks = []
    while chunk := os.read(reader, 64):
        chunks.append(chunk)
    os.close(reader)
    return b"".join(chunks), os.waitpid(pid, 0)[1]


def test_a_pool_worker_ignores_sigint_and_is_forked_with_it_blocked():
    """What keeps a Ctrl-C out of the workers: a process forked in ``stop_signals_blocked`` starts with SIGINT
    blocked (one landing before the pool's initializer is held back), and ``init_worker`` ignores it and unblocks
    it. The parent's mask and handler are as before."""
    before = signal.getsignal(signal.SIGINT)
    written, status = _forked_worker(signal.SIGINT)
    assert written == b"blocked, alive, unblocked" and os.waitstatus_to_exitcode(status) == 0
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, set()) & {signal.SIGINT, signal.SIGTERM}
    assert signal.getsignal(signal.SIGINT) is before


def test_a_sigterm_that_reaches_a_worker_before_its_initializer_ends_it_there():
    """A SIGTERM sent right after the fork (a pool ended as soon as it started) is held back until ``init_worker``,
    which takes it the default way: the worker ends by the signal, at once. Python drops a signal that lands
    between the fork and its after-fork reset, and ``Pool.terminate`` then waited for that worker for ever."""
    written, status = _forked_worker(signal.SIGTERM)
    assert written == b"blocked, " and os.waitstatus_to_exitcode(status) == -signal.SIGTERM


def test_pools_that_end_as_soon_as_they_start_do_not_hang(tmp_path):
    """The hang itself: ``prepare`` with 2 workers on 3 tiny files ended its pool while a worker was still being
    forked, and ``Pool.terminate`` waited for ever (one CI run). Each pool here ends at once, in a process that
    handles SIGTERM as the CLI does. A race: before the fix, 5 of 7 runs of 300 pools hung (those that printed
    their count, within 60 pools); the test above checks the mechanism every time."""
    script = tmp_path / "pools.py"
    script.write_text(
        "from sketchgraph.data.pipeline import _pool\n"
        "from sketchgraph.signals import sigterm_as_interrupt\n"
        "with sigterm_as_interrupt():\n"
        "    for _ in range(300):\n"
        "        with _pool(2, None):\n"
        "            pass\n"
        "print('done')\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "DGLBACKEND": "pytorch"})
    assert run.returncode == 0 and run.stdout == "done\n", run.stderr[-2000:]


def test_interrupts_deferred_hold_a_signal_until_the_block_ends():
    """Held during the block, then sent again: SIGTERM when it came (the stronger; a Ctrl-C that came too is
    dropped, or a second interrupt would land in the cleanup), the handlers back as they were."""
    from sketchgraph.signals import interrupts_deferred

    done = []
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt, match=r"^terminated \(SIGTERM\)$"):
        with sigterm_as_interrupt() as received:
            with interrupts_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                done.append("the block ran to its end")
            done.append("never")
    assert done == ["the block ran to its end"] and received.sigterm
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    with interrupts_deferred():
        pass  # nothing came: nothing is raised
    with pytest.raises(KeyboardInterrupt, match=r"^$"):  # Ctrl-C alone: Python's own KeyboardInterrupt
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_block_that_fails_keeps_its_error_when_an_interrupt_came():
    """A save that failed (a full disk) while a Ctrl-C was held was reported as an interrupt "after the epoch was
    saved", and the disk error was lost: the error stays, noting the interrupt."""
    from sketchgraph.signals import interrupts_deferred

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(OSError, match="No space left") as failed:
        with interrupts_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            raise OSError(28, "No space left on device")
    assert failed.value.__notes__ == ["(SIGINT came meanwhile: the run stops here anyway)"]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    time.sleep(0.05)  # and no interrupt comes afterwards


class _SignalThief:
    """While the block runs, a thread takes the Ctrl-C and SIGTERM sent to the process (``sigwait``), as any thread
    that does not block them may (a library's, a data loader's): ``took`` lists what it took."""

    def __enter__(self) -> _SignalThief:
        from sketchgraph.signals import STOP_SIGNALS, stop_signals_blocked

        self.took: list[int] = []
        self._stopping = False
        waiting = threading.Event()

        def take() -> None:
            while True:
                waiting.set()
                signum = signal.sigwait(STOP_SIGNALS)
                if self._stopping:
                    return
                self.took.append(signum)

        with stop_signals_blocked():  # sigwait takes only signals its thread blocks
            self._thread = threading.Thread(target=take, daemon=True)
            self._thread.start()
        assert waiting.wait(10)
        time.sleep(0.05)  # in sigwait by now
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping = True
        signal.pthread_kill(self._thread.ident, signal.SIGINT)  # to the thread alone: it takes it and ends
        self._thread.join(10)
        assert not self._thread.is_alive()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_deferred_interrupt_is_raised_as_the_block_ends_though_another_thread_takes_signals(signum, monkeypatch):
    """A Ctrl-C held while a data loader started its workers was sent again to the process as the block ended, with
    the main thread blocking it: on a loaded machine another thread took it, and the interrupt came only later, in
    the test runner's own code (CI stopped). It is sent to the main thread, and raised as the block ends."""
    from sketchgraph.signals import interrupts_deferred

    unblock = signal.pthread_sigmask

    def slow_to_unblock(how: int, mask: object) -> object:
        if how == signal.SIG_SETMASK:
            time.sleep(0.3)  # a loaded machine: the main thread unblocks the signals late
        return unblock(how, mask)

    done = []
    with _SignalThief() as thief:
        monkeypatch.setattr(signal, "pthread_sigmask", slow_to_unblock)
        with pytest.raises(KeyboardInterrupt):
            with sigterm_as_interrupt():
                with interrupts_deferred():
                    signal.raise_signal(signum)  # to this thread: held
                    done.append("the block ran to its end")
                done.append("never")
    assert done == ["the block ran to its end"] and thief.took == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_swallowed_interrupt_is_sent_again_to_the_main_thread(signum):
    """Sent again to the process, a swallowed interrupt could be taken by another thread while the main thread
    blocked it (a pool forking its workers), and the run went on: it waits for the main thread."""
    from sketchgraph.signals import stop_signals_blocked

    start = time.monotonic()
    with _SignalThief() as thief:
        with pytest.raises(KeyboardInterrupt):
            with sigterm_as_interrupt() as received:
                holder = _SwallowsInterrupts(signum, to_thread=True)  # the thief cannot take this one
                del holder  # its interrupt is swallowed, and sent again a moment later
                with stop_signals_blocked():
                    time.sleep(0.5)  # it is sent meanwhile, and waits for the main thread
                time.sleep(5)  # never reached
    assert time.monotonic() - start < 4
    assert received.resent == 1 and thief.took == []
