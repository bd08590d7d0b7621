"""The project's own error types: every expected failure is a DigitsError with a one-line message."""


class DigitsError(Exception):
    """A failure the user can fix: the message names the file, row or key, what was found and what was expected."""


class SettingError(DigitsError, ValueError):
    """A setting the library cannot use (a layer's argument, a transform's size); the caller prefixes the key."""
