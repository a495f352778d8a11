"""User-facing failures.

Anything a user can cause (a missing file, a bad option, a dead stream) is raised as
:class:`NStreamError` with one line that says what, which and what to do; the CLI prints it
without a traceback and exits non-zero. Everything else is a bug and keeps its traceback.
"""


class NStreamError(Exception):
    """An error whose message is meant for the user, on one line."""

    exit_code = 2


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of a library's error text (or its type), short enough for an error line."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]
