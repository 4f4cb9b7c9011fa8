"""The ``rtseg`` command line: track, web, bench, export, eval, synth, train.

Every problem with the user's input ends in one line on stderr and exit code 2; Ctrl-C ends a run
with exit code 130 and leaves every output written so far valid. The arguments are in
:mod:`rtseg.cli.parser`, what each command does in :mod:`rtseg.cli.commands`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Sequence

from rtseg.cli import commands
from rtseg.cli.parser import build_parser
from rtseg.errors import RtsegError


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: outputs are closed and stay valid."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    # Libraries log their own account of a failure; rtseg says it once, in one line.
    logging.getLogger().addHandler(logging.NullHandler())
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C and SIGTERM end a run cleanly, even where a shell started rtseg with SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _on_sigterm)
    handler = getattr(commands, f"cmd_{args.command}")
    try:
        return handler(args)
    except RtsegError as exc:
        print(f"rtseg: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)  # 1 for a stream lost for good: its outputs are complete
    except KeyboardInterrupt as exc:
        what = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"rtseg: {what}; outputs written so far are kept", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    except Exception as exc:  # a bug: one line, the traceback on demand
        if os.environ.get("RTSEG_DEBUG"):
            raise
        message = f"rtseg: internal error: {type(exc).__name__}: {exc}".splitlines()[0]
        print(f"{message} (set RTSEG_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
