"""The one error boundary every command runs inside (``taaf`` and ``taaf-export``).

What a user sees when a command fails, whatever failed:

==================================  ===============================================  =========
failure                             stderr (exactly one line)                        exit code
==================================  ===============================================  =========
bad flag or number (argparse)       ``taaf train: error: argument --lr: ...``        2
:class:`~taaf.errors.TaafError`     ``taaf eval: error: <message>``                  2
``OSError`` (an output path that    ``taaf simulate: error: <path>: <reason>``       2
cannot be written, a vanished file)
``MemoryError``                     ``taaf simulate: error: out of memory ...``      2
any other exception (a bug)         ``taaf bench: internal error: <Type>: <msg>      2
                                    (rerun with --debug for the traceback)``
Ctrl-C                              ``taaf train: interrupted``                      130
==================================  ===============================================  =========

Exit code 1 is never used. ``--debug`` (accepted before or after the subcommand) re-raises
every exception with its traceback instead, for bug reports; warnings (:mod:`taaf.notices`)
are printed only when the command succeeds, so a failure stays one line; ``--memory-budget-gb`` sets the
:mod:`taaf.budget` of this one command.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from taaf.budget import override
from taaf.errors import TaafError
from taaf.notices import held

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
MAX_MESSAGE = 600  # characters of an error line; longer messages are cut


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (no usage block) and exit code 2;
    subparsers made through ``add_subparsers`` are of this class too."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        """Print ``PROG: error: MESSAGE`` on one line and exit with code 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see '{self.prog} --help')\n")


def one_line(text: object) -> str:
    """``text`` with every run of whitespace (newlines included) collapsed to one space, cut to
    :data:`MAX_MESSAGE` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= MAX_MESSAGE else flat[:MAX_MESSAGE - 3] + "..."


def add_global_options(parser: argparse.ArgumentParser) -> None:
    """``--debug`` and ``--memory-budget-gb`` on ``parser`` (the top-level parser and every
    subparser get them, so they work before or after the subcommand)."""
    from taaf.argtypes import positive_finite_float

    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="on failure, show the full traceback instead of one line")
    parser.add_argument("--memory-budget-gb", type=positive_finite_float, default=argparse.SUPPRESS,
                        metavar="GB", help="refuse inputs that would need more memory than this "
                                           "(default: $TAAF_MEMORY_BUDGET_GB, else 8)")


def parse_or_exit_code(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace | int:
    """``parser.parse_args(argv)``, or the exit code argparse chose (0 for --help, 2 for a bad flag),
    so that ``main([...])`` returns instead of raising SystemExit."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_USAGE)


def describe_os_error(exc: OSError) -> str:
    """``<path>: <reason>`` for an OSError (the destination path when there are two)."""
    path = exc.filename2 if exc.filename2 is not None else exc.filename
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{path}: {reason}" if path is not None else reason


def run_guarded(prog: str, call: Callable[[], int | None], args: argparse.Namespace | None = None) -> int:
    """Run ``call()`` under the error boundary (see the module docstring); returns the exit code."""
    debug = bool(getattr(args, "debug", False))
    budget = getattr(args, "memory_budget_gb", None)
    try:
        with override(budget), held():
            return int(call() or 0)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except TaafError as exc:
        if debug:
            raise
        line = f"{prog}: error: {one_line(exc)}"
    except MemoryError as exc:
        if debug:
            raise
        what = f" ({one_line(exc)})" if str(exc) else ""
        line = (f"{prog}: error: out of memory{what}; use smaller inputs, a smaller --batch-size or --limit, "
                f"or a machine with more memory")
    except OSError as exc:
        if debug:
            raise
        line = f"{prog}: error: {one_line(describe_os_error(exc))}"
    except Exception as exc:  # noqa: BLE001 - the boundary: a bug still gets one line and exit 2
        if debug:
            raise
        line = f"{prog}: internal error: {type(exc).__name__}: {one_line(exc)} (rerun with --debug for the traceback)"
    print(line, file=sys.stderr)
    return EXIT_USAGE


__all__ = ["EXIT_INTERRUPTED", "EXIT_USAGE", "OneLineParser", "add_global_options", "describe_os_error",
           "one_line", "parse_or_exit_code", "run_guarded"]
