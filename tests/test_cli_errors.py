"""The CLI's promise: an error is one line on stderr and exit code 2, never a traceback
(``graphkit --debug`` shows it)."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

import graphkit.training
from graphkit import ConfigError
from graphkit.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("exc, expected", [
    (TypeError("unsupported operand"), "error: unexpected TypeError: unsupported operand (please report it"),
    (FileNotFoundError(2, "No such file or directory", "/nope/train.txt"),
     "error: No such file or directory: /nope/train.txt"),
    (MemoryError(), "error: out of memory"),
    (ConfigError("lr must be a positive finite number,\ngot -1"), "error: lr must be a positive finite number, got -1"),
])
def test_any_error_is_one_line_and_exit_2(monkeypatch, exc, expected):
    def boom(*a, **k):
        raise exc

    monkeypatch.setattr(graphkit.training, "fit", boom)
    res = run("fit", "lightgcn", "--dataset", "x", "--quiet")
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), res.output
    assert "Traceback" not in res.output


def test_debug_shows_the_traceback(monkeypatch):
    def boom(*a, **k):
        raise TypeError("unsupported operand")

    monkeypatch.setattr(graphkit.training, "fit", boom)
    res = run("--debug", "fit", "lightgcn", "--dataset", "x", "--quiet")
    assert res.exit_code == 2 and "Traceback" in res.output and "TypeError: unsupported operand" in res.output


def test_usage_errors_stay_clicks():
    res = run("fit", "lightgcn", "--epochs", "many")
    assert res.exit_code == 2 and "Invalid value for '--epochs'" in res.output and "Traceback" not in res.output
