"""``scenestore serve``: the embedded local stack, stopped cleanly and within about a second on Ctrl-C/SIGTERM.

Stopping goes in order (the terminal's Ctrl-C reaches serve only, see ``local.servers``): the event runner and
the API first, then the process's MongoDB client while its server still answers, then every server at once (a
MongoDB with ``--data-dir`` shuts down cleanly, about half a second; everything else ends at once).
With ``--s3-endpoint URL`` no S3 server is started: the API, the runner and the demo run against that endpoint
with the bucket, region and credentials of the environment (``SCENESTORE_BUCKET``, ``SCENESTORE_S3_REGION``,
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``); MongoDB is local as usual.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, Final

import click
from click.core import ParameterSource
from scenestore.settings import DEFAULT_API_PORT, DEFAULT_MONGO_PORT, DEFAULT_S3_PORT, get_settings

from scenestore_cli.common import command, handle_errors, json_option

#: The change stream's wait per poll in serve: how long stopping the event runner may take.
RUNNER_POLL_MS: Final = 200


def _http_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith(("http://", "https://")):
        raise click.BadParameter(f"{value!r} is not an http:// or https:// URL")
    return value.rstrip("/") if value else value


@command("serve")
@click.option("--demo", is_flag=True, help="Seed a demo user with legacy and new-layout data; print a token.")
@click.option("--s3-port", type=click.IntRange(1, 65535), default=DEFAULT_S3_PORT, show_default=True)
@click.option("--mongo-port", type=click.IntRange(1, 65535), default=DEFAULT_MONGO_PORT, show_default=True)
@click.option("--api-port", type=click.IntRange(1, 65535), default=DEFAULT_API_PORT, show_default=True)
@click.option(
    "--s3-endpoint",
    metavar="URL",
    callback=_http_url,
    help="Use this S3 (another server, a dev R2 bucket) instead of starting one; bucket and credentials come "
    "from the environment.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where MongoDB keeps its files (default: a temporary directory removed on exit).",
)
@json_option
@handle_errors
def serve_command(
    demo: bool,
    s3_port: int,
    mongo_port: int,
    api_port: int,
    s3_endpoint: str | None,
    data_dir: Path | None,
    as_json: bool,
) -> None:
    """Start S3 (moto, unless --s3-endpoint), MongoDB (SecantusDB), the HTTP API and the local event runner."""
    from scenestore.services import Services, set_services

    from scenestore_cli.local.api import ApiServer, load_presign_app
    from scenestore_cli.local.bootstrap import prepare
    from scenestore_cli.local.event_runner import EventRunner
    from scenestore_cli.local.servers import require_free
    from scenestore_cli.local.stack import DevStack

    if s3_endpoint and click.get_current_context().get_parameter_source("s3_port") is ParameterSource.COMMANDLINE:
        raise click.UsageError("--s3-port starts a local S3 server; --s3-endpoint uses another one: give one of them")
    require_free(api_port, "the HTTP API", "--api-port")
    stack = DevStack.create(
        get_settings(), s3_port=s3_port, mongo_port=mongo_port, data_dir=data_dir, s3_endpoint=s3_endpoint
    )
    stopping = threading.Event()
    parts: list[Any] = []
    services: Services | None = None

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.start()
        services = Services.from_settings(stack.settings)
        set_services(services)
        prepared = prepare(services)  # an existing bucket's rules are checked, never rewritten
        api = ApiServer(load_presign_app(), api_port, dev_routes=demo).start()
        parts.append(api)
        runner = EventRunner(services, poll_ms=RUNNER_POLL_MS).start()
        parts.append(runner)
        info: dict[str, Any] = {
            "s3": stack.settings.s3_endpoint_url,
            "s3_external": s3_endpoint is not None,
            "mongodb": stack.settings.mongodb_uri,
            "api": api.url,
            "bucket": stack.settings.bucket,
            "region": stack.settings.s3_region,
            "data_dir": str(stack.data_dir),
            "second_terminal": second_terminal(stack.settings),
        }
        if demo:
            from scenestore.tokens import issue_token

            from scenestore_cli.local.demo import seed_demo

            seeded = seed_demo(services)
            info["demo"] = seeded
            info["token"] = issue_token(stack.settings, seeded["user_id"], ttl=24 * 3600)
        info["bucket_rules"] = prepared["bucket_rules"]
        _print_banner(info, as_json)
        while not stopping.wait(0.5):
            if any(not server.alive for server in stack.servers):
                dead = [s.name for s in stack.servers if not s.alive]
                click.echo(f"scenestore: {', '.join(dead)} stopped unexpectedly; shutting down", err=True)
                break
    finally:
        for part in reversed(parts):
            part.stop()
        if services is not None and "mongo" in services.built:
            services.mongo.close()  # while its server answers: closing against a dead one waits for timeouts
        stack.stop()  # also removes the data directory when it is a temporary one
        set_services(None)
        click.echo("scenestore: stopped", err=True)


def _print_banner(info: dict[str, Any], as_json: bool) -> None:
    import json

    from scenestore_cli.local.bootstrap import bucket_rule_lines

    if as_json:
        click.echo(json.dumps(info), nl=True)
        return
    s3 = "S3 (external)      " if info["s3_external"] else "S3 (moto)          "
    lines = [
        "scenestore local stack is up",
        f"  {s3}  {info['s3']}   bucket {info['bucket']} ({info['region']})",
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
    lines += bucket_rule_lines(info.get("bucket_rules", []))
    lines += second_terminal_lines(info["second_terminal"])
    lines.append("Ctrl-C stops everything.")
    click.echo("\n".join(lines))


#: The settings a command in another shell needs to reach the stack serve started (its ports, bucket, region).
STACK_VARIABLES: Final = (
    ("SCENESTORE_S3_ENDPOINT_URL", "s3_endpoint_url"),
    ("SCENESTORE_MONGODB_URI", "mongodb_uri"),
    ("SCENESTORE_MONGODB_DB", "mongodb_db"),
    ("SCENESTORE_BUCKET", "bucket"),
    ("SCENESTORE_S3_REGION", "s3_region"),
)


def second_terminal(settings: Any) -> dict[str, Any]:
    """What another shell needs to run ``scenestore`` against this stack: the variables to export, the command
    itself (the virtualenv's, which ``make run`` does not put on PATH), and the names of variables set here that
    it must set too (secrets and credentials are named, never printed)."""
    import os
    import shutil
    import sys

    bin_dir = Path(sys.executable).parent
    script = bin_dir / "scenestore"
    on_path = shutil.which("scenestore")
    exports = {variable: str(getattr(settings, name)) for variable, name in STACK_VARIABLES}
    read = {info.alias for info in type(settings).model_fields.values() if info.alias}
    also = sorted(
        name for name in os.environ if (name in read or name.startswith("SCENESTORE_")) and name not in exports
    )
    return {
        "exports": exports,
        "command": str(script),
        "on_path": on_path is not None and Path(on_path).resolve() == script.resolve(),
        "activate": str(bin_dir / "activate") if (bin_dir / "activate").exists() else None,
        "set_as_here": also,
    }


def second_terminal_lines(second: dict[str, Any]) -> list[str]:
    """The banner's lines for another terminal: ready to paste."""
    import shlex

    lines = ["In another terminal, to run scenestore commands against this stack:"]
    if not second["on_path"]:
        if second["activate"]:
            lines.append(f"  source {shlex.quote(second['activate'])}   # puts scenestore on PATH")
        else:
            lines.append(f"  # the command is {shlex.quote(second['command'])} (not on PATH)")
    lines += [f"  export {name}={shlex.quote(value)}" for name, value in second["exports"].items()]
    if second["set_as_here"]:
        lines.append(f"  # and, as in this terminal: {', '.join(second['set_as_here'])}")
    lines.append("  scenestore usage")
    return lines


commands = [serve_command]
