"""What the benchmark scripts share: command lines timed as a user runs them, and the environment they run in.

A contender that is a command (``scenestore``, ``s5cmd``, ``aws``, ``python -c``) is timed from before its
process starts to after it exits, so interpreter start-up, imports and whatever waits at exit are included;
its CPU is the children's rusage over the run. The environment points every tool at the same S3 endpoint
with the same dummy credentials and no shared AWS config, so no tool reads the operator's own profile.
"""

from __future__ import annotations

import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent
ACCESS_KEY = "bench"
SECRET_KEY = "bench-secret"
REGION = "us-east-1"


def tool_env(endpoint: str, bucket: str, work: Path, **extra: str) -> dict[str, str]:
    """Environment for scenestore and the AWS tools: same endpoint, credentials and bucket for all."""
    config, credentials = work / "aws-config", work / "aws-credentials"
    if not config.exists():
        config.write_text("[default]\n")
        credentials.write_text("")
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        AWS_CONFIG_FILE=str(config),
        AWS_SHARED_CREDENTIALS_FILE=str(credentials),
        AWS_EC2_METADATA_DISABLED="true",
        SCENESTORE_S3_ENDPOINT_URL=endpoint,
        SCENESTORE_BUCKET=bucket,
        POWERTOOLS_METRICS_DISABLED="true",
    )
    env.update(extra)
    return env


@dataclass(frozen=True, slots=True)
class Timed:
    seconds: float
    cpu: float
    stdout: str


def run_timed(argv: Sequence[str], env: dict[str, str], *, timeout: float = 3600) -> Timed:
    """Run ``argv`` to completion; wall seconds (process start and exit included) and its CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=env)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{Path(argv[0]).name} exited {done.returncode}: {done.stderr.strip()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(seconds, cpu, done.stdout)


@dataclass
class Series:
    """Repeated measurements of one contender at one distance."""

    name: str
    seconds: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def add(self, timed: Timed) -> None:
        self.seconds.append(timed.seconds)
        self.cpu.append(timed.cpu)

    @property
    def median(self) -> float | None:
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def median_cpu(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None


def ratio(ours: float | None, theirs: float | None) -> str:
    """How many times faster ``ours`` is (their time / ours), as the tables print it."""
    if not ours or not theirs:
        return "-"
    return f"{theirs / ours:.2f}x"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


def process_cpu(pid: int) -> float:
    """CPU seconds a server process (the S3 store, the database) has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- a store served by a child process at several distances ----------------------------------------------------
class ChildStore:
    """A benchmark S3 server (``script``, run with ``--listen PORT:DELAY_MS`` per distance) in a child process;
    ``endpoint(delay_ms)`` picks a distance. The moto latency proxy and the benchmark store both start this way."""

    def __init__(self, script: Path, delays_ms: Sequence[float], log_dir: Path, host: str = "127.0.0.1") -> None:
        self.host = host
        self.ports = {float(d): free_port(host) for d in dict.fromkeys(float(d) for d in delays_ms)}
        argv = [sys.executable, str(script), "--host", host]
        for delay, port in self.ports.items():
            argv += ["--listen", f"{port}:{delay:g}"]
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log = (log_dir / f"{script.stem}.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for port in self.ports.values():
            wait_for_listener(host, port, self.process, script.stem)

    @property
    def pid(self) -> int:
        return self.process.pid

    def endpoint(self, delay_ms: float) -> str:
        return f"http://{self.host}:{self.ports[float(delay_ms)]}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._log.close()

    def __enter__(self) -> ChildStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_for_listener(host: str, port: int, process: subprocess.Popen[bytes], name: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} during start-up")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{name} did not listen on {host}:{port} within {timeout:.0f}s")


def listener_arg(text: str) -> tuple[int, float]:
    """``--listen PORT:DELAY_MS``."""
    port, _, delay = text.partition(":")
    return int(port), float(delay or 0)
