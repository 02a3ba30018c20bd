"""The second training run beside the first: in a forked process where that is safe, else a thread.

Two runs in one process share Python's global interpreter lock: the Python part of each
training step (module calls, the optimiser's bookkeeping, the stopping rule) waits for
the other run's, so two threads on two cores train little faster than one run after the
other. A forked process has its own interpreter and trains at nearly the speed of a run
alone. Both kinds take the same ``train(cancel=event)`` callable, compute the same
numbers (one torch thread each) and have the same interface: :meth:`start`, the
:attr:`cancel` event (set by the first run once it no longer needs the second) and
:meth:`result`.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import pickle
import sys
import threading
from collections.abc import Callable

import torch

logger = logging.getLogger(__name__)

#: What a run returns: the members' outputs and whether a Ctrl-C stopped them
RunOutput = tuple[list[dict], bool]
Train = Callable[..., RunOutput]

_NOT_NEEDED = "the run from the network's own start, not needed, failed: %r"


def fork_is_safe() -> bool:
    """Whether a forked process can train the second run here.

    On Linux (``fork`` is the platform's own start method there), from the main thread of a
    process that is not itself a daemonic worker (which may not have children), with no
    other thread running but tqdm's monitor: a thread that holds a lock at the moment of
    the fork would leave it held forever in the child. (The monitor takes only tqdm's
    thread lock, which the child replaces before it trains: :func:`_fresh_tqdm_lock`.)
    """
    if not sys.platform.startswith("linux") or "fork" not in mp.get_all_start_methods():
        return False
    if mp.current_process().daemon or threading.current_thread() is not threading.main_thread():
        return False
    try:
        from tqdm._monitor import TMonitor
    except ImportError:  # pragma: no cover - tqdm is a dependency
        TMonitor = ()  # noqa: N806
    others = [t for t in threading.enumerate() if t is not threading.current_thread() and not isinstance(t, TMonitor)]
    return not others


def _fresh_tqdm_lock() -> None:
    """In a forked child: a new thread lock for tqdm's progress bars.

    tqdm's monitor thread in the parent may have held the class-wide thread lock at the
    moment of the fork; the child's copy would then stay locked, and the child's first
    progress bar would wait for it forever. The process-shared lock is kept (its holder
    is a live process, which releases it).
    """
    from tqdm.std import TqdmDefaultWriteLock
    from tqdm.std import tqdm as std_tqdm

    TqdmDefaultWriteLock.th_lock = threading.RLock()
    lock = TqdmDefaultWriteLock()
    for cls in {std_tqdm, *_subclasses(std_tqdm)}:
        if "_lock" in vars(cls):
            cls.set_lock(lock)


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def side_run(train: Train, processes: bool | None = None) -> SideThread | SideProcess:
    """The second run of ``train`` (called as ``train(cancel=event)``), not yet started.

    ``processes``: a forked process (True), a thread (False) or a process where
    :func:`fork_is_safe` (None).
    """
    if processes is None:
        processes = fork_is_safe()
    return SideProcess(train) if processes else SideThread(train)


class SideThread(threading.Thread):
    """The second run trained in a thread beside the first.

    It stops between steps when :attr:`cancel` is set (checkpoint written, as with
    ``stop_after``); :meth:`result` waits for it and re-raises its error, if any. A Ctrl-C
    while the caller waits cancels it (it stops at the end of its step, as a Ctrl-C stops
    a run in the main thread) and the run counts as interrupted.
    """

    def __init__(self, train: Train) -> None:
        super().__init__(name="gempy-gravinv-fallback", daemon=True)
        self.train = train
        self.cancel = threading.Event()
        self.out: RunOutput | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            torch.set_num_threads(1)  # this thread's own OpenMP setting
            with torch.enable_grad():  # grad mode is per thread
                self.out = self.train(cancel=self.cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread by result()
            self.error = exc

    def result(self, discard: bool = False) -> RunOutput | None:
        """The members' outputs and whether a Ctrl-C (here or in the caller's wait) stopped them.

        ``discard``: the run is not needed (the first run did not call for it): wait for it
        to stop and return None; an error it met is logged, not raised, as one after the
        other it would not have run.
        """
        if discard:
            self.cancel.set()
            self.join()
            if self.error is not None:
                logger.warning(_NOT_NEEDED, self.error)
            return None
        interrupted = False
        try:
            while self.is_alive():
                self.join(0.2)
        except KeyboardInterrupt:  # the caller's Ctrl-C: stop the second run at the end of its step
            self.cancel.set()
            self.join()
            interrupted = True
        if self.error is not None:
            raise self.error
        outs, stopped = self.out
        return outs, stopped or interrupted


class SideProcess:
    """The second run trained in a forked process beside the first (one torch thread).

    The child inherits the set-up problem (no copy is sent) and sends back its members'
    outputs, pickled, or its error. :attr:`cancel` is a process-shared event, so the first
    run stops the second between steps as it stops a thread. A Ctrl-C from the terminal
    reaches both processes: each stops at the end of its step and writes its checkpoint.
    A child that ends without a message (killed) is an error that names its exit code.
    """

    def __init__(self, train: Train) -> None:
        ctx = mp.get_context("fork")
        self.cancel = ctx.Event()
        self._rx, self._tx = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=self._child, args=(train,), name="gempy-gravinv-fallback", daemon=True)
        self._message: tuple[str, object] | None = None

    def start(self) -> None:
        """Fork the child and start its run."""
        self._proc.start()
        self._tx.close()  # the child holds the other copy: its end (or death) ends the parent's wait

    def is_alive(self) -> bool:
        """Whether the child process is still running."""
        return self._proc.is_alive()

    def _child(self, train: Train) -> None:
        self._rx.close()
        _fresh_tqdm_lock()
        torch.set_num_threads(1)
        try:
            with torch.enable_grad():
                message: tuple[str, object] = ("out", train(cancel=self.cancel))
        except KeyboardInterrupt:  # a second Ctrl-C inside a step: stopped, as a run in the main thread
            message = ("interrupted", None)
        except BaseException as exc:  # noqa: BLE001 - sent to the caller, raised there by result()
            message = ("error", exc)
        try:
            data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an output or error that does not pickle
            data = pickle.dumps(("error", RuntimeError(f"the second run's {message[0]} could not be sent back: "
                                                       f"{exc!r} ({message[1]!r})")))
        self._tx.send_bytes(data)
        self._tx.close()

    def _wait(self) -> tuple[str, object]:
        """The child's message, once (then the child is joined)."""
        if self._message is None:
            while not self._rx.poll(0.2):
                if not self._proc.is_alive() and not self._rx.poll(0):
                    raise self._no_result()
            try:
                self._message = pickle.loads(self._rx.recv_bytes())
            except EOFError:
                raise self._no_result() from None
            self._proc.join()
        return self._message

    def _no_result(self) -> RuntimeError:
        """The error of a child that ended without a message (joined)."""
        self._proc.join()
        return RuntimeError("the run from the network's own start ended without a result "
                            f"(its process exited with code {self._proc.exitcode})")

    def result(self, discard: bool = False) -> RunOutput | None:
        """The members' outputs and whether a Ctrl-C (here, in the caller's wait or in the child) stopped them.

        ``discard``: as :meth:`SideThread.result` (the child is cancelled and waited for; its
        error is logged, not raised).
        """
        if discard:
            self.cancel.set()
            try:
                kind, value = self._wait()
            except RuntimeError as exc:
                kind, value = "error", exc
            if kind == "error":
                logger.warning(_NOT_NEEDED, value)
            return None
        interrupted = False
        try:
            kind, value = self._wait()
        except KeyboardInterrupt:  # the caller's Ctrl-C: stop the second run at the end of its step
            self.cancel.set()
            kind, value = self._wait()
            interrupted = True
        if kind == "error":
            raise value
        if kind == "interrupted":
            return [], True
        outs, stopped = value
        return outs, stopped or interrupted
