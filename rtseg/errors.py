"""The one error type the command line turns into a one-line message and exit code 2, and warnings."""

import sys


class RtsegError(Exception):
    """A problem with the user's input or environment, stated in one line."""


def warn(message: str) -> None:
    """One line on stderr about something that does not stop the run."""
    print(f"rtseg: warning: {message}", file=sys.stderr)
