"""The whole local stack in one object: S3 + MongoDB-wire child processes and settings pointing at them."""

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
    s3_port: int
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
    ) -> DevStack:
        """Ports default to free ones (tests); ``serve`` passes the contract's ports explicitly."""
        tmp = None
        if data_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="scenestore-")
            data_dir = Path(tmp.name)
        s3_port = s3_port or free_port()
        mongo_port = mongo_port or free_port()
        settings = (base or Settings()).with_overrides(
            s3_endpoint_url=f"http://127.0.0.1:{s3_port}",
            mongodb_uri=f"mongodb://127.0.0.1:{mongo_port}/?directConnection=true",
        )
        return cls(settings=settings, data_dir=data_dir, s3_port=s3_port, mongo_port=mongo_port, _tmp=tmp)

    def start(self) -> DevStack:
        require_free(self.s3_port, "the S3 server", "--s3-port")
        require_free(self.mongo_port, "the MongoDB server", "--mongo-port")
        logs = self.data_dir / "logs"
        try:
            self.servers.append(start_s3(self.s3_port, logs))
            self.servers.append(start_mongo(self.mongo_port, self.data_dir / "mongodb", logs))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
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
