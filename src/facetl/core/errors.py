"""One exception type for problems the user can fix, so stages print them without a traceback."""


class FacetlError(Exception):
    """Bad input or configuration: the message says what was wrong, where, and how to fix it."""
