"""The one error type for bad input: its message names the file, row or column and the fix."""


class InputError(ValueError):
    """Bad input data; the message names the file, row or column and how to fix it."""
