"""Errors meant for the user: the CLI prints their message on one line, without a traceback."""


class UserError(Exception):
    """Bad input, a bad flag or a file we refuse; the message says what and how to fix it."""


def require_in_range(flag: str, value: float | None, low: float, high: float) -> None:
    """A numeric flag within [low, high] (and finite), or a UserError naming the flag and the range."""
    if value is None:
        return
    if not (low <= value <= high):  # also False for nan
        raise UserError(f"{flag} must be between {low:g} and {high:g}, got {value}")
