"""``finish``: every command that reports a result prints it and exits 0 only when it says so."""

from __future__ import annotations

import json

import pytest
from scenestore_cli.common import EXIT_OK, EXIT_PARTIAL, finish


@pytest.mark.parametrize(("ok", "code"), [(True, EXIT_OK), (False, EXIT_PARTIAL)])
def test_finish_prints_one_json_document_and_exits_by_ok(
    capsys: pytest.CaptureFixture[str], ok: bool, code: int
) -> None:
    with pytest.raises(SystemExit) as exited:
        finish({"failed": 0 if ok else 1}, True, lambda r: "never used with --json", ok=ok)
    assert exited.value.code == code
    assert json.loads(capsys.readouterr().out) == {"failed": 0 if ok else 1}


def test_finish_prints_the_human_form_without_json(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        finish({"n": 2}, False, lambda r: f"{r['n']} done", ok=True)
    assert exited.value.code == EXIT_OK
    assert capsys.readouterr().out == "2 done\n"
