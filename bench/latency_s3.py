"""moto's S3 server that answers every request after D milliseconds: R2's distance on one machine.

    .venv/bin/python bench/latency_s3.py --port 4599 --delay-ms 25

A local moto server answers in well under a millisecond, so a benchmark against it measures client CPU. R2 is
tens of milliseconds from a Lambda or an operator's shell, and there the job is bound by latency and by how many
requests are in flight. This wraps moto's own WSGI application in a middleware that sleeps before handing the
request on, served by werkzeug's threaded server (one thread per connection, as moto's standalone server does),
so concurrent requests wait in parallel exactly as they would on a remote store. ``--delay-ms 0`` is plain moto.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterable
from typing import Any

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


def serve(host: str, port: int, delay_ms: float) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    app = DelayMiddleware(DomainDispatcherApplication(create_backend_app), delay_ms / 1000.0)
    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=25.0)
    args = parser.parse_args()
    serve(args.host, args.port, args.delay_ms)


if __name__ == "__main__":
    main()
