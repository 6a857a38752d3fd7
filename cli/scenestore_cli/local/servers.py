"""Start, wait for and stop the local S3 and MongoDB-wire servers as child processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

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
    """One child process with its log file; stopped with SIGTERM, then SIGKILL."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    _log: IO[bytes] | None = field(default=None, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._log:
            self._log.close()
            self._log = None

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def spawn(
    name: str, argv: list[str], port: int, log_dir: Path, timeout: float, *, env: Mapping[str, str] | None = None
) -> ChildServer:
    """Start ``argv`` with its output in ``log_dir/<name>.log`` and wait until it listens on ``port``.

    ``env`` is added to this process's environment (the LocalStack peer is configured that way).
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("ab")
    env = {**os.environ, **(env or {})}
    env.setdefault("PYTHONUNBUFFERED", "1")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
    server = ChildServer(name=name, port=port, process=proc, log_path=log_path, _log=log)
    try:
        _wait_for_port(port, proc, name, timeout, log_path)
    except BaseException:
        server.stop()
        raise
    return server


def start_s3(port: int, log_dir: Path, *, timeout: float = 30.0) -> ChildServer:
    """moto's standalone S3 server over real HTTP (in-memory; state ends with the process)."""
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return spawn("s3", argv, port, log_dir, timeout)


def start_mongo(port: int, data_dir: Path, log_dir: Path, *, timeout: float = 60.0) -> ChildServer:
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
    return spawn("mongodb", argv, port, log_dir, timeout)
