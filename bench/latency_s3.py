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

Seeding 10,000 objects with PUTs costs moto about a minute of CPU on a busy 2-core machine, more than the
runs it prepares. So the server also answers ``POST /_bench/seed`` (``{"bucket", "keys", "size"}``) by
storing the objects through moto's own backend call (``put_object``, what a PUT ends in), without HTTP,
XML or signatures: the same objects in a fraction of the time. :meth:`LatencyS3.seed` sends it.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tools import ChildStore, listener_arg

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


SEED_PATH = "/_bench/seed"


class SeedEndpoint:
    """``POST /_bench/seed``: put ``keys`` (``size`` bytes each) into ``bucket`` through moto's backend."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != SEED_PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        length = int(environ.get("CONTENT_LENGTH") or 0)
        order = json.loads(environ["wsgi.input"].read(length))
        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        body = b"x" * int(order["size"])
        for key in order["keys"]:
            backend.put_object(order["bucket"], key, body)
        answer = json.dumps({"stored": len(order["keys"])}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]


def serve(host: str, listeners: Sequence[tuple[int, float]]) -> None:
    """One moto backend (one set of buckets) behind one threaded server per ``(port, delay_ms)``."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    backend = SeedEndpoint(DomainDispatcherApplication(create_backend_app))
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


class LatencyS3(ChildStore):
    """A child process serving one moto store at several distances; ``endpoint(delay_ms)`` picks one."""

    def __init__(self, delays_ms: Sequence[float], log_dir: Path, host: str = "127.0.0.1") -> None:
        super().__init__(Path(__file__).resolve(), delays_ms, log_dir, host)

    def seed(self, bucket: str, keys: Sequence[str], size: int, *, chunk: int = 5000) -> None:
        """Store ``keys`` (``size`` bytes each) in ``bucket`` through the seeding endpoint (module doc)."""
        endpoint = self.endpoint(min(self.ports))
        for start in range(0, len(keys), chunk):
            part = list(keys[start : start + chunk])
            order = json.dumps({"bucket": bucket, "keys": part, "size": size}).encode()
            request = urllib.request.Request(endpoint + SEED_PATH, data=order, method="POST")
            with urllib.request.urlopen(request, timeout=600) as answer:
                stored = json.loads(answer.read())["stored"]
            if stored != len(part):
                raise RuntimeError(f"seeding stored {stored} of {len(part)} objects")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="one listener at --delay-ms")
    parser.add_argument("--delay-ms", type=float, default=25.0)
    parser.add_argument("--listen", type=listener_arg, action="append", default=[], metavar="PORT:DELAY_MS")
    args = parser.parse_args()
    listeners = list(args.listen) + ([(args.port, args.delay_ms)] if args.port else [])
    if not listeners:
        parser.error("give --port (with --delay-ms) or at least one --listen PORT:DELAY_MS")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    serve(args.host, listeners)


if __name__ == "__main__":
    main()
