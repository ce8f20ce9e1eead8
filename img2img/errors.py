"""Errors meant for the user: the CLI prints their message on one line, without a traceback."""


class UserError(Exception):
    """Bad input, a bad flag or a file we refuse; the message says what and how to fix it."""
