"""The argument parser of every ``llm-marl`` command: whole option names only, one-line errors.

Options must be typed in full (``--num-step`` is not taken for ``--num-steps``); an unknown
option gets a "did you mean" from the known ones; every error is a single line
``PROG: error: ...`` with exit code 2, never a usage dump.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

__all__ = ["CLIParser", "did_you_mean", "fail", "report"]

_INVALID_CHOICE = re.compile(r"invalid choice: '(.*?)' \(choose from (.*)\)")


def did_you_mean(word: str, known: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``known``, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def report(prog: str, message: str) -> int:
    """Print ``PROG: error: MESSAGE`` on one line to stderr; the exit status 2."""
    print(f"{prog}: error: {' '.join(message.split())}", file=sys.stderr)
    return 2


def fail(prog: str, message: str) -> NoReturn:
    """Print ``PROG: error: MESSAGE`` on one line to stderr and exit with status 2."""
    raise SystemExit(report(prog, message))


class CLIParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` without abbreviations whose errors are one line with a hint."""

    def __init__(
        self, *args: Any, owner_of: Callable[[str], str | None] | None = None, **kwargs: Any
    ) -> None:
        """``owner_of(option)``: who else knows an option this parser lacks (e.g. ``"--algo
        maac"``), asked only when the option is unknown; None when nobody does."""
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.owner_of = owner_of

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> argparse.Namespace:
        """Parse ``args``; unknown options end with a "did you mean" error."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            self.error(self.unknown_message(extra))
        return parsed

    def unknown_message(self, extra: Sequence[str]) -> str:
        """The error text for the unrecognised arguments ``extra``."""
        options = [o for o in extra if o.startswith("--")]
        if not options:
            return f"unrecognized arguments: {' '.join(extra)}"
        first = options[0].partition("=")[0]
        owner = self.owner_of(first) if self.owner_of else None
        if owner:
            return f"option {first} belongs to {owner}, not to this command line"
        known = [s for action in self._actions for s in action.option_strings]
        return (
            f"unrecognized option {first}{did_you_mean(first, known)} "
            f"({self.prog} --help lists the options)"
        )

    def error(self, message: str) -> NoReturn:
        """One line on stderr and exit status 2 (argparse prints the whole usage)."""
        choice = _INVALID_CHOICE.search(message)
        if choice:
            known = re.findall(r"'([^']*)'", choice.group(2))
            message = f"{message}{did_you_mean(choice.group(1), known)}"
        fail(self.prog, message)
