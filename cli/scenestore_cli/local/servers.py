"""Start, wait for and stop the local S3 and MongoDB-wire servers as child processes.

The children run in process groups of their own, so a terminal's Ctrl-C (which reaches the whole foreground
group at once) goes to ``scenestore serve`` only, and serve stops its parts in order: the event runner and the
API while the servers still answer (their MongoDB clients close at once instead of waiting on a dead server),
then the servers, all at the same time. On Linux a child also gets SIGTERM when its parent dies, however it
died, so none is left behind by a ``kill -9``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from scenestore.errors import ScenestoreError, UsageError


class StackError(ScenestoreError):
    code = "stack"


class PortInUse(StackError, UsageError):
    code = "port_in_use"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def require_free(port: int, what: str, flag: str) -> None:
    if port_in_use(port):
        raise PortInUse(f"port {port} for {what} is already in use; pick another with {flag} PORT")


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float, log: Path) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise StackError(f"{what} exited with code {proc.returncode} during start-up:\n{tail}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise StackError(f"{what} did not listen on port {port} within {timeout:.0f}s (log: {log})")


def _executable(name: str) -> str:
    """A console script installed next to this interpreter (the virtualenv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise StackError(f"{name} is not installed; run `make install` (it comes with the dev extra)")
    return found


@dataclass
class ChildServer:
    """One child process with its log file.

    ``keeps_state``: the server's state outlives the process (MongoDB with a ``--data-dir``), so it is stopped
    with SIGTERM and given time to shut down cleanly (SecantusDB takes about half a second, see
    :meth:`_wake_accept`). Any other server (moto's in-memory S3, MongoDB in a temporary directory that is
    removed right after) loses nothing to SIGKILL, which ends it at once: that is what makes Ctrl-C stop
    ``serve`` within a fraction of a second.
    """

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    keeps_state: bool = False
    _log: IO[bytes] | None = field(default=None, repr=False)
    _terminated: bool = field(default=False, repr=False)

    def terminate(self) -> None:
        """Ask the server to stop without waiting (:meth:`stop` waits), so several stop at the same time.

        Once only: a second SIGTERM would run the server's shutdown handler again, inside the first one.
        """
        if self.process.poll() is None and not self._terminated:
            self._terminated = True
            with contextlib.suppress(ProcessLookupError):
                if self.keeps_state:
                    _to_main_thread(self.process.pid, signal.SIGTERM)
                else:
                    self.process.send_signal(signal.SIGKILL)

    def stop(self, timeout: float = 10.0) -> None:
        """:meth:`terminate`, then wait; SIGKILL after ``timeout``."""
        self.terminate()
        if self.keeps_state:
            self._wake_accept(time.monotonic() + min(timeout, WAKE_FOR))
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        if self._log:
            self._log.close()
            self._log = None

    def _wake_accept(self, until: float) -> None:
        """Connect to the stopping server until its port refuses: a clean shutdown then takes about 0.5 s, not 2.5 s.

        SecantusDB's shutdown closes its listening socket, then waits up to 2 s for its accept thread, which sits
        in ``accept()``; on Linux closing a socket does not wake a thread blocked on it, so every clean stop took
        those 2 s. A connection wakes it: it sees the stop flag and ends, and the next connection is refused. The
        first one waits :data:`WAKE_AFTER`, for the server's signal handler to have run (the signal goes to its
        main thread, :func:`_to_main_thread`); one made earlier is an ordinary client that closes at once.
        """
        time.sleep(WAKE_AFTER)
        while self.process.poll() is None and time.monotonic() < until:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                return  # refused: nothing listens any more
            time.sleep(0.1)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


#: How long after SIGTERM the first wake-up connection is made, and for how long they are made at most.
WAKE_AFTER: Final = 0.2
WAKE_FOR: Final = 3.0


def _to_main_thread(pid: int, signum: int) -> None:
    """Send ``signum`` to the main thread of process ``pid`` (Linux ``tgkill``; elsewhere, to the process).

    A Python server handles signals in its main thread only. Sent to the process, the kernel may hand the signal
    to another thread, and a main thread blocked on a lock (SecantusDB waits on an event) then runs the handler
    only when something else wakes it: sometimes never, until the SIGKILL ten seconds later.
    """
    tgkill = getattr(ctypes.CDLL(None, use_errno=True), "tgkill", None) if sys.platform.startswith("linux") else None
    if tgkill is not None:  # glibc 2.30 and later
        if tgkill(pid, pid, signum) == 0:
            return
        if ctypes.get_errno() == errno.ESRCH:
            raise ProcessLookupError(pid)
    os.kill(pid, signum)


def spawn(
    name: str,
    argv: list[str],
    port: int,
    log_dir: Path,
    timeout: float,
    *,
    env: Mapping[str, str] | None = None,
    keeps_state: bool = False,
) -> ChildServer:
    """Start ``argv`` with its output in ``log_dir/<name>.log`` and wait until it listens on ``port``.

    ``env`` is added to this process's environment (the LocalStack peer is configured that way).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    env = {**os.environ, **(env or {})}
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(
        argv,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # Ctrl-C is for serve, which stops the children in order (module doc)
        preexec_fn=_parent_death_signal(),
    )
    server = ChildServer(name=name, port=port, process=proc, log_path=log_path, keeps_state=keeps_state, _log=log)
    try:
        _wait_for_port(port, proc, name, timeout, log_path)
    except BaseException:
        server.stop()
        raise
    return server


_PR_SET_PDEATHSIG: Final = 1


def _parent_death_signal() -> Callable[[], None] | None:
    """For the child between fork and exec (Linux): SIGKILL when its parent dies, via ``prctl``.

    SIGKILL, not SIGTERM: a parent that died without stopping its children (``kill -9`` of ``serve``) can no
    longer wait for a graceful shutdown, and SecantusDB's graceful shutdown under load took longer than the
    10 s a user waits. moto keeps nothing; WiredTiger recovers from its journal at the next start.

    The C function is looked up here, in the parent, so the child makes one C call and nothing else, which is
    what makes ``preexec_fn`` acceptable with other threads in the parent. The signal follows the *thread* that
    forked, so the stack is started from the main thread (``serve`` and the test session do).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start_s3(port: int, log_dir: Path, *, timeout: float = 30.0) -> ChildServer:
    """moto's standalone S3 server over real HTTP (in-memory; state ends with the process)."""
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return spawn("s3", argv, port, log_dir, timeout)


def start_mongo(
    port: int, data_dir: Path, log_dir: Path, *, timeout: float = 60.0, keeps_state: bool = True
) -> ChildServer:
    """SecantusDB: MongoDB wire protocol over WiredTiger in ``data_dir``, replica-set hello, change streams."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        _executable("secantusd-py"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(data_dir),
        "--log-level",
        "WARNING",
        "--noop-heartbeat-seconds",
        "10",
    ]
    return spawn("mongodb", argv, port, log_dir, timeout, keeps_state=keeps_state)
