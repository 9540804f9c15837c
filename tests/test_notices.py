"""Warnings are held until a command's fate is known: printed on success, dropped on failure
(a failing command prints exactly one line)."""
from __future__ import annotations

from taaf import notices
from taaf.boundary import run_guarded
from taaf.errors import TaafError


def test_warnings_print_when_the_command_succeeds(capsys):
    def ok():
        notices.warn("dt looks wrong")
        notices.warn("dt looks wrong")  # the same warning twice is said once
        return 0

    assert run_guarded("taaf x", ok) == 0
    assert capsys.readouterr().err.splitlines() == ["warning: dt looks wrong"]


def test_warnings_are_dropped_when_the_command_fails(capsys):
    def bad():
        notices.warn("dt looks wrong")
        raise TaafError("decays must lie in [0, 1]")

    assert run_guarded("taaf x", bad) == 2
    assert capsys.readouterr().err.splitlines() == ["taaf x: error: decays must lie in [0, 1]"]


def test_flush_prints_before_long_work_and_outside_a_command_warn_prints_at_once(capsys):
    def long():
        notices.warn("early")
        notices.flush()
        assert capsys.readouterr().err == "warning: early\n"
        raise TaafError("later failure")

    assert run_guarded("taaf x", long) == 2
    assert capsys.readouterr().err == "taaf x: error: later failure\n"
    notices.warn("library use")
    assert capsys.readouterr().err == "warning: library use\n"
