"""Argument-parsing helpers every command line shares.

A user's typing mistake is a user error like any other: one ``error:`` line and exit status 2,
never argparse's usage dump. The help says each default once, written the way it is typed. The
small type parsers turn text into checked values and raise ``ArgumentTypeError`` with a sentence
that says what was expected.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

from nstream.errors import NStreamError


def run_guarded(action: Callable[[], Any], sigterm_interrupts: bool = False) -> int:
    """Run a command's action and turn how it ended into an exit status, for every command alike:
    a user error is one ``error:`` line and its exit code (2), Ctrl-C (and SIGTERM when asked) 130 with
    one line saying what was kept, a closed pipe (``... | head``) 0."""
    previous = signal.getsignal(signal.SIGTERM) if sigterm_interrupts else None
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, _raise_interrupt)
        except ValueError:  # not the main thread: SIGTERM keeps its handler
            previous = None
    try:
        action()
    except NStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print(str(exc) or "interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one ``error:`` line, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


class HelpFormatter(argparse.HelpFormatter):
    """Each option's default said once: appended as ``(default: X)`` unless its help already names
    it (or there is none to say), lists written the way they are typed (``relu1_1,relu2_1``)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (not text or "default" in text.lower() or default is None or default is argparse.SUPPRESS
                or action.option_strings == [] or isinstance(action, argparse._HelpAction)):
            return text
        return f"{text} (default: {shown_default(default).replace('%', '%%')})"


def shown_default(default: Any) -> str:
    """A default as the user would type it: lists comma-joined (tuples without repeats), booleans on/off."""
    if isinstance(default, tuple):
        return ",".join(str(v) for v in dict.fromkeys(default))
    if isinstance(default, list):
        return ",".join(str(v) for v in default)
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default)


class BooleanOption(argparse.BooleanOptionalAction):
    """``--x/--no-x`` without argparse's own "(default: ...)" (Python < 3.14 appends one to the help)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        help_text = kwargs.pop("help", None)
        super().__init__(*args, **kwargs)
        self.help = help_text


def positive_int(text: str) -> int:
    """A whole number of at least 1 (counts, sizes, iterations)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative(text: str) -> float:
    """A number of 0 or more (weights); nan is refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def int_list(text: str) -> list[int]:
    """``1,2,4``: sorted distinct whole numbers of at least 1."""
    try:
        values = sorted({int(p) for p in text.split(",") if p.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"use comma-separated whole numbers like 1,2,4, got {text!r}") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError(f"values must be 1 or more, got {text!r}")
    return values


def names(text: str) -> list[str]:
    """``relu1_1,relu2_1``: a comma-separated list of at least one name."""
    values = [p.strip() for p in text.split(",") if p.strip()]
    if not values:
        raise argparse.ArgumentTypeError("name at least one layer, e.g. relu4_2")
    return values
