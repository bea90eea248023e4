"""The command line: ``sealroom demo`` runs the unwrap and every must-fail check."""

from __future__ import annotations

import io

import pytest

from sealroom.cli import main
from sealroom.demo import unwrap as demo_unwrap


def test_demo_unwraps_and_refuses_every_attack() -> None:
    out = io.StringIO()
    assert demo_unwrap.run(out)
    text = out.getvalue()
    assert "device reads: 'Agenda: quarterly review (confidential)'" in text
    assert text.count("    refused: ") == 4
    assert "ACCEPTED" not in text
    assert "all checks passed" in text


def test_cli_demo_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo-unwrap"]) == 0
    assert "all checks passed" in capsys.readouterr().out


def test_cli_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "demo" in capsys.readouterr().out
