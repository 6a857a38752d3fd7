"""Run ``scenestore`` with stderr on a pseudo-terminal, so that it draws what it draws for a person."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

SCENESTORE = str(Path(sys.executable).parent / "scenestore")


def on_a_terminal(env: dict[str, str], *args: str, timeout: float = 120) -> tuple[int, str]:
    """Run ``scenestore *args`` with stderr on a 160x40 pseudo-terminal (a real terminal has a size), reading
    it while it runs; returns the exit code and everything written to the terminal."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    process = subprocess.Popen([SCENESTORE, *args], env=env, stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], timeout)
            if not ready:
                break
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
        process.wait(60)
    return process.returncode, b"".join(chunks).decode(errors="replace")
