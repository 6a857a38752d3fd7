"""The whole local stack in one object: S3 + MongoDB-wire child processes and settings pointing at them.

With ``s3_endpoint`` the stack starts no S3 server of its own: the settings point at that endpoint (another S3
server, a dev R2 bucket) and keep the bucket, region and credentials of the environment.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from scenestore.settings import Settings

from scenestore_cli.local.servers import ChildServer, free_port, require_free, start_mongo, start_s3


@dataclass
class DevStack:
    """Started with :meth:`start`, stopped with :meth:`stop` (also a context manager)."""

    settings: Settings
    data_dir: Path
    s3_port: int | None
    """``None`` when S3 is external (``s3_endpoint``)."""
    mongo_port: int
    servers: list[ChildServer] = field(default_factory=list)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    def create(
        cls,
        base: Settings | None = None,
        *,
        s3_port: int | None = None,
        mongo_port: int | None = None,
        data_dir: Path | None = None,
        s3_endpoint: str | None = None,
    ) -> DevStack:
        """Ports default to free ones (tests); ``serve`` passes the contract's ports explicitly."""
        tmp = None
        if data_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="scenestore-")
            data_dir = Path(tmp.name)
        s3_port = None if s3_endpoint else (s3_port or free_port())
        mongo_port = mongo_port or free_port()
        settings = (base or Settings()).with_overrides(
            s3_endpoint_url=s3_endpoint or f"http://127.0.0.1:{s3_port}",
            mongodb_uri=f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true",
        )
        return cls(settings=settings, data_dir=data_dir, s3_port=s3_port, mongo_port=mongo_port, _tmp=tmp)

    def start(self) -> DevStack:
        if self.s3_port is not None:
            require_free(self.s3_port, "the S3 server", "--s3-port")
        require_free(self.mongo_port, "the MongoDB server", "--mongo-port")
        logs = self.data_dir / "logs"
        try:
            if self.s3_port is not None:
                self.servers.append(start_s3(self.s3_port, logs))
            # Data in a directory of our own is removed at stop, so MongoDB needs no clean shutdown there.
            mongo_dir = self.data_dir / "mongodb"
            self.servers.append(start_mongo(self.mongo_port, mongo_dir, logs, keeps_state=self._tmp is None))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Every server asked to stop at once, then each waited for: stopping takes the slowest one's time."""
        for server in self.servers:
            server.terminate()
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> DevStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
