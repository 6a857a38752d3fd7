"""``scenestore_cli.local.peer`` without starting LocalStack: what install records, why the s3_peer tests skip,
which Python it picks, and how the server is configured. (The s3_peer tests themselves are in ``tests/peer``.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from scenestore_cli.local import peer, pythons
from scenestore_cli.local.servers import StackError


def test_a_machine_without_python_313_records_the_reason_and_the_tests_skip_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(peer, "find_python", lambda: None)
    venv = tmp_path / ".venv-peer"
    result = peer.install(venv)
    assert not result.ok
    assert "no Python 3.13 found" in result.reason
    reason = peer.unavailable_reason(venv)
    assert reason is not None and "could not be installed: no Python 3.13 found" in reason
    with pytest.raises(StackError, match=r"no Python 3\.13"):
        peer.start_peer(0, tmp_path / "root", tmp_path / "logs", venv=venv)


def test_a_failing_pip_install_is_recorded_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An interpreter whose ``-m venv`` fails stands in for a pip that cannot reach its index."""
    fake = tmp_path / "python3.13"
    fake.write_text("#!/bin/sh\necho 'no network for pip' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(peer, "find_python", lambda: str(fake))
    venv = tmp_path / ".venv-peer"
    result = peer.install(venv)
    assert not result.ok
    assert "exited 3" in result.reason and "no network for pip" in result.reason
    assert (venv / peer.STATUS_FILE).read_text().strip() == result.reason


def test_a_peer_never_installed_says_how_to_install_it(tmp_path: Path) -> None:
    reason = peer.unavailable_reason(tmp_path / "nothing-here")
    assert reason is not None and "make test-peer" in reason


def test_an_installed_peer_with_the_same_pins_is_not_reinstalled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = tmp_path / ".venv-peer"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("")
    (venv / ".peer-stamp").write_text(peer._stamp() + "\n")
    monkeypatch.setattr(peer, "find_python", lambda: pytest.fail("looked for Python although installed"))
    assert peer.install(venv).ok
    assert peer.unavailable_reason(venv) is None


def test_find_python_skips_a_candidate_of_another_version(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SCENESTORE_PEER_PYTHON", sys.executable)  # this suite's 3.11: not a 3.13
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path))
    monkeypatch.setattr(pythons.shutil, "which", lambda name: None)
    assert peer.find_python() is None


def test_the_peer_checks_signatures_and_reaches_for_nothing_outside(tmp_path: Path) -> None:
    env = peer.peer_environment(4599, tmp_path)
    assert env["S3_SKIP_SIGNATURE_VALIDATION"] == "0"
    assert env["SERVICES"] == "s3"
    assert env["GATEWAY_LISTEN"] == "127.0.0.1:4599"
    assert (env["DNS_ADDRESS"], env["DISABLE_EVENTS"], env["SKIP_SSL_CERT_DOWNLOAD"]) == ("0", "1", "1")
    assert env["OVERRIDE_IN_DOCKER"] == "0" and env["FILESYSTEM_ROOT"] == str(tmp_path)
