"""Shared by the frontend tests: what clients/js/setup.sh could install, the local API, and Chromium.

The browser is Debian's ``chromium`` driven through Python's ``playwright`` package by executable path (no
browser download is possible here). Whatever setup.sh could not install is in ``clients/js/.setup-status``;
the tests that need it skip with that reason, which ``pytest -ra`` prints in its closing summary.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from scenestore.services import Services
from scenestore.tokens import issue_token
from scenestore_cli.local.api import ApiServer, load_presign_app
from scenestore_cli.local.demo import DEMO_USER, seed_demo
from scenestore_cli.local.servers import free_port

REPO: Final = Path(__file__).resolve().parents[2]
CLIENT_DIR: Final = REPO / "clients" / "js"
STATUS_FILE: Final = CLIENT_DIR / ".setup-status"
ARTIFACTS: Final = REPO / "test-artifacts"

#: Flags that keep Chromium off the (closed) network and away from the user's profile.
CHROMIUM_ARGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
)


def setup_status() -> dict[str, str]:
    """``part -> "ok" | reason`` from setup.sh's status file (empty when setup.sh has not run)."""
    if not STATUS_FILE.exists():
        return {}
    status: dict[str, str] = {}
    for line in STATUS_FILE.read_text().splitlines():
        part, sep, value = line.partition("=")
        if sep:
            status[part.strip()] = value.strip()
    return status


def _reason(part: str, fallback: str) -> str:
    value = setup_status().get(part)
    if value and value != "ok":
        return f"{part}: {value} (from clients/js/setup.sh; run `make browser-setup`)"
    return fallback


def require_node() -> str:
    node = shutil.which("node")
    if not node:
        pytest.skip(_reason("node", "node is not installed; run `make browser-setup`"))
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < 18:
        pytest.skip(f"node {version} is too old (the client's tests need Node 18+)")
    return node


def require_chromium() -> str:
    path = os.environ.get("SCENESTORE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.skip(_reason("chromium", "chromium is not installed; run `make browser-setup` as root"))
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the Python package playwright is not installed (it comes with the dev extra)")
    return path


def require_npm_packages(*names: str) -> Path:
    modules = CLIENT_DIR / "node_modules"
    missing = [name for name in names if not (modules / name / "package.json").exists()]
    if missing:
        pytest.skip(_reason("npm", f"npm packages missing in clients/js/node_modules: {', '.join(missing)}"))
    return modules


@dataclass
class DemoApi:
    """The local HTTP API (the presign app plus the demo page and dev routes) over one test's services."""

    url: str
    services: Services
    token: str

    def token_for(self, user_id: str) -> str:
        return issue_token(self.services.settings, user_id)


#: The smallest part S3 and R2 take: with it, an 11-16 MiB file is a three-part upload.
SMALL_PART_SIZE: Final = 5 * 1024 * 1024


@contextlib.contextmanager
def running_api(
    services: Services, *, seed: bool = True, events: bool = False, part_size: int | None = None
) -> Iterator[DemoApi]:
    """The API on a free port; with ``events`` also the local event runner, as ``scenestore serve`` runs it.

    ``part_size`` sets ``SCENESTORE_MULTIPART_PART_SIZE`` for this API, so a test's multipart upload has several
    parts without uploading hundreds of MiB.
    """
    from scenestore.services import use_services
    from scenestore_cli.local.event_runner import EventRunner

    if part_size is not None:
        services = services.replace(settings=services.settings.with_overrides(multipart_part_size=part_size))
    if seed:
        seed_demo(services)
    with use_services(services):
        server = ApiServer(load_presign_app(), free_port()).start()
        runner = EventRunner(services).start() if events else None
        try:
            yield DemoApi(url=server.url, services=services, token=issue_token(services.settings, DEMO_USER))
        finally:
            if runner is not None:
                runner.stop()
            server.stop()


def multipart_uploads(services: Services) -> list[dict[str, Any]]:
    """The bucket's unfinished multipart uploads (ListMultipartUploads): an aborted upload must leave none."""
    listed = services.s3.list_multipart_uploads(Bucket=services.settings.bucket)
    return list(listed.get("Uploads", []))


@contextlib.contextmanager
def chromium_context(executable: str) -> Iterator[Any]:
    """A headless Chromium with a fresh profile; yields a Playwright BrowserContext."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="scenestore-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": 1200, "height": 900},
        )
        context.add_init_script(PATTERNED_BYTES_JS)
        try:
            yield context
        finally:
            context.close()


#: Block size of :func:`patterned_bytes`: every 4 KiB block starts with its own index, so a part sent twice, out of
#: order or not at all changes the bytes.
_PATTERN_BLOCK: Final = 4096
_RAMP: Final = bytes(range(256)) * 17


def patterned_bytes(size: int) -> bytes:
    """``size`` bytes that :data:`PATTERNED_BYTES_JS` builds identically in the browser (no need to ship them)."""
    blocks = []
    for index in range(-(-size // _PATTERN_BLOCK)):
        start = index % 256
        blocks.append(index.to_bytes(4, "big") + _RAMP[start : start + _PATTERN_BLOCK - 4])
    return b"".join(blocks)[:size]


#: ``window.patternedBytes(size)``: the same bytes as :func:`patterned_bytes`, made in the page (an init script).
PATTERNED_BYTES_JS: Final = """
window.patternedBytes = (size) => {
  const block = 4096;
  const bytes = new Uint8Array(size);
  for (let index = 0, offset = 0; offset < size; index += 1, offset += block) {
    const view = bytes.subarray(offset, Math.min(offset + block, size));
    const head = [index >>> 24, (index >>> 16) & 255, (index >>> 8) & 255, index & 255];
    for (let j = 0; j < view.length; j += 1) view[j] = j < 4 ? head[j] : (index + j - 4) & 255;
  }
  return bytes;
};
"""


def throttle_uploads(context: Any, page: Any, bytes_per_second: int) -> None:
    """Slow the page's uploads with DevTools network emulation: loopback moves megabytes in a millisecond, and a
    test needs intermediate progress events, and time to abort or drop an upload mid-way."""
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second},
    )


#: How long a browser test waits for the page to get somewhere (ms).
TIMEOUT_MS: Final = 20_000


def open_demo(context: Any, url: str, *, sign_in: bool = True) -> Any:
    """The demo page, signed in as the demo user unless ``sign_in`` is false; ``page.page_errors`` collects
    uncaught exceptions (a page that works has none)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/")
    if sign_in:
        page.click("#sign-in")
        page.wait_for_selector("body[data-ready=yes]", timeout=TIMEOUT_MS)
    page.page_errors = errors
    return page


def artifact_path(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test with ``what`` after ``timeout`` s."""
    import time

    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


_RECORD_WEBM_JS: Final = """
async ({ width, height, frames }) => {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const mimeType = ["video/webm;codecs=vp8", "video/webm;codecs=vp9", "video/webm"].find((t) =>
    MediaRecorder.isTypeSupported(t),
  );
  if (!mimeType) return null;
  const recorder = new MediaRecorder(canvas.captureStream(15), { mimeType });
  const chunks = [];
  recorder.ondataavailable = (event) => chunks.push(event.data);
  const stopped = new Promise((resolve) => (recorder.onstop = resolve));
  recorder.start(100);
  for (let i = 0; i < frames; i++) {
    ctx.fillStyle = `hsl(${(i * 37) % 360}, 80%, 50%)`;
    ctx.fillRect(0, 0, width, height);
    await new Promise((resolve) => setTimeout(resolve, 70));
  }
  recorder.stop();
  await stopped;
  const bytes = new Uint8Array(await new Blob(chunks).arrayBuffer());
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
"""


def record_webm(page: Any, *, width: int = 64, height: int = 48, frames: int = 12) -> bytes | None:
    """A real, tiny VP8 WebM recorded from a canvas by the browser itself (no encoder or download needed).

    ``None`` when this Chromium build has no WebM MediaRecorder.
    """
    import base64

    encoded = page.evaluate(_RECORD_WEBM_JS, {"width": width, "height": height, "frames": frames})
    return base64.b64decode(encoded) if encoded else None
