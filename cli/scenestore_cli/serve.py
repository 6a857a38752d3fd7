"""``scenestore serve``: the embedded local stack in one process group, stopped cleanly on Ctrl-C/SIGTERM."""

from __future__ import annotations

import signal
import tempfile
import threading
from pathlib import Path
from typing import Any

import click
from scenestore.settings import DEFAULT_API_PORT, DEFAULT_MONGO_PORT, DEFAULT_S3_PORT, get_settings

from scenestore_cli.common import command, handle_errors, json_option


@command("serve")
@click.option("--demo", is_flag=True, help="Seed a demo user with legacy and new-layout data; print a token.")
@click.option("--s3-port", type=click.IntRange(1, 65535), default=DEFAULT_S3_PORT, show_default=True)
@click.option("--mongo-port", type=click.IntRange(1, 65535), default=DEFAULT_MONGO_PORT, show_default=True)
@click.option("--api-port", type=click.IntRange(1, 65535), default=DEFAULT_API_PORT, show_default=True)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where MongoDB keeps its files (default: a temporary directory removed on exit).",
)
@json_option
@handle_errors
def serve_command(
    demo: bool, s3_port: int, mongo_port: int, api_port: int, data_dir: Path | None, as_json: bool
) -> None:
    """Start S3 (moto), MongoDB (SecantusDB), the HTTP API and the local event runner."""
    from scenestore.services import Services, set_services

    from scenestore_cli.local.api import ApiServer, load_presign_app
    from scenestore_cli.local.bootstrap import prepare
    from scenestore_cli.local.event_runner import EventRunner
    from scenestore_cli.local.servers import require_free
    from scenestore_cli.local.stack import DevStack

    require_free(api_port, "the HTTP API", "--api-port")
    tmp = None
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="scenestore-serve-")
        data_dir = Path(tmp.name)
    stack = DevStack.create(get_settings(), s3_port=s3_port, mongo_port=mongo_port, data_dir=data_dir)
    stopping = threading.Event()
    parts: list[Any] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.start()
        services = Services.from_settings(stack.settings)
        set_services(services)
        prepare(services)
        api = ApiServer(load_presign_app(), api_port, dev_routes=demo).start()
        parts.append(api)
        runner = EventRunner(services).start()
        parts.append(runner)
        info: dict[str, Any] = {
            "s3": stack.settings.s3_endpoint_url,
            "mongodb": stack.settings.mongodb_uri,
            "api": api.url,
            "bucket": stack.settings.bucket,
            "data_dir": str(data_dir),
        }
        if demo:
            from scenestore.tokens import issue_token

            from scenestore_cli.local.demo import seed_demo

            seeded = seed_demo(services)
            info["demo"] = seeded
            info["token"] = issue_token(stack.settings, seeded["user_id"], ttl=24 * 3600)
        _print_banner(info, as_json)
        while not stopping.wait(0.5):
            if any(not server.alive for server in stack.servers):
                dead = [s.name for s in stack.servers if not s.alive]
                click.echo(f"scenestore: {', '.join(dead)} stopped unexpectedly; shutting down", err=True)
                break
    finally:
        for part in reversed(parts):
            part.stop()
        stack.stop()
        set_services(None)
        if tmp is not None:
            tmp.cleanup()
        click.echo("scenestore: stopped", err=True)


def _print_banner(info: dict[str, Any], as_json: bool) -> None:
    import json

    if as_json:
        click.echo(json.dumps(info), nl=True)
        return
    lines = [
        "scenestore local stack is up",
        f"  S3 (moto)            {info['s3']}   bucket {info['bucket']}",
        f"  MongoDB (SecantusDB) {info['mongodb']}",
        f"  HTTP API             {info['api']}",
        f"  data                 {info['data_dir']}",
    ]
    if "demo" in info:
        lines += [
            f"  demo user            {info['demo']['user_id']} (projects: {', '.join(info['demo']['projects'])})",
            f"  demo page            {info['api']}/",
            f"  token                {info['token']}",
            f"  try: curl -H 'Authorization: Bearer {info['token'][:16]}...' {info['api']}/health",
            f"  more tokens: scenestore token {info['demo']['user_id']}",
        ]
    lines.append("Ctrl-C stops everything.")
    click.echo("\n".join(lines))


commands = [serve_command]
