"""What the command-line tests read from a command's output (one helper, imported by the test files that check the
``error:`` line of a refused command)."""

from __future__ import annotations

from typing import Any


def error_line(result: Any, code: int = 1) -> str:
    """The one ``error:`` line of a failed command (typer's ``CliRunner`` result, status ``code``): no traceback."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]
