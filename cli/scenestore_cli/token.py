"""``scenestore token USER_ID [--ttl S]``: a bearer token signed with the configured secret."""

from __future__ import annotations

import click
from scenestore.keys import validate_id
from scenestore.settings import get_settings
from scenestore.tokens import issue_token

from scenestore_cli.common import command, emit, handle_errors, json_option


@command("token")
@click.argument("user_id")
@click.option("--ttl", type=click.IntRange(1, 30 * 24 * 3600), default=3600, show_default=True, help="Lifetime, s.")
@json_option
@handle_errors
def token_command(user_id: str, ttl: int, as_json: bool) -> None:
    """Print a JWT for USER_ID (HS256, SCENESTORE_JWT_SECRET): for the local stack and tests."""
    validate_id(user_id, "user_id")
    token = issue_token(get_settings(), user_id, ttl=ttl)
    emit({"user_id": user_id, "token": token, "ttl": ttl}, as_json, lambda r: r["token"])


commands = [token_command]
