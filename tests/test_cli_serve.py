"""``scenestore serve`` as a newcomer meets it: the lines it prints for a second terminal work as printed, and
Ctrl-C with ``--data-dir`` stops it within the time the README gives.

GIVEN serve started as ``make run`` starts it (the virtualenv's script, its ``bin`` not on PATH) on ports that
are not the defaults, with ``--data-dir``
WHEN a fresh shell runs the lines serve printed under "In another terminal"
THEN ``scenestore usage`` there reaches this stack (the demo user's projects are listed)
AND Ctrl-C (SIGINT) stops serve, MongoDB shutting down cleanly, within :data:`STOP_BOUND` seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Final

import psutil
import pytest
from scenestore_cli.local.servers import free_port

from tests.test_serve import SCENESTORE, START_TIMEOUT, clean_env

#: README: "Ctrl-C stops everything within about a second, also with --data-dir". Measured on a 2-core machine
#: with a load of 19: 0.7-1.3 s; before the wake-up, SecantusDB's shutdown alone waited 2 s on its accept thread.
STOP_BOUND: Final = 2.0


def _without_the_virtualenv(env: dict[str, str]) -> dict[str, str]:
    """A shell as ``make run`` leaves it: the virtualenv's bin is not on PATH."""
    venv_bin = str(Path(SCENESTORE).parent)
    path = [part for part in env.get("PATH", "").split(os.pathsep) if part and part != venv_bin]
    return {**env, "PATH": os.pathsep.join(path or ["/usr/bin", "/bin"])}


def _banner(process: subprocess.Popen[str]) -> list[str]:
    """serve's text banner, up to its last line (read by a thread: a blocking read has no timeout)."""
    assert process.stdout is not None
    stdout = process.stdout
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C stops everything"):
                break
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(START_TIMEOUT) or not lines or not lines[-1].startswith("Ctrl-C"):
        process.kill()
        raise AssertionError(f"serve did not print its banner: {lines}")
    return lines


def test_the_printed_lines_reach_the_stack_and_ctrl_c_stops_it_quickly(tmp_path: Path) -> None:
    env = _without_the_virtualenv(clean_env())
    ports = [str(free_port()) for _ in range(3)]
    argv = [SCENESTORE, "serve", "--demo", "--s3-port", ports[0], "--mongo-port", ports[1], "--api-port", ports[2]]
    process = subprocess.Popen(
        [*argv, "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    children: list[psutil.Process] = []
    try:
        banner = _banner(process)
        children = psutil.Process(process.pid).children(recursive=True)
        start = banner.index("In another terminal, to run scenestore commands against this stack:")
        block = [line.strip() for line in banner[start + 1 : -1]]
        assert block[0].startswith("source ") and block[0].split()[1].endswith("/bin/activate")
        assert f"export SCENESTORE_S3_ENDPOINT_URL=http://127.0.0.1:{ports[0]}" in block
        assert any(line.startswith("export SCENESTORE_MONGODB_URI=") and ports[1] in line for line in block)
        assert "export SCENESTORE_BUCKET=scenestore-local" in block and block[-1] == "scenestore usage"

        shell = subprocess.run(
            ["bash", "-c", "set -e\n" + "\n".join(block)],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert shell.returncode == 0, shell.stderr
        assert "demo" in shell.stdout and "total (the whole bucket)" in shell.stdout

        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
        stopped = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
        for child in children:
            if child.is_running():
                child.kill()
    assert process.returncode == 0 and "stopped" in err, err
    assert stopped < STOP_BOUND, f"serve --data-dir took {stopped:.2f} s to stop"
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive
    assert not any("still active" in line for line in (tmp_path / "data" / "logs" / "mongodb.log").open())


@pytest.mark.parametrize("settings_env", [{"SCENESTORE_JWT_SECRET": "x" * 40}])
def test_a_setting_of_this_terminal_is_named_never_printed(settings_env: dict[str, str]) -> None:
    from scenestore.settings import Settings
    from scenestore_cli.serve import second_terminal, second_terminal_lines

    saved = dict(os.environ)
    try:
        os.environ.update(settings_env)
        second = second_terminal(Settings())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    text = "\n".join(second_terminal_lines(second))
    assert "SCENESTORE_JWT_SECRET" in text and "x" * 40 not in text


def test_the_readme_shows_the_lines_serve_prints_with_the_default_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    """README's "another terminal" block is what ``make run`` (the default ports) prints: the exports, and the
    command reached through the virtualenv, since ``make run`` does not put it on PATH."""
    from scenestore.settings import DEFAULT_MONGO_PORT, DEFAULT_S3_PORT, Settings
    from scenestore_cli.local.stack import DevStack
    from scenestore_cli.serve import second_terminal, second_terminal_lines

    for name in list(os.environ):
        if name.startswith(("SCENESTORE_", "AWS_")):
            monkeypatch.delenv(name)
    stack = DevStack.create(Settings(), s3_port=DEFAULT_S3_PORT, mongo_port=DEFAULT_MONGO_PORT)
    printed = [line.strip() for line in second_terminal_lines(second_terminal(stack.settings))]
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for line in printed:
        if line.startswith("export ") or line == "scenestore usage":
            assert f"\n{line}\n" in readme, line
    assert "source .venv/bin/activate" in readme and "--mongo-port" in readme
