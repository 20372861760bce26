"""Errors that mean "the user's input is wrong": the CLI prints them as one line and exits 2."""


class UserError(Exception):
    """Bad input (file, key, value). The message must name the file or key and what is wrong."""


EXIT_USER_ERROR = 2
