"""Serve the presign function's Chalice app over local HTTP, in a thread of the ``serve`` process."""

from __future__ import annotations

import threading
from typing import Any


class ApiServer:
    def __init__(self, app: Any, port: int, host: str = "127.0.0.1") -> None:
        from chalice.config import Config
        from chalice.local import LocalDevServer

        self.host = host
        self.port = port
        self._server = LocalDevServer(app, Config(), host, port)
        self._thread = threading.Thread(target=self._server.server.serve_forever, name="api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server.server_close()
        self._thread.join(5)


def load_presign_app() -> Any:
    """The very app object Lambda runs (``functions/presign/app.py``)."""
    from functions.presign.app import app

    return app
