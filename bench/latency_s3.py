"""moto's S3 server that answers every request after D milliseconds: R2's distance on one machine.

    .venv/bin/python bench/latency_s3.py --port 4599 --delay-ms 25
    .venv/bin/python bench/latency_s3.py --listen 4599:0 --listen 4600:25    # one store, two distances

A local moto server answers in well under a millisecond, so a benchmark against it measures client CPU. R2 is
tens of milliseconds from a Lambda or an operator's shell, and there the job is bound by latency and by how many
requests are in flight. This wraps moto's own WSGI application in a middleware that sleeps before handing the
request on, served by werkzeug's threaded server (one thread per connection, as moto's standalone server does),
so concurrent requests wait in parallel exactly as they would on a remote store. ``--delay-ms 0`` is plain moto.

With several ``--listen PORT:DELAY`` the one process serves the *same* buckets on every port, each port at its
own distance: a benchmark seeds through the 0 ms port (fast) and runs a contender through the 25 ms one, so the
two distances see the same server code and the same data. :class:`LatencyS3` starts such a process for a
benchmark and tells it which endpoint has which delay.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO, Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DelayMiddleware:
    """Sleeps ``delay`` seconds before each request reaches the wrapped app (time to first byte)."""

    def __init__(self, app: WSGIApp, delay: float) -> None:
        self.app = app
        self.delay = delay

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.delay > 0:
            time.sleep(self.delay)
        return self.app(environ, start_response)


def serve(host: str, listeners: Sequence[tuple[int, float]]) -> None:
    """One moto backend (one set of buckets) behind one threaded server per ``(port, delay_ms)``."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    backend = DomainDispatcherApplication(create_backend_app)
    servers = [
        make_server(
            host, port, DelayMiddleware(backend, delay_ms / 1000.0), threaded=True, request_handler=MotoRequestHandler
        )
        for port, delay_ms in listeners
    ]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers[1:]]
    for thread in threads:
        thread.start()
    servers[0].serve_forever()


class LatencyS3:
    """A child process serving one moto store at several distances; ``endpoint(delay_ms)`` picks one."""

    def __init__(self, delays_ms: Sequence[float], log_dir: Path, host: str = "127.0.0.1") -> None:
        self.host = host
        self.ports = {float(d): _free_port(host) for d in dict.fromkeys(float(d) for d in delays_ms)}
        argv = [sys.executable, str(Path(__file__).resolve()), "--host", host]
        for delay, port in self.ports.items():
            argv += ["--listen", f"{port}:{delay:g}"]
        log_dir.mkdir(parents=True, exist_ok=True)
        self._log: IO[bytes] = (log_dir / "latency_s3.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for port in self.ports.values():
            _wait_for(host, port, self.process)

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

    def __enter__(self) -> LatencyS3:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _wait_for(host: str, port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"latency_s3 exited with code {process.returncode} during start-up")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            if sock.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"latency_s3 did not listen on {host}:{port} within {timeout:.0f}s")


def _listener(text: str) -> tuple[int, float]:
    port, _, delay = text.partition(":")
    return int(port), float(delay or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="one listener at --delay-ms")
    parser.add_argument("--delay-ms", type=float, default=25.0)
    parser.add_argument("--listen", type=_listener, action="append", default=[], metavar="PORT:DELAY_MS")
    args = parser.parse_args()
    listeners = list(args.listen) + ([(args.port, args.delay_ms)] if args.port else [])
    if not listeners:
        parser.error("give --port (with --delay-ms) or at least one --listen PORT:DELAY_MS")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    serve(args.host, listeners)


if __name__ == "__main__":
    main()
