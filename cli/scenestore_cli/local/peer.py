"""A second S3 server for the test suite: LocalStack's S3 with presigned-signature validation on.

moto, the local stack's S3, accepts any signature, so what a presigned URL binds (key, ``Content-Type``, exact
``Content-Length``, part number, upload id) is only proven against a server that checks it. LocalStack does
(``S3_SKIP_SIGNATURE_VALIDATION=0``) and answers a changed type, length or key with 403
``SignatureDoesNotMatch``, as S3 and R2 do.

LocalStack runs in host mode (no Docker) under Python 3.13, in a virtualenv of its own (``.venv-peer``): its
pins (``cryptography``, ``pyopenssl``) must not touch the project's. ``install`` builds that virtualenv once
(about 45 s here) and never fails the build: it writes ``ok`` or the reason into ``.venv-peer/.peer-status``,
and the ``s3_peer`` tests skip with that reason, as the browser tests do with theirs. ``start_peer`` starts it
as a child process on a free port the way :mod:`scenestore_cli.local.servers` starts moto and SecantusDB.

Run ``python -m scenestore_cli.local.peer install`` (``make test-peer`` does), or ``... serve --port N`` for a
peer by hand.

The same tests are the acceptance run of any S3 endpoint and an existing bucket (a dev R2 bucket):
:func:`target_from_env` reads ``SCENESTORE_PEER_S3_ENDPOINT_URL``, ``SCENESTORE_PEER_S3_BUCKET``,
``SCENESTORE_PEER_S3_REGION``, ``SCENESTORE_PEER_AWS_ACCESS_KEY_ID`` / ``SCENESTORE_PEER_AWS_SECRET_ACCESS_KEY``
and ``SCENESTORE_PEER_CORS_ORIGIN`` (an origin the bucket's CORS rule allows). They have names of their own, so
the suite's other settings are never pointed at that bucket by accident.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from scenestore_cli.local import pythons
from scenestore_cli.local.servers import ChildServer, StackError, free_port, spawn

REPO: Final = Path(__file__).resolve().parents[3]
DEFAULT_VENV: Final = REPO / ".venv-peer"
STATUS_FILE: Final = ".peer-status"
#: What was found to work on this kind of machine (host mode, Python 3.13); the stamp re-installs on a change.
REQUIREMENTS: Final = (
    "localstack-core[runtime]==2026.3.0",
    "cbor2<6",
    "cryptography==44.0.3",
    "pyopenssl==24.3.0",
    "service_identity",
)
PYTHON_VERSION: Final = "3.13"
#: LocalStack's fixed test credentials (any key works; the signature must still be right for it).
ACCESS_KEY: Final = "test"
SECRET_KEY: Final = "test"
START_TIMEOUT: Final = 120.0
INSTALL_TIMEOUT: Final = 900.0


def peer_environment(port: int, root: Path) -> dict[str, str]:
    """LocalStack's settings: S3 only, signatures checked, nothing reached for outside.

    ``OVERRIDE_IN_DOCKER=0`` keeps it in host mode even inside a container (else it writes to
    ``/var/lib/localstack``); ``FILESYSTEM_ROOT`` puts its files in ``root``.

    The gateway is LocalStack's default (twisted), which listens on every interface whatever host
    ``GATEWAY_LISTEN`` names; its data is throwaway and its credentials are the public ``test``/``test``. The
    hypercorn gateway binds loopback only, but it sometimes stops reading a 5 MiB part it has refused, and the
    client's PUT then hangs until its timeout (seen here in about one run of three), so it is not used.
    """
    return {
        "SERVICES": "s3",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "S3_SKIP_SIGNATURE_VALIDATION": "0",
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(root),
        "LOCALSTACK_VOLUME_DIR": str(root / "volume"),
        "PERSISTENCE": "0",
    }


# -- where the s3_peer tests run ------------------------------------------------------------------------------
ENDPOINT_VAR: Final = "SCENESTORE_PEER_S3_ENDPOINT_URL"
BUCKET_VAR: Final = "SCENESTORE_PEER_S3_BUCKET"
REGION_VAR: Final = "SCENESTORE_PEER_S3_REGION"
ACCESS_KEY_VAR: Final = "SCENESTORE_PEER_AWS_ACCESS_KEY_ID"
SECRET_KEY_VAR: Final = "SCENESTORE_PEER_AWS_SECRET_ACCESS_KEY"
ORIGIN_VAR: Final = "SCENESTORE_PEER_CORS_ORIGIN"
#: The origin of docs/deploy.md's CORS rule: the bucket the suite creates allows it, and the CORS tests use it.
DEFAULT_ORIGIN: Final = "https://app.example.com"


@dataclass(frozen=True)
class PeerTarget:
    """The S3 the ``s3_peer`` tests run against.

    ``endpoint`` ``None``: a LocalStack started for the session. ``bucket`` ``None``: a bucket the suite creates
    (and configures as docs/deploy.md says); given, an existing bucket whose rules and other objects the suite
    never touches: it works under a fresh random prefix and removes it.
    """

    endpoint: str | None = None
    bucket: str | None = None
    region: str = "us-east-1"
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    origin: str = DEFAULT_ORIGIN
    """A browser origin the bucket's CORS rule allows."""

    @property
    def existing_bucket(self) -> bool:
        return self.bucket is not None


def target_from_env(environ: Mapping[str, str]) -> PeerTarget:
    """The target the environment names; a bucket without an endpoint, or keys without a bucket, is a mistake
    (``StackError`` naming the variables): the run must never fall back to LocalStack silently."""
    endpoint = environ.get(ENDPOINT_VAR, "").strip() or None
    bucket = environ.get(BUCKET_VAR, "").strip() or None
    access, secret = environ.get(ACCESS_KEY_VAR, "").strip(), environ.get(SECRET_KEY_VAR, "").strip()
    if bucket and not endpoint:
        raise StackError(f"{BUCKET_VAR} is set without {ENDPOINT_VAR}: give the bucket's endpoint too")
    if bucket and not (access and secret):
        raise StackError(f"{BUCKET_VAR} needs {ACCESS_KEY_VAR} and {SECRET_KEY_VAR}: the bucket's keys")
    return PeerTarget(
        endpoint=endpoint.rstrip("/") if endpoint else None,
        bucket=bucket,
        region=environ.get(REGION_VAR, "").strip() or "us-east-1",
        access_key=access or ACCESS_KEY,
        secret_key=secret or SECRET_KEY,
        origin=environ.get(ORIGIN_VAR, "").strip().rstrip("/") or DEFAULT_ORIGIN,
    )


# -- the virtualenv ---------------------------------------------------------------------------------------
def find_python() -> str | None:
    """A Python 3.13 that runs: ``SCENESTORE_PEER_PYTHON``, pyenv's, or ``python3.13`` on PATH."""
    return pythons.find_python(PYTHON_VERSION, "SCENESTORE_PEER_PYTHON")


def _stamp() -> str:
    return hashlib.sha256("\n".join(REQUIREMENTS).encode()).hexdigest()[:16]


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


@dataclass(frozen=True)
class InstallResult:
    ok: bool
    reason: str
    seconds: float


def install(venv: Path = DEFAULT_VENV) -> InstallResult:
    """Build the peer's virtualenv unless it is already built with these pins; record ``ok`` or the reason."""
    started = time.monotonic()
    stamp = venv / ".peer-stamp"
    if stamp.exists() and stamp.read_text().strip() == _stamp() and venv_python(venv).exists():
        return _record(venv, InstallResult(True, "ok", time.monotonic() - started))
    python = find_python()
    if python is None:
        reason = f"no Python {PYTHON_VERSION} found (set SCENESTORE_PEER_PYTHON, or install python{PYTHON_VERSION})"
        return _record(venv, InstallResult(False, reason, 0.0))
    log = venv.parent / f"{venv.name}.install.log"
    steps = [[python, "-m", "venv", "--clear", str(venv)], _install_argv(venv)]
    with log.open("w") as out:
        for argv in steps:
            try:
                done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT, check=False)
            except (OSError, subprocess.TimeoutExpired) as exc:
                return _record(venv, InstallResult(False, f"{argv[2]} failed: {exc}", time.monotonic() - started))
            if done.returncode != 0:
                reason = f"`{' '.join(argv[1:4])} ...` exited {done.returncode}: {_last_line(log)} (log: {log})"
                return _record(venv, InstallResult(False, reason, time.monotonic() - started))
    stamp.write_text(_stamp() + "\n")
    return _record(venv, InstallResult(True, "ok", time.monotonic() - started))


def _install_argv(venv: Path) -> list[str]:
    """uv when the dev environment has it (requirements.lock pins it): LocalStack's ~100 packages install in
    seconds instead of minutes; pip otherwise."""
    uv = Path(sys.executable).parent / "uv"
    if uv.is_file():
        return [str(uv), "pip", "install", "-q", "--python", str(venv_python(venv)), *REQUIREMENTS]
    return [str(venv_python(venv)), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS]


def _last_line(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def _record(venv: Path, result: InstallResult) -> InstallResult:
    with contextlib.suppress(OSError):
        venv.mkdir(parents=True, exist_ok=True)
        (venv / STATUS_FILE).write_text(result.reason + "\n")
    return result


def unavailable_reason(venv: Path = DEFAULT_VENV) -> str | None:
    """Why the peer cannot run here (``None`` when it can): what ``install`` recorded, or that it never ran."""
    status = venv / STATUS_FILE
    if not status.exists():
        return f"the LocalStack peer is not installed: run `make test-peer` (or python -m {__name__} install)"
    text = status.read_text().strip()
    if text != "ok":
        return f"the LocalStack peer could not be installed: {text}"
    if not venv_python(venv).exists():
        return f"{venv_python(venv)} is missing: run `make test-peer` again"
    return None


# -- the server -------------------------------------------------------------------------------------------
def start_peer(
    port: int, root: Path, log_dir: Path, *, venv: Path = DEFAULT_VENV, timeout: float = START_TIMEOUT
) -> ChildServer:
    """LocalStack's S3 on ``127.0.0.1:port``, ready (its health check reports S3) when this returns."""
    reason = unavailable_reason(venv)
    if reason:
        raise StackError(reason)
    root.mkdir(parents=True, exist_ok=True)
    argv = [str(venv_python(venv)), "-m", "localstack.runtime.main"]
    server = spawn("localstack", argv, port, log_dir, timeout, env=peer_environment(port, root))
    try:
        _wait_until_s3_is_up(port, server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_s3_is_up(port: int, server: ChildServer, timeout: float) -> None:
    """The gateway listens before its services load: wait for ``/_localstack/health`` to list S3 as up."""
    end = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/_localstack/health"
    last = "no answer"
    while time.monotonic() < end:
        if not server.alive:
            raise StackError(f"LocalStack exited during start-up (log: {server.log_path})")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # a loopback URL built here
                state = json.load(response).get("services", {}).get("s3")
            if state in ("available", "running"):
                return
            last = f"s3 is {state!r}"
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.2)
    raise StackError(f"LocalStack's S3 was not up within {timeout:.0f}s ({last}; log: {server.log_path})")


# -- command line -------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="build .venv-peer (never fails: the reason goes to .peer-status)")
    serve = commands.add_parser("serve", help="run LocalStack's S3 in the foreground until Ctrl-C")
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--root", type=Path, default=REPO / ".scenestore-data" / "peer")
    args = parser.parse_args(argv)

    if args.command == "install":
        result = install()
        verdict = "ready" if result.ok else f"skipped: {result.reason}"
        print(f"LocalStack peer: {verdict} ({result.seconds:.1f}s)")
        return 0
    port = args.port or free_port()
    server = start_peer(port, args.root, args.root / "logs")
    print(f"LocalStack S3 at http://127.0.0.1:{port} (credentials {ACCESS_KEY}/{SECRET_KEY}); Ctrl-C stops it")
    try:
        while server.alive:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
