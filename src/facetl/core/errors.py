"""One exception type for problems the user can fix, so stages print them without a traceback."""

from __future__ import annotations

import sys
from typing import NoReturn


class FacetlError(Exception):
    """Bad input or configuration: the message says what was wrong, where, and how to fix it.

    One line per problem (several lines when several settings are wrong)."""


def exit_with(exc: FacetlError) -> NoReturn:
    """The user's to fix, so no traceback: `error: ...` per line of the message, exit 2."""
    for line in str(exc).splitlines() or [""]:
        print(f"error: {line}", file=sys.stderr)
    sys.exit(2)
