"""The project's own error type: every expected failure is a DigitsError with a one-line message."""


class DigitsError(Exception):
    """A failure the user can fix: the message names the file, row or key, what was found and what was expected."""
